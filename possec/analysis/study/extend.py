"""Extending a cell that failed the convergence test, from its saved state.

A cell run with ``keep_checkpoint`` (``--keep-checkpoints``) saves its
state at its last iteration N (``iter_<N>.pth`` in its work dir: weights,
optimizer, iteration and message hub). :func:`extend_cell` resumes it
(:func:`possec.apis.train` with ``resume``), trains ``extra`` more
iterations at the same constant learning rate, validating every
``val_every`` iterations as before, and judges the convergence test again
with the previous end N in the role of the schedule's end: the median of
the validations of N's window against the median of those before N +
``extra`` (:func:`.convergence.judge`), with the same margin. The record
keeps every validation of both runs; its metrics, bands and probes are the
extended model's; ``extensions`` lists each extension with the verdict it
replaced. The state at N + ``extra`` is saved in turn, and the one at N
removed once the new record is on disk.

An extended cell has trained longer than its folder's schedule: a unit
may then compare cells of different lengths, each judged converged at
its own. The continuation trains what one uninterrupted run of N +
``extra`` iterations would have: mmengine restores the weights, the
optimizer and the data order (its loader replays the N batches already
seen), and :class:`possec.engine.hooks.ResumeRNGHook` (which
:func:`possec.apis.train` adds to every run) sets the random generators
to their states at N after that replay, so that dropout masks and
augmentations go on as they would have (``tests/test_study_extend.py``:
the weights of an extended tiny cell equal those of one longer run, bit
for bit, on CPU).

:func:`extend_study` extends every unconverged cell of a grid in a study
folder, each once, under claims as the study runs its cells
(:mod:`.claims`), so that several invocations of one command share the
work; it then rewrites the folder's report and results file.
"""
import os
import os.path as osp
import time
from typing import Callable, Dict, Optional, Sequence

import torch

from possec.fileio import dump_json
from . import cells as cell_runner
from .builder import read_heads
from .claims import ClaimBoard
from .convergence import judge
from .design import Cell
from .progress import binned
from .provenance import check_same_code, code_version
from .report import write_report
from .run import (RESULT_FILE, check_same_settings, finished_results,
                  folder_records, record_command)
from .settings import StudyError, StudySettings

__all__ = ['checkpoint_path', 'extend_cell', 'extend_study']


def checkpoint_path(record: dict, work_dir: str) -> str:
    """Where a cell's state at its last validated iteration is saved."""
    return _state_file(work_dir, int(record['validations'][-1]['iter']))


def _state_file(work_dir: str, iters: int) -> str:
    """The checkpoint mmengine's CheckpointHook writes at ``iters``."""
    return osp.join(work_dir, f'iter_{iters}.pth')


def _check_extra(extra, settings: StudySettings) -> int:
    every = settings.val_every
    if not (isinstance(extra, int) and not isinstance(extra, bool)
            and extra > 0):
        raise StudyError(f'--extend takes a positive number of '
                         f'iterations, got {extra!r}')
    if every and extra % every:
        raise StudyError(
            f'--extend {extra}: the extension validates every {every} '
            f'iterations (val_every) and its end must be one of them; give '
            f'a multiple of {every}')
    if settings.converge_window > 1 and \
            (settings.converge_window - 1) * every >= extra:
        raise StudyError(
            f'--extend {extra}: the new end\'s window of '
            f'{settings.converge_window} validations {every} iterations '
            f'apart would reach back to the previous end; extend by more '
            f'than {(settings.converge_window - 1) * every}')
    return extra


def extend_cell(record: dict, settings: StudySettings, work_dir: str,
                extra: int, images: Optional[torch.Tensor] = None,
                heads: Optional[dict] = None,
                command: Optional[str] = None) -> dict:
    """Continue one cell ``extra`` iterations from its saved state and
    judge its convergence again.

    Args:
        record (dict): The cell's record (``result.json``).
        settings (StudySettings): The study's settings.
        work_dir (str): The cell's work dir (holds the checkpoint).
        extra (int): Iterations to add.
        images (Tensor, optional): The probe's images (read from the
            settings when None). Default: None.
        heads (dict, optional): :func:`.builder.read_heads`' result.
            Default: None.
        command (str, optional): The command line, recorded with the
            extension. Default: None.

    Returns:
        dict: The new record (the old one is not modified).

    Raises:
        StudyError: One line, when the cell has no tail, no saved state,
            or ``extra`` does not fit its validations.
    """
    s = cell_runner.check_settings(settings)
    extra = _check_extra(extra, s)
    conv = record.get('convergence') or {}
    if not record.get('validations') or not conv.get('iters'):
        raise StudyError(f'cell {record.get("name")} has no convergence '
                         f'test to extend (no tail): extend only cells of '
                         f'a study with --tail-iters')
    ckpt = checkpoint_path(record, work_dir)
    if not osp.isfile(ckpt):
        raise StudyError(
            f'cell {record["name"]}: no saved state {ckpt} to extend from; '
            f'its study ran without --keep-checkpoints (run it again with '
            f'that option to extend it)')
    end = int(record['validations'][-1]['iter'])
    cell = Cell(**record['cell'])
    run_settings = s.replace(tail_iters=end + extra - s.max_iters,
                             keep_checkpoint=True)
    if images is None:
        images = cell_runner.study_probe_images(s)
    run = cell_runner.train_cell(cell, run_settings, work_dir, images,
                                 heads, resume=ckpt)
    losses = run.pop('losses')
    new = [v for v in run.pop('validations') if v['iter'] > end]
    validations = list(record['validations']) + new
    # the message hub resumes with the earlier losses: keep the new ones
    tail = losses[-extra:] if len(losses) >= extra else losses
    tail_curve = binned(tail, 10, first_iter=end)
    convergence = judge(cell.layout, validations, end, s.converge_tol,
                        tail_curve['loss'] if tail_curve else None,
                        window=s.converge_window, every=s.val_every)
    convergence['criterion'] += (f'; extended from its saved state: the '
                                 f'end of the run it extended ({end}) '
                                 f'in the role of the schedule\'s end')
    out = dict(record, **run, validations=validations,
               convergence=convergence)
    if len(losses) >= end + extra:  # every iteration's loss is there
        out['loss_curve'] = binned(losses[-(end + extra):], 30)
    out['time_s'] = {k: float(record.get('time_s', {}).get(k, 0.0)) + v
                     for k, v in run['time_s'].items()}
    step = dict(from_iter=end, to_iter=end + extra, previous=conv,
                code=code_version(), time_s=run['time_s'])
    if command:
        step['command'] = command
    out['extensions'] = list(record.get('extensions') or []) + [step]
    return out


