"""A progress bar that can be switched off."""
from mmengine.utils import ProgressBar


class Progress:
    """mmengine's :class:`ProgressBar` over ``total`` tasks, or nothing.

    Args:
        total (int): Number of tasks.
        enabled (bool): Show the bar. Default: True.
    """

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.bar = ProgressBar(total) if enabled and total > 0 else None

    def update(self, num: int = 1) -> None:
        """Count ``num`` more tasks as done."""
        if self.bar is not None:
            self.bar.update(num)

    def close(self) -> None:
        """End the bar's line."""
        if self.bar is not None:
            self.bar.file.write('\n')
            self.bar.file.flush()
