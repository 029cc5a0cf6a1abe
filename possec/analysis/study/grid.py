"""The grid of the position study: which trainings it runs, and the config
overrides of each.

Every cell of the study is one training of the demo family (ResNet-18-D8
with possec's padding-aware ``PadResNetV1c``) on one synthetic layout,
varying one thing at a time: the backbone's border rule (``padding``), the
PosENet position head beside the FCN auxiliary head (``pos``: none, ``+1``
to encourage position, ``-1`` as an adversary through gradient reversal, as
in `How Much Position Information Do Convolutional Neural Networks Encode?
<https://arxiv.org/abs/2001.08248>`_), the decode head (FCN, or ParseNet's
global context, `ParseNet <https://arxiv.org/abs/1506.04579>`_), the seed
and the layout (:mod:`possec.datasets.synthetic`). No config file exists
per cell: each cell is the demo config plus the ``cfg_options`` built here.
"""
import itertools
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, NamedTuple, Optional, Sequence

from mmengine.config import Config

from possec.errors import UserError
from possec.datasets.synthetic import LAYOUTS
from possec.models.layers import PADDING_MODES
from ..common import config_path

#: The demo config each decode head of the study trains (see
#: :func:`possec.analysis.common.config_path`).
HEAD_CONFIGS = {
    'fcn': 'possec::demo/fcn_r18-d8_1xb8-160_synthetic-128x128.py',
    'parsenet': 'possec::demo/parsenet_pos_synthetic.py',
}
HEADS = tuple(HEAD_CONFIGS)
# position head -> grad_scale of the PosENetHead (None: no position head)
POS_HEADS = {'none': None, '+1': 1.0, '-1': -1.0}
#: What each ``pos`` value of a cell does (the position factor). ``+1`` and
#: ``-1`` are the PosENet head of :data:`POS_HEADS`; ``remove`` trains the
#: backbone to confuse a position readout (``PosConfusionHead``,
#: configs/_base_/position/pos_confusion_r18.py); ``shift`` asks for
#: features that agree between two shifted crops
#: (``ShiftConsistencyEncoderDecoder``,
#: configs/_base_/position/shift_consistency.py).
POSITION = {
    'none': 'no position head',
    '+1': 'encourage position (PosENet head, grad_scale +1)',
    '-1': 'gradient reversal through a PosENet head (adds position, '
          'measured)',
    'remove': 'remove position by confusing a readout',
    'shift': 'remove position by shift consistency',
    'erase': 'remove position by erasing its per-pixel mean from the '
             'backbone outputs (linear readouts)',
}
#: The border factor: a padding mode, or one with CoordConv's coordinate
#: channels at the stem (``'circular+coord'``: no border to read position
#: from, but the coordinates given explicitly).
COORD_SUFFIX = '+coord'
BORDERS = tuple(PADDING_MODES) + tuple(f'{m}{COORD_SUFFIX}'
                                       for m in PADDING_MODES)
STUDY_LAYOUTS = ('position-coded', 'border-shift', 'uniform', 'shortcut',
                 'shortcut-swap')
#: Layouts of an explicit (``--variants`` / ``--paddings``) grid by default.
BLOCK_LAYOUTS = ('position-coded', 'shortcut-swap', 'uniform')
#: The config pieces of the removal mechanisms (repository-relative).
POSITION_PIECES = dict(
    remove=('configs/_base_/position/pos_confusion_r18.py', 'posenet_head'),
    shift=('configs/_base_/position/shift_consistency.py',
           'shift_consistency'),
    erase=('configs/_base_/position/position_eraser.py', 'position_eraser'))

