"""Cost of one training step with different decode heads on one backbone.

Every variant runs the same ResNetV1c-D8 backbone (one shared instance, dilated
like mmseg's ``*_r50-d8`` models, no pretrained weights) with one decode head,
on the same random batch; a step is forward, cross-entropy loss and backward.
One more variant adds possec's ``PosENetHead`` (the position head, as the
auxiliary head of ``configs/_base_/models/posenet_aux.py``, reading all four
stages) to the paper-form ParseNetHead, so its training overhead is the
difference of those two rows.
``variants`` picks some of them (the baseline always runs); the variant
:data:`POSITION_BEFORE` (not run by default) is the same position head
with its readout computed as before commit ``12470f2`` (resize every level
to the grid, concatenate, convolve), so one run gives the before/after of
:func:`possec.models.layers.resize.resize_conv2d`.
The variants are timed interleaved in one process by
:func:`possec.benchmarks.timing.time_interleaved` and reported as ratios to
the bare 1x1 classifier.
"""
import statistics
from typing import Dict, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from ..analysis.common import config_path
from ..models.decode_heads import PosENetHead
from .rows import ratio_rows, row
from .timing import format_table, time_interleaved

TITLE = 'training step per decode head vs a bare 1x1 classifier'
#: The config piece that holds the position head (see
#: :func:`possec.analysis.common.config_path`).
POSITION_HEAD_CONFIG = 'possec::_base_/models/posenet_aux.py'
BASELINE = 'bare 1x1 classifier'
POSITION = 'ParseNetHead + PosENetHead (position head)'
POSITION_BEFORE = ('ParseNetHead + PosENetHead, readout as before '
                   '(resize, concatenate, convolve)')
#: The position head's overhead targets of issue 18: (depth, size) -> limit.
POSITION_TARGETS = {(50, 512): 1.05, (18, 64): 1.10}
QUICK = dict(depth=18, size=64, batch=2, channels=64, repeats=1, warmup=0)


def position_head_config(stage_channels) -> dict:
    """The position head as the zoo configs use it: the ``posenet_head`` of
    ``configs/_base_/models/posenet_aux.py`` (grad_scale +1), reading the
    four stages of the benchmarked backbone.

    Args:
        stage_channels (Sequence[int]): Channels of the four backbone stages.

    Returns:
        dict: A ``PosENetHead`` config.
    """
    piece = Config.fromfile(config_path(POSITION_HEAD_CONFIG))
    return dict(piece.posenet_head.to_dict(),
                in_channels=list(stage_channels))


class ReadoutBefore(PosENetHead):
    """PosENetHead computing its readout as before commit ``12470f2``:
    every level resized to the grid, concatenated, convolved (its own
    ``_forward_feature`` turns off the one-call
    :func:`~possec.models.layers.resize.resize_conv2d`). Not registered:
    the benchmark's "before" variant only."""

    def _forward_feature(self, inputs):
        return super()._forward_feature(inputs)


def head_configs(in_channels: int, channels: int, num_classes: int,
                 norm_cfg: dict) -> Dict[str, dict]:
    """Decode-head configs of the compared variants, baseline first.

    Args:
        in_channels (int): Channels of the backbone's last stage.
        channels (int): Width of the heads' inner convs (and of ParseNet's
            projection conv).
        num_classes (int): Number of classes.
        norm_cfg (dict): Norm layer config of the heads.

    Returns:
        dict[str, dict]: Variant name -> decode-head config.
    """
    common = dict(
        in_channels=in_channels,
        in_index=3,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False)
    return {
        BASELINE:
        dict(
            type='FCNHead',
            channels=in_channels,
            num_convs=0,
            concat_input=False,
            **common),
        'ParseNetHead (paper form)':
        dict(type='ParseNetHead', channels=None, **common),
        f'ParseNetHead + {channels}-ch projection':
        dict(type='ParseNetHead', channels=channels, **common),
        'FCNHead':
        dict(
            type='FCNHead',
            channels=channels,
            num_convs=2,
            concat_input=True,
            **common),
        'PSPHead':
        dict(
            type='PSPHead',
            channels=channels,
            pool_scales=(1, 2, 3, 6),
            **common),
        'ASPPHead':
        dict(
            type='ASPPHead',
            channels=channels,
            dilations=(1, 12, 24, 36),
            **common),
    }


