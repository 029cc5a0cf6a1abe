"""Quieting mmengine's logger for a block of code."""
import contextlib
from typing import Iterator, Union

from mmengine.logging import MMLogger


@contextlib.contextmanager
def quiet_logger(level: Union[int, str] = 'WARNING') -> Iterator[None]:
    """Raise the current :class:`MMLogger`'s level for the block.

    mmengine logs one INFO line per parameter when it initialises weights,
    and one warning per operator without a FLOP formula when it counts
    FLOPs; the analysis tools and benchmarks have no use for either.

    Args:
        level (int | str): The level inside the block. Default: 'WARNING'.
    """
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(old)
