"""The position study: does absolute position help or hurt segmentation?

Runs the grid of :mod:`.grid` (padding x position head x decode head
x seed x synthetic layout), one in-process training per cell through
:func:`possec.apis.train`, and records for each cell the overall and
per-border-band metrics of :class:`possec.evaluation.BorderIoUMetric`
(boundary effects by distance to the border, as in `Position, Padding and
Predictions <https://arxiv.org/abs/2101.12322>`_) and the H/V/G SPC of the
position probe of `How Much Position Information Do Convolutional Neural
Networks Encode? <https://arxiv.org/abs/2001.08248>`_ run on the trained
backbone (:func:`possec.analysis.run_probe`).

The study is resumable: a cell's ``result.json`` is written atomically
only after the cell finished, finished cells are never run again, and a
cell folder without ``result.json`` (a killed run) is deleted and run from
scratch. The report (:mod:`.report`) is rewritten after every cell.
"""
import copy
import gc
import os
import os.path as osp
import shutil
import time
from typing import Callable, Dict, Optional, Sequence

import torch

from possec.datasets.synthetic import (POSITION_PAIRS, generate_synthetic_voc,
                                       read_generation_meta)
from possec.fileio import dump_json
from possec.apis import train
from ..common import config_path
from ..probe import FrozenEncoder, probe_images, run_probe
from .grid import (DEFAULT_SETTINGS, HEAD_CONFIGS, OPTIMIZERS,
                   RUNTIME_SETTINGS, Cell, StudyError, _heads, cell_options,
                   data_root)
from .report import load_json, write_report

RESULT_FILE = 'result.json'
SETTINGS_FILE = 'study_settings.json'
PAIR_CLASSES = sorted(c for pair in POSITION_PAIRS for c in pair)


def check_settings(settings: Optional[dict]) -> dict:
    """The study settings: :data:`DEFAULT_SETTINGS` updated by
    ``settings``, with unknown keys and bad sizes refused."""
    settings = dict(settings or {})
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        raise StudyError(f'unknown study settings {sorted(unknown)}; '
                         f'expected some of {sorted(DEFAULT_SETTINGS)}')
    out = dict(DEFAULT_SETTINGS)
    out.update(settings)
    for key in ('max_iters', 'batch_size', 'img_size', 'num_train',
                'num_val', 'probe_images', 'probe_epochs'):
        if not isinstance(out[key], int) or out[key] < 1:
            raise StudyError(f'{key} must be a positive int, got '
                             f'{out[key]!r}')
    if out['optimizer'] not in OPTIMIZERS:
        raise StudyError(f"optimizer must be one of {sorted(OPTIMIZERS)}, "
                         f"got {out['optimizer']!r}")
    for key in ('lr', 'probe_lr'):
        if not isinstance(out[key], (int, float)) or not out[key] > 0:
            raise StudyError(f'{key} must be a positive number, got '
                             f'{out[key]!r}')
    if out['probe_images'] < 2:
        raise StudyError(f'probe_images must be >= 2 (one to train the '
                         f'readout, one held out), got {out["probe_images"]}')
    out['probe_patterns'] = list(out['probe_patterns'])
    return out


def study_probe_images(settings: dict) -> torch.Tensor:
    """The probe's images: the first ``probe_images`` of a ``uniform``
    tree generated with data seed + 1 (unseen by every training; position
    carries no label information there), as ``uint8 (N, 3, S, S)``."""
    s = dict(settings, num_train=settings['probe_images'], num_val=1,
             data_seed=settings['data_seed'] + 1)
    root = data_root(s, 'uniform') + '_probe'
    if read_generation_meta(root) is None:
        generate_synthetic_voc(root, 'uniform', s['num_train'], 1,
                               s['img_size'], s['data_seed'], progress=False)
    return probe_images(osp.join(root, 'JPEGImages'), s['img_size'],
                        s['probe_images'])


