"""Feature change under translation, rotation and scaling, per border rule.

`Visualizing and Understanding Convolutional Networks
<https://arxiv.org/abs/1311.2901>`_ (Zeiler and Fergus, Fig. 5) plot how
far a network's features move when the input is translated, rotated or
scaled. Here the question is how the border rule changes that: the same
backbone weights are run under each ``padding_mode`` and, at every backbone
level, the relative L2 change ``||F(x) - U(F(T x))|| / ||F(x)||`` is
measured, where ``T`` transforms the image and ``U`` undoes ``T`` on the
feature map, so that a perfectly equivariant network scores 0:

- ``translate``: a circular vertical shift of the image by ``d`` pixels
  (``torch.roll``), undone by rolling each level back by ``d / stride``
  rows (rounded). With circular padding every operation commutes with
  circular shifts by multiples of the stride, so the change is exactly 0
  there; zero padding marks the border and breaks it.
- ``rotate`` (degrees) and ``scale`` (zoom factor) about the image centre:
  bilinear resampling, filled with 0 in the normalised input (the data's
  mean colour), undone on the features by the inverse resampling; the
  change is measured over the feature positions that the transformed image
  covers.
"""
import copy
import csv
import inspect
import math
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor, nn

from possec.apis.paths import check_output_dir
from possec.errors import UserError
from possec.fileio import atomic_path
from possec.models.layers import PADDING_MODES, convert_padding
from ..common import (Progress, load_images, load_segmentor, new_figure,
                      write_outputs)
from .segmentor import dataset_images, input_size, model_inputs

TRANSFORMS = ('translate', 'rotate', 'scale')
DEFAULT_VALUES = dict(translate=(0, 4, 8, 12, 16, 24, 32),
                      rotate=(0, 5, 10, 20, 30, 45, 90),
                      scale=(0.5, 0.75, 1.0, 1.25, 1.5, 2.0))
IDENTITY = dict(translate=0, rotate=0, scale=1)
DEFAULT_MODES = ('zeros', 'reflect', 'replicate', 'circular', 'partial')


def _theta(kind: str, value: float, height: int, width: int,
           inverse: bool = False) -> Tensor:
    """``affine_grid`` matrix of a rotation or zoom about the centre: an
    output pixel samples the input at ``A p`` (pixel units, centred)."""
    if kind == 'rotate':
        a = math.radians(value)
        mat = torch.tensor([[math.cos(a), -math.sin(a)],
                            [math.sin(a), math.cos(a)]], dtype=torch.float64)
    else:
        if value <= 0:
            raise UserError(f'scale factors must be positive, got {value}')
        mat = torch.eye(2, dtype=torch.float64) / value
    if inverse:
        mat = torch.linalg.inv(mat)
    half = torch.tensor([width / 2, height / 2], dtype=torch.float64)
    mat = mat * half[None, :] / half[:, None]  # D^-1 A D, normalised coords
    return torch.cat([mat, torch.zeros(2, 1, dtype=torch.float64)], 1)


def _resample(x: Tensor, theta: Tensor) -> Tensor:
    grid = F.affine_grid(theta.to(x.dtype).expand(len(x), 2, 3),
                         list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros',
                         align_corners=False)


def transform(x: Tensor, kind: str, value: float) -> Tensor:
    """Apply one transformation to a normalised image batch."""
    if kind == 'translate':
        return torch.roll(x, int(value), dims=-2)
    if kind not in TRANSFORMS:
        raise UserError(f'unknown transform {kind!r}; expected one of '
                        f'{TRANSFORMS}')
    return _resample(x, _theta(kind, value, *x.shape[-2:]))


def undo(feat: Tensor, kind: str, value: float, image_size: Sequence[int]):
    """Undo a transformation on a feature map; return it and the boolean
    ``(h, w)`` mask of positions the transformed image covers."""
    h, w = feat.shape[-2:]
    if kind == 'translate':
        stride = image_size[0] / h
        back = torch.roll(feat, -int(round(value / stride)), dims=-2)
        return back, torch.ones(h, w, dtype=torch.bool)
    theta = _theta(kind, value, *image_size, inverse=True)
    ones = feat.new_ones(1, 1, h, w)
    return _resample(feat, theta), _resample(ones, theta)[0, 0] > 1 - 1e-6


def relative_change(ref: Tensor, moved: Tensor, mask: Tensor) -> Tensor:
    """Per image ``||ref - moved|| / ||ref||`` over ``mask`` positions."""
    diff = ((ref - moved)[..., mask] ** 2).sum(dim=(1, 2)).sqrt()
    return diff / (ref[..., mask] ** 2).sum(dim=(1, 2)).sqrt().clamp(
        min=1e-30)


