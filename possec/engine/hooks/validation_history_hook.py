"""Keep every validation of a training run, not only the last."""
import os.path as osp
import shutil
import time
from typing import List

from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ValidationHistoryHook(Hook):
    """After each validation, copy the evaluators' results files to
    ``<name>_iter<N>.json`` and keep the returned metrics.

    A results file (``BorderIoUMetric``'s per-class and per-band JSON) is
    rewritten at every validation; a convergence test that compares two
    validations of one run (at the end of the schedule and after a
    constant-learning-rate tail) needs both. ``history`` holds one dict per
    validation: ``iter`` (training iterations done), ``metrics`` (plain
    floats), ``files`` (the copies) and ``seconds`` (the validation's
    wall time).

    Args:
        copy_files (bool): Copy the results files. Default: True.
    """
    priority = 'LOW'

    def __init__(self, copy_files: bool = True):
        self.copy_files = copy_files
        self.history: List[dict] = []
        self._t0 = None

    def before_val_epoch(self, runner) -> None:
        self._t0 = time.perf_counter()

    def after_val_epoch(self, runner, metrics=None) -> None:
        files = []
        if self.copy_files:
            for metric in getattr(runner.val_evaluator, 'metrics', []):
                resolve = getattr(metric, 'resolve_results_file', None)
                path = resolve() if resolve else None
                if path and osp.isfile(path):
                    stem, ext = osp.splitext(path)
                    copy = f'{stem}_iter{runner.iter}{ext}'
                    shutil.copyfile(path, copy)
                    files.append(copy)
        self.history.append(dict(
            iter=int(runner.iter),
            metrics={k: float(v) for k, v in (metrics or {}).items()},
            files=files,
            seconds=time.perf_counter() - (self._t0 or time.perf_counter())))
