"""Closed log files left behind by a finished in-process run.

After a run, mmengine (its LoggerHook with ``keep_local=False``) or torch's
logging set-up can close the FileHandler of the run's MMLogger while that
logger stays mmengine's *current* instance. Anything that logs through it
later in the same process (``init_weights`` writes its initialisation table
to every file handler) then fails with "'NoneType' object has no attribute
'write'". possec's train/test entry points call
:func:`drop_closed_file_handlers` when a run ends, so a second run, a probe or
an analysis in the same process works.
"""
import logging

from mmengine.logging import MMLogger


def drop_closed_file_handlers() -> int:
    """Remove closed FileHandlers from every MMLogger instance.

    Returns:
        int: How many handlers were removed.
    """
    removed = 0
    for logger in list(MMLogger._instance_dict.values()):
        for handler in list(logger.handlers):
            if isinstance(handler, logging.FileHandler) and \
                    handler.stream is None:
                logger.removeHandler(handler)
                removed += 1
    return removed
