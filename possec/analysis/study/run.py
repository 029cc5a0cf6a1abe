"""Running a position study: cells claimed by workers, resumable, one code
version per folder, a results file at the end.

A study folder holds ``runs/<cell>/`` (each cell's work dir and its
``result.json``, written atomically and last), ``claims/``,
``study_settings.json``, the report (``study.md``, ``study.json``,
figures) and ``study_results.json`` (:mod:`.results`). Finished cells are
never run again; a cell folder without ``result.json`` (a killed run) is
deleted and run from scratch. The cells are claimed
(:mod:`.claims`), so that ``workers`` processes here, several invocations
of one command over one folder, or the tasks of a Slurm array
(:mod:`.launch`) run each cell exactly once.
"""
import os
import os.path as osp
import shutil
import time
from typing import Callable, Dict, Optional, Sequence

import torch

from possec.apis.paths import check_output_dir
from possec.datasets.synthetic import (generate_synthetic_voc,
                                       read_generation_meta)
from possec.fileio import atomic_path, dump_json
from . import cells as cell_runner
from .builder import data_args, data_root, probe_data_root, read_heads
from .claims import ClaimBoard
from .design import Cell
from .provenance import check_same_code, code_version
from .report import RESULTS_FILE, load_json, write_report  # noqa: F401
from .results import readout_failed
from .settings import (LATER_FIELDS, RUNTIME_FIELDS, StudyError,
                       StudySettings)

RESULT_FILE = 'result.json'
SETTINGS_FILE = 'study_settings.json'
#: Every command line that ran into the folder, one per line, in order
#: (:func:`collect_folder` quotes them in the report).
COMMANDS_FILE = 'study_commands.txt'
#: A worker rewrites the report after a cell at most this often (seconds);
#: the study's end always writes it.
REPORT_EVERY = 120.0


def check_same_settings(out_dir: str, settings: StudySettings) -> None:
    """Refuse a folder whose recorded settings differ from ``settings``
    (runtime fields aside), naming the keys; record them otherwise."""
    path = osp.join(out_dir, SETTINGS_FILE)
    wanted = settings.numbers_dict()
    if osp.isfile(path):
        found = {k: v for k, v in dict(LATER_FIELDS,
                                       **load_json(path)).items()
                 if k not in RUNTIME_FIELDS}
        if found != wanted:
            diff = sorted(k for k in set(found) | set(wanted)
                          if found.get(k) != wanted.get(k))
            raise StudyError(
                f'study folder {out_dir!r} holds results made with other '
                f'settings (differing: {", ".join(diff)}; recorded in '
                f'{path}): rerun with the same settings to continue it, or '
                f'choose a new --out-dir folder')
    dump_json(wanted, path)


def progress_line(index: int, total: int, cell: Cell, result: dict,
                  skipped: bool = False) -> str:
    """``[3/24] parsenet / zeros / pos +1 | position-coded | seed 1: mIoU
    41.2 (band0 30.1) SPC_H 0.82 ... - 95 s`` (``index``: the cells
    finished so far, in any worker)."""
    m = result['metrics']
    band0 = (result.get('bands') or [{}])[0].get('mIoU')
    spc = result['probe']['spc']
    spc_text = ' '.join(f'SPC_{p} {v:.2f}' for p, v in spc.items())
    if readout_failed(result['probe']):
        spc_text += ' (its readout failed to train: SPC withheld)'
    line = (f'[{index}/{total}] {cell.label}: mIoU {m["mIoU"]:.1f} '
            f'(band0 {_fmt(band0)}) {spc_text}')
    conv = (result.get('convergence') or {}).get('converged')
    if conv is not None:
        line += ' converged' if conv else ' NOT converged'
    if skipped:
        return line + ' - finished before, skipped'
    return line + f' - {result["time_s"]["total"]:.0f} s'


