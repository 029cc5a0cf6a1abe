"""The segmentor's reliance on ranked channels: the dataset passes with
channels of one layer replaced by their means (top-k position channels,
the paper's flip ranking, random k-sets, and each region's channels), and
their summaries with the random draws' intervals."""
from typing import List, Optional, Sequence

import numpy as np
from scipy import stats
from torch import Tensor, nn

from ..common import Progress
from .evaluate import evaluate, has_pairs, metric_summary
from .layers import ablate, record_means


def random_interval(draws: np.ndarray) -> dict:
    """Mean of the random draws with its t 95% interval, and their 2.5 and
    97.5 percentiles (the spread of one draw)."""
    draws = np.asarray([d for d in draws if d is not None], np.float64)
    mean = float(draws.mean())
    half = float(stats.t.ppf(0.975, len(draws) - 1) * draws.std(ddof=1) /
                 np.sqrt(len(draws))) if len(draws) > 1 else float('nan')
    return dict(mean=mean, ci=[mean - half, mean + half],
                range=[float(np.percentile(draws, 2.5)),
                       float(np.percentile(draws, 97.5))],
                draws=draws.tolist())


def randomisation_p(value: Optional[float], draws: Sequence) -> Optional[
        float]:
    """One-sided p of "ablating the ranked channels costs more than random
    ones": ``(1 + #{random <= value}) / (1 + #random)``."""
    draws = [d for d in draws if d is not None]
    if value is None or not draws:
        return None
    return (1 + sum(d <= value for d in draws)) / (1 + len(draws))


def reliance(model: nn.Module, batches: List[dict], layer: str,
             table: dict, ks: Sequence[int], draws: int = 10,
             grid: int = 3, seed: int = 0,
             progress: Optional[Progress] = None) -> dict:
    """The clean pass (metrics and channel means), then per k the top-k
    position channels, the top-k of the flip ranking and ``draws`` random
    k-sets replaced by their means.

    Returns:
        dict: ``clean`` (metrics), ``means`` (the layer's channel means),
        ``curve`` (per k: ``position``, ``flip``, ``random`` (list of
        metrics)).
    """
    pairs = has_pairs(model)
    step = progress.update if progress is not None else None
    with record_means(model, layer) as rec:
        clean = evaluate(model, batches, grid, pairs, step)
    means = rec.mean
    rng = np.random.default_rng(seed)
    num = len(means)
    flip_order = np.argsort(-table['flip'], kind='stable') \
        if table['flip'] is not None else None
    curve = []
    for k in ks:
        row = dict(k=int(k))
        sets = dict(position=table['order'][:k])
        if flip_order is not None:
            sets['flip'] = flip_order[:k]
        for name, chans in sets.items():
            with ablate(model, layer, chans, means):
                row[name] = evaluate(model, batches, grid, pairs, step)
        row['random'] = []
        for _ in range(draws):
            chans = rng.choice(num, size=k, replace=False)
            with ablate(model, layer, chans, means):
                row['random'].append(evaluate(model, batches, grid, pairs,
                                              step))
        curve.append(row)
    return dict(clean=clean, means=means, curve=curve, pairs=pairs)


def region_ablation(model: nn.Module, batches: List[dict], layer: str,
                    table: dict, means: Tensor, k: int, clean: dict,
                    grid: int = 3, random: Optional[List[dict]] = None,
                    progress: Optional[Progress] = None) -> dict:
    """Ablate, for every region R, the k channels whose pooled response
    rises most when the content lies in R; mIoU inside R and outside.

    Returns:
        dict: ``k`` and ``regions`` (per R: ``channels``, ``drop``, the
        mIoU drop in every region, ``drop_in``, ``drop_out`` (mean drop
        over the other regions) and ``random_drop`` (the mean drop in
        every region over the random k-sets, when given)).
    """
    step = progress.update if progress is not None else None
    base = np.array(clean['regions'], np.float64)
    rand_drop = None
    if random:
        rand_drop = base - np.nanmean(
            [np.array(r['regions'], np.float64) for r in random], 0)
    regions = []
    for cell in range(grid * grid):
        chans = np.argsort(-table['contrast'][cell], kind='stable')[:k]
        with ablate(model, layer, chans, means):
            out = evaluate(model, batches, grid, False, step)
        drop = base - np.array(out['regions'], np.float64)
        others = np.delete(drop, cell)
        regions.append(dict(
            region=cell, channels=chans.tolist(), mIoU=out['mIoU'],
            regions=out['regions'], drop=drop.tolist(),
            drop_in=float(drop[cell]),
            drop_out=float(np.nanmean(others)) if np.isfinite(
                others).any() else None,
            random_drop=None if rand_drop is None else rand_drop.tolist()))
    return dict(k=int(k), regions=regions)


def summarise_curve(curve: List[dict], clean: dict) -> List[dict]:
    """Per k and metric: the position, flip and clean values, the random
    draws' interval and the randomisation p of the position channels."""
    keys = list(metric_summary(clean))
    rows = []
    for row in curve:
        rand = [metric_summary(r) for r in row['random']]
        for key in keys:
            pos = metric_summary(row['position'])[key]
            out = dict(k=row['k'], metric=key, clean=metric_summary(clean)[
                key], position=pos)
            if 'flip' in row:
                out['flip'] = metric_summary(row['flip'])[key]
            values = [r[key] for r in rand]
            if any(v is not None for v in values):
                out['random'] = random_interval(values)
                out['p_position'] = randomisation_p(pos, values)
                if 'flip' in row:
                    out['p_flip'] = randomisation_p(out['flip'], values)
            rows.append(out)
    return rows
