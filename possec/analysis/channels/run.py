"""Where a trained segmentor keeps absolute position, and how much it
relies on it: the pooled-vector read-outs, the channel ranking and the
ablations, from a config and a checkpoint.

After `Global Pooling, More than Meets the Eye: Position Information is
Encoded Channel-Wise in CNNs <https://arxiv.org/abs/2108.07884>`_ (Islam,
Kowal et al., ICCV 2021):

1. canvases (:mod:`.canvas`) pass through the model; the global average
   pool of every backbone level, of ParseNet's normalised global feature
   and of the chosen layer is read out by linear classifiers
   (:mod:`.decode`): the placement cell and the source image, with and
   without channel identity;
2. every channel of the chosen layer is scored (:mod:`.score`);
3. on the config's test set, the top-k position channels of the layer are
   replaced by their dataset means (:mod:`.ablation`) and mIoU (overall,
   position pairs, per border band, per grid region) is measured
   (:mod:`.evaluate`) against k random channels and the k channels of the
   paper's ranking; the channels of each region are ablated alone.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from possec.apis.paths import check_output_dir
from possec.errors import UserError
from ..common import Progress, load_segmentor, read_image
from ..fields.segmentor import dataset_images, input_size, model_inputs
from .canvas import BACKGROUNDS, PLAIN_RGB, make_canvases, plain_colour
from .ablation import reliance, region_ablation, summarise_curve
from .decode import decode_all
from .evaluate import load_batches, metric_summary
from .layers import default_layer, parse_layer, pooled
from .report import channel_rows, summary, write_results
from .score import channel_table, placement_anova

#: The sweep of k (channels ablated) when none is given: powers of 4 below
#: half the layer's channels.
DEFAULT_KS = (1, 4, 16, 64, 256)
GLOBAL_FEATURE = 'decode_head.global_norm'


def feature_specs(model: nn.Module, layer: str) -> List[str]:
    """The pooled vectors read out: every backbone level, ParseNet's
    normalised global feature (when the decode head has one) and
    ``layer``."""
    levels = len(getattr(model.backbone, 'out_indices', ())) or 1
    specs = [f'backbone[{i}]' for i in range(levels)]
    if getattr(model.decode_head, 'global_norm', None) is not None:
        specs.append(GLOBAL_FEATURE)
    if layer not in specs:
        specs.append(layer)
    return specs


@torch.no_grad()
def pool_canvases(model: nn.Module, images: Tensor, specs: Sequence[str],
                  batch_size: int = 16,
                  progress: Optional[Progress] = None) -> Dict[str, Tensor]:
    """``{spec: (N, C)}`` pooled vectors of ``uint8`` canvases."""
    with pooled(model, specs) as store:
        for start in range(0, len(images), batch_size):
            model._forward(model_inputs(model,
                                        images[start:start + batch_size]))
            if progress is not None:
                progress.update()
    return {s: torch.cat(v) for s, v in store.items()}


def source_images(model: nn.Module, img: Optional[Sequence[str]],
                  num_sources: int, index: int) -> List[np.ndarray]:
    """The content's source images (files, else test-set images)."""
    paths = list(img) if img else dataset_images(model.cfg, num_sources,
                                                 index)
    if len(paths) < 2:
        raise UserError(f'the canvas needs at least 2 source images, got '
                        f'{len(paths)}: pass more --img files, or a test set '
                        f'with more images')
    return [read_image(p) for p in paths]


def content_ids(canv) -> Tensor:
    """One label per content of a canvas set: background, source, crop."""
    return (canv.background * (int(canv.source.max()) + 1) +
            canv.source) * (int(canv.crop.max()) + 1) + canv.crop


def stage_rows(pools: Dict[str, Tensor], canv, layer: str,
               l2: float = 1e-2, seed: int = 0) -> List[dict]:
    """Read-outs and position-channel counts of every pooled vector, per
    background."""
    content = content_ids(canv)
    rows = []
    for spec, values in pools.items():
        anova = placement_anova(values, content, canv.cell)
        num = values.shape[1]
        for b, name in enumerate(canv.backgrounds):
            keep = canv.background == b
            out = decode_all(values[keep], canv.cell[keep],
                             canv.source[keep], canv.crop[keep], canv.grid,
                             l2, seed)
            rows.append(dict(
                feature=spec, background=name, channels=num,
                is_layer=spec == layer,
                position_channels=int((anova['p'] < 0.05 / num).sum()),
                median_eta2=float(np.median(anova['eta2'])), **out))
    return rows


