"""Which cells a command line asks for: the design's contrasts, or an
explicit block of arms on chosen data."""
import itertools
from typing import List, Optional, Sequence

from .design import (BORDERS, CONTRASTS, DATA_SEEDS, DOSE_LAYOUTS, HEADS,
                     MAIN_TILT, POSITION, PRIMARY, SEEDS, STUDY_LAYOUTS,
                     TILT_LAYOUTS, Arm, Cell, Condition, StudyError, _check,
                     _check_seeds, design_cells, make_cell)

#: Layouts of an explicit (``--variants`` / ``--heads`` ...) grid by
#: default.
BLOCK_LAYOUTS = ('position-coded', 'shortcut-swap', 'uniform')
#: The first block's factors, for those an explicit grid does not give.
DEFAULT_BLOCK = dict(heads=('parsenet', ), paddings=('zeros', 'circular'),
                     pos_heads=('none', ))
#: ``--quick``: one seed of the primary endpoints of help and hurt (zero
#: vs circular padding, ParseNet, main panel): 4 cells at the short
#: study's training length on small data, 2 workers of 1 thread each.
QUICK = dict(
    contrasts=('help', 'hurt'), seeds=(0, ), data_seeds=(0, ), workers=2,
    settings=dict(max_iters=300, batch_size=4, optimizer='adamw', lr=0.002,
                  img_size=64, num_train=200, num_val=50, probe_images=64,
                  probe_epochs=5, threads=1))


def primary_cells(cells: Sequence[Cell]) -> List[Cell]:
    """The cells of the primary endpoints (:data:`.design.PRIMARY`): the
    primary head on the highest dose of the main panel."""
    keys = set()
    for p in PRIMARY:
        if p['statistic'] != 'endpoint':
            continue
        for condition in CONTRASTS[p['contrast']]['conditions']:
            if (condition.tilt, condition.prior) == (p['tilt'], p['prior']):
                keys.add((condition, p['head']))
    return [c for c in cells if (c.condition, c.head) in keys]


def block_cells(conditions: Sequence[Condition], arms: Sequence[Arm],
                seeds: Sequence[int], data_seeds: Sequence[int]
                ) -> List[Cell]:
    """Every arm on every condition for every seed pair, seed-major,
    without repeats; the arms' factors are checked."""
    seeds = _check_seeds(seeds, 'seeds')
    data_seeds = _check_seeds(data_seeds, 'data seeds')
    for arm in arms:
        _check((arm.head, ), HEADS, 'decode head')
        _check((arm.padding, ), BORDERS, 'padding')
        _check((arm.pos, ), tuple(POSITION), 'position head')
    cells = [make_cell(condition, arm, seed, data_seed)
             for data_seed, seed in itertools.product(data_seeds, seeds)
             for condition in conditions for arm in arms]
    return list(dict.fromkeys(cells))


def block_conditions(layouts: Sequence[str],
                     priors: Optional[Sequence[float]] = None,
                     tilts: Optional[Sequence[float]] = None,
                     periodic: bool = False) -> List[Condition]:
    """The data conditions of an explicit grid: each layout with each of
    ``priors`` (dose layouts only; ``prior-shift`` validates at 1 - P)
    and ``tilts`` (layouts with a tilt cue only; other layouts take
    neither)."""
    layouts = _check(layouts, STUDY_LAYOUTS, 'layout')
    if tilts and not set(layouts) & set(TILT_LAYOUTS):
        raise StudyError(f'--tilts needs a layout with a tilt cue '
                         f'({", ".join(TILT_LAYOUTS)}); got '
                         f'{", ".join(layouts)}')
    if priors and not set(layouts) & set(DOSE_LAYOUTS):
        raise StudyError(f'--priors needs a dose layout '
                         f'({", ".join(DOSE_LAYOUTS)}); got '
                         f'{", ".join(layouts)}')
    out = []
    for layout in layouts:
        if layout in DOSE_LAYOUTS and not priors:
            raise StudyError(f'layout {layout} needs --priors (e.g. 0.5 '
                             f'0.9): the prior is its dose')
        ps = priors if layout in DOSE_LAYOUTS else [None]
        ts = (tilts or [None]) if layout in TILT_LAYOUTS else [None]
        for p, t in itertools.product(ps, ts):
            q = round(1 - p, 6) if layout == 'prior-shift' else None
            out.append(Condition(layout, p, q, t, bool(periodic)))
    return out


