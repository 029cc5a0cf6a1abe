"""The canvas protocol: the same content pasted at each cell of a grid.

`Global Pooling, More than Meets the Eye: Position Information is Encoded
Channel-Wise in CNNs <https://arxiv.org/abs/2108.07884>`_ (Islam, Kowal et
al., ICCV 2021) paste an image at one of ``K x K`` grid cells of a larger
canvas and ask whether a classifier on the globally pooled features can
tell the cell. Here every content crop is pasted at every cell, on a plain
and on a textured background, so that content and placement are crossed:
the score of :mod:`.score` separates what a channel's pooled response owes
to the placement from what it owes to the content.

Canvases are ``uint8`` RGB ``(N, 3, S, S)``, the contract of
:mod:`possec.analysis.common.images`; cell ``(r, c)`` covers rows
``r*h .. r*h+h-1`` and columns ``c*w .. c*w+w-1`` with ``h = w = S // K``
(rows and columns left over at the bottom and right stay background).
"""
import math
from typing import List, NamedTuple, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from torch import Tensor

from possec.errors import UserError

BACKGROUNDS = ('plain', 'texture')
#: The plain background's colour without a data preprocessor mean
#: (mmseg's ImageNet mean, rounded): it normalises to about zero.
PLAIN_RGB = (124, 116, 104)


class Canvases(NamedTuple):
    """A crossed set of canvases and the labels of each.

    Attributes:
        images (Tensor): ``uint8`` RGB ``(N, 3, S, S)``.
        cell (Tensor): Placement cell ``r * K + c`` of each canvas.
        source (Tensor): Index of the source image of the content.
        crop (Tensor): Index of the crop within its source image.
        background (Tensor): Index into the ``backgrounds`` of the set.
        grid (int): ``K``.
        backgrounds (tuple[str]): Names of the backgrounds.
    """
    images: Tensor
    cell: Tensor
    source: Tensor
    crop: Tensor
    background: Tensor
    grid: int
    backgrounds: Tuple[str, ...]


def cell_box(cell: int, grid: int, size: int) -> Tuple[int, int, int, int]:
    """The pixel box ``(y0, x0, y1, x1)`` (end exclusive) of ``cell``
    (``r * grid + c``) on a ``size x size`` canvas."""
    side = size // grid
    row, col = divmod(int(cell), grid)
    return row * side, col * side, row * side + side, col * side + side


