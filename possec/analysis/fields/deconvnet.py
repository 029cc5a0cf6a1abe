"""Deconvnet projections of backbone units back to pixels.

`Visualizing and Understanding Convolutional Networks
<https://arxiv.org/abs/1311.2901>`_ (Zeiler and Fergus) project one strong
activation back to the input: every other activation of the layer is set to
zero and the map is passed down through the layers below in reverse:
max-unpooling with the switches recorded in the forward pass, ReLU, and
convolution with the transposed (flipped) filters.

The reverse pass is Captum's :class:`~captum.attr.Deconvolution`
(`Captum <https://captum.ai>`_): autograd's backward pass in which every
``nn.ReLU`` module passes ``relu(signal)`` down instead of masking the
signal by where its forward input was positive. Each other step of
autograd's backward pass is then the deconvnet's own: a convolution's input
gradient is ``conv_transpose2d`` with the same weights, stride, padding and
dilation; a max-pool's is unpooling with the recorded switches (the argmax
indices); padding (circular, reflect, ...) is undone by folding the border
back. The same rules carry through residual connections (the signal goes
down both branches and is summed where they split), which the chain-only
description of the paper leaves open. Captum changes ``nn.ReLU`` modules
only, which is how mmseg's and possec's backbones apply ReLU; a functional
``F.relu`` inside a backbone would keep its ordinary gradient.

possec's convention, kept on top of Captum's: the projection starts from
the unit's activation (the paper's "one strong activation"), where Captum
starts from 1 (:class:`ScaledUnit`); for a positive activation this is
Captum's ``Deconvolution`` times the activation.

BatchNorm layers (eval mode) are a per-channel affine map ``a x + b``; the
projection passes through its transpose, i.e. multiplies by the scale ``a =
gamma / sqrt(var + eps)``; the shift ``b`` plays no part, as the biases of
the paper's convolutions.
"""
import warnings
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from captum.attr import Deconvolution
from torch import Tensor, nn

from possec.apis.paths import check_output_dir
from possec.errors import UserError
from ..common import new_figure, to_hwc
from .segmentor import check_index, prepare, save_result
from .theoretical import theoretical_field


class ScaledUnit(nn.Module):
    """A layer's activation times a per-image constant, as a module.

    Captum hooks the ``nn.ReLU`` modules of the model it is given and
    starts the backward pass from 1 at the target unit; scaling the output
    by the unit's own activation (a constant) makes it start from that
    activation instead.

    Args:
        module (nn.Module): The network whose ReLUs ``fn`` runs.
        fn (Callable): ``x -> activation`` of the layer.
        scale (Tensor): Per-image factors, broadcastable to the activation.
    """

    def __init__(self, module: nn.Module, fn: Callable[[Tensor], Tensor],
                 scale: Tensor) -> None:
        super().__init__()
        self.module = module
        self.fn = fn
        self.register_buffer('scale', scale)

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x) * self.scale


class _Stop(Exception):
    pass


def layer_fn(backbone: nn.Module,
             layer: Union[str, int]) -> Callable[[Tensor], Tensor]:
    """``x -> activation of layer``: a dotted module name of ``backbone``
    (the forward stops there) or an int (or digit string that names no
    module) indexing the backbone's outputs."""
    modules = dict(backbone.named_modules())
    if isinstance(layer, int) or (layer not in modules and
                                  str(layer).isdigit()):
        level = int(layer)

        def run_level(x):
            outs = backbone(x)
            outs = [outs] if isinstance(outs, Tensor) else list(outs)
            check_index(level, len(outs), 'backbone output level')
            return outs[level]
        return run_level
    if layer not in modules or layer == '':
        top = ', '.join(name for name, _ in backbone.named_children())
        raise UserError(f'unknown layer {layer!r}: expected an output level '
                        f'number or a module of the backbone ({top}, or a '
                        f'dotted name below them, e.g. layer2.0.conv1)')

    def run_module(x):
        found = []

        def hook(module, inputs, output):
            found.append(output)
            raise _Stop
        handle = modules[layer].register_forward_hook(hook)
        try:
            backbone(x)
        except _Stop:
            pass
        finally:
            handle.remove()
        if not found or not isinstance(found[0], Tensor):
            raise UserError(f'layer {layer!r} did not produce a tensor')
        return found[0]
    return run_module


