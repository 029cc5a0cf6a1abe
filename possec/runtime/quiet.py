"""Runs that say what happens: no stack noise, the real device, a summary.

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
- the run ends with a short summary (:class:`RunSummaryHook`): the metrics,
  where the files are, and what to try next.

Importing this module changes nothing; :func:`silence_stack_warnings`
installs the filters for the rest of the process (an entry point's choice),
:func:`run_reporting` applies the rest for the duration of a Runner's build.
"""
import contextlib
import logging
import os.path as osp
import time
import warnings
from typing import Dict, Iterator, Optional

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
        if 'Runtime environment:' in msg and 'GPU number:' in msg:
            record.msg = tidy_environment(msg)
        return True


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


def _summary_lines(title: str, metrics: Dict, files: Dict[str, str],
                   tips) -> str:
    width = max([len(k) for k in files] + [7])
    out = [f'==== possec: {title} ====']
    if metrics:
        shown = []
        for key, value in metrics.items():
            try:
                shown.append((key.split('/')[-1], float(value)))
            except (TypeError, ValueError):
                continue  # per-class arrays and the like: in the files
        out.append('  ' + '  '.join(f'{k} {v:.2f}' for k, v in shown))
    else:
        out.append('  no metrics (no validation or test ran)')
    for key, path in files.items():
        if path:
            out.append(f'  {key.ljust(width)}  {path}')
    for i, tip in enumerate(tips):
        out.append(f'  {"next:" if i == 0 else "":{width}}  {tip}')
    return '\n'.join(out)


def _log_file(runner) -> Optional[str]:
    for handler in runner.logger.handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def _latest_checkpoint(work_dir: str) -> Optional[str]:
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            path = f.read().strip()
        return path if osp.isfile(path) else None
    return None


def _results_dir(cfg) -> Optional[str]:
    evaluators = cfg.get('test_evaluator') or []
    for ev in evaluators if isinstance(evaluators, list) else [evaluators]:
        if isinstance(ev, dict) and ev.get('results_file'):
            return osp.dirname(ev['results_file']) or '.'
    return None


try:
    from mmengine.hooks import Hook
except ImportError:  # pragma: no cover - mmengine is a dependency
    Hook = object


class RunSummaryHook(Hook):
    """Prints a short summary when a run ends (main process only): the
    last validation or test metrics, where the checkpoint, log and result
    files are, and the command to try next."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.metrics: Dict = {}
        self.trained = False
        self.tested = False
        self.start = time.perf_counter()

    def before_run(self, runner) -> None:
        self.start = time.perf_counter()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if metrics:
            self.metrics = dict(metrics)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self.tested = True
        if metrics:
            self.metrics = dict(metrics)

    def after_train(self, runner) -> None:
        self.trained = True

    def after_run(self, runner) -> None:
        from mmengine.dist import is_main_process
        if not is_main_process():
            return
        print(self.summary(runner), flush=True)

    def summary(self, runner) -> str:
        """The summary of ``runner``'s run as text."""
        secs = time.perf_counter() - self.start
        took = f'{int(secs // 60)} min {secs % 60:.0f} s'
        config = getattr(runner.cfg, 'filename', None) or 'CONFIG'
        log = _log_file(runner)
        if self.trained:
            ckpt = _latest_checkpoint(runner.work_dir)
            title = (f'training finished: {runner.iter} iterations in '
                     f'{took} on {device_line()}')
            files = dict(checkpoint=ckpt, log=log, work_dir=runner.work_dir)
            shown = ckpt or osp.join(runner.work_dir, 'iter_N.pth')
            tips = [f'python tools/test.py {config} {shown} --out '
                    f'{osp.join(runner.work_dir, "test")}',
                    f'python tools/analysis/position_probe.py noise '
                    f'--config {config} --checkpoint {shown}']
            return _summary_lines(title + (', last validation'
                                           if self.metrics else ''),
                                  self.metrics, files, tips)
        out = _results_dir(runner.cfg)
        title = f'test finished in {took} on {device_line()}'
        files = dict(log=log)
        if out:
            files.update(metrics=osp.join(out, 'metrics.{json,csv}'),
                         predictions=osp.join(out, 'pred', '*.png'))
        tips = ['--show-dir DIR draws the predictions over the images',
                '--cfg-options test_evaluator.type=BorderIoUMetric: '
                'accuracy by distance to the border']
        if not out:
            tips.insert(0, '--out DIR writes metrics.json, metrics.csv and '
                        'the predicted masks')
        return _summary_lines(title, self.metrics, files, tips)


@contextlib.contextmanager
def run_reporting(cfg=None) -> Iterator[None]:
    """While a Runner is built: silence :data:`STACK_WARNINGS`, give the
    run's logger a :class:`ConsoleFilter`, and register a
    :class:`RunSummaryHook`. Everything is undone on exit (the Runner keeps
    its filter and hook).

    Args:
        cfg (Config, optional): The run's config (unused; the call sites
            read better with it). Default: None.
    """
    from mmengine.runner import Runner
    log_env, register_hooks = Runner._log_env, Runner.register_hooks

    def _log_env(self, env_cfg):
        for handler in self.logger.handlers:
            if not isinstance(handler, logging.FileHandler) and not any(
                    isinstance(f, ConsoleFilter) for f in handler.filters):
                handler.addFilter(ConsoleFilter())
        return log_env(self, env_cfg)

    def _register_hooks(self, *args, **kwargs):
        register_hooks(self, *args, **kwargs)
        if not any(isinstance(h, RunSummaryHook) for h in self._hooks):
            self.register_hook(RunSummaryHook(), 'VERY_LOW')

    with warnings.catch_warnings():
        silence_stack_warnings()
        Runner._log_env, Runner.register_hooks = _log_env, _register_hooks
        try:
            yield
        finally:
            Runner._log_env, Runner.register_hooks = log_env, register_hooks
