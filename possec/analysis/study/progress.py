"""A study cell's training-loss curve.

:func:`loss_curve` reads the training loss of every iteration from the
runner's message hub (mmengine's ``RuntimeInfoHook`` records
``train/loss`` each iteration) and bins it, for the plateau criterion of
:func:`.stats.plateau` and the report's curves. The cell's progress lines
come from :class:`possec.engine.hooks.StudyProgressHook`.
"""
from typing import Optional

import numpy as np


def loss_values(runner) -> np.ndarray:
    """The training loss of every iteration of a finished run (empty when
    none was recorded)."""
    try:
        values, _ = runner.message_hub.get_scalar('train/loss').data
    except KeyError:
        return np.zeros(0)
    return np.asarray(values, dtype=np.float64)


def binned(values: np.ndarray, bins: int = 30,
           first_iter: int = 0) -> Optional[dict]:
    """``values`` averaged in up to ``bins`` consecutive equal windows.

    Args:
        values (np.ndarray): One value per iteration.
        bins (int): Number of windows. Default: 30.
        first_iter (int): Iterations done before ``values[0]``.
            Default: 0.

    Returns:
        dict | None: ``iters`` (the last iteration of each window, 1-based)
        and ``loss`` (the window's mean); None when ``values`` is empty.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None
    edges = np.linspace(0, values.size, min(bins, values.size) + 1)
    edges = np.unique(edges.round().astype(int))
    iters, loss = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        iters.append(int(hi) + int(first_iter))
        loss.append(float(values[lo:hi].mean()))
    return dict(iters=iters, loss=loss)


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
    return binned(loss_values(runner), bins)
