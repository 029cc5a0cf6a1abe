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
STUDY_LAYOUTS = ('position-coded', 'border-shift', 'uniform')

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
    probe_patterns=('H', 'V', 'G'), data_root=None, threads=None)
# probe_lr: the paper's 0.1 diverges on the trained R-18 features (the
# readout's loss rises epoch after epoch); 0.01 converges.
#: Settings that do not change the numbers (a study may continue with
#: other values). The data is a function of layout, size, counts and seed
#: (the same arguments give the same bytes), wherever it is generated;
#: data_root None means ``<study folder>/data``.
RUNTIME_SETTINGS = ('threads', 'num_workers', 'data_root')
#: ``--quick``: one seed of the contrasts that the full study found clear
#: (docs/position_study.md): zero vs circular padding, and the +1 position
#: head, on the position-coded layout and the uniform control; 6 cells at
#: the full study's training length on small data: 7.5 minutes on 2 CPU
#: cores (measured, quiet machine).
QUICK = dict(
    blocks=(dict(heads=('parsenet', ), paddings=('zeros', 'circular'),
                 pos_heads=('none', )),
            dict(heads=('parsenet', ), paddings=('zeros', ),
                 pos_heads=('+1', ))),
    layouts=('position-coded', 'uniform'), seeds=(0, ),
    settings=dict(max_iters=300, batch_size=4, optimizer='adamw', lr=0.002,
                  img_size=64, num_train=200, num_val=50, probe_images=64,
                  probe_epochs=5))


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
        """For progress lines: ``zeros / +1 / parsenet / seed 0 / layout``."""
        return (f'{self.padding} / {self.pos} / {self.head} / seed '
                f'{self.seed} / {self.layout}')

    @property
    def variant(self) -> str:
        """The cell without seed and layout, e.g. ``parsenet zeros pos+1``."""
        return f'{self.head} {self.padding} pos{self.pos}'


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
            paddings = _check(block['paddings'], PADDING_MODES, 'padding')
            pos_heads = _check(block['pos_heads'], tuple(POS_HEADS),
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
    fcn_aux = Config.fromfile(config_path(
        HEAD_CONFIGS['fcn'])).model.auxiliary_head
    posenet = Config.fromfile(config_path(
        HEAD_CONFIGS['parsenet'])).model.auxiliary_head
    posenet = [h for h in posenet if h['type'] == 'PosENetHead']
    assert len(posenet) == 1, 'the ParseNet demo lost its PosENetHead'
    return dict(fcn_aux=fcn_aux.to_dict(), posenet=posenet[0].to_dict())


def cell_options(cell: Cell,
                 settings: dict,
                 work_dir: str,
                 results_file: Optional[str] = None,
                 heads: Optional[Dict[str, dict]] = None,
                 quiet: bool = True) -> dict:
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

    Returns:
        dict: Overrides for :func:`possec.apis.train`.
    """
    s = settings
    heads = heads or _heads()
    aux = [heads['fcn_aux']]
    if POS_HEADS[cell.pos] is not None:
        aux.append(dict(heads['posenet'], grad_scale=POS_HEADS[cell.pos]))
    size = int(s['img_size'])
    iters = int(s['max_iters'])
    root = data_root(s, cell.layout)
    generate = dict(layout=cell.layout, num_train=s['num_train'],
                    num_val=s['num_val'], img_size=size, seed=s['data_seed'],
                    progress=False)
    optimizer, eta_min = OPTIMIZERS[s['optimizer']]
    opts = {
        'work_dir': work_dir,
        'randomness': dict(seed=cell.seed),
        'model.backbone.type': 'PadResNetV1c',
        'model.backbone.padding_mode': cell.padding,
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


def resolve_grid(quick: bool = False,
                 layouts: Optional[Sequence[str]] = None,
                 seeds: Optional[Sequence[int]] = None,
                 heads: Optional[Sequence[str]] = None,
                 paddings: Optional[Sequence[str]] = None,
                 pos_heads: Optional[Sequence[str]] = None,
                 variants: Optional[Sequence[str]] = None,
                 **settings) -> tuple:
    """The cells and settings of a command line.

    Starts from the default grid (or :data:`QUICK`); any of ``heads``,
    ``paddings``, ``pos_heads`` replaces the grid's blocks by one cartesian
    block (the missing factors take the first block's values); or
    ``variants`` lists the variants one by one as ``head/padding/pos``
    (e.g. ``parsenet/zeros/-1``); ``layouts``, ``seeds`` and the settings
    (None: unchanged) override the rest.

    Returns:
        tuple[list[Cell], dict]: The cells and the settings overrides.
    """
    blocks = QUICK['blocks'] if quick else DEFAULT_BLOCKS
    base = dict(QUICK['settings']) if quick else {}
    base.update({k: v for k, v in settings.items() if v is not None})
    if variants and (heads or paddings or pos_heads):
        raise StudyError('give either variants or heads / paddings / '
                         'pos heads, not both')
    if variants:
        blocks = tuple(_parse_variant(v) for v in variants)
    elif heads or paddings or pos_heads:
        first = blocks[0]
        blocks = (dict(heads=tuple(heads or first['heads']),
                       paddings=tuple(paddings or first['paddings']),
                       pos_heads=tuple(pos_heads or first['pos_heads'])), )
    default_layouts = QUICK['layouts'] if quick else STUDY_LAYOUTS
    default_seeds = QUICK['seeds'] if quick else (0, 1)
    cells = build_grid(layouts or default_layouts, seeds or default_seeds,
                       blocks)
    return cells, base


def _parse_variant(text: str) -> dict:
    parts = text.split('/')
    if len(parts) != 3:
        raise StudyError(f'variant {text!r} is not head/padding/pos, e.g. '
                         f'parsenet/zeros/-1')
    head, padding, pos = parts
    return dict(heads=(head, ), paddings=(padding, ), pos_heads=(pos, ))
