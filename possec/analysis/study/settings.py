"""The position study's settings: one typed, validated object.

Every cell of a study trains and probes with the same
:class:`StudySettings`; a study folder records them and refuses to continue
with others (:data:`RUNTIME_FIELDS` excepted: they change where and how
fast a cell runs, not its numbers). The values behind the defaults and the
converged recipe are in docs/position_study.md.
"""
import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Tuple

from possec.errors import UserError

#: The recipe of each ``optimizer`` setting: the optimizer (at the study's
#: ``lr``) and the floor of the poly decay. 'adamw' is the demo's (random
#: weights train much faster with it); 'sgd' is mmseg's usual one.
OPTIMIZERS = {
    'sgd': (dict(type='SGD', momentum=0.9, weight_decay=0.0005), 1e-4),
    'adamw': (dict(type='AdamW', betas=(0.9, 0.999), weight_decay=0.01),
              1e-5),
}
#: Learning-rate schedules: ``'poly'`` decays from ``lr`` to the
#: optimizer's floor over ``max_iters``; ``'constant'`` keeps ``lr``.
SCHEDULES = ('poly', 'constant')
DEVICES = ('cpu', 'cuda')
#: Settings that change where or how fast a cell runs, not its numbers
#: (a study may continue with other values of these).
RUNTIME_FIELDS = ('threads', 'num_workers', 'data_root', 'device',
                  'val_batch_size', 'keep_checkpoint')
#: Settings added after study folders existed, with the value a folder
#: recorded without them ran with (a folder made before them continues).
LATER_FIELDS = {'converge_window': 1, 'val_every': 0}
_POSITIVE_INTS = ('max_iters', 'batch_size', 'img_size', 'num_train',
                  'num_val', 'probe_images', 'probe_epochs', 'probe_convs',
                  'val_batch_size', 'converge_window')
_NON_NEGATIVE_INTS = ('tail_iters', 'nonlinear_probe_epochs', 'num_workers',
                      'val_every')


class StudyError(UserError, ValueError):
    """Bad input to the position study (a ``ValueError``; the tools print
    it as one line without a traceback)."""