@torch.no_grad()
def feature_change(backbone: nn.Module, x: Tensor, kind: str,
                   values: Sequence[float], progress=None) -> np.ndarray:
    """Mean relative change per (level, value) of ``backbone``'s outputs
    under transformation ``kind`` of ``x``; identity values score 0."""
    ref = _levels(backbone(x))
    out = np.zeros((len(ref), len(values)))
    for col, value in enumerate(values):
        if value != IDENTITY[kind]:
            moved = _levels(backbone(transform(x, kind, value)))
            for lvl, (f, m) in enumerate(zip(ref, moved)):
                back, mask = undo(m, kind, value, x.shape[-2:])
                out[lvl, col] = float(relative_change(f, back, mask).mean())
        if progress is not None:
            progress.update()
    return out


def _levels(outs):
    return [outs] if isinstance(outs, Tensor) else list(outs)


def mode_backbones(model: nn.Module, modes: Sequence[str]
                   ) -> Dict[str, nn.Module]:
    """``model``'s backbone under each border rule, all with its weights.

    A backbone that takes ``padding_mode`` (possec's ``PadResNet``,
    ``PadVGG``, ...) is rebuilt from the config with each mode and given
    the same state dict (the modes share keys and shapes); any other is
    copied and converted with :func:`possec.models.layers.convert_padding`.
    """
    backbone_cfg = copy.deepcopy(model.cfg.model.backbone)
    cls = MODELS.get(backbone_cfg.type) if isinstance(
        backbone_cfg.type, str) else backbone_cfg.type
    native = cls is not None and 'padding_mode' in inspect.signature(
        cls.__init__).parameters
    state = model.backbone.state_dict()
    backbones = {}
    for mode in modes:
        if mode not in PADDING_MODES or mode == 'none':
            raise UserError(
                f'unknown or unusable padding mode {mode!r}: expected some '
                f'of {", ".join(m for m in PADDING_MODES if m != "none")} '
                f"('none' shrinks the features, which then cannot be "
                f'aligned with those of the transformed image)')
        if native:
            backbone_cfg.padding_mode = mode
            backbone_cfg.init_cfg = None
            backbone = MODELS.build(backbone_cfg)
            backbone.load_state_dict(state)
        else:
            try:
                backbone = convert_padding(copy.deepcopy(model.backbone),
                                           mode)
            except TypeError as exc:
                raise UserError(str(exc)) from None
        backbones[mode] = backbone.eval().requires_grad_(False)
    _check_integer_strides(backbones)
    return backbones


def _check_integer_strides(backbones: Dict[str, nn.Module],
                           size: int = 64) -> None:
    """Refuse a border rule whose feature maps do not tile the image by an
    integer stride (e.g. ``'full'`` on a backbone that lets its maps grow,
    such as ``PadVGG``): :func:`undo` maps feature positions back to image
    positions by the stride alone, so such maps would be compared
    misaligned."""
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        for mode, backbone in backbones.items():
            try:
                shapes = [tuple(o.shape[-2:]) for o in _levels(backbone(x))]
            except RuntimeError:  # too small for this backbone: no check
                continue
            bad = [hw for hw in shapes if size % hw[0] or size % hw[1]]
            if bad:
                raise UserError(
                    f'padding mode {mode!r} gives this backbone feature maps '
                    f'of {bad} for a {size}x{size} input, expected sizes '
                    f'that divide the input (an integer stride): '
                    f'invariance aligns features by stride; leave {mode!r} '
                    f"out (PadResNet's 'full' crops per block and is "
                    f'accepted)')


def invariance_rows(result: dict) -> List[dict]:
    """One row per (padding mode, transform, value, level): the mean
    relative change, the numbers of ``invariance.csv``."""
    rows = []
    for mode, per_kind in result['change'].items():
        for kind in result['transforms']:
            for lvl, curve in enumerate(per_kind[kind]):
                for value, change in zip(result['values'][kind], curve):
                    rows.append(dict(padding=mode, transform=kind,
                                     value=value, level=lvl,
                                     stride=result['strides'][lvl],
                                     change=change))
    return rows


