"""Quiet runs: no stack noise, and the real device in the log.

possec's entry points (``tools/train.py``, ``tools/test.py`` and
:func:`possec.apis.train` / :func:`possec.apis.test`) use this module so that
a run prints what matters and little else:

- the deprecation warnings the pinned stack raises on every run (setuptools'
  ``pkg_resources`` warning, raised while mmengine is imported, and mmseg's
  ``build_loss`` / ``avg_non_ignore`` / ``draw is False`` warnings, raised
  while the Runner is built) are silenced by :data:`STACK_WARNINGS`;
- mmengine's environment block names the device the run uses (mmengine
  writes ``GPU number: 1`` and the config's ``nccl`` backend on a CPU-only,
  single-process run); the config (~350 lines) and the hook table go to the
  log file only, not to the console;
- the run ends with a short summary
  (:class:`possec.engine.hooks.RunSummaryHook`, which the entry points add):
  the metrics, where the files are, and what to try next.

Importing this module changes nothing; :func:`silence_stack_warnings`
installs the filters for the rest of the process (an entry point's choice),
:func:`run_reporting` applies the rest for the duration of a Runner's build.
"""
import contextlib
import logging
import warnings
from typing import Iterator, Optional

import torch

#: ``(message regex, category)`` of the pinned stack's deprecation warnings
#: that every run would print: setuptools >= 77's ``pkg_resources`` warning
#: (mmengine imports ``pkg_resources``) and mmseg 1.2.2's build-time
#: warnings about its own API.
STACK_WARNINGS = (
    (r'pkg_resources is deprecated as an API', UserWarning),
    (r'Deprecated call to `pkg_resources\.declare_namespace',
     DeprecationWarning),
    (r'``build_loss`` would be deprecated soon', UserWarning),
    (r'Default ``avg_non_ignore`` is False', UserWarning),
    (r'The draw is False, it means that the hook for visualization',
     UserWarning),
)

#: console records that go to the log file only (their first words)
FILE_ONLY = ('Config:\n', 'Hooks will be executed in the following order')
#: mmengine 0.10's own deprecation notices, logged as warnings by every
#: run (its hooks build a ``FileClient``; ``BaseMetric`` asks for a
#: prefix that mmseg's metrics do not set either): to the log file only.
FILE_ONLY_WARNINGS = (
    '"FileClient" will be deprecated in future',
    '"HardDiskBackend" is the alias of "LocalBackend"',
    'The prefix is not set in metric class',
)


def silence_stack_warnings() -> None:
    """Ignore :data:`STACK_WARNINGS` from now on (process-wide: for entry
    points, before mmengine is imported)."""
    for message, category in STACK_WARNINGS:
        warnings.filterwarnings('ignore', message=message, category=category)


def device_line() -> str:
    """The device a process of this run computes on, in words, e.g.
    ``cpu (2 threads)`` or ``cuda:0 (NVIDIA H100, 1 of 1 GPU)``."""
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        return (f'cuda:{index} ({torch.cuda.get_device_name(index)}, '
                f'{torch.cuda.device_count()} GPU visible)')
    n = torch.get_num_threads()
    return f'cpu ({n} thread{"s" if n != 1 else ""})'


def _backend() -> Optional[str]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return str(dist.get_backend())
    return None


class ConsoleFilter(logging.Filter):
    """On the console handler of a run's logger: drops the records of
    :data:`FILE_ONLY` (the file handler still writes them) and makes the
    environment block name the real device and process count."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if not isinstance(msg, str):
            return True
        if msg.startswith(FILE_ONLY) or msg.startswith(FILE_ONLY_WARNINGS):
            return False
        if 'Runtime environment:' in msg:
            if 'GPU number:' in msg:
                record.msg = tidy_environment(msg)
            return False  # the block for the file, environment_line here
        return True


def environment_line() -> str:
    """The console's one line for mmengine's environment block (which goes
    to the log file): the device, its threads and the versions."""
    import sys

    import mmcv
    import mmengine
    import mmseg

    from ..version import __version__
    return (f'environment: {device_line()}; Python '
            f'{sys.version.split()[0]}, torch {torch.__version__}, mmcv '
            f'{mmcv.__version__}, mmengine {mmengine.__version__}, mmseg '
            f'{mmseg.__version__}, possec {__version__} (the full block is '
            f'in the log file)')


def tidy_environment(text: str) -> str:
    """mmengine's environment block with ``GPU number: N`` replaced by the
    process count and the device, and the ``dist_cfg`` line saying which
    backend is in use (``unused`` in a single process)."""
    lines = []
    backend = _backend()
    for line in text.split('\n'):
        key = line.strip()
        indent = line[:len(line) - len(line.lstrip())]
        if key.startswith('GPU number:'):
            count = key.split(':', 1)[1].strip()
            lines.append(f'{indent}processes: {count}')
            lines.append(f'{indent}device: {device_line()}')
            continue
        if key.startswith('dist_cfg:'):
            used = backend or 'unused (a single process)'
            line = f'{line}  -> backend in use: {used}'
        lines.append(line)
    return '\n'.join(lines)


@contextlib.contextmanager
def run_reporting(cfg=None) -> Iterator[None]:
    """While a Runner is built: silence :data:`STACK_WARNINGS` and give the
    run's logger a :class:`ConsoleFilter`. Everything is undone on exit (the
    Runner keeps its filter).

    Args:
        cfg (Config, optional): The run's config (unused; the call sites
            read better with it). Default: None.
    """
    from mmengine.runner import Runner
    log_env = Runner._log_env

    def _log_env(self, env_cfg):
        console = [h for h in self.logger.handlers
                   if not isinstance(h, logging.FileHandler)]
        for handler in console:
            if not any(isinstance(f, ConsoleFilter) for f in handler.filters):
                handler.addFilter(ConsoleFilter())
        result = log_env(self, env_cfg)
        line = self.logger.makeRecord(self.logger.name, logging.INFO,
                                      __file__, 0, environment_line(), None,
                                      None)
        for handler in console:  # the console's one line for the block
            if line.levelno >= handler.level:
                handler.handle(line)
        return result

    with warnings.catch_warnings():
        silence_stack_warnings()
        Runner._log_env = _log_env
        try:
            yield
        finally:
            Runner._log_env = log_env
