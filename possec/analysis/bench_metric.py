"""Benchmark: BorderIoUMetric against mmseg's IoUMetric on the same data.

Each timed unit is a whole evaluation as the runner does it: a fresh metric
``process``-es every image in batches, then ``evaluate`` sums the counts and
computes the summary. Predictions and labels are int64 ``(1, H, W)`` tensors
as mmseg's model and ``PackSegInputs`` deliver them, with ~5% ignored pixels.
"""
from typing import Dict, List

import torch
from mmengine.logging import MMLogger

QUICK = dict(images=4, size=64, classes=21, batch=2, repeats=2, warmup=0)
PIXEL_BANDS = [(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 128),
               (128, 256), (256, None)]
_DISTINCT = 20  # distinct random images, cycled (content does not matter)


def make_samples(images: int, size: int, classes: int,
                 seed: int = 0) -> List[dict]:
    """Random ``data_samples`` (as mmengine's Evaluator hands them over)."""
    gen = torch.Generator().manual_seed(seed)
    distinct = []
    for _ in range(min(images, _DISTINCT)):
        label = torch.randint(0, classes, (1, size, size), generator=gen)
        label[torch.rand(label.shape, generator=gen) < 0.05] = 255
        noise = torch.randint(0, classes, (1, size, size), generator=gen)
        keep = torch.rand(label.shape, generator=gen) < 0.7
        pred = torch.where(keep & (label != 255), label, noise)
        distinct.append((pred, label))
    return [dict(pred_sem_seg=dict(data=distinct[i % len(distinct)][0]),
                 gt_sem_seg=dict(data=distinct[i % len(distinct)][1]),
                 img_path=f'img_{i}.png')
            for i in range(images)]


def evaluation(metric_cfg: dict, samples: List[dict], classes: int,
               batch: int):
    """A zero-argument callable running one full evaluation."""
    from mmseg.registry import METRICS
    meta = dict(classes=tuple(f'class{i}' for i in range(classes)))

    def run_once():
        metric = METRICS.build(metric_cfg)
        metric.dataset_meta = meta
        for start in range(0, len(samples), batch):
            metric.process({}, samples[start:start + batch])
        return metric.evaluate(len(samples))

    return run_once


def run(images: int = 200, size: int = 512, classes: int = 21,
        batch: int = 8, repeats: int = 5, warmup: int = 1,
        threads: int = None) -> Dict[str, dict]:
    """Time IoUMetric (the baseline) and BorderIoUMetric, interleaved.

    Args:
        images (int): Images per evaluation. Default: 200.
        size (int): Height and width of each image. Default: 512.
        classes (int): Number of classes. Default: 21.
        batch (int): Images per ``process`` call. Default: 8.
        repeats (int): Timed rounds. Default: 5.
        warmup (int): Untimed rounds first. Default: 1.
        threads (int, optional): ``torch.set_num_threads``. Default: None
            (torch's choice).

    Returns:
        dict: :func:`possec.analysis.benchmark.time_interleaved`'s results
        with ``IoUMetric`` as the baseline.
    """
    import possec  # noqa: F401  (registers BorderIoUMetric)
    from .benchmark import time_interleaved
    if threads:
        torch.set_num_threads(threads)
    # The metrics log their tables through the current MMLogger: keep quiet.
    MMLogger.get_instance('possec_bench_metric', log_level='WARNING')
    samples = make_samples(images, size, classes)
    variants = {
        'IoUMetric': evaluation(dict(type='IoUMetric'), samples, classes,
                                batch),
        'BorderIoUMetric': evaluation(
            dict(type='BorderIoUMetric', results_file=None), samples,
            classes, batch),
        'BorderIoUMetric, 8 pixel bands': evaluation(
            dict(type='BorderIoUMetric', results_file=None,
                 band_unit='pixel', bands=PIXEL_BANDS), samples, classes,
            batch),
    }
    ref, got = variants['IoUMetric'](), variants['BorderIoUMetric']()
    if any(got[key] != value for key, value in ref.items()):
        raise RuntimeError(f'BorderIoUMetric disagrees with IoUMetric: '
                           f'{got} vs {ref}')
    return time_interleaved(variants, repeats=repeats, warmup=warmup,
                            baseline='IoUMetric')