def resolve_grid(quick: bool = False,
                 layouts: Optional[Sequence[str]] = None,
                 seeds: Optional[Sequence[int]] = None,
                 data_seeds: Optional[Sequence[int]] = None,
                 heads: Optional[Sequence[str]] = None,
                 paddings: Optional[Sequence[str]] = None,
                 pos_heads: Optional[Sequence[str]] = None,
                 variants: Optional[Sequence[str]] = None,
                 contrasts: Optional[Sequence[str]] = None,
                 primary: bool = False,
                 priors: Optional[Sequence[float]] = None,
                 tilts: Optional[Sequence[float]] = None,
                 periodic: bool = False,
                 **settings) -> tuple:
    """The cells and settings overrides of a command line.

    By default the grid is the design's (:func:`.design.design_cells`: all
    of :data:`.design.CONTRASTS`, or ``contrasts``; ``primary`` keeps the
    cells of the primary endpoints; ``quick`` is :data:`QUICK`). Any of
    ``heads``, ``paddings``, ``pos_heads`` instead gives one block of arms
    (missing factors from :data:`DEFAULT_BLOCK`), or ``variants`` lists
    them one by one as ``head/border/pos``, on the conditions of
    :func:`block_conditions`. ``layouts`` keeps only the cells of those
    layouts; ``seeds`` and ``data_seeds`` replace the design's; the
    settings (None: unchanged) override the rest; ``quick`` sets
    ``threads`` to 1 unless given.

    Returns:
        tuple[list[Cell], dict]: The cells and the settings overrides.
    """
    base = dict(QUICK['settings']) if quick else {}
    base.update({k: v for k, v in settings.items() if v is not None})
    explicit = bool(variants or heads or paddings or pos_heads)
    if variants and (heads or paddings or pos_heads):
        raise StudyError('give either variants or heads / paddings / '
                         'pos heads, not both')
    if explicit and (contrasts or primary):
        raise StudyError('give either contrasts (--contrasts, --primary) '
                         'or explicit variants / heads / paddings / pos '
                         'heads, not both')
    if not explicit and (priors or tilts or periodic):
        raise StudyError('--priors, --tilts and --periodic choose the data '
                         'of an explicit grid (--variants or --heads / '
                         '--paddings / --pos-heads); the contrasts carry '
                         'their own')
    if explicit:
        if variants:
            arms = [_parse_variant(v) for v in variants]
        else:
            arms = [Arm(h, p, q) for h, p, q in itertools.product(
                heads or DEFAULT_BLOCK['heads'],
                paddings or DEFAULT_BLOCK['paddings'],
                pos_heads or DEFAULT_BLOCK['pos_heads'])]
        conditions = block_conditions(layouts or BLOCK_LAYOUTS, priors,
                                      tilts, periodic)
        return block_cells(conditions, arms, seeds or SEEDS,
                           data_seeds or (0, )), base
    names = contrasts or (QUICK['contrasts'] if quick else tuple(CONTRASTS))
    if quick:
        seeds = seeds or QUICK['seeds']
        data_seeds = data_seeds or QUICK['data_seeds']
    cells = design_cells(names, seeds or SEEDS, data_seeds or DATA_SEEDS)
    if primary or (quick and not contrasts):
        cells = primary_cells(cells)
        if not cells:
            raise StudyError(f'contrasts {", ".join(names)} hold no primary '
                             f'endpoint (those are in help and hurt)')
    if layouts:
        _check(layouts, STUDY_LAYOUTS, 'layout')
        cells = [c for c in cells if c.layout in layouts]
        if not cells:
            raise StudyError(f'contrasts {", ".join(names)} have no cells '
                             f'on layouts {", ".join(layouts)}')
    return cells, base


def _parse_variant(text: str) -> Arm:
    parts = text.split('/')
    if len(parts) != 3:
        raise StudyError(f'variant {text!r} is not head/padding/pos, e.g. '
                         f'parsenet/zeros/-1')
    return Arm(*parts)


__all__ = ['BLOCK_LAYOUTS', 'DEFAULT_BLOCK', 'MAIN_TILT', 'QUICK',
           'block_cells', 'block_conditions', 'primary_cells',
           'resolve_grid']