@torch.no_grad()
def top_activations(fn: Callable[[Tensor], Tensor], x: Tensor,
                    channel: Optional[int], k: int,
                    batch_size: int = 8) -> Tuple[int, List[tuple]]:
    """The ``k`` images with the strongest activation of ``channel`` (its
    maximum over positions), strongest first, as ``(image, (row, col),
    value)``. ``channel=None`` picks the channel with the largest maximum
    over all images."""
    maps = torch.cat([fn(x[i:i + batch_size])
                      for i in range(0, len(x), batch_size)])
    if channel is None:
        channel = int(maps.amax(dim=(0, 2, 3)).argmax())
    check_index(channel, maps.shape[1], 'channel',
                f' (the layer has {maps.shape[1]} channels)')
    flat = maps[:, channel].flatten(1)
    values, where = flat.max(1)
    order = values.argsort(descending=True)[:k]
    width = maps.shape[-1]
    return channel, [(int(i), (int(where[i]) // width,
                               int(where[i]) % width), float(values[i]))
                     for i in order]


def project(module: nn.Module, fn: Callable[[Tensor], Tensor], x: Tensor,
            channel: int, units: Sequence[Sequence[int]]) -> Tensor:
    """Deconvnet projection of one unit per image to the input.

    Args:
        module (nn.Module): The network ``fn`` runs (its ``nn.ReLU``
            modules get the deconvnet rule).
        fn (Callable): ``x -> activation`` (N, C, h, w) of the layer.
        x (Tensor): Normalised images (N, 3, H, W).
        channel (int): Channel of the projected units.
        units (Sequence[tuple]): One (row, column) per image.

    Returns:
        Tensor: (N, 3, H, W) projections, in the input's channel order.
    """
    x = x.detach()
    with torch.no_grad():
        act = fn(x)
    scale = act.new_tensor([float(act[i, channel, row, col])
                            for i, (row, col) in enumerate(units)])
    net = ScaledUnit(module, fn, scale.view(-1, *[1] * (act.dim() - 1)))
    with warnings.catch_warnings():  # Captum announces its ReLU hooks
        warnings.filterwarnings('ignore', 'Setting backward hooks')
        return Deconvolution(net).attribute(
            x.clone().requires_grad_(True),
            target=[(channel, int(row), int(col))
                    for row, col in units]).detach()


def default_layer(backbone: nn.Module, x: Tensor) -> Union[str, int]:
    """The backbone's second output level, or its only one."""
    with torch.no_grad():
        outs = backbone(x[:1])
    return 1 if not isinstance(outs, Tensor) and len(outs) > 1 else 0


def _crop(image: np.ndarray, box) -> np.ndarray:
    y0, x0, y1, x1 = (int(np.ceil(box[0])), int(np.ceil(box[1])),
                      int(np.floor(box[2])), int(np.floor(box[3])))
    return image[y0:y1 + 1, x0:x1 + 1]


