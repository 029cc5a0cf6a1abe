"""Has a study cell converged? The criterion and its record.

Criterion: the cell trains at a constant learning rate for the schedule's
``max_iters`` and then for ``tail_iters`` more (the schedule doubled by
default); its key metric on the validation set (the look-alike pairs' mIoU
where the layout has pairs, else mIoU) is measured at both ends, and the
cell has converged when the two differ by less than ``converge_tol``
points (default 2, the study's equivalence margin).

Why this one: the study reports differences in the key metric at
convergence, so the natural test is whether that metric still moves when
training is doubled; a change below the equivalence margin cannot turn a
reported difference into another verdict. Measuring under a constant
learning rate keeps a decaying schedule from flattening every curve (a
poly decay to ~0 makes any run look converged). The training-loss
plateau of the tail (:func:`.stats.plateau`, last third against middle
third) is recorded beside it as a second reading, not as the verdict.
"""
from typing import Optional, Sequence

from .stats import plateau

#: The criterion, as the records and the report state it.
CRITERION = ('constant learning rate; |key metric at the end of the tail '
             '- key metric at the end of the schedule| < tol points')
#: Layouts without look-alike pairs (their key metric is mIoU).
NO_PAIR_LAYOUTS = ('uniform', 'border-shift')


def key_metric(layout: str) -> str:
    """The metric a cell of ``layout`` is judged by."""
    return 'mIoU' if layout in NO_PAIR_LAYOUTS else 'mIoU_pairs'


def judge(layout: str, validations: Sequence[dict], schedule_iters: int,
          tol: float, tail_losses: Optional[Sequence[float]] = None) -> dict:
    """The convergence record of one cell.

    Args:
        layout (str): The cell's layout (chooses the key metric).
        validations (Sequence[dict]): One per validation of the run, in
            order: ``iter`` and ``metrics`` (with the key metric).
        schedule_iters (int): Iterations of the schedule (its end is the
            first point of the test).
        tol (float): The largest change of a converged cell, in points.
        tail_losses (Sequence[float], optional): Binned training losses of
            the tail, for the plateau reading. Default: None.

    Returns:
        dict: ``converged`` (bool, or None when the run has no tail),
        ``criterion``, ``key``, ``tol``, ``iters`` (schedule end, tail
        end), ``values`` (the key metric there), ``change`` and
        ``loss_plateau`` (:func:`.stats.plateau` of the tail, or None).
    """
    key = key_metric(layout)
    out = dict(converged=None, criterion=CRITERION, key=key,
               tol=float(tol), iters=None, values=None, change=None,
               loss_plateau=None)
    at_end = [v for v in validations if v['iter'] == schedule_iters]
    last = validations[-1] if validations else None
    if not at_end or last is None or last['iter'] <= schedule_iters:
        out['criterion'] = ('not measured: the run has no constant-rate '
                            'tail after its schedule (tail_iters 0)')
        return out
    a, b = at_end[0]['metrics'].get(key), last['metrics'].get(key)
    out['iters'] = [int(schedule_iters), int(last['iter'])]
    out['values'] = [a, b]
    if a is None or b is None:
        out['criterion'] += f' (not judged: {key} missing)'
        return out
    out['change'] = float(b - a)
    out['converged'] = bool(abs(b - a) < tol)
    if tail_losses is not None and len(tail_losses) >= 3 and \
            min(tail_losses) > 0:
        out['loss_plateau'] = plateau(tail_losses)
    return out
