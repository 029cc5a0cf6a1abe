"""Images for the position probe: a folder of photographs, or the paper's
generated inputs (``black``, ``white``, ``noise``).

`How Much Position Information Do Convolutional Neural Networks Encode?
<https://arxiv.org/abs/2001.08248>`_ (Islam, Jia and Bruce, ICLR 2020)
probes encoders with natural images and with constant and noise images.
Images are returned as ``uint8`` RGB tensors of shape ``(N, 3, S, S)`` (a
quarter of the memory of float32); each encoder normalises them itself.
"""
import os
import os.path as osp
import warnings
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from possec.errors import UserError
from ..common import read_image

GENERATED_IMAGES = ('black', 'white', 'noise')
#: images generated when no number is given: noise images differ, so the
#: readout needs many; constant images are all alike.
DEFAULT_NUM_GENERATED = dict(black=64, white=64, noise=200)
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')


class ProbeError(UserError, ValueError):
    """Bad input to the position probe (a ``ValueError``; possec's tools
    print it as one line without a traceback)."""


def probe_images(source: str,
                size: int = 224,
                num: Optional[int] = None,
                seed: int = 0) -> Tensor:
    """Load or generate the probe's images.

    Args:
        source (str): A folder of images (``.jpg``, ``.jpeg``, ``.png``,
            ``.bmp``, read in sorted order; unreadable files are skipped with
            a warning naming them), or ``'black'``, ``'white'`` or
            ``'noise'`` (uniform noise over 0..255, seeded).
        size (int): Side of the square images; photographs are resized
            (bilinear) to ``size x size``. Default: 224.
        num (int, optional): Number of images; for a folder, the first
            ``num`` readable ones (None: all); for generated images None
            means :data:`DEFAULT_NUM_GENERATED` (200 noise, 64 constant).
            Default: None.
        seed (int): Seed of the noise images. Default: 0.

    Returns:
        Tensor: ``uint8`` RGB images, shape ``(N, 3, size, size)``.
    """
    if not isinstance(size, int) or size < 1:
        raise ProbeError(f'image size must be a positive int, got {size!r}')
    if num is not None and (not isinstance(num, int) or num < 1):
        raise ProbeError(f'number of images must be a positive int or None, '
                         f'got {num!r}')
    if source in GENERATED_IMAGES:
        if num is None:
            num = DEFAULT_NUM_GENERATED[source]
        shape = (num, 3, size, size)
        if source == 'noise':
            rng = np.random.default_rng(seed)
            return torch.from_numpy(rng.integers(0, 256, shape, np.uint8))
        fill = 0 if source == 'black' else 255
        return torch.full(shape, fill, dtype=torch.uint8)
    if not osp.isdir(source):
        raise ProbeError(
            f'image source {source!r} is neither a folder nor one of '
            f'{", ".join(GENERATED_IMAGES)}')
    return _load_folder(source, size, num)


def _load_folder(folder: str, size: int, num: Optional[int]) -> Tensor:
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(IMAGE_EXTENSIONS)
                   and osp.isfile(osp.join(folder, n)))
    if not names:
        raise ProbeError(
            f'no images found in {folder!r}: expected files ending in '
            f'{", ".join(IMAGE_EXTENSIONS)}')
    images, skipped = [], []
    for name in names:
        if num is not None and len(images) == num:
            break
        path = osp.join(folder, name)
        try:
            images.append(read_image(path, size))
        except UserError:
            warnings.warn(f'skipping unreadable image {path!r}')
            skipped.append(path)
    if not images:
        raise ProbeError(
            f'none of the {len(skipped)} image files in {folder!r} could be '
            f'read (e.g. {skipped[0]!r}); give a folder of readable images')
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy())


def split_indices(num: int,
                  test_fraction: float = 0.2,
                  seed: int = 0) -> Tuple[Tensor, Tensor]:
    """A seeded random split of ``range(num)`` into train and held-out parts.

    Args:
        num (int): Number of images, at least 2.
        test_fraction (float): Share held out, in (0, 1); rounded to at least
            one image on each side. Default: 0.2.
        seed (int): Seed of the permutation. Default: 0.

    Returns:
        tuple[Tensor, Tensor]: Sorted ``int64`` train and test indices.
    """
    if not 0 < test_fraction < 1:
        raise ProbeError(f'test fraction must lie in (0, 1), '
                         f'got {test_fraction!r}')
    if num < 2:
        raise ProbeError(f'the probe needs at least 2 images (one to train '
                         f'on, one held out), got {num}')
    num_test = min(max(1, round(num * test_fraction)), num - 1)
    order = torch.randperm(num, generator=torch.Generator().manual_seed(seed))
    return order[num_test:].sort().values, order[:num_test].sort().values