#: The default grid, the study of docs/position_study.md: ParseNet with zero
#: and circular padding; the position head, encouraging (+1) and adversarial
#: (-1), on ParseNet with zero padding; FCN with both paddings.
DEFAULT_BLOCKS = (
    dict(heads=('parsenet', ), paddings=('zeros', 'circular'),
         pos_heads=('none', )),
    dict(heads=('parsenet', ), paddings=('zeros', ), pos_heads=('+1', '-1')),
    dict(heads=('fcn', ), paddings=('zeros', 'circular'),
         pos_heads=('none', )),
)
#: The recipe of each ``optimizer`` setting: the optimizer (at the study's
#: ``lr``) and the floor of its poly decay. 'adamw' is the demo's (random
#: weights train much faster with it); 'sgd' is mmseg's usual one.
OPTIMIZERS = {
    'sgd': (dict(type='SGD', momentum=0.9, weight_decay=0.0005), 1e-4),
    'adamw': (dict(type='AdamW', betas=(0.9, 0.999), weight_decay=0.01),
              1e-5),
}
#: The default settings (those of docs/position_study.md): 64x64 images,
#: 300 iterations of batch 4 with AdamW; about 2 minutes per cell on one
#: CPU core.
DEFAULT_SETTINGS = dict(
    max_iters=300, batch_size=4, img_size=64, num_train=200, num_val=100,
    data_seed=0, optimizer='adamw', lr=0.002, num_workers=0,
    probe_images=64, probe_epochs=10, probe_lr=0.01,
    probe_patterns=('H', 'V', 'G'), probe_convs=1, data_root=None,
    threads=None)
# probe_convs: the readout's depth; 1 is the paper's (linear, one 3x3
# conv), 2 adds a hidden layer (conv, BN, ReLU) that can read position
# from more than the features' per-pixel means.
# probe_lr: the paper's 0.1 diverges on the trained R-18 features (the
# readout's loss rises epoch after epoch); 0.01 converges.
#: Settings that do not change the numbers (a study may continue with
#: other values). The data is a function of layout, size, counts and seed
#: (the same arguments give the same bytes), wherever it is generated;
#: data_root None means ``<study folder>/data``.
RUNTIME_SETTINGS = ('threads', 'num_workers', 'data_root')
#: ``--quick``: one seed of the clearest help and hurt contrasts, the
#: headline comparisons of :data:`CONTRASTS` (ParseNet, zero vs circular
#: padding, on position-coded and shortcut-swap): 4 cells at the full
#: study's training length on small data, 2 workers of 1 thread each. On
#: 2 quiet cores a cell of this size took 65-84 s (docs/position_study.md),
#: so about 5 minutes; under heavy load (load average ~19 on 2 cores) a
#: cell took about 45 minutes.
QUICK = dict(
    contrasts=('help', 'hurt'), headline=True, seeds=(0, ), workers=2,
    settings=dict(max_iters=300, batch_size=4, optimizer='adamw', lr=0.002,
                  img_size=64, num_train=200, num_val=50, probe_images=64,
                  probe_epochs=5, threads=1))


#: The study as contrasts, each answering one question (issue 15, item 3),
#: instead of a full factorial. A contrast lists its ``layouts``, decode
#: ``heads``, ``variants`` as ``(border, position)`` and ``comparisons`` as
#: ``(variant, reference)`` pairs (differences variant - reference, paired
#: by seed; a pair whose cells a layout lacks is skipped); the ``headline`` comparison runs on :data:`HEADLINE_SEEDS`,
#: the rest on :data:`SEEDS`. The grid is the union of the contrasts' cells
#: (a cell shared by two contrasts runs once).
SEEDS = (0, 1, 2)
HEADLINE_SEEDS = (0, 1, 2, 3, 4)
_HELP = [('zeros', 'none'), ('circular', 'none'), ('full', 'none'),
         ('circular+coord', 'none')]
