"""A progress bar that can be switched off."""
import sys
from typing import Optional

from mmengine.utils import ProgressBar


class WarmupProgressBar(ProgressBar):
    """mmengine's :class:`ProgressBar` whose rate and ETA leave out the
    first ``warmup`` tasks.

    A first task that costs more or less than the rest (a warm-up pass, a
    pass on a single image before batched ones) would skew mmengine's ETA,
    the elapsed time over all tasks done. Here the ETA is the tasks left
    times the mean time of the tasks done after the warm-up; it is blank
    until one such task is done.

    Args:
        task_num (int): Number of tasks.
        warmup (int): Tasks left out of the rate. Default: 1.
    """

    def __init__(self, task_num: int, warmup: int = 1) -> None:
        self.warmup = warmup
        self.warm: Optional[tuple] = None  # (tasks, seconds) at its end
        super().__init__(task_num, file=sys.stdout)

    def eta(self, elapsed: float) -> Optional[float]:
        """Seconds left, from the tasks done after the warm-up (None
        before one is done)."""
        if self.warm is None or self.completed <= self.warm[0]:
            return None
        per_task = (elapsed - self.warm[1]) / (self.completed - self.warm[0])
        return (self.task_num - self.completed) * per_task

    def update(self, num_tasks: int = 1) -> None:
        """Count ``num_tasks`` more tasks as done and redraw the line."""
        assert num_tasks > 0
        self.completed += num_tasks
        elapsed = self.timer.since_start()
        if self.warm is None and self.completed >= self.warmup:
            self.warm = (self.completed, elapsed)
        eta = self.eta(elapsed)
        timed = eta is not None
        fps = ((self.completed - self.warm[0]) / max(
            elapsed - self.warm[1], 1e-12) if timed else 0.)
        shown = f'{int(eta + 0.5):5}s' if timed else ''
        msg = (f'\r[{{}}] {self.completed}/{self.task_num}, '
               f'{fps:.1f} task/s, elapsed: {int(elapsed + 0.5)}s, '
               f'ETA: {shown}')
        width = max(2, min(self.bar_width,
                           int(self.terminal_width - len(msg)) + 2,
                           int(self.terminal_width * 0.6)))
        marks = int(width * self.completed / self.task_num)
        self.file.write(msg.format('>' * marks + ' ' * (width - marks)))
        self.file.flush()


class Progress:
    """mmengine's :class:`ProgressBar` over ``total`` tasks, or nothing.

    Args:
        total (int): Number of tasks.
        enabled (bool): Show the bar. Default: True.
        warmup (int): The first tasks, left out of the bar's rate and ETA
            (:class:`WarmupProgressBar`). Default: 0 (mmengine's bar).
    """

    def __init__(self, total: int, enabled: bool = True,
                 warmup: int = 0) -> None:
        if not enabled or total <= 0:
            self.bar = None
        elif warmup:
            self.bar = WarmupProgressBar(total, warmup)
        else:
            self.bar = ProgressBar(total)

    def update(self, num: int = 1) -> None:
        """Count ``num`` more tasks as done."""
        if self.bar is not None:
            self.bar.update(num)

    def close(self) -> None:
        """End the bar's line."""
        if self.bar is not None:
            self.bar.file.write('\n')
            self.bar.file.flush()
