"""Launching a study's workers on a Slurm cluster with submitit.

Each array task is one study worker over the shared folder: it claims
cells (:mod:`.claims`) until the grid is finished, exactly as ``--workers``
processes or several invocations of one command do, so tasks may start
late, die or be requeued. `submitit <https://github.com/facebookincubator/
submitit>`_ is imported only here and only when asked for; it is not a
dependency of possec.
"""
import os.path as osp
from typing import List, Optional, Sequence

from .design import Cell
from .settings import StudyError, StudySettings


def _submitit():
    try:
        import submitit
    except ImportError:
        raise StudyError(
            '--slurm needs submitit, which is not installed: pip install '
            'submitit, or submit your own array whose tasks all run this '
            'command without --slurm over one --out-dir (the claims share '
            'the cells)') from None
    return submitit


def slurm_task(cells: Sequence[Cell], out_dir: str,
               settings: StudySettings, command: Optional[str],
               allow_mixed_code: bool = False) -> int:
    """One array task: a single study worker; returns the number of cells
    it ran."""
    from .run import run_study
    run = run_study(cells, out_dir, settings, command=command, workers=1,
                    log=lambda line: print(line, flush=True),
                    allow_mixed_code=allow_mixed_code)
    return len(run['ran'])


def submit_slurm(cells: Sequence[Cell], out_dir: str,
                 settings: StudySettings, tasks: int,
                 command: Optional[str] = None,
                 partition: Optional[str] = None,
                 timeout_min: int = 240, cpus_per_task: int = 2,
                 gpus_per_task: int = 0,
                 allow_mixed_code: bool = False) -> List:
    """Submit ``tasks`` array tasks, each :func:`slurm_task`.

    Args:
        cells (Sequence[Cell]): The grid.
        out_dir (str): The study folder, on a filesystem every node
            shares; submitit's logs go to ``<out_dir>/slurm``.
        settings (StudySettings): The study settings.
        tasks (int): Array tasks (workers).
        command (str, optional): The command line, for the report.
        partition (str, optional): Slurm partition. Default: None.
        timeout_min (int): Time limit per task, minutes. Default: 240.
        cpus_per_task (int): Cores per task. Default: 2.
        gpus_per_task (int): GPUs per task. Default: 0.
        allow_mixed_code (bool): As in :func:`.run.run_study`.

    Returns:
        list: submitit's jobs.
    """
    if not (isinstance(tasks, int) and tasks >= 1):
        raise StudyError(f'--slurm needs a positive number of tasks, got '
                         f'{tasks!r}')
    submitit = _submitit()
    executor = submitit.AutoExecutor(folder=osp.join(out_dir, 'slurm'))
    params = dict(timeout_min=int(timeout_min), cpus_per_task=cpus_per_task,
                  slurm_array_parallelism=tasks, name='possec-study')
    if partition:
        params['slurm_partition'] = partition
    if gpus_per_task:
        params['gpus_per_node'] = gpus_per_task
    executor.update_parameters(**params)
    cells = list(cells)
    return executor.map_array(
        slurm_task, [cells] * tasks, [out_dir] * tasks, [settings] * tasks,
        [command] * tasks, [allow_mixed_code] * tasks)