def extend_study(cells: Sequence[Cell],
                 out_dir: str,
                 settings,
                 extra: int,
                 command: Optional[str] = None,
                 log: Callable[[str], None] = print,
                 stale_after: float = 120.0,
                 heartbeat: float = 10.0,
                 allow_mixed_code: bool = False) -> Dict[str, list]:
    """Extend every finished cell of ``cells`` in the study folder that
    failed the convergence test by ``extra`` iterations, then rewrite the
    folder's report and results file.

    A cell is extended once: cells that have not finished, that kept no
    saved state, or that failed again after an extension are named in a
    line each and left alone, as are (silently) cells that passed, so a
    second call (say, for a cell that finished after the first) never
    extends a cell twice.

    Returns:
        dict: ``results`` (every finished cell of the grid), ``files``
        (the report's) and ``ran`` (the cells this process extended).

    Raises:
        StudyError: One line, when the folder holds another study or
            none of the grid's cells can be extended.
    """
    s = cell_runner.check_settings(settings)
    extra = _check_extra(extra, s)
    if s.data_root is None:
        s = s.replace(data_root=osp.join(out_dir, 'data'))
    finished = finished_results(cells, out_dir)
    if not finished:
        raise StudyError(f'study folder {out_dir!r} holds no finished cell '
                         f'of this grid: run the study first, then extend')
    check_same_code(folder_records(out_dir), code_version(), out_dir,
                    allow_mixed_code)
    check_same_settings(out_dir, s)
    targets = {}
    for cell in cells:
        record = finished.get(cell.name)
        conv = (record or {}).get('convergence') or {}
        if record is None:
            log(f'{cell.label}: not finished; run the study to finish it '
                f'first')
        elif conv.get('converged') is not False:
            continue  # converged, or not judged: nothing to extend
        elif record.get('extensions'):
            log(f'{cell.label}: not converged after its extension to '
                f'{record["extensions"][-1]["to_iter"]}; a cell is '
                f'extended once, so it is left out')
        elif not osp.isfile(checkpoint_path(
                record, osp.join(out_dir, 'runs', cell.name))):
            log(f'{cell.label}: not converged, and no saved state to '
                f'extend from (its run did not --keep-checkpoints)')
        else:
            end = int(record['validations'][-1]['iter'])
            targets[f'extend{end + extra}__{cell.name}'] = (cell, end)
    if not targets:
        raise StudyError(
            f'no cell of this grid in {out_dir!r} can be extended: none '
            f'failed the convergence test with its state saved (cells run '
            f'with --keep-checkpoints) and without an extension already')
    if command:
        record_command(out_dir, command)
    threads = torch.get_num_threads()
    if s.threads:
        torch.set_num_threads(s.threads)
    board = ClaimBoard(osp.join(out_dir, 'claims'), stale_after=stale_after,
                       heartbeat=heartbeat, log=log)
    state = {}

    def one(name):
        cell, end = targets[name]
        work_dir = osp.join(out_dir, 'runs', cell.name)
        path = osp.join(work_dir, RESULT_FILE)
        record = finished_results([cell], out_dir)[cell.name]
        old = _state_file(work_dir, end)
        if int(record['validations'][-1]['iter']) != end:
            # extended by a run killed before it could mark the claim
            if osp.isfile(old):
                os.remove(old)
            return
        if 'images' not in state:
            state['images'] = cell_runner.study_probe_images(s)
            state['heads'] = read_heads()
        log(f'extend {cell.label}: {end} -> {end + extra} iterations')
        t0 = time.perf_counter()
        new = extend_cell(record, s, work_dir, extra, state['images'],
                          state['heads'], command)
        dump_json(new, path)
        os.remove(old)
        conv = new['convergence']
        log(f'{cell.label}: {conv["key"]} {conv["values"][0]:.1f} -> '
            f'{conv["values"][1]:.1f} ({conv["change"]:+.1f}) '
            f'{"converged" if conv["converged"] else "NOT converged"} - '
            f'{time.perf_counter() - t0:.0f} s')

    try:
        ran = board.run(list(targets), one)
    finally:
        torch.set_num_threads(threads)
    results = list(finished_results(cells, out_dir).values())
    files = write_report(results, out_dir, s.as_dict(), command,
                         total=len(cells))
    return dict(results=results, files=files,
                ran=[targets[n][0].name for n in ran])