def run(depth: int = 50,
        size: int = 128,
        batch: int = 2,
        channels: int = 512,
        num_classes: int = 21,
        repeats: int = 5,
        warmup: int = 1,
        device: str = 'cpu',
        threads: Optional[int] = None,
        seed: int = 0,
        variants: Optional[Sequence[str]] = None,
        progress: bool = True) -> Dict[str, dict]:
    """Time one training step per head variant; see the module docstring.

    Args:
        depth (int): ResNetV1c depth (18, 34, 50, 101). Default: 50.
        size (int): Height and width of the random input. Default: 128.
        batch (int): Batch size. Default: 2.
        channels (int): Inner width of the heads. Default: 512.
        num_classes (int): Number of classes. Default: 21.
        repeats (int): Timed rounds. Default: 5.
        warmup (int): Untimed rounds first. Default: 1.
        device (str): Torch device. Default: 'cpu'.
        threads (int, optional): ``torch.set_num_threads``; None keeps the
            default. Default: None.
        seed (int): Seed of weights and data. Default: 0.
        variants (Sequence[str], optional): Variant names to run besides
            the baseline (:func:`variant_names` lists them). Default: None
            (all but :data:`POSITION_BEFORE`).
        progress (bool): Print one line per round. Default: True.

    Returns:
        dict[str, dict]: :func:`time_interleaved` results per variant (the
        position-head variants last).
    """
    known = variant_names(channels)
    unknown = [v for v in variants or () if v not in known]
    if unknown:
        raise ValueError(f'unknown heads variants {unknown}; expected some '
                         f'of {known}')
    wanted = set(variants) | {BASELINE} if variants else \
        set(known) - {POSITION_BEFORE}
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    norm_cfg = dict(type='BN', requires_grad=True)
    backbone = MODELS.build(
        dict(
            type='ResNetV1c',
            depth=depth,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            contract_dilation=True)).to(device)
    backbone.train()  # mmseg's ResNet.train() returns None: no chaining
    expansion = 4 if depth >= 50 else 1
    stages = [64 * expansion * 2**i for i in range(4)]
    configs = head_configs(stages[-1], channels, num_classes, norm_cfg)
    heads = {
        name: [MODELS.build(cfg).to(device)]
        for name, cfg in configs.items() if name in wanted
    }
    for name, cls in ((POSITION, None), (POSITION_BEFORE, ReadoutBefore)):
        if name not in wanted:
            continue
        torch.manual_seed(seed + 1)  # the same head weights in both
        pos_cfg = position_head_config(stages)
        if cls is None:
            pos = MODELS.build(pos_cfg)
        else:
            pos_cfg.pop('type')
            pos = cls(**pos_cfg)
        heads[name] = [
            MODELS.build(configs['ParseNetHead (paper form)']).to(device),
            pos.to(device)
        ]
    inputs = torch.randn(batch, 3, size, size, device=device)
    samples = []
    for _ in range(batch):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, num_classes, (1, size, size), device=device))
        samples.append(sample)
    sync = torch.cuda.synchronize if torch.device(device).type == 'cuda' \
        else (lambda: None)

    def make_step(parts):

        def step():
            backbone.zero_grad(set_to_none=True)
            feats = backbone(inputs)
            loss = 0
            for head in parts:
                head.zero_grad(set_to_none=True)
                losses = head.loss(feats, samples, dict())
                loss = loss + sum(
                    v for k, v in losses.items() if k.startswith('loss'))
            loss.backward()
            sync()

        return step

    return time_interleaved({
        name: make_step(h)
        for name, h in heads.items()
    },
                            repeats=repeats,
                            warmup=warmup,
                            baseline=BASELINE,
                            progress=progress)


def variant_names(channels: int = 512) -> list:
    """Every variant :func:`run` knows (their names with ``channels``),
    baseline first."""
    return list(head_configs(8, channels, 2, dict(type='BN'))) + [
        POSITION, POSITION_BEFORE
    ]


def position_overhead(results: dict, name: str = POSITION) -> dict:
    """The position head's training overhead: the median of the per-round
    ratios (position variant / paper-form ParseNetHead of the same round)
    and their spread ((max - min) / median), or None when either variant
    is missing."""
    paper = results.get('ParseNetHead (paper form)')
    if name not in results or not paper:
        return None
    ratios = [a / b for a, b in zip(results[name]['times_s'],
                                    paper['times_s'])]
    med = statistics.median(ratios)
    return dict(ratio=med, spread=(max(ratios) - min(ratios)) / med,
                ratios=ratios)


def report(results: dict, settings: dict) -> tuple:
    """The table of :func:`run`, each head's ratio to the bare classifier
    (ParseNet's paper form judged against 1.03x) and the position head's
    training overhead (judged at the sizes of :data:`POSITION_TARGETS`)."""
    title = (f"one training step, ResNetV1c-{settings['depth']}-D8, "
             f"{settings['batch']}x3x{settings['size']}x{settings['size']}")
    rows = ratio_rows(results, BASELINE, 'ParseNetHead (paper form)', 1.03)
    limit = POSITION_TARGETS.get((settings['depth'], settings['size']))
    for name in (POSITION, POSITION_BEFORE):
        over = position_overhead(results, name)
        if over is None:
            continue
        judged = limit is not None and name == POSITION
        rows.append(
            row(
                'position head training overhead: '
                f'{name} / ParseNetHead (paper form) (per-round median, '
                f"spread {100 * over['spread']:.1f}%)", over['ratio'],
                '{:.3f}x', f'<= {limit:g}x' if judged else None,
                over['ratio'] <= limit if judged else None))
    return format_table(results, title), rows
