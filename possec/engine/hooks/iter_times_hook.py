"""Wall time and data wait of every training iteration."""
import time

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class IterTimes(Hook):
    """Record each training iteration's wall time and the part of it spent
    waiting for data, after the first ``skip`` iterations.

    An iteration runs from the end of the previous one to its own end: the
    wait for the batch, the step and the other hooks (this one runs last,
    priority ``LOWEST``). The ``throughput`` benchmark reads ``iter_s`` and
    ``data_s`` (seconds) after ``runner.train()``.

    Args:
        skip (int): Iterations not recorded at the start. Default: 0.
    """

    priority = 'LOWEST'

    def __init__(self, skip: int = 0) -> None:
        self.skip = skip
        self.iter_s, self.data_s = [], []
        self._last_end = None
        self._start = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self._start = time.perf_counter()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        now = time.perf_counter()
        if self._last_end is not None and runner.iter >= self.skip:
            self.iter_s.append(now - self._last_end)
            self.data_s.append(self._start - self._last_end)
        self._last_end = now
