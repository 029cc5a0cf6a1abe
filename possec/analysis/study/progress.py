"""Progress inside a study cell, and the cell's training-loss curve.

A cell trains for minutes with its log quieted to warnings; the
:class:`StudyProgressHook` prints one flushed line every ``interval``
iterations (iteration, loss, elapsed time and ETA), so that a redirected
log shows where a long cell is. :func:`loss_curve` reads the training loss
of every iteration from the runner's message hub (mmengine's
``RuntimeInfoHook`` records ``train/loss`` each iteration) and bins it, for
the plateau criterion of :func:`.stats.plateau` and the report's curves.
"""
import sys
import time
from typing import Optional

import numpy as np
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class StudyProgressHook(Hook):
    """Print ``label: iter 150/300 loss 0.812, 61 s, ETA 60 s`` every
    ``interval`` training iterations (flushed at once).

    Args:
        interval (int): Iterations between lines. Default: 50.
        label (str): The cell's label. Default: ''.
    """
    priority = 'VERY_LOW'

    def __init__(self, interval: int = 50, label: str = ''):
        if not (isinstance(interval, int) and interval > 0):
            raise ValueError(f'interval must be a positive int, got '
                             f'{interval!r}')
        self.interval = interval
        self.label = label
        self._t0: Optional[float] = None

    def before_train(self, runner) -> None:
        self._t0 = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        done = runner.iter + 1
        total = runner.max_iters
        if done % self.interval and done != total:
            return
        elapsed = time.perf_counter() - (self._t0 or time.perf_counter())
        eta = elapsed / done * (total - done)
        loss = ''
        if outputs and 'loss' in outputs:
            value = outputs['loss']
            value = value.detach() if hasattr(value, 'detach') else value
            loss = f' loss {float(value):.3f},'
        print(f'    {self.label}: iter {done}/{total}{loss} '
              f'{elapsed:.0f} s, ETA {eta:.0f} s', flush=True)
        sys.stdout.flush()


def loss_curve(runner, bins: int = 30) -> Optional[dict]:
    """The training loss of a finished run, averaged in up to ``bins``
    consecutive equal windows of iterations.

    Args:
        runner (Runner): The runner after ``train()``.
        bins (int): Number of windows. Default: 30.

    Returns:
        dict | None: ``iters`` (the last iteration of each window, 1-based)
        and ``loss`` (the window's mean); None when no loss was recorded.
    """
    try:
        values, _ = runner.message_hub.get_scalar('train/loss').data
    except KeyError:
        return None
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    edges = np.linspace(0, values.size, min(bins, values.size) + 1)
    edges = np.unique(edges.round().astype(int))
    iters, loss = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        iters.append(int(hi))
        loss.append(float(values[lo:hi].mean()))
    return dict(iters=iters, loss=loss)