#: The removal-by-training variant of the contrasts: zero padding with
#: shift consistency at weight 1. Measured at the study's settings on
#: ``uniform`` (seed 0; fresh probe, mean H/V/G SPC; zero padding alone
#: 0.32-0.48 in the earlier study): shift weight 1: SPC 0.27, mIoU 64.0;
#: shift weight 10: SPC 0.14 / 0.11 (seeds 0, 1) but mIoU 26.5 / 27.0;
#: shift with its loss normalised by the features' spatial variance
#: instead of their energy (tried, not kept), weight 3 / 10: SPC 0.25 /
#: 0.17, mIoU 29.2 / 18.0; the confusion head (``remove``, ridge) weight
#: 1 / 10: SPC 0.20 / 0.23, mIoU 23.8 / 6.5. Only weight-1 shift keeps
#: the segmentation; none reached the 0.10 of circular padding.
REMOVAL = ('zeros', 'shift')
#: Removal by erasure: zero padding with PositionEraser on every backbone
#: output (its per-pixel mean replaced by the spatial average, statistics
#: recomputed after training by PositionEraserHook). It takes away what a
#: linear readout (the study's probe) can read, not all position.
ERASURE = ('zeros', 'erase')
CONTRASTS = OrderedDict(
    help=dict(
        question='Where position codes the class (position-coded), does '
        'absolute position help? Circular padding takes the border\'s '
        'position away; full padding gives more of it; CoordConv gives it '
        'back to a circular network explicitly.',
        layouts=('position-coded', ), heads=('parsenet', ),
        variants=_HELP,
        headline=(('circular', 'none'), ('zeros', 'none')),
        comparisons=((('circular', 'none'), ('zeros', 'none')),
                     (('full', 'none'), ('zeros', 'none')),
                     (('circular+coord', 'none'), ('circular', 'none')))),
    hurt=dict(
        question='Where position is a shortcut that breaks (shortcut-swap: '
        'location names the class in training, the opposite class in '
        'validation), does absolute position hurt, and does removing it by '
        'training repair the harm? (and removing it by erasure?)',
        layouts=('shortcut-swap', ), heads=('parsenet', ),
        variants=_HELP + [REMOVAL, ERASURE],
        headline=(('zeros', 'none'), ('circular', 'none')),
        comparisons=((('zeros', 'none'), ('circular', 'none')),
                     (('full', 'none'), ('circular', 'none')),
                     (('circular+coord', 'none'), ('circular', 'none')),
                     (REMOVAL, ('zeros', 'none')),
                     (ERASURE, ('zeros', 'none')))),
    removal=dict(
        question='Does removal by training, or by erasure, match removal by '
        'padding? Zero padding with shift consistency, and zero padding '
        'with position erasers, against circular padding (probe SPC and '
        'mIoU), on uniform and on the shortcut layout.',
        layouts=('uniform', 'shortcut-swap'), heads=('parsenet', ),
        variants=[('zeros', 'none'), REMOVAL, ERASURE, ('circular', 'none')],
        headline=None,
        comparisons=((REMOVAL, ('circular', 'none')),
                     (REMOVAL, ('zeros', 'none')),
                     (ERASURE, ('circular', 'none')),
                     (ERASURE, ('zeros', 'none')),
                     (('circular', 'none'), ('zeros', 'none')))),
    context=dict(
        question='Does global context change the effect? The help and hurt '
        'contrasts with FCN (local context only) beside ParseNet; the '
        'interaction is the FCN difference minus the ParseNet difference, '
        'paired by seed.',
        layouts=('position-coded', 'shortcut-swap'),
        heads=('fcn', 'parsenet'),
        variants={'position-coded': _HELP,
                  'shortcut-swap': _HELP + [REMOVAL]},
        headline=None,
        comparisons=((('circular', 'none'), ('zeros', 'none')),
                     (('full', 'none'), ('zeros', 'none')),
                     (('circular+coord', 'none'), ('circular', 'none')),
                     (REMOVAL, ('zeros', 'none')))),
)


def contrast_cells(names: Sequence[str] = tuple(CONTRASTS),
                   seeds: Optional[Sequence[int]] = None,
                   headline_only: bool = False,
                   headline_seeds: Sequence[int] = HEADLINE_SEEDS,
                   other_seeds: Sequence[int] = SEEDS) -> List['Cell']:
    """The cells of the named contrasts (:data:`CONTRASTS`), seed-major
    so that a partial study has whole seeds, without repeats.

    Args:
        names (Sequence[str]): Contrast names. Default: all.
        seeds (Sequence[int], optional): Seeds for every variant (replaces
            ``headline_seeds`` and ``other_seeds``). Default: None.
        headline_only (bool): Only the two variants of each contrast's
            headline comparison. Default: False.
        headline_seeds (Sequence[int]): Seeds of the headline variants.
            Default: :data:`HEADLINE_SEEDS`.
        other_seeds (Sequence[int]): Seeds of the others. Default:
            :data:`SEEDS`.

    Returns:
        list[Cell]: The cells.
    """
    names = _check(names, tuple(CONTRASTS), 'contrast')
    wanted = []  # (seed, layout, head, border, pos)
    for name in names:
        c = CONTRASTS[name]
        headline = set(c['headline'] or ())
        for layout in c['layouts']:
            for head in c['heads']:
                variants = c['variants']
                if isinstance(variants, dict):  # per layout
                    variants = variants[layout]
                for variant in variants:
                    key = tuple(variant)
                    if headline_only and key not in headline:
                        continue
                    if seeds is not None:
                        ss = seeds
                    elif key in headline:
                        ss = headline_seeds
                    else:
                        ss = other_seeds
                    for seed in ss:
                        wanted.append((seed, layout, head) + key)
    if not wanted:
        raise StudyError(f'contrasts {", ".join(names)} have no cells '
                         f'with these options (a contrast without a '
                         f'headline has no cells under --headline)')
    order = {w: i for i, w in enumerate(dict.fromkeys(wanted))}
    cells = sorted(order, key=lambda w: (w[0], order[w]))
    return [Cell(layout, head, border, pos, seed)
            for seed, layout, head, border, pos in cells]


