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

from mmseg.registry import MODELS

from .models import (ReadoutBefore, build_backbone, decode_loss,
                     parsenet_head_config, position_head_config,
                     stage_channels)
from .rows import ratio_rows, row
from .runner import BenchmarkRunner
from .timing import format_table

TITLE = 'training step per decode head vs a bare 1x1 classifier'
BASELINE = 'bare 1x1 classifier'
POSITION = 'ParseNetHead + PosENetHead (position head)'
POSITION_BEFORE = ('ParseNetHead + PosENetHead, readout as before '
                   '(resize, concatenate, convolve)')
#: The position head's training-overhead targets: (depth, size) -> limit.
POSITION_TARGETS = {(50, 512): 1.05, (18, 64): 1.10}
QUICK = dict(depth=18, size=64, batch=2, channels=64, repeats=1, warmup=0)


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
    paper = parsenet_head_config(in_channels, num_classes, norm_cfg)
    common = {k: v for k, v in paper.items() if k not in ('type', 'channels')}
    return {
        BASELINE:
        dict(
            type='FCNHead',
            channels=in_channels,
            num_convs=0,
            concat_input=False,
            **common),
        'ParseNetHead (paper form)':
        paper,
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
    runner = BenchmarkRunner(device, threads, seed, repeats, warmup,
                             progress=progress)
    norm_cfg = dict(type='BN', requires_grad=True)
    backbone = build_backbone(depth).to(runner.device)
    stages = stage_channels(depth)
    configs = head_configs(stages[-1], channels, num_classes, norm_cfg)
    heads = {
        name: [MODELS.build(cfg)]
        for name, cfg in configs.items() if name in wanted
    }
    for name, cls in ((POSITION, None), (POSITION_BEFORE, ReadoutBefore)):
        if name not in wanted:
            continue
        runner.reseed(1)  # the same head weights in both
        pos_cfg = position_head_config(stages)
        if cls is None:
            pos = MODELS.build(pos_cfg)
        else:
            pos_cfg.pop('type')
            pos = cls(**pos_cfg)
        heads[name] = [MODELS.build(configs['ParseNetHead (paper form)']), pos]
    inputs, samples = runner.batch(batch, size, num_classes)

    steps = {}
    for name, parts in heads.items():
        parts = [head.to(runner.device).train() for head in parts]
        params = [p for m in [backbone] + parts for p in m.parameters()]
        steps[name] = runner.train_step(
            decode_loss(backbone, parts, inputs, samples), params,
            optimizer=False)
    return runner.time(steps, baseline=BASELINE)


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