def study_eta(done: int, total: int, since: float, done_then: int) -> str:
    """`` | 5/24 cells, ETA 38 min``: the cells left at the rate at which
    cells finished (in every worker) since ``since`` (``time.monotonic``),
    when ``done_then`` were finished."""
    rate = (done - done_then) / max(time.monotonic() - since, 1e-9)
    text = f' | {done}/{total} cells'
    if done < total and rate > 0:
        eta = (total - done) / rate
        text += (f', ETA {eta / 60:.0f} min' if eta >= 90 else
                 f', ETA {eta:.0f} s')
    return text


def _fmt(value) -> str:
    return 'n/a' if value is None else f'{value:.1f}'


def auto_workers(settings: StudySettings) -> int:
    """Workers that fit the machine: on CPU one per ``threads`` cores; on
    a GPU one per core but the last, at most one per 2 GiB of GPU memory
    (a study cell holds well under 1 GiB)."""
    cores = os.cpu_count() or 1
    if settings.device == 'cuda':
        free = torch.cuda.get_device_properties(0).total_memory / 2**30
        return max(1, min(cores - 1, int(free // 2)))
    return max(1, cores // (settings.threads or 1))


def run_study(cells: Sequence[Cell],
              out_dir: str,
              settings=None,
              command: Optional[str] = None,
              cell_fn: Optional[Callable] = None,
              log: Callable[[str], None] = print,
              workers: int = 1,
              stale_after: float = 120.0,
              heartbeat: float = 10.0,
              allow_mixed_code: bool = False) -> Dict[str, list]:
    """Run (or continue) a study and write its report and results file.

    Args:
        cells (Sequence[Cell]): The grid (:func:`.selection.resolve_grid`).
        out_dir (str): The study folder.
        settings (StudySettings | dict, optional): The settings (a dict
            updates the defaults). They must match those of an existing
            study in ``out_dir``.
        command (str, optional): The command line, quoted in the report.
        cell_fn (callable, optional): Replaces :func:`.cells.run_cell`
            (tests); a module-level function when ``workers > 1``.
        log (callable): Receives this process's progress lines.
            Default: print.
        workers (int): Worker processes (this one and ``workers - 1``
            spawned ones). Default: 1.
        stale_after (float): Claims' staleness, seconds. Default: 120.
        heartbeat (float): Claims' heartbeat, seconds. Default: 10.
        allow_mixed_code (bool): Continue a folder whose cells were made
            by other code (:func:`.provenance.check_same_code`).
            Default: False.

    Returns:
        dict: ``results`` (one per finished cell, in grid order),
        ``files`` (the report's files and ``results``) and ``ran`` (the
        cells this process ran).
    """
    settings = cell_runner.check_settings(settings)
    if not cells:
        raise StudyError('the grid is empty: give at least one layout, '
                         'seed, head, padding and position head')
    if not (isinstance(workers, int) and workers >= 1):
        raise StudyError(f'workers must be a positive int, got {workers!r}')
    if settings.device == 'cuda' and not torch.cuda.is_available():
        raise StudyError('--device cuda: torch sees no CUDA device here; '
                         'run on a GPU machine or use --device cpu')
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise StudyError('the grid repeats a cell; give each once')
    check_output_dir(out_dir, '--out-dir')
    os.makedirs(out_dir, exist_ok=True)
    if settings.data_root is None:  # inside the study: nobody else's
        settings = settings.replace(data_root=osp.join(out_dir, 'data'))
    finished = finished_results(cells, out_dir)
    check_same_code(folder_records(out_dir), code_version(), out_dir,
                    allow_mixed_code)
    check_same_settings(out_dir, settings)
    if command:
        record_command(out_dir, command)
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
    # the report writes the results file (RESULTS_FILE) beside it
    files = write_report(results, out_dir, settings.as_dict(), command,
                         total=len(cells))
    return dict(results=results, files=files, ran=ran)


def record_command(out_dir: str, command: str) -> None:
    """Add ``command`` to the folder's :data:`COMMANDS_FILE` unless it is
    there already (a continued study runs the same command again)."""
    path = osp.join(out_dir, COMMANDS_FILE)
    known = _read_commands(out_dir)
    if command not in known:
        with atomic_path(path) as tmp:
            with open(tmp, 'w') as f:
                f.write(''.join(c + '\n' for c in known + [command]))


def _read_commands(out_dir: str) -> list:
    path = osp.join(out_dir, COMMANDS_FILE)
    if not osp.isfile(path):
        return []
    with open(path) as f:
        return [line.rstrip('\n') for line in f if line.strip()]


def collect_folder(folder: str, out_dir: str) -> Dict[str, str]:
    """The report and results file of every finished cell in a study
    folder, whichever command ran it (several commands may have run into
    one folder: other seeds, other doses), written into ``out_dir``.

    The folder's settings come from its :data:`SETTINGS_FILE`; the
    report quotes the commands of the finished cells (each record names
    the command that ran it), in the order of the folder's
    :data:`COMMANDS_FILE`, so a command whose cells are all still running
    is not quoted. Where a record predates that field, every command of
    the file is quoted (none when the folder predates the file).

    Args:
        folder (str): A study folder (``--out-dir`` of the study).
        out_dir (str): Where the report goes.

    Returns:
        dict: Name -> path of every file written (``results``: the
        results file).

    Raises:
        StudyError: One line, when ``folder`` is not a study folder or
            holds no finished cell; nothing is written then.
    """
    settings_path = osp.join(folder, SETTINGS_FILE)
    if not osp.isfile(settings_path):
        raise StudyError(
            f'{folder!r} is not a study folder (no {SETTINGS_FILE}): give '
            f'the --out-dir of a position study')
    records = list(folder_records(folder))
    if not records:
        raise StudyError(
            f'study folder {folder!r} holds no finished cell (no '
            f'runs/*/{RESULT_FILE}): run or continue the study first')
    check_output_dir(out_dir, '--out-dir')
    os.makedirs(out_dir, exist_ok=True)
    commands = folder_commands(folder, records)
    return write_report(records, out_dir, load_json(settings_path),
                        '\n'.join(commands) if commands else None)


def folder_commands(folder: str, records: Sequence[dict]) -> list:
    """The command lines that ran (or extended) ``records``, in the order
    of the folder's :data:`COMMANDS_FILE`; every command of the file when
    a record predates the ``command`` field (none when the folder
    predates the file)."""
    commands = _read_commands(folder)
    ran = [r.get('command') for r in records]
    if None not in ran:  # and the commands that extended cells
        ran += [step['command'] for r in records
                for step in r.get('extensions') or () if step.get('command')]
        commands = [c for c in commands if c in ran] + sorted(
            set(ran) - set(commands))
    return commands


def finished_results(cells: Sequence[Cell], out_dir: str) -> Dict[str, dict]:
    """``{cell name: result}`` of the finished cells, in grid order."""
    out = {}
    for cell in cells:
        path = osp.join(out_dir, 'runs', cell.name, RESULT_FILE)
        if osp.isfile(path):
            out[cell.name] = load_json(path)
    return out


def folder_records(out_dir: str):
    """Every finished cell record in the folder, of this grid or not."""
    runs = osp.join(out_dir, 'runs')
    if not osp.isdir(runs):
        return
    for name in sorted(os.listdir(runs)):
        path = osp.join(runs, name, RESULT_FILE)
        if osp.isfile(path):
            yield load_json(path)


def data_units(cells: Sequence[Cell],
               settings: StudySettings) -> Dict[str, tuple]:
    """``{unit name: (root, generate arguments)}``: the data trees the
    cells train on, and the probe's images, each generated once under a
    claim."""
    units = {}
    for cell in cells:
        root = data_root(cell, settings)
        units.setdefault('data__' + osp.basename(root),
                         (root, data_args(cell, settings)))
    units['data__probe'] = (probe_data_root(settings), None)
    return units


def work(cells: Sequence[Cell], out_dir: str, settings: StudySettings,
         command: Optional[str], cell_fn: Optional[Callable],
         log: Callable[[str], None], tag: str = '',
         stale_after: float = 120.0, heartbeat: float = 10.0) -> list:
    """One worker: claim, run and record cells until every cell of the
    grid is finished (by this worker or another); returns the names of
    the cells it ran."""
    real = cell_fn is None
    cell_fn = cell_fn or cell_runner.run_cell
    by_name = {c.name: c for c in cells}
    suffix = f' [{tag}]' if tag else ''
    board = ClaimBoard(osp.join(out_dir, 'claims'),
                       stale_after=stale_after, heartbeat=heartbeat,
                       log=lambda line: log(line + suffix))
    started = (time.monotonic(), len(finished_results(cells, out_dir)))
    threads = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.device == 'cpu' and not torch.cuda.is_initialized():
        # mmengine's Runner takes a visible GPU whatever the study says
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    state = {}
    units = data_units(cells, settings)
    code = code_version()

    def make_data(name):
        root, args = units[name]
        if args is None:
            cell_runner.study_probe_images(settings)
        elif read_generation_meta(root) is None:
            generate_synthetic_voc(root, **args)

    def one(name):
        cell = by_name[name]
        work_dir = osp.join(out_dir, 'runs', cell.name)
        result_path = osp.join(work_dir, RESULT_FILE)
        if osp.isfile(result_path):  # finished before the claims existed
            return
        if osp.isdir(work_dir):  # a killed worker's: redo from scratch
            shutil.rmtree(work_dir)
        if 'images' not in state:
            state['images'] = (cell_runner.study_probe_images(settings)
                               if real else None)
            state['heads'] = read_heads() if real else None
        log(f'start {cell.label}{suffix}')
        result = cell_fn(cell, settings, work_dir, state['images'],
                         state['heads'])
        result.setdefault('code', code)
        result.setdefault('settings', settings.as_dict())
        if command:  # --collect quotes the commands of the cells it holds
            result.setdefault('command', command)
        dump_json(result, result_path)
        done = finished_results(cells, out_dir)
        log(progress_line(len(done), len(cells), cell, result) +
            study_eta(len(done), len(cells), *started) + suffix)
        now = time.monotonic()
        if now - state.get('reported', -REPORT_EVERY) >= REPORT_EVERY:
            state['reported'] = now
            try:  # the cells are safe on disk; the study's end reports
                write_report(list(done.values()), out_dir,
                             settings.as_dict(), command, total=len(cells))
            except Exception as e:  # noqa: BLE001
                log(f'report not written after {cell.label}: '
                    f'{type(e).__name__}: {e}; the study continues')

    try:
        if real:
            board.run(list(units), make_data)
        return board.run(list(by_name), one)
    finally:
        torch.set_num_threads(threads)


def stop_with_parent() -> None:
    """End this spawned process, its claim released, when its parent ends.

    A ``kill`` of the study's main process alone would otherwise leave
    its workers training on (a cell can take half an hour). On Linux the
    kernel sends SIGTERM to this process when its parent exits
    (``prctl(PR_SET_PDEATHSIG)``); SIGTERM raises ``SystemExit``, so the
    claim board's ``finally`` releases the claim. Elsewhere only the
    SIGTERM handling is set.
    """
    import multiprocessing
    import signal
    import sys

    def _exit(signum, frame):
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    if sys.platform.startswith('linux'):
        import ctypes
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        sys.exit(128 + signal.SIGTERM)  # the parent ended before prctl


def _worker_process(cells, out_dir, settings, command, cell_fn, tag,
                    stale_after, heartbeat) -> None:
    """A spawned worker: :func:`work` with flushed prints; Ctrl-C (sent to
    the whole process group) ends it quietly, its claim released, and so
    does the end of the main process (:func:`stop_with_parent`)."""
    import sys

    def log(line):
        print(line, flush=True)

    stop_with_parent()
    try:
        work(cells, out_dir, settings, command, cell_fn, log, tag,
             stale_after, heartbeat)
    except KeyboardInterrupt:
        sys.exit(130)
