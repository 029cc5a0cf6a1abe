"""Does absolute position help or hurt segmentation? The position study.

    # the design (help and hurt dose-response curves, context, removal),
    # 3 training seeds x 2 data seeds, at the converged recipe; both cores
    python tools/analysis/position_study.py --converged \\
        --out-dir work_dirs/position_study --workers 2 --threads 1
    # the primary endpoints, seed 0, short recipe (4 cells)
    python tools/analysis/position_study.py --quick
    # the whole converged grid on one GPU, workers sized to the machine
    python tools/analysis/position_study.py --converged --device cuda \\
        --workers auto --threads 1 --num-workers 0
    # a chosen grid: arms (head/border/pos) on chosen data
    python tools/analysis/position_study.py --layouts position-prior \\
        --priors 0.5 1.0 --tilts 10 --periodic \\
        --variants parsenet/zeros/none parsenet/circular/none --seeds 0
    # the report and figures again, from a results file alone
    python tools/analysis/position_study.py \\
        --report work_dirs/position_study/study_results.json --out-dir DIR
    # one results file of every finished cell of a folder that several
    # commands ran into (other seeds, other doses)
    python tools/analysis/position_study.py \\
        --collect work_dirs/position_study --out-dir DIR
    # keep each cell's last state, then extend the cells that failed the
    # convergence test by 4800 iterations and judge them again
    python tools/analysis/position_study.py --converged --keep-checkpoints \
        --out-dir work_dirs/position_study
    python tools/analysis/position_study.py --converged --keep-checkpoints \
        --out-dir work_dirs/position_study --extend 4800
    # the two-layer probe again at 40, 160 and 640 epochs on the kept
    # zero-padded cells of a folder, its acceptance rule at each budget
    python tools/analysis/position_study.py \\
        --reprobe work_dirs/position_study --paddings zeros \\
        --pos-heads none --out-dir work_dirs/position_study_reprobe
    # a Slurm array of 8 workers over one shared folder (needs submitit)
    python tools/analysis/position_study.py --converged --slurm 8 \\
        --out-dir /shared/position_study

Cells are claimed (possec.analysis.study.claims): --workers N processes,
N invocations of the same command over one --out-dir, or --slurm tasks
run each cell once. Run the same command again to continue a killed
study: finished cells are skipped, a half-finished one is redone; a folder
holding cells of other code or settings is refused (--allow-mixed-code to
mix code versions). Writes study.md, study.json, study_*.png and
study_results.json into --out-dir.
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse
import shlex
import sys

from possec.analysis.study.design import (BORDERS, CONTRASTS, HEADS, POSITION,
                                          STUDY_LAYOUTS)
from possec.analysis.study.run import auto_workers, run_study
from possec.analysis.study.selection import QUICK, resolve_grid
from possec.analysis.study.settings import (CONVERGED, DEVICES, SCHEDULES,
                                            StudyError, StudySettings)
from possec.apis.cli import run_cli

_NOT_SETTINGS = ('out', 'workers', 'report', 'collect', 'converged',
                 'allow_mixed_code', 'slurm', 'slurm_partition',
                 'slurm_time', 'extend', 'reprobe', 'reprobe_epochs')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Train the contrasts of the position study (where '
        'absolute position helps, where it hurts, global context, '
        'removal) and report paired differences with their statistics, '
        'mIoU by border band and probe SPC')
    p.add_argument('--out-dir', '--out', dest='out',
                   default='work_dirs/position_study',
                   help='study folder (continue a study by reusing it); '
                   'with --report or --collect, where the report goes')
    only = p.add_mutually_exclusive_group()
    only.add_argument('--report', metavar='RESULTS.json',
                      help='only write the report and figures of a results '
                      'file (study_results.json) into --out-dir; trains '
                      'nothing')
    only.add_argument('--collect', metavar='STUDY_DIR',
                      help='only write the report and results file of '
                      'every finished cell of a study folder, whichever '
                      'command ran it, into --out-dir; trains nothing')
    only.add_argument('--reprobe', nargs='+', metavar='STUDY_DIR',
                      help='only train the two-layer probe again, for each '
                      'budget of --reprobe-epochs, on the kept state of '
                      'every finished cell of these study folders (run '
                      'with --keep-checkpoints; --heads, --paddings and '
                      '--pos-heads choose cells), and judge its acceptance '
                      'rule at each budget; writes reprobe.json/.md/.png '
                      'into --out-dir (rerun to continue); trains no cell')
    p.add_argument('--reprobe-epochs', nargs='+', type=int,
                   default=[40, 160, 640], metavar='EPOCHS',
                   help='budgets of --reprobe (default: 40 160 640)')
    p.add_argument('--quick', action='store_true',
                   help='the primary endpoints of help and hurt, seed 0: 4 '
                   'cells, 2 workers of 1 thread: ' +
                   ', '.join(f'{k}={v}'
                             for k, v in QUICK['settings'].items()))
    p.add_argument('--converged', action='store_true',
                   help='the converged recipe: ' + ', '.join(
                       f'{k}={v}' for k, v in CONVERGED.numbers_dict().items()
                       if v != getattr(StudySettings(), k)))
    p.add_argument('--workers', default=None,
                   help='worker processes draining the grid: a number or '
                   '"auto" (sized to the cores, and on --device cuda to '
                   'the GPU); default 1, 2 with --quick')
    p.add_argument('--allow-mixed-code', action='store_true',
                   help='continue a folder whose cells were made by other '
                   'code (the report lists the versions)')
    p.add_argument('--extend', type=int, metavar='ITERS',
                   help='instead of running cells: continue every finished '
                   'cell of the grid in --out-dir that failed the '
                   'convergence test (and kept its state, '
                   '--keep-checkpoints) by ITERS iterations, and judge it '
                   'again between its previous end and the new one (once: '
                   'a cell that fails again is left out); run the command '
                   'twice at once for two workers')
    p.add_argument('--slurm', type=int, metavar='TASKS',
                   help='submit TASKS Slurm array tasks (submitit), each a '
                   'worker over --out-dir, and return')
    p.add_argument('--slurm-partition')
    p.add_argument('--slurm-time', type=int, default=240,
                   help='minutes per Slurm task (default 240)')
    g = p.add_argument_group('grid (default: every contrast; 3 training '
                             'seeds x 2 data seeds)')
    g.add_argument('--contrasts', nargs='+', choices=tuple(CONTRASTS),
                   help='; '.join(f'{k}: {v["question"].split("?")[0]}?'
                                  for k, v in CONTRASTS.items()).replace(
                                      '%', '%%'))
    g.add_argument('--primary', action='store_true',
                   help='only the cells of the primary endpoints')
    g.add_argument('--layouts', nargs='+', choices=STUDY_LAYOUTS,
                   help='keep the cells of these layouts')
    g.add_argument('--seeds', nargs='+', type=int, help='training seeds')
    g.add_argument('--data-seeds', nargs='+', type=int, help='data seeds')
    g.add_argument('--heads', nargs='+', choices=HEADS)
    g.add_argument('--paddings', nargs='+', choices=BORDERS,
                   metavar='BORDER',
                   help='padding mode, +coord for CoordConv channels: ' +
                   ', '.join(BORDERS))
    g.add_argument('--pos-heads', nargs='+', choices=tuple(POSITION),
                   help='; '.join(f'{k}: {v}' for k, v in POSITION.items()))
    g.add_argument('--variants', nargs='+', metavar='HEAD/BORDER/POS',
                   help='explicit arms instead of the contrasts, e.g. '
                   'parsenet/zeros/none parsenet-noglobal/circular/none')
    g.add_argument('--priors', nargs='+', type=float,
                   help='doses of an explicit grid on position-prior / '
                   'prior-shift (validated at 1 - P)')
    g.add_argument('--tilts', nargs='+', type=float,
                   help='cue strengths (degrees) of an explicit grid')
    g.add_argument('--periodic', action='store_true', default=None,
                   help='periodic data for an explicit grid')
    s = p.add_argument_group('settings (default: study.settings.'
                             'StudySettings)')
    s.add_argument('--max-iters', type=int)
    s.add_argument('--tail-iters', type=int,
                   help='constant-rate iterations after the schedule for '
                   'the convergence test (needs --schedule constant)')
    s.add_argument('--schedule', choices=SCHEDULES)
    s.add_argument('--converge-tol', type=float)
    s.add_argument('--converge-window', type=int,
                   help='validations whose median is each end of the '
                   'convergence test (needs --val-every)')
    s.add_argument('--val-every', type=int,
                   help='iterations between validations, from the first '
                   'of the window through the tail (0: the two ends only)')
    s.add_argument('--batch-size', type=int)
    s.add_argument('--optimizer', choices=('adamw', 'sgd'))
    s.add_argument('--lr', type=float)
    s.add_argument('--img-size', type=int)
    s.add_argument('--num-train', type=int)
    s.add_argument('--num-val', type=int)
    s.add_argument('--val-batch-size', type=int)
    s.add_argument('--data-root', help='where the data trees are generated '
                   '(default: <out-dir>/data)')
    s.add_argument('--num-workers', type=int,
                   help='data-loader workers per cell')
    s.add_argument('--probe-images', type=int)
    s.add_argument('--probe-epochs', type=int)
    s.add_argument('--probe-convs', type=int)
    s.add_argument('--probe-lr', type=float)
    s.add_argument('--nonlinear-probe-epochs', type=int,
                   help='epochs of the two-layer probe (0: none)')
    s.add_argument('--device', choices=DEVICES)
    s.add_argument('--keep-checkpoints', dest='keep_checkpoint',
                   action='store_true', default=None,
                   help='save each cell\'s state at its last iteration '
                   '(about 140 MB a ParseNet cell), so that --extend can '
                   'continue it')
    s.add_argument('--threads', type=int,
                   help='torch threads per worker (1 is fastest on a busy '
                   'machine; --quick sets 1)')
    return p.parse_args(argv)


def report_only(results: str, out_dir: str) -> None:
    """``--report``: the report and figures of a results file."""
    from possec.analysis.study.report import report_from_results
    from possec.analysis.study.reprobe import is_reprobe_file, reprobe_report
    if is_reprobe_file(results):
        files = reprobe_report(results, out_dir)
    else:
        files = report_from_results(results, out_dir)
    print(f"report in {files['markdown']}", flush=True)


def reprobe(a: argparse.Namespace, argv: list) -> None:
    """``--reprobe``: the two-layer probe at longer budgets on kept
    cells (:mod:`possec.analysis.study.reprobe`)."""
    from possec.analysis.study.reprobe import reprobe_folders
    wanted = dict(head=a.heads, padding=a.paddings, pos=a.pos_heads)

    def keep(record):
        cell = record['cell']
        return all(not values or cell.get(key) in values
                   for key, values in wanted.items())

    command = shlex.join(['python', 'tools/analysis/position_study.py'] +
                         argv)
    files = reprobe_folders(a.reprobe, a.out, a.reprobe_epochs, keep=keep,
                            command=command,
                            log=lambda line: print(line, flush=True))
    print(f"reprobe: report in {files['markdown']}, results in "
          f"{files['results']}", flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    if a.report:
        report_only(a.report, a.out)
        return
    if a.collect:
        from possec.analysis.study.run import collect_folder
        files = collect_folder(a.collect, a.out)
        print(f"report in {files['markdown']}, results in "
              f"{files['results']}", flush=True)
        return
    if a.reprobe:
        reprobe(a, argv)
        return
    options = {k: v for k, v in vars(a).items() if k not in _NOT_SETTINGS}
    options['periodic'] = bool(options['periodic'])
    cells, overrides = resolve_grid(**options)
    base = CONVERGED.as_dict() if a.converged else {}
    settings = StudySettings.from_dict(dict(base, **overrides))
    if a.workers in (None, ''):
        workers = QUICK['workers'] if a.quick else 1
    elif a.workers == 'auto':
        workers = auto_workers(settings)
    else:
        try:
            workers = int(a.workers)
        except ValueError:
            raise StudyError(f'--workers must be a number or "auto", got '
                             f'{a.workers!r}') from None
    command = shlex.join(['python', 'tools/analysis/position_study.py'] +
                         argv)

    def log(line):
        print(line, flush=True)

    if a.extend is not None:
        from possec.analysis.study.extend import extend_study
        run = _continuable(extend_study, cells, a.out, settings, a.extend,
                           command=command, log=log,
                           allow_mixed_code=a.allow_mixed_code)
        print(f"study: {len(run['ran'])} cell(s) extended here; report in "
              f"{run['files']['markdown']}, results in "
              f"{run['files']['results']}", flush=True)
        return
    if a.slurm:
        from possec.analysis.study.launch import submit_slurm
        jobs = submit_slurm(cells, a.out, settings, a.slurm, command,
                            a.slurm_partition, a.slurm_time,
                            cpus_per_task=settings.threads or 2,
                            gpus_per_task=int(settings.device == 'cuda'),
                            allow_mixed_code=a.allow_mixed_code)
        print(f'study: {len(cells)} cells, {len(jobs)} Slurm tasks '
              f'submitted over {a.out}', flush=True)
        return
    print(f'study: {len(cells)} cells, {workers} worker(s), folder '
          f'{a.out}', flush=True)
    run = _continuable(run_study, cells, a.out, settings, command=command,
                       workers=workers, log=log,
                       allow_mixed_code=a.allow_mixed_code)
    print(f"study: {len(run['results'])} of {len(cells)} cells finished; "
          f"report in {run['files']['markdown']}, results in "
          f"{run['files']['results']}", flush=True)


def _continuable(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``; Ctrl-C says how to continue and exits with
    130."""
    try:
        return fn(*args, **kwargs)
    except KeyboardInterrupt:
        print('\ninterrupted; rerun the same command to continue',
              file=sys.stderr, flush=True)
        sys.exit(130)

if __name__ == '__main__':
    run_cli(main)