def texture_background(size: int, seed: int = 0,
                       num_waves: int = 12) -> np.ndarray:
    """A stationary texture: a sum of random oriented gratings.

    Every grating has the same statistics at every pixel, so the background
    itself says nothing about where on the canvas a pixel lies (unlike a
    photograph, whose sky is on top).

    Args:
        size (int): Side of the square texture.
        seed (int): Seed of the gratings. Default: 0.
        num_waves (int): Number of gratings. Default: 12.

    Returns:
        np.ndarray: ``uint8`` RGB ``(size, size, 3)``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((size, size, 3))
    for _ in range(num_waves):
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(4, 16)
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.cos(2 * math.pi * (xx * math.cos(angle) +
                                     yy * math.sin(angle)) / period + phase)
        out += wave[..., None] * rng.uniform(0.3, 1.0, size=3)
    out = 128 + 90 * out / np.abs(out).max()
    return np.clip(out, 0, 255).astype(np.uint8)


def random_crops(image: np.ndarray, num: int, side: int,
                 rng: np.random.Generator,
                 scale: Tuple[float, float] = (0.35, 0.7)) -> List[np.ndarray]:
    """``num`` random square crops of ``image`` resized to ``side``.

    Args:
        image (np.ndarray): RGB ``(H, W, 3)``.
        num (int): Number of crops.
        side (int): Side of each returned crop.
        rng (np.random.Generator): Random source.
        scale (tuple[float, float]): Range of the crop's side as a share
            of the image's short side. Default: (0.35, 0.7).
    """
    height, width = image.shape[:2]
    short = min(height, width)
    crops = []
    for _ in range(num):
        crop = max(1, int(round(rng.uniform(*scale) * short)))
        y0 = int(rng.integers(0, height - crop + 1))
        x0 = int(rng.integers(0, width - crop + 1))
        patch = image[y0:y0 + crop, x0:x0 + crop]
        crops.append(cv2.resize(patch, (side, side),
                                interpolation=cv2.INTER_AREA))
    return crops


def make_canvases(sources: Sequence[np.ndarray],
                  size: int,
                  grid: int = 3,
                  crops: int = 6,
                  backgrounds: Sequence[str] = BACKGROUNDS,
                  plain_rgb: Sequence[int] = PLAIN_RGB,
                  seed: int = 0) -> Canvases:
    """Paste every crop of every source at every cell, on each background.

    Args:
        sources (Sequence[np.ndarray]): RGB ``uint8`` images ``(H, W, 3)``,
            the content (at least two, for the semantic read-out).
        size (int): Side of the square canvas.
        grid (int): ``K``: the canvas is cut into ``K x K`` cells, each of
            side ``size // K``. Default: 3.
        crops (int): Random crops per source (at least two: the decoders
            fit on some and are tested on the others). Default: 6.
        backgrounds (Sequence[str]): Some of :data:`BACKGROUNDS`.
            Default: both.
        plain_rgb (Sequence[int]): Colour of the plain background.
            Default: :data:`PLAIN_RGB`.
        seed (int): Seed of the crops and the texture. Default: 0.

    Returns:
        Canvases: ``len(backgrounds) * len(sources) * crops * K * K``
        canvases, ordered by background, source, crop, cell.
    """
    if not isinstance(grid, int) or grid < 2:
        raise UserError(f'grid must be an int >= 2 (K x K placements), got '
                        f'{grid!r}')
    side = size // grid
    if side < 4:
        raise UserError(f'a {size}px canvas cut into {grid}x{grid} cells '
                        f'leaves {side}px per cell: give a smaller --grid or '
                        f'a larger --canvas-size')
    if len(sources) < 2 or crops < 2:
        raise UserError(f'the canvas needs at least 2 source images and 2 '
                        f'crops of each (fit on some, test on others), got '
                        f'{len(sources)} and {crops}')
    unknown = [b for b in backgrounds if b not in BACKGROUNDS]
    if unknown or not backgrounds:
        raise UserError(f'unknown backgrounds {unknown}: expected some of '
                        f'{", ".join(BACKGROUNDS)}')
    rng = np.random.default_rng(seed)
    content = [random_crops(np.asarray(s), crops, side, rng) for s in sources]
    bases = {'plain': np.empty((size, size, 3), np.uint8)}
    bases['plain'][:] = np.asarray(plain_rgb, np.uint8)
    if 'texture' in backgrounds:
        bases['texture'] = texture_background(size, seed)
    images, labels = [], []
    for b, name in enumerate(backgrounds):
        for s, patches in enumerate(content):
            for c, patch in enumerate(patches):
                for cell in range(grid * grid):
                    canvas = bases[name].copy()
                    y0, x0, y1, x1 = cell_box(cell, grid, size)
                    canvas[y0:y1, x0:x1] = patch
                    images.append(canvas.transpose(2, 0, 1))
                    labels.append((cell, s, c, b))
    lab = torch.tensor(labels, dtype=torch.long)
    return Canvases(
        images=torch.from_numpy(np.ascontiguousarray(np.stack(images))),
        cell=lab[:, 0], source=lab[:, 1], crop=lab[:, 2],
        background=lab[:, 3], grid=grid, backgrounds=tuple(backgrounds))


def plain_colour(model) -> Optional[Tuple[int, int, int]]:
    """The data preprocessor's mean as an RGB colour, if it has one.

    mmseg's preprocessor subtracts its mean after its channel swap, so the
    mean is in RGB order when it swaps (``bgr_to_rgb``) and in the loaded
    BGR order when it does not.
    """
    prep = getattr(model, 'data_preprocessor', None)
    mean = getattr(prep, 'mean', None)
    if mean is None:
        return None
    mean = [float(v) for v in mean.flatten()]
    if not getattr(prep, 'channel_conversion', False):
        mean = mean[::-1]
    if len(mean) != 3:
        return None
    return tuple(int(round(min(255, max(0, v)))) for v in mean)
