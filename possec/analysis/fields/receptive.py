"""Theoretical and empirical receptive field of one output unit.

`ParseNet <https://arxiv.org/abs/1506.04579>`_ (Liu, Rabinovich and Berg)
found that FCN's empirical receptive field is far smaller than its
theoretical one, which is why explicit global context helps. The empirical
field is measured as there: small patches of the image, on a grid, are
replaced by random noise one at a time, and the change of one output unit's
logit is recorded; the pixels whose patches change it by at least
``threshold`` times the largest change form the empirical field. The
theoretical field comes from the architecture
(:func:`~possec.analysis.fields.theoretical.theoretical_field`); for a head
with a global branch (``ParseNetHead(use_global=True)``) it is the whole
image, and its local part is reported beside it.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from possec.apis.paths import check_output_dir
from possec.errors import UserError
from ..common import Progress, draw_box, new_figure
from .segmentor import class_names, head_logits, prepare_one, save_result
from .theoretical import Field, theoretical_field


def patch_grid(size: Sequence[int], patch: int,
               stride: int) -> List[Tuple[int, int]]:
    """Top-left corners of ``patch``-sized squares every ``stride`` pixels
    that tile an image of ``size`` (H, W), the last row and column flush
    with the border."""
    if patch < 1 or stride < 1 or patch > min(size):
        raise UserError(f'patch {patch} and stride {stride} must be positive '
                        f'and the patch at most the image side {min(size)}')
    axes = []
    for n in size:
        starts = list(range(0, n - patch + 1, stride))
        if starts[-1] != n - patch:
            starts.append(n - patch)
        axes.append(starts)
    return [(y, x) for y in axes[0] for x in axes[1]]


@torch.no_grad()
def change_map(fn: Callable[[Tensor], Tensor], x: Tensor,
               unit: Sequence[int], cls: int, patch: Optional[int] = None,
               stride: Optional[int] = None, repeats: int = 1,
               sigma: float = 1.0, batch_size: int = 16, seed: int = 0,
               progress: bool = False) -> Tensor:
    """Mean ``|Δ logit|`` of one unit when each pixel's patch is noised.

    Args:
        fn (Callable): Image batch ``(N, C, H, W)`` -> logits
            ``(N, K, h, w)``.
        x (Tensor): One normalised image ``(1, C, H, W)``.
        unit (tuple[int]): Logit position (row, column) on the h x w grid.
        cls (int): Class channel of the logit.
        patch (int, optional): Side of the noised squares in pixels.
            Default: None (a 16th of the shorter image side, at least 1).
        stride (int, optional): Distance between squares; None: ``patch``.
            Default: None.
        repeats (int): Noise draws per square, averaged. Default: 1.
        sigma (float): Standard deviation of the noise in normalised units
            (1: the data's own spread around its mean). Default: 1.0.
        batch_size (int): Perturbed images per forward pass. Default: 16.
        seed (int): Seed of the noise. Default: 0.
        progress (bool): Show a progress bar. Default: False.

    Returns:
        Tensor: ``(H, W)`` float map: for every pixel, the mean change over
        the squares (and draws) that covered it.
    """
    if repeats < 1 or batch_size < 1:
        raise UserError(f'repeats and batch size must be at least 1, got '
                        f'{repeats} and {batch_size}')
    patch = patch or max(1, round(min(x.shape[-2:]) / 16))
    stride = stride or patch
    corners = patch_grid(x.shape[-2:], patch, stride) * repeats
    gen = torch.Generator().manual_seed(seed)
    clean = fn(x)[0, cls, unit[0], unit[1]]
    total = torch.zeros(x.shape[-2:], dtype=torch.float64)
    count = torch.zeros_like(total)
    bar = Progress(len(corners), progress)
    for begin in range(0, len(corners), batch_size):
        chunk = corners[begin:begin + batch_size]
        batch = x.repeat(len(chunk), 1, 1, 1)
        noise = torch.randn((len(chunk), x.shape[1], patch, patch),
                            generator=gen, dtype=x.dtype) * sigma
        for i, (y0, x0) in enumerate(chunk):
            batch[i, :, y0:y0 + patch, x0:x0 + patch] = noise[i]
        delta = (fn(batch)[:, cls, unit[0], unit[1]] - clean).abs().double()
        for (y0, x0), d in zip(chunk, delta):
            total[y0:y0 + patch, x0:x0 + patch] += d
            count[y0:y0 + patch, x0:x0 + patch] += 1
        bar.update(len(chunk))
    bar.close()
    return total / count.clamp(min=1)


def receptive_field(fn: Callable[[Tensor], Tensor], x: Tensor,
                    point: Optional[Sequence[int]] = None,
                    cls: Optional[int] = None, threshold: float = 0.1,
                    patch: Optional[int] = None, **kwargs) -> dict:
    """Theoretical and empirical receptive field of one logit.

    The change map has the resolution of the patches: a pixel counts as
    *beyond* the local theoretical field only when no patch that covers it
    can overlap the field (it lies more than ``patch - 1`` pixels outside
    the box), so that ``change_beyond_local`` and
    ``max_change_beyond_local`` are exactly 0 for a network without global
    operations.

    Args:
        fn (Callable): Image batch -> logits ``(N, K, h, w)``.
        x (Tensor): One normalised image ``(1, C, H, W)``.
        point (tuple[int], optional): Pixel (row, column) whose logit unit
            is studied (the unit centred nearest to it). Default: None
            (the image centre).
        cls (int, optional): Class of the logit. Default: None (the class
            predicted at that unit).
        threshold (float): The empirical field is where the change is at
            least ``threshold`` times its maximum. Default: 0.1.
        patch (int, optional): Side of the noised squares. Default: None
            (a 16th of the shorter image side, at least 1).
        **kwargs: Passed to :func:`change_map` (``stride``, ``repeats``,
            ``sigma``, ``batch_size``, ``seed``, ``progress``).

    Returns:
        dict: The numbers (see the keys) and ``change`` (the ``(H, W)``
        map) and ``region`` (its boolean thresholded mask).
    """
    if not 0 < threshold < 1:
        raise UserError(f'threshold must lie in (0, 1), got {threshold!r}')
    height, width = x.shape[-2:]
    patch = patch or max(1, round(min(height, width) / 16))
    field: Field = theoretical_field(fn, x)
    with torch.no_grad():
        logits = fn(x)
    grid = tuple(logits.shape[-2:])
    if point is None:
        point = ((height - 1) // 2, (width - 1) // 2)
    if not (0 <= point[0] < height and 0 <= point[1] < width):
        raise UserError(f'point {tuple(point)} (row, column) lies outside '
                        f'the {height}x{width} image')
    unit = field.unit_at(point, grid)
    if cls is None:
        cls = int(logits[0, :, unit[0], unit[1]].argmax())
    elif not 0 <= cls < logits.shape[1]:
        raise UserError(f'class {cls} is out of range: expected 0 to '
                        f'{logits.shape[1] - 1}')
    change = change_map(fn, x, unit, cls, patch, **kwargs)
    peak = float(change.max())
    region = change >= threshold * peak if peak > 0 else change > 0
    box = field.box(unit, (height, width))
    near = torch.zeros_like(region)
    if box is not None:
        y0, x0 = (max(int(np.ceil(b)) - patch + 1, 0) for b in box[:2])
        y1, x1 = (int(np.floor(b)) + patch - 1 for b in box[2:])
        near[y0:y1 + 1, x0:x1 + 1] = True
    theory_area = height * width if field.is_global else int(
        np.prod([b - a + 1 for a, b in zip(box[:2], box[2:])]))
    empirical_area = int(region.sum())
    mass = float(change.sum())
    return dict(
        image_size=[height, width], point=list(point), unit=list(unit),
        unit_centre=list(field.centre(unit)), logit_grid=list(grid),
        cls=cls, clean_logit=float(logits[0, cls, unit[0], unit[1]]),
        patch=patch,
        theoretical=dict(
            is_global=field.is_global, local_size=field.size,
            jump=field.jump, local_box=box, area=theory_area,
            unmodelled_ops=list(field.unmodelled)),
        empirical_area=empirical_area,
        empirical_over_theoretical=empirical_area / theory_area,
        empirical_near_local=(int((region & near).sum()) /
                              max(empirical_area, 1)),
        change_beyond_local=(float(change[~near].sum()) / mass
                             if mass > 0 else 0.),
        max_change_beyond_local=float(change[~near].max())
        if (~near).any() else 0.,
        max_change=peak, threshold=threshold,
        change=change, region=region)


def plot_receptive_field(image: np.ndarray, result: dict, title: str = ''):
    """Image with the unit, its theoretical box and empirical region; the
    change map; the change map on a log scale (shows weak far influence,
    e.g. through a global branch)."""
    fig, axes = new_figure(1, 3, 3.6)
    change = result['change'].numpy()
    region = result['region'].numpy()
    centre = result['unit_centre']
    box = result['theoretical']['local_box']
    glob = result['theoretical']['is_global']
    peak = max(change.max(), 1e-30)
    log = np.log10(np.maximum(change, peak * 1e-6))
    panels = [(image, None, 'image, field and empirical region'),
              (change, 'magma', '|Δ logit| per noised patch'),
              (log, 'viridis', 'log10 |Δ logit| (6 decades)')]
    for i, (ax, (data, cmap, label)) in enumerate(zip(axes[0], panels)):
        im = ax.imshow(data, cmap=cmap, interpolation='nearest')
        if cmap is not None:
            fig.colorbar(im, ax=ax, shrink=0.75)
        if i < 2:
            ax.contour(region, levels=[0.5], colors='cyan', linewidths=1.2)
        if box is not None:
            draw_box(ax, box, edgecolor='lime', linestyle='--', linewidth=1.5)
        ax.plot(centre[1], centre[0], marker='+', color='red', ms=12, mew=2)
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
    name = result.get('cls_name', result['cls'])
    kind = ('global (whole image) + local box' if glob
            else 'local box (dashed)')
    fig.suptitle(
        f'{title}class {name} at unit {tuple(result["unit"])}:'
        f' theoretical {kind}; empirical region (cyan) = '
        f'{result["empirical_area"]} px, '
        f'{result["empirical_over_theoretical"]:.1%} of theoretical',
        fontsize=9)
    return fig


def run_receptive_field(config: str, checkpoint: Optional[str] = None,
                        img: Optional[str] = None, index: int = 0,
                        point: Optional[Sequence[int]] = None,
                        cls: Optional[int] = None, threshold: float = 0.1,
                        image_size: Optional[Sequence[int]] = None,
                        cfg_options: Optional[dict] = None,
                        out_dir: str = 'work_dirs/receptive_field',
                        seed: int = 0, **kwargs) -> dict:
    """Receptive field of a segmentor's logit on one image; writes
    ``receptive_field.png`` and ``receptive_field.json`` into ``out_dir``.

    Args:
        config (str): Segmentor config.
        checkpoint (str, optional): Its weights. Default: None (random).
        img (str, optional): Image file. Default: None (test set image
            number ``index``).
        index (int): Test set image used without ``img``. Default: 0.
        point (tuple[int], optional): Pixel (row, column) whose logit unit
            is studied. Default: None (the image centre).
        cls (int, optional): Class of the logit. Default: None (the class
            predicted there).
        threshold (float): Empirical field threshold, relative to the
            largest change. Default: 0.1.
        image_size (tuple[int], optional): Resize the image to (H, W).
            Default: None (the data preprocessor's size, else the image's).
        cfg_options (dict, optional): Config overrides. Default: None.
        out_dir (str): Output folder. Default: 'work_dirs/receptive_field'.
        seed (int): Seed of the random init and of the noise. Default: 0.
        **kwargs: The options of :func:`change_map` (``patch``,
            ``stride``, ``repeats``, ``sigma``, ``batch_size``,
            ``progress``).
    """
    check_output_dir(out_dir, '--out-dir')  # before any computation
    model, image, x, path = prepare_one(config, checkpoint, img, index,
                                        image_size, cfg_options, seed, cls)
    result = receptive_field(head_logits(model), x, point, cls, threshold,
                             seed=seed, **kwargs)
    result['cls_name'] = class_names(model)[result['cls']]
    return save_result(result, out_dir, 'receptive_field',
                       plot_receptive_field(image, result),
                       ('change', 'region'), config=config,
                       checkpoint=checkpoint, image=path)