def probe_backbone(backbone: torch.nn.Module, images: torch.Tensor,
                   settings: dict, seed: int, mean=None, std=None) -> dict:
    """H/V/G SPC and MAE of a trained backbone (a frozen copy of it)."""
    kwargs = {} if mean is None else dict(mean=mean, std=std)
    encoder = FrozenEncoder(copy.deepcopy(backbone).cpu(), name='trained',
                            **kwargs)
    result = run_probe(
        images, encoder, patterns=settings['probe_patterns'],
        train=dict(epochs=settings['probe_epochs'], lr=settings['probe_lr'],
                   lr_step=max(1, settings['probe_epochs'] * 2 // 3)),
        seed=seed, num_show=0, progress=False)
    row = result['rows'][0]
    return dict(spc=row['spc'], mae=row['mae'], num_train=result['num_train'],
                num_test=result['num_test'])


def _metrics(raw: dict, results_file: str) -> dict:
    """Plain floats of the returned metrics, per-class IoU from the file,
    and the mIoU of the position-paired classes."""
    out = dict(metrics={k: float(v) for k, v in raw.items()})
    if osp.isfile(results_file):
        data = load_json(results_file)
        out['class_iou'] = [c['IoU'] for c in data['classes']]
        pair = [out['class_iou'][c] for c in PAIR_CLASSES
                if out['class_iou'][c] is not None]
        other = [v for c, v in enumerate(out['class_iou'])
                 if c not in PAIR_CLASSES and v is not None]
        out['metrics']['mIoU_pairs'] = (sum(pair) / len(pair)
                                        if pair else None)
        out['metrics']['mIoU_others'] = (sum(other) / len(other)
                                         if other else None)
        out['bands'] = [dict(name=b['name'], lo=b['lo'], hi=b['hi'],
                             pixels=b['pixels'], mIoU=b.get('mIoU'),
                             aAcc=b.get('aAcc'))
                        for b in data['border_bands']['bands']]
    return out


def run_cell(cell: Cell, settings: dict, work_dir: str,
             images: torch.Tensor, heads: Optional[dict] = None) -> dict:
    """Train, evaluate and probe one cell in ``work_dir``.

    Returns:
        dict: ``cell`` (its fields), ``metrics`` (overall and per-band
        summaries, ``mIoU_pairs`` / ``mIoU_others``), ``bands``,
        ``class_iou``, ``probe`` (``spc``, ``mae`` per pattern) and
        ``time_s``.
    """
    results_file = osp.join(work_dir, 'metrics.json')
    opts = cell_options(cell, settings, work_dir, results_file, heads)
    t0 = time.perf_counter()
    runner = train(config_path(HEAD_CONFIGS[cell.head]), work_dir=work_dir,
                   cfg_options=opts)
    t1 = time.perf_counter()
    raw = runner.val()
    t2 = time.perf_counter()
    model = getattr(runner.model, 'module', runner.model)
    prep = runner.cfg.model.get('data_preprocessor', {})
    probe = probe_backbone(model.backbone, images, settings, cell.seed,
                           prep.get('mean'), prep.get('std'))
    t3 = time.perf_counter()
    del runner, model
    gc.collect()
    return dict(cell=cell._asdict(), name=cell.name, **_metrics(raw,
                results_file), probe=probe,
                time_s=dict(train=t1 - t0, eval=t2 - t1, probe=t3 - t2,
                            total=t3 - t0))


def _check_same_settings(out_dir: str, settings: dict) -> None:
    path = osp.join(out_dir, SETTINGS_FILE)
    settings = {k: v for k, v in settings.items()
                if k not in RUNTIME_SETTINGS}
    if osp.isfile(path):
        found = {k: v for k, v in load_json(path).items()
                 if k not in RUNTIME_SETTINGS}
        # folders from before the optimizer setting trained with SGD
        found.setdefault('optimizer', 'sgd')
        if found != settings:
            diff = sorted(k for k in set(found) | set(settings)
                          if found.get(k) != settings.get(k))
            raise StudyError(
                f'study folder {out_dir!r} holds results made with other '
                f'settings (differing: {", ".join(diff)}; recorded in '
                f'{path}): rerun with the same settings to continue it, or '
                f'choose a new --out folder')
    dump_json(settings, path)


def progress_line(index: int, total: int, cell: Cell, result: dict,
                  skipped: bool = False) -> str:
    """``[3/24] zeros / +1 / parsenet / seed 1 / position-coded: mIoU 41.2
    (band0 30.1) SPC_H .82 - 95 s``."""
    m = result['metrics']
    band0 = result.get('bands', [{}])[0].get('mIoU')
    spc = result['probe']['spc']
    spc_text = ' '.join(f'SPC_{p} {v:.2f}' for p, v in spc.items())
    line = (f'[{index}/{total}] {cell.label}: mIoU {m["mIoU"]:.1f} '
            f'(band0 {_fmt(band0)}) {spc_text}')
    if skipped:
        return line + ' - finished before, skipped'
    return line + f' - {result["time_s"]["total"]:.0f} s'


def _fmt(value) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def run_study(cells: Sequence[Cell],
              out_dir: str,
              settings: Optional[dict] = None,
              command: Optional[str] = None,
              cell_fn: Optional[Callable] = None,
              log: Callable[[str], None] = print) -> Dict[str, list]:
    """Run (or continue) a study and write its report.

    Args:
        cells (Sequence[Cell]): The grid (:func:`.grid.build_grid`).
        out_dir (str): The study folder: ``runs/<cell>/`` (work dirs and
            ``result.json``), ``study.json``, ``study.md`` and the plots.
        settings (dict, optional): Overrides of :data:`DEFAULT_SETTINGS`
            (and ``threads``: torch threads while the study runs). They
            must match those of an existing study in ``out_dir``.
        command (str, optional): The command line, quoted in the report.
        cell_fn (callable, optional): Replaces :func:`run_cell` (tests).
        log (callable): Receives the progress lines. Default: print.

    Returns:
        dict: ``results`` (one per finished cell, in grid order) and
        ``files`` (the report's files).
    """
    settings = check_settings(settings)
    if not cells:
        raise StudyError('the grid is empty: give at least one layout, '
                         'seed, head, padding and position head')
    os.makedirs(out_dir, exist_ok=True)
    _check_same_settings(out_dir, settings)
    if settings['data_root'] is None:  # inside the study: nobody else's
        settings['data_root'] = osp.join(out_dir, 'data')
    cell_fn = cell_fn or run_cell
    threads = torch.get_num_threads()
    if settings['threads']:
        torch.set_num_threads(settings['threads'])
    try:
        images, heads = None, None
        results = []
        for index, cell in enumerate(cells, 1):
            work_dir = osp.join(out_dir, 'runs', cell.name)
            result_path = osp.join(work_dir, RESULT_FILE)
            if osp.isfile(result_path):
                result = load_json(result_path)
                results.append(result)
                log(progress_line(index, len(cells), cell, result, True))
                continue
            if osp.isdir(work_dir):  # killed before it finished: redo
                shutil.rmtree(work_dir)
            if images is None:
                images, heads = study_probe_images(settings), _heads()
            result = cell_fn(cell, settings, work_dir, images, heads)
            dump_json(result, result_path)
            results.append(result)
            log(progress_line(index, len(cells), cell, result))
            files = write_report(results, out_dir, settings, command,
                                 total=len(cells))
        files = write_report(results, out_dir, settings, command,
                             total=len(cells))
    finally:
        torch.set_num_threads(threads)
    return dict(results=results, files=files)

