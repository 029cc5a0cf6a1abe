"""A short summary at the end of a run."""
import logging
import os.path as osp
import time
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from ...runtime.atomic_save import latest_checkpoint
from ...runtime.quiet import device_line


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


def _results_dir(cfg) -> Optional[str]:
    evaluators = cfg.get('test_evaluator') or []
    for ev in evaluators if isinstance(evaluators, list) else [evaluators]:
        if isinstance(ev, dict) and ev.get('results_file'):
            return osp.dirname(ev['results_file']) or '.'
    return None


def _run_config(runner) -> str:
    """The config to name in the next commands: the copy the Runner dumped
    into the work dir (it holds the run's --cfg-options), else the file
    given."""
    given = getattr(runner.cfg, 'filename', None)
    if given:
        dumped = osp.join(runner.work_dir, osp.basename(given))
        if osp.isfile(dumped):
            return dumped
    return given or 'CONFIG'


@HOOKS.register_module()
class RunSummaryHook(Hook):
    """Print a short summary when a run ends, in the main process only: the
    last validation or test metrics, the time taken and the device, where
    the checkpoint, log and result files are, and the commands to try next.

    possec's entry points (:func:`possec.apis.train`, :func:`possec.apis.test`
    and the tools over them) add it to every Runner they build. The
    checkpoint it names is the one ``--resume`` would continue from
    (:func:`possec.runtime.latest_checkpoint`).
    """

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
        if not is_main_process():
            return
        print(self.summary(runner), flush=True)

    def summary(self, runner) -> str:
        """The summary of ``runner``'s run as text."""
        secs = time.perf_counter() - self.start
        took = f'{int(secs // 60)} min {secs % 60:.0f} s'
        config = _run_config(runner)
        log = _log_file(runner)
        if self.trained:
            ckpt = latest_checkpoint(runner.work_dir)
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