class StudyError(UserError, ValueError):
    """Bad input to the position study (a ``ValueError``; the tool prints
    it as one line without a traceback)."""


class Cell(NamedTuple):
    """One training of the study."""
    layout: str
    head: str
    padding: str
    pos: str
    seed: int

    @property
    def name(self) -> str:
        """Folder name, e.g. ``position-coded__parsenet__zeros__pos+1__s0``."""
        return (f'{self.layout}__{self.head}__{self.padding}__pos{self.pos}'
                f'__s{self.seed}')

    @property
    def label(self) -> str:
        """For progress lines, in the factor order of the tables and
        figures: ``parsenet / zeros / pos +1 | position-coded | seed 0``."""
        return (f'{variant_name((self.head, self.padding, self.pos))} | '
                f'{self.layout} | seed {self.seed}')

    @property
    def variant(self) -> str:
        """The cell without seed and layout: ``parsenet / zeros / pos
        +1``."""
        return variant_name((self.head, self.padding, self.pos))


def variant_name(key: tuple) -> str:
    """The one name of a variant, used by progress lines, tables and
    figures alike: decode head / border / position, e.g. ``('parsenet',
    'circular+coord', 'none')`` -> ``'parsenet / circular+coord / pos
    none'``."""
    return f'{key[0]} / {key[1]} / pos {key[2]}'


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


def build_grid(layouts: Sequence[str] = STUDY_LAYOUTS,
               seeds: Sequence[int] = (0, 1),
               blocks: Sequence[dict] = DEFAULT_BLOCKS) -> List[Cell]:
    """The study's cells, seed-major so that a partial study has whole
    seeds.

    Args:
        layouts (Sequence[str]): Synthetic layouts. Default: all three.
        seeds (Sequence[int]): Training seeds. Default: (0, 1).
        blocks (Sequence[dict]): Cartesian blocks of ``heads``,
            ``paddings`` and ``pos_heads``; their union (without repeats)
            is the grid. Default: :data:`DEFAULT_BLOCKS`.

    Returns:
        list[Cell]: In run order: seed, layout, block, head, padding, pos.
    """
    layouts = _check(layouts, LAYOUTS, 'layout')
    seeds = tuple(seeds)
    if not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise StudyError(f'seeds must be one or more non-negative ints, got '
                         f'{seeds!r}')
    cells, seen = [], set()
    for seed, layout in itertools.product(seeds, layouts):
        for block in blocks:
            unknown = set(block) - {'heads', 'paddings', 'pos_heads'}
            if unknown:
                raise StudyError(f'unknown grid block keys {sorted(unknown)}; '
                                 f'expected heads, paddings, pos_heads')
            heads = _check(block['heads'], HEADS, 'decode head')
            paddings = _check(block['paddings'], BORDERS, 'padding')
            pos_heads = _check(block['pos_heads'], tuple(POSITION),
                               'position head')
            for head, padding, pos in itertools.product(
                    heads, paddings, pos_heads):
                cell = Cell(layout, head, padding, pos, seed)
                if cell not in seen:
                    seen.add(cell)
                    cells.append(cell)
    return cells


def data_root(settings: dict, layout: str) -> str:
    """The generated tree of ``layout`` at the study's data size."""
    s = settings
    return osp.join(s['data_root'], f"{layout}_{s['img_size']}px_"
                    f"{s['num_train']}-{s['num_val']}_seed{s['data_seed']}")


def _heads() -> Dict[str, dict]:
    """The FCN auxiliary head and the PosENet head of the demo configs."""
    fcn_aux = Config.fromfile(head_config('fcn')).model.auxiliary_head
    posenet = Config.fromfile(head_config('parsenet')).model.auxiliary_head
    posenet = [h for h in posenet if h['type'] == 'PosENetHead']
    assert len(posenet) == 1, 'the ParseNet demo lost its PosENetHead'
    return dict(fcn_aux=fcn_aux.to_dict(), posenet=posenet[0].to_dict())


