"""The position study's design: factors, cells, doses, contrasts and the
statistics each contrast is judged by.

A cell is one training (:class:`Cell`): a data condition (layout and its
doses, data seed, periodic or not) and an arm (decode head, border rule,
position mechanism) trained with one seed. The study is a set of
contrasts (:data:`CONTRASTS`), each a set of comparisons ``variant -
reference`` between two arms on the same data, paired by training seed and
data seed. Contrasts over a dose (the prior of a layout) are dose-response
curves, one panel per cue strength (``tilt``). The primary comparisons
(:data:`PRIMARY`) are the endpoints and slopes of the help and hurt curves;
every other comparison is secondary and corrected (Holm) within its
``family``; sameness is judged by equivalence tests with the margins of
:data:`MARGINS`. Why these doses, arms and margins: docs/position_study.md.
"""
from collections import OrderedDict
from typing import List, NamedTuple, Optional, Sequence, Tuple

from possec.models.layers import PADDING_MODES
from .settings import StudyError

__all__ = [
    'Arm', 'Cell', 'Comparison', 'Condition', 'CONTRASTS', 'HEADS',
    'MARGINS', 'PRIMARY', 'StudyError', 'comparisons', 'design_cells',
    'position_free', 'variant_name'
]

#: Decode heads: ParseNet (global context), ParseNet without its global
#: branch (``use_global=False``, everything else equal) and FCN (local
#: context only; its convolutions follow the backbone's border rule).
HEADS = ('parsenet', 'parsenet-noglobal', 'fcn')
#: What each ``pos`` value of a cell does (the position mechanism).
POSITION = OrderedDict([
    ('none', 'no position head'),
    ('+1', 'encourage position (PosENet head, grad_scale +1)'),
    ('-1', 'gradient reversal through a PosENet head'),
    ('remove', 'remove position by confusing a readout'),
    ('shift', 'remove position by shift consistency'),
    ('erase', 'remove position by erasing its per-pixel mean from the '
              'backbone outputs (linear readouts)'),
])
#: A border with CoordConv's coordinate channels at the stem.
COORD_SUFFIX = '+coord'
BORDERS = tuple(PADDING_MODES) + tuple(f'{m}{COORD_SUFFIX}'
                                       for m in PADDING_MODES)
#: The synthetic layouts a study may train on
#: (:mod:`possec.datasets.synthetic`); the dose layouts take a ``prior``.
STUDY_LAYOUTS = ('position-coded', 'border-shift', 'uniform', 'shortcut',
                 'shortcut-swap', 'position-prior', 'prior-shift')
DOSE_LAYOUTS = ('position-prior', 'prior-shift')
#: Layouts whose pairs carry a tilt cue.
TILT_LAYOUTS = ('shortcut', 'shortcut-swap') + DOSE_LAYOUTS

#: Training seeds and data seeds, crossed: every arm runs on each pair.
SEEDS = (0, 1, 2)
DATA_SEEDS = (0, 1)
#: Doses. Help: the prior P of ``position-prior`` (0.5: position carries
#: nothing). Hurt: the training prior P of ``prior-shift``, validated at
#: 1 - P. Panels: the cue strength ``tilt`` in degrees.
HELP_PRIORS = (0.5, 0.75, 0.9, 1.0)
HURT_PRIORS = (0.5, 0.75, 0.9)
TILTS = (10.0, 20.0)
#: The panel of the primary comparisons and of the context arms.
MAIN_TILT = 10.0
#: Equivalence (TOST) margins: mIoU points (every mIoU column) and probe
#: SPC.
MARGINS = dict(miou=2.0, spc=0.05)


class Condition(NamedTuple):
    """The data a cell trains and validates on."""
    layout: str
    prior: Optional[float] = None
    val_prior: Optional[float] = None
    tilt: Optional[float] = None
    periodic: bool = False

    @property
    def name(self) -> str:
        """``position-prior-p0.75-t10-per``; a bare layout name when the
        condition has no dose and is not periodic."""
        parts = [self.layout]
        if self.prior is not None:
            parts.append(f'p{self.prior:g}')
        if self.val_prior is not None:
            parts.append(f'q{self.val_prior:g}')
        if self.tilt is not None:
            parts.append(f't{self.tilt:g}')
        if self.periodic:
            parts.append('per')
        return '-'.join(parts)


class Arm(NamedTuple):
    """What a cell trains: decode head, border rule, position mechanism."""
    head: str
    padding: str
    pos: str = 'none'