def crop_side(projections: np.ndarray, centres: Sequence[Sequence[float]],
              limit: Optional[float] = None, share: float = 0.95,
              least: int = 9) -> int:
    """Side of the square window, centred on each unit, that holds
    ``share`` of the magnitude of every projection.

    Args:
        projections (np.ndarray): ``(k, H, W, C)`` projections.
        centres (Sequence): Each unit's centre (row, column) in pixels.
        limit (float, optional): Largest side (the theoretical receptive
            field); None: the image's larger side. Default: None.
        share (float): Share of ``sum |projection|`` inside. Default: 0.95.
        least (int): Smallest side. Default: 9.

    Returns:
        int: An odd side in pixels, the same for all projections.
    """
    k, h, w = projections.shape[:3]
    ys, xs = np.mgrid[:h, :w]
    radius = 0
    for proj, (cy, cx) in zip(projections, centres):
        mag = np.abs(proj).sum(-1).ravel()
        dist = np.maximum(np.abs(ys - cy), np.abs(xs - cx)).ravel()
        order = np.argsort(dist, kind='stable')
        cum = np.cumsum(mag[order])
        if cum[-1] <= 0:
            continue
        at = int(np.searchsorted(cum, share * cum[-1]))
        radius = max(radius, int(np.ceil(dist[order][min(at, len(cum) -
                                                          1)])))
    side = 2 * radius + 1
    top = max(h, w) if limit is None else min(limit, max(h, w))
    side = int(max(min(side, top), least))
    return side + 1 - side % 2


def window(image: np.ndarray, centre: Sequence[float], side: int,
           fill: float) -> np.ndarray:
    """The ``side x side`` patch of ``image`` (H, W, C) centred on
    ``centre`` (row, column), ``fill`` outside the image."""
    h, w = image.shape[:2]
    out = np.full((side, side) + image.shape[2:], fill, dtype=image.dtype)
    y0 = int(round(centre[0])) - side // 2
    x0 = int(round(centre[1])) - side // 2
    sy, sx = max(y0, 0), max(x0, 0)
    ey, ex = min(y0 + side, h), min(x0 + side, w)
    if ey > sy and ex > sx:
        out[sy - y0:ey - y0, sx - x0:ex - x0] = image[sy:ey, sx:ex]
    return out


def contrast(patch: np.ndarray, percentile: float = 99.) -> np.ndarray:
    """A signed projection as an image: grey is zero, and +-the
    ``percentile`` of ``|patch|`` (clipped beyond) are white and black."""
    scale = np.percentile(np.abs(patch), percentile)
    if not scale > 0:
        scale = max(float(np.abs(patch).max()), 1e-12)
    return np.clip(0.5 + 0.5 * patch / scale, 0., 1.)


