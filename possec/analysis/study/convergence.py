"""Has a study cell converged? The criterion and its record.

Criterion: the cell trains at a constant learning rate for the schedule's
``max_iters`` and then for ``tail_iters`` more (the schedule doubled by
default); its key metric on the validation set (the look-alike pairs' mIoU
where the layout has pairs, else mIoU) is measured at both ends, and the
cell has converged when the two differ by less than ``converge_tol``
points (default 2, the study's equivalence margin). With a window of k
validations (``converge_window``, ``val_every`` iterations apart) each end
reads the median of the last k validations before it instead of one:
one validation can land in a transient of the training (a loss spike),
and the median of 3 is the cell's level there whatever one of them
reads (a mean of 3 still moves by a third of a transient: one 45-point
dip moves it by 15, far past the margin).

Why this one: the study reports differences in the key metric at
convergence, so the natural test is whether that metric still moves when
training is doubled; a change below the equivalence margin cannot turn a
reported difference into another verdict. Measuring under a constant
learning rate keeps a decaying schedule from flattening every curve (a
poly decay to ~0 makes any run look converged). The training-loss
plateau of the tail (:func:`.stats.plateau`, last third against middle
third) is recorded beside it as a second reading, not as the verdict.
"""
import statistics
from typing import Optional, Sequence

from .stats import plateau

#: The criterion, as the records and the report state it.
CRITERION = ('constant learning rate; |key metric at the end of the tail '
             '- key metric at the end of the schedule| < tol points')
#: The criterion with a window of validations at each end.
CRITERION_WINDOW = ('constant learning rate; |median key metric over the '
                    'last {k} validations ({every} apart) to '
                    'the end of the tail - the same to the end of the '
                    'schedule| < tol points')
#: Layouts without look-alike pairs (their key metric is mIoU).
NO_PAIR_LAYOUTS = ('uniform', 'border-shift')


def key_metric(layout: str) -> str:
    """The metric a cell of ``layout`` is judged by."""
    return 'mIoU' if layout in NO_PAIR_LAYOUTS else 'mIoU_pairs'


def judge(layout: str, validations: Sequence[dict], schedule_iters: int,
          tol: float, tail_losses: Optional[Sequence[float]] = None,
          window: int = 1, every: int = 0) -> dict:
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
        window (int): Validations whose median is each end. Default: 1.
        every (int): Iterations between the validations of a window
            (needed when ``window`` > 1). Default: 0.

    Returns:
        dict: ``converged`` (bool, or None when the run has no tail or a
        window misses a validation), ``criterion``, ``key``, ``tol``,
        ``iters`` (schedule end, tail end), ``values`` (the key metric
        there: the window's median), ``change`` and ``loss_plateau``
        (:func:`.stats.plateau` of the tail, or None); with a window also
        ``window`` (k), ``every``, ``window_iters`` and ``window_values``
        (the validations each median is over).
    """
    key = key_metric(layout)
    window, every = int(window), int(every)
    if window > 1 and not every:
        raise ValueError(f'a window of {window} validations needs their '
                         f'spacing (every > 0), got every={every!r}')
    criterion = (CRITERION if window == 1 else CRITERION_WINDOW.format(
        k=window, every=f'{every} iteration{"s" if every != 1 else ""}'))
    out = dict(converged=None, criterion=criterion, key=key,
               tol=float(tol), iters=None, values=None, change=None,
               loss_plateau=None)
    if window > 1:
        out.update(window=window, every=every)
    by_iter = {int(v['iter']): v for v in validations}
    last = validations[-1] if validations else None
    if schedule_iters not in by_iter or last is None or \
            last['iter'] <= schedule_iters:
        out['criterion'] = ('not measured: the run has no constant-rate '
                            'tail after its schedule (tail_iters 0)')
        return out
    ends = [int(schedule_iters), int(last['iter'])]
    out['iters'] = ends
    spans = [[end - j * every for j in range(window - 1, -1, -1)]
             for end in ends]
    values = [[(by_iter[i]['metrics'].get(key) if i in by_iter else None)
               for i in span] for span in spans]
    if window > 1:
        out.update(window_iters=spans, window_values=values)
    missing = [i for span, vals in zip(spans, values)
               for i, v in zip(span, vals) if v is None]
    if missing:
        out['criterion'] += (f' (not judged: {key} missing at iteration'
                             f'{"s" if len(missing) > 1 else ""} '
                             f'{", ".join(map(str, missing))})')
        return out
    a, b = (float(statistics.median(vals)) for vals in values)
    out['values'] = [a, b]
    out['change'] = float(b - a)
    out['converged'] = bool(abs(b - a) < tol)
    if tail_losses is not None and len(tail_losses) >= 3 and \
            min(tail_losses) > 0:
        out['loss_plateau'] = plateau(tail_losses)
    return out