def position_channels(config: str,
                      checkpoint: Optional[str] = None,
                      layer: Optional[str] = None,
                      img: Optional[Sequence[str]] = None,
                      index: int = 0,
                      num_sources: int = 8,
                      crops: int = 6,
                      grid: int = 3,
                      backgrounds: Sequence[str] = BACKGROUNDS,
                      canvas_size: Optional[int] = None,
                      ks: Optional[Sequence[int]] = None,
                      draws: int = 10,
                      region_k: Optional[int] = None,
                      num_images: Optional[int] = 100,
                      batch_size: int = 1,
                      cfg_options: Optional[dict] = None,
                      out_dir: Optional[str] = 'work_dirs/position_channels',
                      seed: int = 0,
                      progress: bool = True,
                      l2: float = 1e-2) -> dict:
    """The whole measurement; writes the files of :mod:`.report` into
    ``out_dir`` (None: none).

    Args:
        config (str): Segmentor config (or ``possec::<path>``).
        checkpoint (str, optional): Its weights (loaded safely). Default:
            None (random weights, with a warning).
        layer (str, optional): The layer ranked and ablated (see
            :func:`.layers.parse_layer`). Default: None (the backbone
            level the decode head reads).
        img (Sequence[str], optional): Source images of the canvases.
            Default: None (``num_sources`` test-set images from ``index``).
        index (int): First test-set image used as a source. Default: 0.
        num_sources (int): Source images. Default: 8.
        crops (int): Crops per source; half fit the read-outs, half test
            them. Default: 6.
        grid (int): Placements per side (K). Default: 3.
        backgrounds (Sequence[str]): Canvas backgrounds. Default: both.
        canvas_size (int, optional): Side of the canvas. Default: None
            (the data preprocessor's size, else 256).
        ks (Sequence[int], optional): Channels ablated. Default: None
            (:data:`DEFAULT_KS` below half the layer's channels).
        draws (int): Random k-sets per k (at least 10 for a 95%
            randomisation p below 0.1). Default: 10.
        region_k (int, optional): Channels per region in the region
            ablation, one of ``ks``. Default: None (the k nearest a
            sixteenth of the channels).
        num_images (int, optional): Test-set images of the reliance
            measurement. Default: 100 (None: all).
        batch_size (int): Test images per forward. Default: 1.
        cfg_options (dict, optional): Overrides of the config.
        out_dir (str, optional): Output folder. Default:
            'work_dirs/position_channels'.
        seed (int): Seed of the crops, permutations and random k-sets.
            Default: 0.
        progress (bool): Show progress bars. Default: True.
        l2 (float): Penalty of the read-outs. Default: 1e-2.

    Returns:
        dict: ``decoding`` (rows per feature and background), ``channels``
        (per channel of the layer), ``summary``, ``reliance`` (clean
        metrics and ``curve``), ``regions`` and ``files``.
    """
    if out_dir is not None:
        check_output_dir(out_dir, '--out-dir')  # before any computation
    if draws < 2:
        raise UserError(f'draws must be at least 2 (the random interval), '
                        f'got {draws}')
    model = load_segmentor(config, checkpoint, cfg_options, seed)
    layer = layer or default_layer(model)
    parse_layer(model, layer)
    # the labelled test images first: a missing dataset stops the run
    # before the canvases are computed
    batches = load_batches(model.cfg, num_images, batch_size)
    specs = feature_specs(model, layer)
    size = canvas_size or min(input_size(model) or (256, 256))
    canv = make_canvases(source_images(model, img, num_sources, index),
                         size, grid, crops, backgrounds,
                         plain_colour(model) or PLAIN_RGB, seed)
    batch = 16
    bar = Progress(2 * -(-len(canv.images) // batch), progress)
    pools = pool_canvases(model, canv.images, specs, batch, bar)
    flipped = pool_canvases(model, canv.images.flip(-1), [layer], batch,
                            bar)[layer]
    bar.close()
    decoding = stage_rows(pools, canv, layer, l2, seed)
    table = channel_table(pools[layer], content_ids(canv), canv.cell,
                          flipped)
    num = pools[layer].shape[1]
    ks = sorted({int(k) for k in (ks or [k for k in DEFAULT_KS
                                         if k <= num // 2] or [1])})
    if ks[0] < 1 or ks[-1] > num:
        raise UserError(f'every k must lie in 1..{num} (the channels of '
                        f'{layer}), got {ks}')
    region_k = region_k or min(ks, key=lambda k: abs(k - num / 16))
    if region_k not in ks:
        raise UserError(f'region k {region_k} must be one of the swept ks '
                        f'{ks} (its random draws are the reference)')
    passes = 1 + len(ks) * (draws + 1 + (table['flip'] is not None)) + \
        grid * grid
    bar = Progress(passes * len(batches), progress)
    rel = reliance(model, batches, layer, table, ks, draws, grid, seed, bar)
    rand_k = next(r['random'] for r in rel['curve'] if r['k'] == region_k)
    regions = region_ablation(model, batches, layer, table, rel['means'],
                              region_k, rel['clean'], grid, rand_k, bar)
    bar.close()
    result = dict(
        config=config, checkpoint=checkpoint, layer=layer,
        num_channels=num, grid=grid, canvas=dict(
            size=size, sources=len(torch.unique(canv.source)), crops=crops,
            backgrounds=list(canv.backgrounds), num=len(canv.images)),
        num_images=sum(len(b['inputs']) for b in batches), draws=draws,
        ks=ks, seed=seed, decoding=decoding,
        channels=channel_rows(table), reliance=dict(
            clean=metric_summary(rel['clean']),
            clean_regions=rel['clean']['regions'], pairs=rel['pairs'],
            curve=summarise_curve(rel['curve'], rel['clean'])),
        regions=regions)
    result['summary'] = summary(result, table)
    result['files'] = write_results(result, out_dir) if out_dir else {}
    return result