def cell_options(cell: Cell,
                 settings: dict,
                 work_dir: str,
                 results_file: Optional[str] = None,
                 heads: Optional[Dict[str, dict]] = None,
                 quiet: bool = True,
                 progress_every: int = 0) -> dict:
    """``cfg_options`` turning the demo config of ``cell.head`` into the
    cell's training.

    Args:
        cell (Cell): The cell.
        settings (dict): Study settings (:data:`DEFAULT_SETTINGS` keys).
        work_dir (str): The cell's work dir.
        results_file (str, optional): Where ``BorderIoUMetric`` writes its
            per-class and per-band JSON. Default: None (no file).
        heads (dict, optional): The result of ``_heads`` (read from the
            demo configs when None).
        quiet (bool): Log warnings only. Default: True.
        progress_every (int): Print a progress line (iteration, ETA) every
            this many iterations (:class:`.progress.StudyProgressHook`);
            0 for none. Default: 0.

    Returns:
        dict: Overrides for :func:`possec.apis.train`.
    """
    s = settings
    heads = heads or _heads()
    aux = [heads['fcn_aux']]
    if POS_HEADS.get(cell.pos) is not None:
        aux.append(dict(heads['posenet'], grad_scale=POS_HEADS[cell.pos]))
    elif cell.pos == 'remove':
        aux.append(position_piece('remove'))
    size = int(s['img_size'])
    iters = int(s['max_iters'])
    padding, coord = split_border(cell.padding)
    root = data_root(s, cell.layout)
    generate = dict(layout=cell.layout, num_train=s['num_train'],
                    num_val=s['num_val'], img_size=size, seed=s['data_seed'],
                    progress=False)
    optimizer, eta_min = OPTIMIZERS[s['optimizer']]
    opts = {
        'work_dir': work_dir,
        'randomness': dict(seed=cell.seed),
        'model.backbone.type': 'PadResNetV1c',
        'model.backbone.padding_mode': padding,
        'model.backbone.coord_conv': 'stem' if coord else 'none',
        'model.data_preprocessor.size': (size, size),
        'model.auxiliary_head': aux,
        # the study's own recipe, whatever the demo schedule uses
        'optim_wrapper': dict(
            _delete_=True, type='OptimWrapper', clip_grad=None,
            optimizer=dict(optimizer, lr=s['lr'])),
        'param_scheduler': [dict(type='PolyLR', eta_min=eta_min, power=0.9,
                                 begin=0, end=iters, by_epoch=False)],
        # no validation while training: the study evaluates once, after
        'train_cfg': dict(type='IterBasedTrainLoop', max_iters=iters,
                          val_interval=iters, val_begin=iters + 1),
        'default_hooks.checkpoint': dict(type='CheckpointHook',
                                         by_epoch=False, interval=iters + 1,
                                         save_last=False),
        'default_hooks.logger.interval': max(1, min(50, iters // 4)),
        'val_evaluator': dict(type='BorderIoUMetric', iou_metrics=['mIoU'],
                              results_file=results_file),
        'test_evaluator': dict(type='BorderIoUMetric', iou_metrics=['mIoU'],
                               results_file=results_file),
    }
    if cell.pos == 'shift':
        for key, value in position_piece('shift').items():
            opts[f'model.{key}'] = value
    hooks = []
    if cell.pos == 'erase':
        for key, value in position_piece('erase').items():
            opts[f'model.backbone.{key}'] = value
        hooks.append(dict(type='PositionEraserHook'))
    if not coord:  # a backbone without the option stays buildable
        del opts['model.backbone.coord_conv']
    if progress_every:
        hooks.append(dict(type='StudyProgressHook',
                          interval=int(progress_every), label=cell.label))
    if hooks:
        opts['custom_hooks'] = hooks
    if quiet:
        opts['log_level'] = 'WARNING'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        workers = int(s['num_workers'])
        opts.update({
            f'{loader}.num_workers': workers,
            f'{loader}.persistent_workers': workers > 0,
            f'{loader}.dataset.data_root': root,
            f'{loader}.dataset.generate': generate,
        })
    opts['train_dataloader.batch_size'] = int(s['batch_size'])
    return opts


def split_border(border: str) -> tuple:
    """``'circular+coord'`` -> ``('circular', True)``: the padding mode and
    whether CoordConv channels are appended at the stem."""
    if border.endswith(COORD_SUFFIX):
        return border[:-len(COORD_SUFFIX)], True
    return border, False


def position_piece(pos: str) -> dict:
    """The model part of the config piece of a removal mechanism
    (:data:`POSITION_PIECES`), read from the repository's configs."""
    path, var = POSITION_PIECES[pos]
    cfg = Config.fromfile(_repo_config(path))
    return cfg[var].to_dict()


def _repo_config(path: str) -> str:
    """One of possec's configs by its path under ``configs/`` (the prefix
    is optional), through ``possec::`` (see
    :func:`possec.analysis.common.config_path`)."""
    name = path[len('configs/'):] if path.startswith('configs/') else path
    return config_path(f'possec::{name}')


def head_config(head: str) -> str:
    """The config file that the cells of ``head`` train."""
    return _repo_config(HEAD_CONFIGS[head].replace('possec::', ''))


def resolve_grid(quick: bool = False,
                 layouts: Optional[Sequence[str]] = None,
                 seeds: Optional[Sequence[int]] = None,
                 heads: Optional[Sequence[str]] = None,
                 paddings: Optional[Sequence[str]] = None,
                 pos_heads: Optional[Sequence[str]] = None,
                 variants: Optional[Sequence[str]] = None,
                 contrasts: Optional[Sequence[str]] = None,
                 headline: bool = False,
                 **settings) -> tuple:
    """The cells and settings of a command line.

    By default the grid is the contrasts' (:func:`contrast_cells`; all of
    :data:`CONTRASTS`, or ``contrasts``; ``headline`` keeps only their
    headline comparisons; ``--quick`` is :data:`QUICK`). Any of ``heads``,
    ``paddings``, ``pos_heads`` instead gives one cartesian block (the
    missing factors take :data:`DEFAULT_BLOCKS`' first block's values), or
    ``variants`` lists the variants one by one as ``head/border/pos``
    (e.g. ``parsenet/circular+coord/none``). ``layouts`` keeps only the
    cells of those layouts (the layouts of a block grid); ``seeds`` sets
    every variant's seeds; the settings (None: unchanged) override the
    rest. ``--quick`` sets ``threads`` to 1 unless given.

    Returns:
        tuple[list[Cell], dict]: The cells and the settings overrides.
    """
    base = dict(QUICK['settings']) if quick else {}
    base.update({k: v for k, v in settings.items() if v is not None})
    if variants and (heads or paddings or pos_heads):
        raise StudyError('give either variants or heads / paddings / '
                         'pos heads, not both')
    if (variants or heads or paddings or pos_heads) and (contrasts or
                                                         headline):
        raise StudyError('give either contrasts (--contrasts, --headline) '
                         'or explicit variants / heads / paddings / pos '
                         'heads, not both')
    if variants or heads or paddings or pos_heads:
        if variants:
            blocks = tuple(_parse_variant(v) for v in variants)
        else:
            first = DEFAULT_BLOCKS[0]
            blocks = (dict(heads=tuple(heads or first['heads']),
                           paddings=tuple(paddings or first['paddings']),
                           pos_heads=tuple(pos_heads or
                                           first['pos_heads'])), )
        cells = build_grid(layouts or BLOCK_LAYOUTS, seeds or SEEDS, blocks)
        return cells, base
    names = contrasts or (QUICK['contrasts'] if quick else tuple(CONTRASTS))
    if quick and not seeds:
        seeds = QUICK['seeds']
    cells = contrast_cells(names, seeds=seeds,
                           headline_only=headline or (quick and
                                                      not contrasts))
    if layouts:
        _check(layouts, LAYOUTS, 'layout')
        cells = [c for c in cells if c.layout in layouts]
        if not cells:
            raise StudyError(f'contrasts {", ".join(names)} have no cells '
                             f'on layouts {", ".join(layouts)}')
    return cells, base


def _parse_variant(text: str) -> dict:
    parts = text.split('/')
    if len(parts) != 3:
        raise StudyError(f'variant {text!r} is not head/padding/pos, e.g. '
                         f'parsenet/zeros/-1')
    head, padding, pos = parts
    return dict(heads=(head, ), paddings=(padding, ), pos_heads=(pos, ))