@dataclass(frozen=True)
class StudySettings:
    """What every cell of a study shares: data size, training recipe,
    convergence test and probes.

    Args:
        max_iters (int): Iterations of the schedule. Default: 300.
        batch_size (int): Training batch. Default: 4.
        img_size (int): Side of the (square) images. Default: 64.
        num_train (int): Training images per data tree. Default: 200.
        num_val (int): Validation images per data tree. Default: 100.
        optimizer (str): A key of :data:`OPTIMIZERS`. Default: 'adamw'.
        lr (float): Learning rate. Default: 0.002.
        schedule (str): One of :data:`SCHEDULES`. Default: 'poly'.
        tail_iters (int): Iterations that follow the schedule at its
            constant learning rate before the second validation of the
            convergence test (:mod:`.convergence`); 0 for none. Needs
            ``schedule='constant'``. Default: 0.
        converge_tol (float): The largest change, in mIoU points, of the
            cell's key metric between the end of the schedule and the end
            of the tail for the cell to count as converged. Default: 2.0
            (the study's equivalence margin).
        converge_window (int): Validations whose median is each end of
            the convergence test (the last ``converge_window`` before the
            end of the schedule and before the end of the tail,
            ``val_every`` apart); 1 reads one validation at each end.
            Default: 1.
        val_every (int): Iterations between validations, from the first
            validation of the schedule's window through the tail; 0
            validates at the two ends only. Must divide ``max_iters`` and
            ``tail_iters``. Default: 0.
        probe_images (int): Images of the position probe (>= 2).
            Default: 64.
        probe_epochs (int): Epochs of the linear probe. Default: 10.
        probe_lr (float): Learning rate of the probes' readouts.
            Default: 0.01.
        probe_patterns (tuple[str]): Position maps the probes read.
            Default: ('H', 'V', 'G').
        probe_convs (int): Depth of the first probe's readout (1: the
            paper's linear readout). Default: 1.
        nonlinear_probe_epochs (int): Epochs of a second, two-layer probe
            trained to saturation beside the first; 0 for none.
            Default: 0.
        val_batch_size (int): Validation batch (the images share one
            size, so the numbers do not depend on it). Default: 8.
        device (str): One of :data:`DEVICES`. Default: 'cpu'.
        num_workers (int): Data-loader workers per cell. Default: 0.
        threads (int, optional): Torch threads per study worker; None
            keeps torch's. Default: None.
        data_root (str, optional): Where the data trees are generated;
            None for ``<study folder>/data``. Default: None.
        keep_checkpoint (bool): Save each cell's state at its last
            iteration (``iter_<N>.pth`` in its work dir: weights,
            optimizer and message hub; about 140 MB for ParseNet), so that
            a cell that fails the convergence test can be extended
            (:mod:`.extend`) and its model read by other tools.
            Default: False.
    """
    max_iters: int = 300
    batch_size: int = 4
    img_size: int = 64
    num_train: int = 200
    num_val: int = 100
    optimizer: str = 'adamw'
    lr: float = 0.002
    schedule: str = 'poly'
    tail_iters: int = 0
    converge_tol: float = 2.0
    converge_window: int = 1
    val_every: int = 0
    probe_images: int = 64
    probe_epochs: int = 10
    probe_lr: float = 0.01
    probe_patterns: Tuple[str, ...] = field(default=('H', 'V', 'G'))
    probe_convs: int = 1
    nonlinear_probe_epochs: int = 0
    val_batch_size: int = 8
    device: str = 'cpu'
    num_workers: int = 0
    threads: Optional[int] = None
    data_root: Optional[str] = None
    keep_checkpoint: bool = False

    def __post_init__(self):
        object.__setattr__(self, 'probe_patterns',
                           tuple(self.probe_patterns))
        for key in _POSITIVE_INTS:
            _need(key, getattr(self, key), lambda v: _is_int(v) and v >= 1,
                  'a positive int')
        for key in _NON_NEGATIVE_INTS:
            _need(key, getattr(self, key), lambda v: _is_int(v) and v >= 0,
                  'an int >= 0')
        for key in ('lr', 'probe_lr', 'converge_tol'):
            _need(key, getattr(self, key),
                  lambda v: _is_number(v) and v > 0, 'a positive number')
        _need('optimizer', self.optimizer, lambda v: v in OPTIMIZERS,
              f'one of {sorted(OPTIMIZERS)}')
        _need('schedule', self.schedule, lambda v: v in SCHEDULES,
              f'one of {list(SCHEDULES)}')
        _need('device', self.device, lambda v: v in DEVICES,
              f'one of {list(DEVICES)}')
        _need('threads', self.threads,
              lambda v: v is None or (_is_int(v) and v >= 1),
              'None or a positive int')
        _need('keep_checkpoint', self.keep_checkpoint,
              lambda v: isinstance(v, bool), 'True or False')
        _need('probe_images', self.probe_images, lambda v: v >= 2,
              '>= 2 (one image to train the readout, one held out)')
        _need('probe_patterns', self.probe_patterns,
              lambda v: len(v) > 0 and all(isinstance(p, str) for p in v),
              'one or more pattern names such as H, V, G')
        if self.tail_iters and self.schedule != 'constant':
            raise StudyError(
                f'tail_iters={self.tail_iters} needs schedule=\'constant\' '
                f'(the convergence test is measured under a constant '
                f'learning rate), got schedule={self.schedule!r}: set '
                f'--schedule constant or --tail-iters 0')
        self._check_validations()

    def _check_validations(self) -> None:
        """``val_every`` and ``converge_window`` fit the schedule."""
        every, window = self.val_every, self.converge_window
        for name, length in (('max_iters', self.max_iters),
                             ('tail_iters', self.tail_iters)):
            if every and length % every:
                raise StudyError(
                    f'val_every={every} must divide {name}={length} (the '
                    f'convergence test reads validations at the end of the '
                    f'schedule and of the tail): set --val-every to a '
                    f'divisor of both, or --val-every 0 --converge-window 1')
        if window > 1 and not every:
            raise StudyError(
                f'converge_window={window} needs val_every > 0 (the '
                f'iterations between the validations of its median), got '
                f'val_every=0: set --val-every or --converge-window 1')
        if window > 1 and every and (window - 1) * every >= min(
                self.max_iters, self.tail_iters or self.max_iters):
            raise StudyError(
                f'converge_window={window} validations {every} iterations '
                f'apart span {(window - 1) * every} iterations, as long as '
                f'the schedule ({self.max_iters}) or the tail '
                f'({self.tail_iters}): the two windows would overlap; use '
                f'a smaller window or val_every')

    @property
    def val_begin(self) -> int:
        """The iteration of a cell's first validation."""
        return self.max_iters - (self.converge_window - 1) * self.val_every

    @classmethod
    def from_dict(cls, values: Optional[dict] = None) -> 'StudySettings':
        """The defaults updated by ``values`` (None entries keep the
        default); an unknown key is refused in one line."""
        values = {k: v for k, v in dict(values or {}).items()
                  if v is not None}
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise StudyError(f'unknown study settings {unknown}; expected '
                             f'some of {sorted(names)}')
        return cls(**values)

    def replace(self, **changes) -> 'StudySettings':
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """Plain types (lists for tuples), for JSON files and records."""
        out = dataclasses.asdict(self)
        out['probe_patterns'] = list(self.probe_patterns)
        return out

    def numbers_dict(self) -> dict:
        """:meth:`as_dict` without :data:`RUNTIME_FIELDS`: what two study
        runs must share to belong in one folder."""
        return {k: v for k, v in self.as_dict().items()
                if k not in RUNTIME_FIELDS}

    @property
    def total_iters(self) -> int:
        """Training iterations of a cell: the schedule and its tail."""
        return self.max_iters + self.tail_iters


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _need(key: str, value, ok, expected: str) -> None:
    try:
        good = ok(value)
    except TypeError:
        good = False
    if not good:
        raise StudyError(f'study setting {key} must be {expected}, got '
                         f'{value!r}')


#: The settings of the study before the convergence test (300 iterations
#: of a poly schedule, one linear probe): the reference of the compute
#: comparisons in docs/benchmarks.md.
SHORT = StudySettings()
#: The converged recipe (docs/position_study.md § Results at
#: convergence: the shortest schedule measured against the criterion): a
#: constant learning rate, the schedule doubled by its tail for the
#: convergence test judged on the median of the last 3 validations (300
#: iterations apart) at each end, the two-layer probe beside the linear
#: one.
CONVERGED = StudySettings(max_iters=4800, tail_iters=4800,
                          schedule='constant', lr=0.001,
                          nonlinear_probe_epochs=40, converge_window=3,
                          val_every=300)