def format_invariance(result: dict) -> str:
    """A markdown table: per transform and padding mode, the relative
    feature change of each level, averaged over the transform's values."""
    kinds, curves = result['transforms'], result['change']
    levels = len(result['strides'])
    lines = ['| transform | padding | ' + ' | '.join(
        f'level {i} (stride {s:g})' for i, s in enumerate(result['strides']))
        + ' |', '|---|---|' + '---:|' * levels]
    for kind in kinds:
        vals = ', '.join(f'{v:g}' for v in result['values'][kind])
        for mode, per_kind in curves.items():
            cells = [f'{float(np.mean(per_kind[kind][lvl])):.3f}'
                     for lvl in range(levels)]
            lines.append(f'| {kind} ({vals}) | {mode} | ' +
                         ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_invariance_csv(result: dict, path: str) -> str:
    """Write :func:`invariance_rows` as CSV to ``path``; return it."""
    rows = invariance_rows(result)
    with atomic_path(path) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.DictWriter(f, ['padding', 'transform', 'value',
                                    'level', 'stride', 'change'])
        writer.writeheader()
        for row in rows:
            writer.writerow(dict(row, change=f'{row["change"]:.6f}',
                                 stride=f'{row["stride"]:g}'))
    return path


def plot_invariance(result: dict):
    """Rows: transformations; columns: backbone levels; one curve per
    border rule. Every panel shares one y axis (from 0), and the panels
    of a transformation share its x axis."""
    kinds, curves = result['transforms'], result['change']
    modes = list(curves)
    levels = len(next(iter(curves.values()))[kinds[0]])
    fig, axes = new_figure(len(kinds), levels, 2.8)
    top = max((max(c) for per in curves.values() for k in kinds
               for c in per[k] if len(c)), default=1.)
    for row, kind in enumerate(kinds):
        for lvl in range(levels):
            ax = axes[row, lvl]
            if (row, lvl) != (0, 0):
                ax.sharey(axes[0, 0])
            if lvl:
                ax.sharex(axes[row, 0])
            for mode in modes:
                ax.plot(result['values'][kind], curves[mode][kind][lvl],
                        marker='o', ms=3, label=mode)
            ax.set_title(f'level {lvl} (stride {result["strides"][lvl]:g})',
                         fontsize=9)
            ax.set_xlabel({'translate': 'vertical circular shift (px)',
                           'rotate': 'rotation (degrees)',
                           'scale': 'zoom factor'}[kind], fontsize=8)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
        axes[row, 0].set_ylabel('relative L2 change', fontsize=8)
    axes[0, 0].set_ylim(0, 1.05 * top if top > 0 else 1.)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='outside right center', fontsize=8,
               title='padding', title_fontsize=8)
    fig.suptitle('feature change ||F(x) - U(F(Tx))|| / ||F(x)|| (U undoes '
                 'the transform on the features), mean over '
                 f'{result["num_images"]} images', fontsize=9)
    return fig


def run_invariance(config: str, checkpoint: Optional[str] = None,
                   images: Optional[Sequence[str]] = None,
                   num_images: int = 4, index: int = 0,
                   modes: Sequence[str] = DEFAULT_MODES,
                   transforms: Sequence[str] = TRANSFORMS,
                   values: Optional[dict] = None,
                   image_size: Optional[Sequence[int]] = None,
                   cfg_options: Optional[dict] = None,
                   out_dir: str = 'work_dirs/invariance', seed: int = 0,
                   progress: bool = True) -> dict:
    """Feature change curves of a segmentor's backbone per border rule;
    writes ``invariance.png``, ``invariance.json`` and ``invariance.csv``
    (:func:`invariance_rows`) into ``out_dir``.

    Args:
        config (str): Segmentor config.
        checkpoint (str, optional): Its weights, used under every border
            rule. Default: None (the same random init for each).
        images (Sequence[str], optional): Image files. Default: None
            (``num_images`` test set images from ``index``).
        modes (Sequence[str]): Border rules. Default: all but 'none'.
        transforms (Sequence[str]): Some of ``'translate'``, ``'rotate'``,
            ``'scale'``. Default: all three.
        values (dict, optional): Per transform, the shifts (pixels),
            angles (degrees) or zoom factors. Default:
            :data:`DEFAULT_VALUES`.
        image_size (tuple[int], optional): Resize the images to (H, W).
    """
    check_output_dir(out_dir, '--out-dir')  # before any computation
    for kind in transforms:
        if kind not in TRANSFORMS:
            raise UserError(f'unknown transform {kind!r}; expected one of '
                            f'{TRANSFORMS}')
    values = {k: list((values or {}).get(k) or DEFAULT_VALUES[k])
              for k in transforms}
    if not modes:
        raise UserError('give at least one padding mode')
    model = load_segmentor(config, checkpoint, cfg_options, seed)
    backbones = mode_backbones(model, modes)
    paths = list(images or dataset_images(model.cfg, num_images, index))
    x = model_inputs(model, load_images(paths, image_size or
                                        input_size(model)))
    bar = Progress(len(modes) * sum(map(len, values.values())), progress)
    change = {mode: {k: feature_change(b, x, k, values[k], bar).tolist()
                     for k in transforms}
              for mode, b in backbones.items()}
    bar.close()
    with torch.no_grad():
        levels = _levels(model.backbone(x[:1]))
    result = dict(config=config, checkpoint=checkpoint, images=paths,
                  num_images=len(paths), transforms=list(transforms),
                  values=values, strides=[x.shape[-2] / f.shape[-2]
                                          for f in levels],
                  change=change)
    result['files'] = write_outputs(out_dir, 'invariance',
                                    plot_invariance(result), result)
    result['files']['csv'] = write_invariance_csv(
        result, osp.join(out_dir, 'invariance.csv'))
    return result