def plot_deconvnet(images: np.ndarray, projections: np.ndarray,
                   result: dict, per_row: int = 3):
    """A grid of pairs, strongest first: each projection (grey is zero,
    contrast set per panel by its 99th percentile) beside the image patch
    under it, all panels the same ``result['crop']['side']`` window
    centred on the unit (grey outside the image)."""
    top = result['top']
    side = result['crop']['side']
    per_row = min(per_row, len(top))
    rows = -(-len(top) // per_row)
    fig, axes = new_figure(rows, 2 * per_row, 1.9)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, item in enumerate(top):
        row, col = divmod(i, per_row)
        img = images[item['image']]
        fill = 127 if img.dtype == np.uint8 else 0.5
        panels = (contrast(window(projections[i], item['centre'], side, 0.)),
                  window(img, item['centre'], side, fill))
        for j, data in enumerate(panels):
            axes[row, 2 * col + j].imshow(data, interpolation='nearest')
        axes[row, 2 * col].set_title(
            f'#{i + 1}: img {item["image"]}, act {item["activation"]:.3g}',
            fontsize=8, loc='left')
    field = result['field']
    rf = ('global' if field['is_global'] or field['size'] is None else
          f'{field["size"][0]:g}x{field["size"][1]:g} px')
    fig.suptitle(f'layer {result["layer"]}, channel {result["channel"]}: '
                 f'top {len(top)} activations projected to pixels (left of '
                 f'each pair) and the image (right),\n{side}x{side} px '
                 f'around each unit ({result["crop"]["share"]:.0%} of every '
                 f'projection; theoretical field {rf})', fontsize=9)
    return fig


def deconvnet(backbone: nn.Module, x: Tensor,
              layer: Optional[Union[str, int]] = None,
              channel: Optional[int] = None, k: int = 9,
              batch_size: int = 8) -> Tuple[dict, Tensor]:
    """Top-``k`` activations of a unit over ``x``, projected to pixels.

    Returns:
        tuple[dict, Tensor]: The numbers (layer, channel, field, ``crop``
        (the side of the window shown, see :func:`crop_side`), and per
        projection the image, unit, its centre in pixels, activation,
        field box and the share of the projection's magnitude inside the
        box) and the ``(k, 3, H, W)`` projections.
    """
    if k < 1:
        raise UserError(f'top-k must be at least 1, got {k}')
    if layer is None:
        layer = default_layer(backbone, x)
    fn = layer_fn(backbone, layer)
    channel, top = top_activations(fn, x, channel, k, batch_size)
    field = theoretical_field(fn, x[:1])
    picked = x[[i for i, _, _ in top]]
    proj = project(backbone, fn, picked, channel,
                   [unit for _, unit, _ in top])
    items = []
    for (image, unit, value), p in zip(top, proj):
        box = field.box(unit, x.shape[-2:])
        mag = p.abs().sum(0)
        inside = _crop(mag.numpy(), box).sum() if box else mag.sum()
        items.append(dict(image=image, unit=list(unit), activation=value,
                          centre=[float(c) for c in field.centre(unit)],
                          box=box, inside_share=float(inside / max(
                              float(mag.sum()), 1e-30))))
    limit = None if field.is_global or field.size is None else max(
        field.size)
    share = 0.95
    side = crop_side(proj.permute(0, 2, 3, 1).numpy(),
                     [it['centre'] for it in items], limit, share)
    return dict(layer=layer, channel=channel,
                field=dict(size=field.size, jump=field.jump,
                           is_global=field.is_global),
                crop=dict(side=side, share=share),
                top=items), proj


def run_deconvnet(config: str, checkpoint: Optional[str] = None,
                  images: Optional[Sequence[str]] = None,
                  num_images: int = 16, index: int = 0,
                  layer: Optional[Union[str, int]] = None,
                  channel: Optional[int] = None, k: int = 9,
                  image_size: Optional[Sequence[int]] = None,
                  cfg_options: Optional[dict] = None,
                  out_dir: str = 'work_dirs/deconvnet', seed: int = 0,
                  batch_size: int = 8) -> dict:
    """Deconvnet projections for a segmentor's backbone; writes
    ``deconvnet.png`` and ``deconvnet.json`` into ``out_dir``.

    Args:
        config (str): Segmentor config.
        checkpoint (str, optional): Its weights. Default: None (random).
        images (Sequence[str], optional): Image files. Default: None
            (``num_images`` test set images from ``index``).
        layer (str | int, optional): A backbone module name (e.g.
            ``'layer2'``) or output level. Default: None (level 1).
        channel (int, optional): Channel. Default: None (the one with the
            strongest activation).
        k (int): Number of projections. Default: 9.
        image_size (tuple[int], optional): Resize the images to (H, W).
    """
    check_output_dir(out_dir, '--out-dir')  # before any computation
    model, rgb, x, paths = prepare(config, checkpoint, images, num_images,
                                   index, image_size, cfg_options, seed)
    result, proj = deconvnet(model.backbone, x, layer, channel,
                             min(k, len(x)), batch_size)
    proj = proj.permute(0, 2, 3, 1).numpy()
    if not getattr(model.data_preprocessor, 'channel_conversion', False):
        proj = proj[..., ::-1]  # the model saw BGR: show RGB
    fig = plot_deconvnet(to_hwc(rgb), proj, result)
    for item in result['top']:
        item['path'] = paths[item['image']]
    return save_result(result, out_dir, 'deconvnet', fig, config=config,
                       checkpoint=checkpoint)
