"""Occlusion sensitivity of a segmentor's class score over a region.

`Visualizing and Understanding Convolutional Networks
<https://arxiv.org/abs/1311.2901>`_ (Zeiler and Fergus) slide a grey square
over the image and record the classifier's score at each position. For
segmentation the score is the mean logit (or probability) of a class over a
region, by default the pixels predicted as that class on the clean image.
The square is filled with 0 in the normalised input, i.e. with the data
preprocessor's mean colour: the "grey" of the data.

The occluding is done by Captum's :class:`~captum.attr.Occlusion`
(`Captum <https://captum.ai>`_), with two possec conventions on top
(:class:`FlushOcclusion`): the last square of each row and column lies
flush with the image border (Captum's own is cropped where the stride grid
ends, so it is smaller), and the sum over squares is divided by the number
of squares covering each pixel in float64. Where the windows align (the
image side minus the square a multiple of the stride) the map equals
Captum's ``Occlusion`` output.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from captum.attr import Occlusion
from torch import Tensor

from possec.apis.paths import check_output_dir
from possec.errors import UserError
from ..common import Progress, new_figure
from .receptive import patch_grid
from .segmentor import (class_names, head_logits, prepare_one, save_result,
                        upsample)

SCORES = ('logit', 'prob')


def region_score(logits: Tensor, cls: int, region: Tensor,
                 score: str = 'logit') -> Tensor:
    """Mean logit or softmax probability of ``cls`` over the boolean
    ``(H, W)`` ``region``, per image of ``logits`` ``(N, K, H, W)``."""
    if score not in SCORES:
        raise UserError(f'unknown score {score!r}; expected one of {SCORES}')
    values = logits.softmax(1)[:, cls] if score == 'prob' else logits[:, cls]
    return values[:, region].mean(1)


class FlushOcclusion(Occlusion):
    """Captum's ``Occlusion`` with the last window of every axis flush with
    the border, returning the plain sum over windows.

    Captum places windows at multiples of the stride and crops the last one
    at the border; here its start is moved back to ``size - window``, so
    that every square has the full size (the windows of
    :func:`~possec.analysis.fields.receptive.patch_grid`). Captum's division
    by the cover count is switched off (``use_weights``): it returns float32
    whatever the model's precision; :func:`occlusion_map` divides in
    float64.

    Args:
        forward_func (Callable): Batch -> one score per image.
    """

    def __init__(self, forward_func: Callable[[Tensor], Tensor]) -> None:
        super().__init__(forward_func)
        self.use_weights = False

    def _occlusion_mask(self, input, ablated_feature_num, sliding_window_tsr,
                        strides, shift_counts, is_expanded_input):
        shape = input.shape[2 if is_expanded_input else 1:]
        window = sliding_window_tsr.shape
        start, rest = [], ablated_feature_num
        for i, count in enumerate(shift_counts):  # Captum's feature order
            stride = strides[i] if isinstance(strides, tuple) else strides
            start.append(min((rest % count) * stride, shape[i] - window[i]))
            rest //= count
        mask = sliding_window_tsr.new_zeros(shape)
        mask[tuple(slice(s, s + w) for s, w in zip(start, window))] = \
            sliding_window_tsr
        return mask[None]


@torch.no_grad()
def occlusion_map(fn: Callable[[Tensor], Tensor], x: Tensor, cls: int,
                  region: Tensor, size: Optional[int] = None,
                  stride: Optional[int] = None, score: str = 'logit',
                  fill: float = 0., batch_size: int = 16,
                  progress: bool = False) -> Tuple[Tensor, Tensor]:
    """Drop of the region score when each pixel is occluded.

    Args:
        fn (Callable): Image batch ``(N, C, H, W)`` -> logits ``(N, K, H,
            W)`` at image resolution.
        x (Tensor): One normalised image ``(1, C, H, W)``.
        cls (int): Class whose score is tracked.
        region (Tensor): Boolean ``(H, W)`` mask the score averages over.
        size (int, optional): Side of the occluding square. Default: None
            (an 8th of the shorter image side).
        stride (int, optional): Step between squares, at most ``size``.
            Default: None (half the side).
        score (str): ``'logit'`` or ``'prob'``. Default: 'logit'.
        fill (float): Value of the square in the normalised input.
            Default: 0 (the preprocessor's mean colour).
        batch_size (int): Occluded images per forward pass. Default: 16.
        progress (bool): Show a progress bar over the forward passes
            (:func:`forward_passes`); its ETA extrapolates the batched
            passes, not the first pass on the clean image alone.
            Default: False.

    Returns:
        tuple[Tensor, Tensor]: The float64 ``(H, W)`` map (clean score
        minus occluded score, averaged over the squares covering each
        pixel; positive where hiding the pixel lowers the score) and the
        clean score.
    """
    if not region.any():
        raise UserError('the region is empty: give a class that is '
                        'predicted somewhere, or a region')
    size = size or max(1, round(min(x.shape[-2:]) / 8))
    stride = stride or max(1, size // 2)
    if stride > size:
        raise UserError(f'stride {stride} is larger than the occluder '
                        f'{size}: pixels between squares would never be '
                        f'hidden; give a stride of at most {size}')
    count = torch.zeros(x.shape[-2:], dtype=torch.float64)
    windows = patch_grid(x.shape[-2:], size, stride)
    for y0, x0 in windows:
        count[y0:y0 + size, x0:x0 + size] += 1
    bar = Progress(forward_passes(len(windows), batch_size), progress,
                   warmup=1)

    def scores(batch: Tensor) -> Tensor:
        out = region_score(fn(batch), cls, region, score).double()
        bar.update()
        return out

    total = FlushOcclusion(scores).attribute(
        x, sliding_window_shapes=(x.shape[1], size, size),
        strides=(x.shape[1], stride, stride), baselines=fill,
        perturbations_per_eval=batch_size, show_progress=False)
    clean = scores(x)[0]
    bar.close()
    return total[0, 0] / count, clean


def forward_passes(num_windows: int, batch_size: int) -> int:
    """Forward passes of :func:`occlusion_map`: Captum's pass on the clean
    image, one per batch of ``batch_size`` occluded images, and the clean
    score's."""
    return 1 + -(-num_windows // batch_size) + 1


def default_class(pred: Tensor, background: int = 0) -> int:
    """The most frequent predicted class other than ``background`` (if any
    other is predicted)."""
    counts = torch.bincount(pred.flatten())
    if counts.numel() > background + 1 and counts.sum() > counts[background]:
        counts = counts.clone()
        counts[background] = 0
    return int(counts.argmax())


def box_region(box: Sequence[int], shape: Sequence[int]) -> Tensor:
    """Boolean mask of rows ``y0:y1`` and columns ``x0:x1``."""
    y0, x0, y1, x1 = box
    height, width = shape
    if not (0 <= y0 < y1 <= height and 0 <= x0 < x1 <= width):
        raise UserError(f'region {tuple(box)} (y0 x0 y1 x1, end exclusive) '
                        f'does not fit the {height}x{width} image')
    mask = torch.zeros(tuple(shape), dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def plot_occlusion(image: np.ndarray, result: dict, heat: np.ndarray,
                   region: np.ndarray):
    """Image with the scored region; the sensitivity map; both overlaid."""
    fig, axes = new_figure(1, 3, 3.6)
    limit = max(abs(heat).max(), 1e-12)
    axes[0, 0].imshow(image)
    axes[0, 0].set_title('image and scored region', fontsize=9)
    im = axes[0, 1].imshow(heat, cmap='RdBu_r', vmin=-limit, vmax=limit)
    fig.colorbar(im, ax=axes[0, 1], shrink=0.75)
    axes[0, 1].set_title(f'{result["score"]} drop when occluded', fontsize=9)
    axes[0, 2].imshow(image)
    axes[0, 2].imshow(np.clip(heat, 0, None), cmap='inferno', alpha=0.6,
                      vmin=0, vmax=limit)
    axes[0, 2].set_title('drop (positive part) over the image', fontsize=9)
    name = result.get('cls_name', result['cls'])
    peak = result['peak']
    for ax in axes[0]:
        ax.contour(region, levels=[0.5], colors='cyan', linewidths=1.2)
        ax.plot(peak[1], peak[0], marker='x', color='lime', ms=10, mew=2)
        ax.set_axis_off()
    fig.suptitle(
        f'class {name}: clean {result["score"]} '
        f'{result["clean_score"]:.3g} over {result["region_pixels"]} px '
        f'(cyan); occluder {result["size"]} px, stride {result["stride"]}; '
        f'largest drop {result["max_drop"]:.3g} at x', fontsize=9)
    return fig


def occlusion(fn: Callable[[Tensor], Tensor], x: Tensor,
              cls: Optional[int] = None,
              region: Optional[Sequence[int]] = None, **kwargs) -> dict:
    """Occlusion sensitivity on one image, with the default class and
    region resolved; returns the numbers, ``heat`` and ``region``.

    Args:
        fn (Callable): Image batch -> logits at image resolution.
        x (Tensor): One normalised image ``(1, C, H, W)``.
        cls (int, optional): Class. Default: None (the most frequent
            non-background class of the clean prediction).
        region (tuple[int], optional): ``(y0, x0, y1, x1)``, end exclusive.
            Default: None (the pixels predicted as ``cls``).
        **kwargs: Passed to :func:`occlusion_map`.
    """
    with torch.no_grad():
        logits = fn(x)
    pred = logits[0].argmax(0)
    if cls is None:
        cls = default_class(pred)
    elif not 0 <= cls < logits.shape[1]:
        raise UserError(f'class {cls} is out of range: expected 0 to '
                        f'{logits.shape[1] - 1}')
    if region is None:
        mask = pred == cls
        if not mask.any():
            present: List[int] = torch.unique(pred).tolist()
            raise UserError(
                f'class {cls} is predicted nowhere on the clean image '
                f'(predicted: {present}): choose one of those, or give a '
                f'region (y0 x0 y1 x1)')
    else:
        mask = box_region(region, x.shape[-2:])
    heat, clean = occlusion_map(fn, x, cls, mask, **kwargs)
    peak = np.unravel_index(int(heat.argmax()), tuple(heat.shape))
    size = kwargs.get('size') or max(1, round(min(x.shape[-2:]) / 8))
    return dict(
        cls=cls, score=kwargs.get('score', 'logit'), size=size,
        stride=kwargs.get('stride') or max(1, size // 2),
        region_box=list(region) if region is not None else None,
        region_pixels=int(mask.sum()), clean_score=float(clean),
        max_drop=float(heat.max()), min_drop=float(heat.min()),
        peak=[int(p) for p in peak],
        mean_drop_in_region=float(heat[mask].mean()),
        mean_drop_outside=float(heat[~mask].mean()) if (~mask).any()
        else None,
        heat=heat, region=mask)


def run_occlusion(config: str, checkpoint: Optional[str] = None,
                  img: Optional[str] = None, index: int = 0,
                  cls: Optional[int] = None,
                  region: Optional[Sequence[int]] = None,
                  occluder: Optional[int] = None,
                  image_size: Optional[Sequence[int]] = None,
                  cfg_options: Optional[dict] = None,
                  out_dir: str = 'work_dirs/occlusion', seed: int = 0,
                  **kwargs) -> dict:
    """Occlusion sensitivity of a segmentor on one image; writes
    ``occlusion.png`` and ``occlusion.json`` into ``out_dir``.

    Args:
        config (str): Segmentor config.
        checkpoint (str, optional): Its weights. Default: None (random).
        img (str, optional): Image file. Default: None (test set image
            number ``index``).
        cls (int, optional): Class. Default: None (see :func:`occlusion`).
        region (tuple[int], optional): ``(y0, x0, y1, x1)``, end exclusive.
            Default: None (the pixels predicted as the class).
        occluder (int, optional): Side of the grey square. Default: None
            (an 8th of the shorter image side).
        image_size (tuple[int], optional): Resize the image to (H, W).
            Default: None (the data preprocessor's size, else the image's).
        **kwargs: The other options of :func:`occlusion_map` (``stride``,
            ``score``, ``batch_size``, ``progress``).
    """
    check_output_dir(out_dir, '--out-dir')  # before any computation
    model, image, x, path = prepare_one(config, checkpoint, img, index,
                                        image_size, cfg_options, seed, cls)
    logits = head_logits(model)
    result = occlusion(lambda b: upsample(model, logits(b), b.shape[-2:]),
                       x, cls, region, size=occluder, **kwargs)
    result['cls_name'] = class_names(model)[result['cls']]
    fig = plot_occlusion(image, result, result['heat'].numpy(),
                         result['region'].numpy())
    return save_result(result, out_dir, 'occlusion', fig, ('heat', 'region'),
                       config=config, checkpoint=checkpoint, image=path)