class Cell(NamedTuple):
    """One training of the study: an arm on a data condition, one seed.

    ``data_seed`` draws the data, ``seed`` the training. The dose fields
    are None where the layout has none.
    """
    layout: str
    head: str
    padding: str
    pos: str
    seed: int
    data_seed: int = 0
    prior: Optional[float] = None
    val_prior: Optional[float] = None
    tilt: Optional[float] = None
    periodic: bool = False

    @property
    def condition(self) -> Condition:
        return Condition(self.layout, self.prior, self.val_prior, self.tilt,
                         self.periodic)

    @property
    def arm(self) -> Arm:
        return Arm(self.head, self.padding, self.pos)

    @property
    def name(self) -> str:
        """Folder name, e.g. ``position-prior-p0.75-t10-per__parsenet__
        zeros__posnone__s0__d1``; a cell without doses, periodic data or
        data seed keeps the short form ``position-coded__parsenet__zeros
        __pos+1__s0``."""
        name = (f'{self.condition.name}__{self.head}__{self.padding}'
                f'__pos{self.pos}__s{self.seed}')
        return name + (f'__d{self.data_seed}' if self.data_seed else '')

    @property
    def variant(self) -> str:
        """The arm's name: ``parsenet / zeros / pos +1``."""
        return variant_name(self.arm)

    @property
    def label(self) -> str:
        """For progress lines: ``parsenet / zeros / pos none |
        position-prior-p0.75-t10-per | seed 0 | data 1``."""
        text = f'{self.variant} | {self.condition.name} | seed {self.seed}'
        return text + (f' | data {self.data_seed}' if self.data_seed else '')


def variant_name(key: tuple) -> str:
    """The one name of an arm, used by progress lines, tables and figures:
    ``('parsenet', 'circular+coord', 'none')`` -> ``'parsenet /
    circular+coord / pos none'``."""
    return f'{key[0]} / {key[1]} / pos {key[2]}'


def position_free(arm: Arm) -> bool:
    """Whether the arm claims no absolute position from its border:
    circular padding (CoordConv's circular base included) or erasure.
    Such arms, and the arms they are compared with, train on periodic
    data (no image seam to measure from)."""
    return arm.padding.startswith('circular') or arm.pos == 'erase'


# ----- the contrasts ------------------------------------------------------

ZEROS = ('zeros', 'none')
CIRCULAR = ('circular', 'none')
ERASE = ('zeros', 'erase')
SHIFT = ('zeros', 'shift')
#: The border comparison of every curve: zero padding (position readable
#: at the border) minus circular padding (none): positive where position
#: helps, negative where it hurts.
BORDER = (ZEROS, CIRCULAR)


def _help(prior: float, tilt: float) -> Condition:
    return Condition('position-prior', prior, None, tilt, True)


def _hurt(prior: float, tilt: float) -> Condition:
    return Condition('prior-shift', prior, round(1 - prior, 6), tilt, True)


def _ends(tilt: float) -> List[Condition]:
    return [_help(HELP_PRIORS[0], tilt), _help(HELP_PRIORS[-1], tilt),
            _hurt(HURT_PRIORS[0], tilt), _hurt(HURT_PRIORS[-1], tilt)]


def _curve(family: str, question: str, condition, priors) -> dict:
    """A dose-response contrast: zeros against circular padding on
    ParseNet, over ``priors`` at every tilt of :data:`TILTS`."""
    return dict(
        question=question, family=family, key='mIoU_pairs', dose='prior',
        conditions=[condition(p, t) for t in TILTS for p in priors],
        heads=('parsenet', ), variants=[ZEROS, CIRCULAR],
        comparisons=(BORDER, ), headline=BORDER)


#: The study as contrasts. Each holds ``question``; ``family`` (Holm is
#: applied within it); ``key`` (the column that answers it); ``dose``
#: (the condition field its curves run over, or None); ``conditions``
#: (the data it trains on, all periodic: every arm of a comparison sees
#: the same data, and the position-free arms see no image seam);
#: ``layouts`` (theirs); ``heads``; ``variants`` and ``comparisons`` as
#: ``(border, pos)`` keys, each comparison ``(variant, reference)`` made
#: on every head and condition of the contrast, paired by training seed
#: and data seed; ``headline`` (the comparison its tables lead with).
CONTRASTS = OrderedDict(
    help=_curve(
        'help', 'Where position predicts the class (position-prior: a '
        'pair\'s first class lies in the top half with probability P), '
        'does the border\'s position (zero padding against circular) '
        'raise pairs mIoU, and how does the gain grow with P?',
        _help, HELP_PRIORS),
    hurt=_curve(
        'hurt', 'Where position is a shortcut that breaks (prior-shift: '
        'trained at prior P, validated at 1 - P), does the border\'s '
        'position (zero padding against circular) cost pairs mIoU, and '
        'how does the cost grow with P?',
        _hurt, HURT_PRIORS),
    context=dict(
        question='Does global context change the effect? The border '
        'comparison at both ends of both curves with ParseNet without its '
        'global branch, and with FCN (its head padded like the backbone); '
        'the interaction is that head\'s difference minus ParseNet\'s, '
        'paired by seed.',
        family='context', key='mIoU_pairs', dose=None,
        conditions=_ends(MAIN_TILT),
        heads=('parsenet-noglobal', 'fcn', 'parsenet'),
        variants=[ZEROS, CIRCULAR], comparisons=(BORDER, ), headline=None,
        interactions=(('parsenet-noglobal', 'parsenet'),
                      ('fcn', 'parsenet'))),
    removal=dict(
        question='The decisive removal test: on position-coded data (pairs '
        'told apart by position only, so the position-blind level is '
        'known), do erasure and shift consistency on zero padding bring '
        'pairs mIoU down to circular padding\'s (usable position gone) or '
        'leave it at zero padding\'s, and at what cost to the other '
        'classes?',
        family='removal', key='mIoU_pairs', dose=None,
        conditions=[Condition('position-coded', periodic=True)],
        heads=('parsenet', ), variants=[ZEROS, CIRCULAR, ERASE, SHIFT],
        comparisons=((ERASE, CIRCULAR), (ERASE, ZEROS), (SHIFT, CIRCULAR),
                     (SHIFT, ZEROS), BORDER),
        headline=None),
)
for _spec in CONTRASTS.values():
    _spec['layouts'] = tuple(dict.fromkeys(c.layout
                                           for c in _spec['conditions']))

