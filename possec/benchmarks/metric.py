"""Benchmark: BorderIoUMetric against mmseg's IoUMetric on the same data.

Each timed unit is a whole evaluation as the runner does it: a fresh metric
``process``-es every image in batches, then ``evaluate`` sums the counts and
computes the summary. Predictions and labels are int64 ``(1, H, W)`` tensors
as mmseg's model and ``PackSegInputs`` deliver them, with ~5% ignored pixels.
"""
from typing import Dict, List, Optional

import torch
from mmseg.registry import METRICS

from ..analysis.common import quiet_logger
from .rows import ratio_rows
from .runner import BenchmarkRunner
from .timing import format_table

TITLE = 'BorderIoUMetric vs IoUMetric'
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
        threads: Optional[int] = None) -> Dict[str, dict]:
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
        dict: :func:`possec.benchmarks.timing.time_interleaved`'s results
        with ``IoUMetric`` as the baseline.
    """
    runner = BenchmarkRunner(threads=threads, repeats=repeats, warmup=warmup)
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
    # the metrics log their tables through the current MMLogger
    with quiet_logger():
        ref, got = variants['IoUMetric'](), variants['BorderIoUMetric']()
        if any(got[key] != value for key, value in ref.items()):
            raise RuntimeError(f'BorderIoUMetric disagrees with IoUMetric: '
                               f'{got} vs {ref}')
        return runner.time(variants, baseline='IoUMetric')


def report(results: dict, settings: dict) -> tuple:
    """The table of :func:`run` and each metric's ratio to IoUMetric
    (BorderIoUMetric judged against 1.3x)."""
    title = (f"one evaluation of {settings['images']} images of "
             f"{settings['size']}x{settings['size']}, {settings['classes']} "
             f"classes")
    rows = ratio_rows(results, 'IoUMetric', 'BorderIoUMetric', 1.3)
    return format_table(results, title), rows
