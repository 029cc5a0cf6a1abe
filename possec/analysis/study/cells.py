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
from ..probe import FrozenEncoder, probe_images, run_probe
from possec.runtime.claims import ClaimBoard
from .grid import (DEFAULT_SETTINGS, OPTIMIZERS, RUNTIME_SETTINGS, Cell,
                   StudyError, _heads, cell_options, data_root, head_config)
from .progress import loss_curve
from .report import load_json, write_report
from .stats import plateau

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
                'num_val', 'probe_images', 'probe_epochs', 'probe_convs'):
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
        readout=dict(num_convs=int(settings.get('probe_convs', 1))),
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
    iters = int(settings['max_iters'])
    opts = cell_options(cell, settings, work_dir, results_file, heads,
                        progress_every=max(1, iters // 6))
    t0 = time.perf_counter()
    runner = train(head_config(cell.head), work_dir=work_dir,
                   cfg_options=opts)
    t1 = time.perf_counter()
    curve = loss_curve(runner)
    raw = runner.val()
    t2 = time.perf_counter()
    model = getattr(runner.model, 'module', runner.model)
    prep = runner.cfg.model.get('data_preprocessor', {})
    probe = probe_backbone(model.backbone, images, settings, cell.seed,
                           prep.get('mean'), prep.get('std'))
    t3 = time.perf_counter()
    del runner, model
    gc.collect()
    converged = None
    if curve and len(curve['loss']) >= 3 and min(curve['loss']) > 0:
        converged = plateau(curve['loss'])
    return dict(cell=cell._asdict(), name=cell.name, **_metrics(raw,
                results_file), probe=probe, loss_curve=curve,
                plateau=converged,
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
        # and before probe_convs with the one-conv readout
        found.setdefault('probe_convs', 1)
        if found != settings:
            diff = sorted(k for k in set(found) | set(settings)
                          if found.get(k) != settings.get(k))
            raise StudyError(
                f'study folder {out_dir!r} holds results made with other '
                f'settings (differing: {", ".join(diff)}; recorded in '
                f'{path}): rerun with the same settings to continue it, or '
                f'choose a new --out-dir folder')
    dump_json(settings, path)


def progress_line(index: int, total: int, cell: Cell, result: dict,
                  skipped: bool = False) -> str:
    """``[3/24] parsenet / zeros / pos +1 | position-coded | seed 1: mIoU
    41.2 (band0 30.1) SPC_H 0.82 ... - 95 s`` (``index``: the cells
    finished so far, in any worker)."""
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
              log: Callable[[str], None] = print,
              workers: int = 1,
              stale_after: float = 120.0,
              heartbeat: float = 10.0) -> Dict[str, list]:
    """Run (or continue) a study and write its report.

    The cells are claimed through :mod:`possec.runtime.claims` (folder
    ``<out_dir>/claims``), so that ``workers`` processes here, or several
    invocations of the same command over one folder (e.g. a Slurm array
    on a shared filesystem), run each cell exactly once: a cell with
    ``result.json`` (written atomically, last) is finished and never rerun;
    a cell folder without it (a killed worker's) is deleted and redone by
    whoever claims it next, as is a cell marked finished whose folder was
    deleted (to redo it); a claim without heartbeat for ``stale_after``
    seconds is taken over. The data trees are generated first, each by
    one worker, under the same claims.

    Args:
        cells (Sequence[Cell]): The grid (:func:`.grid.resolve_grid`).
        out_dir (str): The study folder: ``runs/<cell>/`` (work dirs and
            ``result.json``), ``claims/``, ``study.json``, ``study.md`` and
            the plots.
        settings (dict, optional): Overrides of :data:`DEFAULT_SETTINGS`
            (and ``threads``: torch threads per worker). They must match
            those of an existing study in ``out_dir``.
        command (str, optional): The command line, quoted in the report.
        cell_fn (callable, optional): Replaces :func:`run_cell` (tests); a
            module-level function when ``workers > 1``.
        log (callable): Receives the progress lines of this process
            (worker processes print theirs, flushed). Default: print.
        workers (int): Worker processes (this one and ``workers - 1``
            spawned ones). Default: 1.
        stale_after (float): Claims' staleness, seconds. Default: 120.
        heartbeat (float): Claims' heartbeat, seconds. Default: 10.

    Returns:
        dict: ``results`` (one per finished cell, in grid order),
        ``files`` (the report's files) and ``ran`` (the cells this process
        ran).
    """
    settings = check_settings(settings)
    if not cells:
        raise StudyError('the grid is empty: give at least one layout, '
                         'seed, head, padding and position head')
    if not (isinstance(workers, int) and workers >= 1):
        raise StudyError(f'workers must be a positive int, got {workers!r}')
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise StudyError('the grid repeats a cell; give each once')
    os.makedirs(out_dir, exist_ok=True)
    _check_same_settings(out_dir, settings)
    if settings['data_root'] is None:  # inside the study: nobody else's
        settings['data_root'] = osp.join(out_dir, 'data')
    finished = finished_results(cells, out_dir)
    board = ClaimBoard(osp.join(out_dir, 'claims'))
    for index, cell in enumerate(cells, 1):
        if cell.name in finished:
            log(progress_line(index, len(cells), cell, finished[cell.name],
                              True))
        elif board.forget(cell.name):  # marked done, its result deleted
            log(f'{cell.label}: marked finished but its result.json is '
                f'missing; running it again')
    children = []
    if workers > 1:
        import multiprocessing as mp
        ctx = mp.get_context('spawn')
        for k in range(2, workers + 1):
            proc = ctx.Process(
                target=_worker_process,
                args=(list(cells), out_dir, settings, command, cell_fn,
                      f'w{k}', stale_after, heartbeat),
                name=f'study-worker-{k}')
            proc.start()
            children.append(proc)
    try:
        ran = work(cells, out_dir, settings, command, cell_fn, log,
                   'w1' if workers > 1 else '', stale_after, heartbeat)
        for proc in children:
            proc.join()
        failed = [p.name for p in children if p.exitcode]
        if failed:
            raise StudyError(
                f'worker processes {", ".join(failed)} stopped with an '
                f'error (their message is above): rerun the same command '
                f'to continue')
    finally:
        for proc in children:
            if proc.is_alive():
                proc.join(timeout=30)
    results = list(finished_results(cells, out_dir).values())
    files = write_report(results, out_dir, settings, command,
                         total=len(cells))
    return dict(results=results, files=files, ran=ran)


def finished_results(cells: Sequence[Cell], out_dir: str) -> Dict[str, dict]:
    """``{cell name: result}`` of the finished cells, in grid order."""
    out = {}
    for cell in cells:
        path = osp.join(out_dir, 'runs', cell.name, RESULT_FILE)
        if osp.isfile(path):
            out[cell.name] = load_json(path)
    return out


def data_units(cells: Sequence[Cell], settings: dict) -> Dict[str, tuple]:
    """``{unit name: (root, layout)}``: the data trees the cells train on,
    and the probe's images, each generated once under a claim."""
    units = {}
    for layout in dict.fromkeys(c.layout for c in cells):
        root = data_root(settings, layout)
        units['data__' + osp.basename(root)] = (root, layout)
    units['data__probe'] = (None, 'uniform')
    return units


def work(cells: Sequence[Cell], out_dir: str, settings: dict,
         command: Optional[str], cell_fn: Optional[Callable],
         log: Callable[[str], None], tag: str = '',
         stale_after: float = 120.0, heartbeat: float = 10.0) -> list:
    """One worker: claim, run and record cells until every cell of the
    grid is finished (by this worker or another); returns the names of
    the cells it ran."""
    cell_fn = cell_fn or run_cell
    by_name = {c.name: c for c in cells}
    suffix = f' [{tag}]' if tag else ''
    board = ClaimBoard(osp.join(out_dir, 'claims'),
                       stale_after=stale_after, heartbeat=heartbeat)
    threads = torch.get_num_threads()
    if settings['threads']:
        torch.set_num_threads(settings['threads'])
    state = {}
    s = settings
    units = data_units(cells, settings)

    def make_data(name):
        root, layout = units[name]
        if root is None:
            study_probe_images(settings)
        elif read_generation_meta(root) is None:
            generate_synthetic_voc(root, layout, s['num_train'],
                                   s['num_val'], s['img_size'],
                                   s['data_seed'], progress=False)

    def one(name):
        cell = by_name[name]
        work_dir = osp.join(out_dir, 'runs', cell.name)
        result_path = osp.join(work_dir, RESULT_FILE)
        if osp.isfile(result_path):  # finished before the claims existed
            return
        if osp.isdir(work_dir):  # a killed worker's: redo from scratch
            shutil.rmtree(work_dir)
        if 'images' not in state:
            state['images'] = study_probe_images(settings)
            state['heads'] = _heads()
        log(f'start {cell.label}{suffix}')
        result = cell_fn(cell, settings, work_dir, state['images'],
                         state['heads'])
        dump_json(result, result_path)
        done = finished_results(cells, out_dir)
        log(progress_line(len(done), len(cells), cell, result) + suffix)
        write_report(list(done.values()), out_dir, settings, command,
                     total=len(cells))

    try:
        if cell_fn is run_cell:
            board.run(list(units), make_data)
        return board.run(list(by_name), one)
    finally:
        torch.set_num_threads(threads)


def _worker_process(cells, out_dir, settings, command, cell_fn, tag,
                    stale_after, heartbeat) -> None:
    """A spawned worker: :func:`work` with flushed prints; Ctrl-C (sent to
    the whole process group) ends it quietly, its claim released."""
    import sys

    def log(line):
        print(line, flush=True)

    try:
        work(cells, out_dir, settings, command, cell_fn, log, tag,
             stale_after, heartbeat)
    except KeyboardInterrupt:
        sys.exit(130)