#: The primary comparisons, declared before any result: on ParseNet and
#: the main panel, the border comparison at the highest dose of the help
#: and hurt curves, and each curve's slope over its doses. Everything
#: else is secondary.
PRIMARY = (
    dict(contrast='help', statistic='endpoint', head='parsenet',
         tilt=MAIN_TILT, prior=HELP_PRIORS[-1]),
    dict(contrast='help', statistic='slope', head='parsenet',
         tilt=MAIN_TILT),
    dict(contrast='hurt', statistic='endpoint', head='parsenet',
         tilt=MAIN_TILT, prior=HURT_PRIORS[-1]),
    dict(contrast='hurt', statistic='slope', head='parsenet',
         tilt=MAIN_TILT),
)


class Comparison(NamedTuple):
    """One paired comparison of the design (:func:`comparisons`)."""
    contrast: str
    family: str
    condition: Condition
    variant: Arm
    reference: Arm
    key: str
    primary: bool


def comparisons(names: Sequence[str] = tuple(CONTRASTS)) -> List[Comparison]:
    """Every comparison of the named contrasts (each of a contrast's
    comparisons on each of its heads and conditions), with its family and
    whether it is a primary endpoint (:data:`PRIMARY`; the slopes are
    primary statistics of a whole curve, not of one comparison)."""
    names = _check(names, tuple(CONTRASTS), 'contrast')
    endpoints = {(p['contrast'], p['head'], p['tilt'], p['prior'])
                 for p in PRIMARY if p['statistic'] == 'endpoint'}
    out = []
    for name in names:
        spec = CONTRASTS[name]
        for condition in spec['conditions']:
            for head in spec['heads']:
                for variant, reference in spec['comparisons']:
                    primary = (name, head, condition.tilt,
                               condition.prior) in endpoints
                    out.append(Comparison(
                        name, spec['family'], condition,
                        Arm(head, *variant), Arm(head, *reference),
                        spec['key'], primary))
    return out


def design_cells(names: Sequence[str] = tuple(CONTRASTS),
                 seeds: Sequence[int] = SEEDS,
                 data_seeds: Sequence[int] = DATA_SEEDS) -> List[Cell]:
    """The cells of the named contrasts: every arm of every comparison on
    its condition, for every training seed crossed with every data seed,
    without repeats, seed-major (a partial study holds whole seeds).

    Args:
        names (Sequence[str]): Contrast names. Default: all.
        seeds (Sequence[int]): Training seeds. Default: :data:`SEEDS`.
        data_seeds (Sequence[int]): Data seeds. Default:
            :data:`DATA_SEEDS`.

    Returns:
        list[Cell]: The cells.
    """
    seeds = _check_seeds(seeds, 'seeds')
    data_seeds = _check_seeds(data_seeds, 'data seeds')
    units = []  # (condition, arm), first-seen order
    for comparison in comparisons(names):
        for arm in (comparison.variant, comparison.reference):
            units.append((comparison.condition, arm))
    units = list(dict.fromkeys(units))
    cells = []
    for data_seed in data_seeds:
        for seed in seeds:
            for condition, arm in units:
                cells.append(make_cell(condition, arm, seed, data_seed))
    return list(dict.fromkeys(cells))


def make_cell(condition: Condition, arm: Arm, seed: int,
              data_seed: int = 0) -> Cell:
    """The cell of ``arm`` on ``condition`` with these seeds."""
    return Cell(condition.layout, arm.head, arm.padding, arm.pos, seed,
                data_seed, condition.prior, condition.val_prior,
                condition.tilt, condition.periodic)


def _check(values: Sequence, allowed: Sequence, what: str) -> tuple:
    values = tuple(values)
    if not values:
        raise StudyError(f'no {what} given; expected one or more of '
                         f'{", ".join(map(str, allowed))}')
    for value in values:
        if value not in allowed:
            raise StudyError(f'unknown {what} {value!r}; expected one of '
                             f'{", ".join(map(repr, allowed))}')
    return values


def _check_seeds(seeds: Sequence[int], what: str) -> tuple:
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                            and s >= 0 for s in seeds):
        raise StudyError(f'{what} must be one or more non-negative ints, '
                         f'got {seeds!r}')
    return seeds
