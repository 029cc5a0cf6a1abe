"""One progress line every few iterations of a quieted training run."""
import time
from typing import Optional

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class StudyProgressHook(Hook):
    """Print ``label: iter 150/300 loss 0.812, 61 s, ETA 60 s`` every
    ``interval`` training iterations and at the last one, flushed at once.

    A study cell trains for minutes with its log quieted to warnings; this
    line lets a redirected log show where a long cell is. The ETA assumes
    the remaining iterations take as long as the finished ones on average.

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
