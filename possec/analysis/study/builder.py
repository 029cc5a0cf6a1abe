"""From a study cell to its training: the config overrides of each cell.

Every cell is one training of the demo family (ResNet-18-D8 with possec's
padding-aware ``PadResNetV1c``, random init) on one generated data tree.
No config file exists per cell: each cell is a demo config
(:data:`HEAD_CONFIGS`) plus the ``cfg_options`` of :func:`cell_options`,
which set the border rule (everywhere: backbone, FCN heads), the decode
head, the position mechanism (config pieces under
``configs/_base_/position/``), the data, the schedule and the
validations of the convergence test (:mod:`.convergence`).
"""
import os.path as osp
from typing import Dict, Optional

from mmengine.config import Config

from possec.models.decode_heads.padded_fcn_head import SAME_SIZE_MODES
from ..common import config_path
from .design import COORD_SUFFIX, Cell, StudyError
from .settings import OPTIMIZERS, StudySettings

#: The demo config each decode head trains; ``parsenet-noglobal`` is the
#: ParseNet config with ``use_global=False`` and nothing else changed.
HEAD_CONFIGS = {
    'fcn': 'possec::demo/fcn_r18-d8_1xb8-160_synthetic-128x128.py',
    'parsenet': 'possec::demo/parsenet_pos_synthetic.py',
    'parsenet-noglobal': 'possec::demo/parsenet_pos_synthetic.py',
}
#: Position head -> grad_scale of the PosENetHead (None: no such head).
POS_HEADS = {'none': None, '+1': 1.0, '-1': -1.0}
#: The config pieces of the removal mechanisms (repository-relative).
POSITION_PIECES = dict(
    remove=('configs/_base_/position/pos_confusion_r18.py', 'posenet_head'),
    shift=('configs/_base_/position/shift_consistency.py',
           'shift_consistency'),
    erase=('configs/_base_/position/position_eraser.py', 'position_eraser'))
#: The probe's images: ``uniform`` data drawn with this seed, which no
#: training tree uses.
PROBE_DATA_SEED = 1000


def split_border(border: str) -> tuple:
    """``'circular+coord'`` -> ``('circular', True)``: the padding mode and
    whether CoordConv channels are appended at the stem."""
    if border.endswith(COORD_SUFFIX):
        return border[:-len(COORD_SUFFIX)], True
    return border, False


def head_padding(border: str) -> str:
    """The border rule of a cell's FCN heads: the backbone's, or zeros for
    a backbone rule that changes feature sizes (``none``, ``full``)."""
    mode, _ = split_border(border)
    return mode if mode in SAME_SIZE_MODES else 'zeros'


def _repo_config(path: str) -> str:
    """One of possec's configs by its path under ``configs/`` (the prefix
    is optional), through ``possec::``."""
    name = path[len('configs/'):] if path.startswith('configs/') else path
    return config_path(f'possec::{name}')


def head_config(head: str) -> str:
    """The config file that the cells of ``head`` train."""
    if head not in HEAD_CONFIGS:
        raise StudyError(f'unknown decode head {head!r}; expected one of '
                         f'{", ".join(map(repr, HEAD_CONFIGS))}')
    return _repo_config(HEAD_CONFIGS[head].replace('possec::', ''))


def position_piece(pos: str) -> dict:
    """The model part of the config piece of a removal mechanism
    (:data:`POSITION_PIECES`), read from the repository's configs."""
    path, var = POSITION_PIECES[pos]
    cfg = Config.fromfile(_repo_config(path))
    return cfg[var].to_dict()


def read_heads() -> Dict[str, dict]:
    """The FCN auxiliary head and the PosENet head of the demo configs
    (read once per worker and passed to :func:`cell_options`)."""
    fcn_aux = Config.fromfile(head_config('fcn')).model.auxiliary_head
    posenet = Config.fromfile(head_config('parsenet')).model.auxiliary_head
    posenet = [h for h in posenet if h['type'] == 'PosENetHead']
    if len(posenet) != 1:
        raise StudyError('the ParseNet demo config has no single '
                         'PosENetHead auxiliary head; the study reads its '
                         'position head from there')
    return dict(fcn_aux=fcn_aux.to_dict(), posenet=posenet[0].to_dict())


def data_args(cell: Cell, settings: StudySettings) -> dict:
    """The arguments of ``generate_synthetic_voc`` for the cell's data
    (the dose arguments only where the cell has them, so that trees
    without doses keep their arguments and bytes)."""
    s = settings
    args = dict(layout=cell.layout, num_train=s.num_train,
                num_val=s.num_val, img_size=s.img_size, seed=cell.data_seed,
                progress=False)
    for key in ('prior', 'val_prior', 'tilt'):
        if getattr(cell, key) is not None:
            args[key] = getattr(cell, key)
    if cell.periodic:
        args['periodic'] = True
    return args


def data_root(cell: Cell, settings: StudySettings) -> str:
    """The generated tree of the cell's data condition and data seed."""
    if settings.data_root is None:
        raise StudyError('settings.data_root is None: the study sets it to '
                         '<study folder>/data before building cells')
    s = settings
    return osp.join(s.data_root, f'{cell.condition.name}_{s.img_size}px_'
                    f'{s.num_train}-{s.num_val}_seed{cell.data_seed}')


def probe_data_root(settings: StudySettings) -> str:
    """The tree of the probe's images (:data:`PROBE_DATA_SEED`, periodic
    like every cell's data: a seam in the probe's images would give a
    circularly padded backbone a landmark to read position from)."""
    s = settings
    return osp.join(s.data_root, f'uniform-per_{s.img_size}px_'
                    f'{s.probe_images}-1_seed{PROBE_DATA_SEED}_probe')


def cell_options(cell: Cell,
                 settings: StudySettings,
                 work_dir: str,
                 results_file: Optional[str] = None,
                 heads: Optional[Dict[str, dict]] = None,
                 quiet: bool = True,
                 progress_every: int = 0) -> dict:
    """``cfg_options`` turning the demo config of ``cell.head`` into the
    cell's training.

    The border rule reaches every padded convolution: the backbone's
    (``padding_mode``, CoordConv at the stem for ``+coord``) and the FCN
    heads' (decode and auxiliary, as :class:`~possec.models.decode_heads.
    PadFCNHead`). The run validates at the end of the schedule and, when
    ``settings.tail_iters``, again at the end of its constant-rate tail
    (with ``settings.val_every``, every that many iterations from the
    first validation of the convergence test's window on);
    :class:`~possec.engine.hooks.ValidationHistoryHook` keeps both, and
    :class:`~possec.engine.hooks.ValidationRNGHook` keeps the validations
    from changing the training.

    Args:
        cell (Cell): The cell.
        settings (StudySettings): Study settings (``data_root`` set).
        work_dir (str): The cell's work dir.
        results_file (str, optional): Where ``BorderIoUMetric`` writes its
            per-class and per-band JSON. Default: None (no file).
        heads (dict, optional): :func:`read_heads`' result (read from the
            demo configs when None). Default: None.
        quiet (bool): Log warnings only. Default: True.
        progress_every (int): Print a progress line every this many
            iterations (``StudyProgressHook``); 0 for none. Default: 0.

    Returns:
        dict: Overrides for :func:`possec.apis.train`.
    """
    s = settings
    padding, coord = split_border(cell.padding)
    if cell.head == 'fcn' and padding not in SAME_SIZE_MODES:
        raise StudyError(
            f'cell {cell.name}: the FCN decode head follows the backbone\'s '
            f'border rule, and {padding!r} changes feature sizes; use one '
            f'of {", ".join(SAME_SIZE_MODES)} with fcn')
    heads = heads or read_heads()
    aux = [dict(heads['fcn_aux'], type='PadFCNHead',
                padding_mode=head_padding(cell.padding))]
    if POS_HEADS.get(cell.pos) is not None:
        aux.append(dict(heads['posenet'], grad_scale=POS_HEADS[cell.pos]))
    elif cell.pos == 'remove':
        aux.append(position_piece('remove'))
    size = int(s.img_size)
    total = s.total_iters
    root = data_root(cell, s)
    optimizer, eta_min = OPTIMIZERS[s.optimizer]
    if s.schedule == 'poly':
        schedulers = [dict(type='PolyLR', eta_min=eta_min, power=0.9,
                           begin=0, end=s.max_iters, by_epoch=False)]
    else:
        schedulers = []
    opts = {
        'work_dir': work_dir,
        'randomness': dict(seed=cell.seed),
        'model.backbone.type': 'PadResNetV1c',
        'model.backbone.padding_mode': padding,
        'model.data_preprocessor.size': (size, size),
        # FCN's config has one auxiliary head (a dict), ParseNet's a list
        'model.auxiliary_head': (aux[0] if cell.head == 'fcn' and
                                 len(aux) == 1 else aux),
        # fused: one kernel per step instead of a loop over parameters
        # (the same update; docs/benchmarks.md for the time it saves)
        'optim_wrapper': dict(
            _delete_=True, type='OptimWrapper', clip_grad=None,
            optimizer=dict(optimizer, lr=s.lr, fused=True)),
        'param_scheduler': schedulers,
        # validations at the end of the schedule and of the tail only, or
        # every val_every iterations from the schedule's window on
        'train_cfg': dict(type='IterBasedTrainLoop', max_iters=total,
                          val_interval=s.val_every or s.max_iters,
                          val_begin=s.val_begin),
        # no checkpoint, or (keep_checkpoint) the state at the last
        # iteration only: what .extend resumes an unconverged cell from
        # (kept when an extension saves the next one: .extend removes it
        # once the new record is on disk)
        'default_hooks.checkpoint': dict(
            type='CheckpointHook', by_epoch=False,
            interval=total if s.keep_checkpoint else total + 1,
            save_last=False, max_keep_ckpts=-1),
        'default_hooks.logger.interval': max(1, min(50, total // 4)),
        'val_evaluator': dict(type='BorderIoUMetric', iou_metrics=['mIoU'],
                              results_file=results_file),
        'test_evaluator': dict(type='BorderIoUMetric', iou_metrics=['mIoU'],
                               results_file=results_file),
    }
    if coord:
        opts['model.backbone.coord_conv'] = 'stem'
    if cell.head == 'parsenet-noglobal':
        opts['model.decode_head.use_global'] = False
    if cell.head == 'fcn':
        opts['model.decode_head.type'] = 'PadFCNHead'
        opts['model.decode_head.padding_mode'] = padding
    if cell.pos == 'shift':
        for key, value in position_piece('shift').items():
            opts[f'model.{key}'] = value
    # validations leave the training's random streams as they found them:
    # a cell trains the same whichever iterations it is validated at
    # (possec.apis.train adds ResumeRNGHook: an extension from a kept
    # state trains what one longer run would)
    hooks = [dict(type='ValidationHistoryHook'),
             dict(type='ValidationRNGHook')]
    if cell.pos == 'erase':
        for key, value in position_piece('erase').items():
            opts[f'model.backbone.{key}'] = value
        # statistics recomputed before each validation
        # (so for erasure cells the validations' iterations are part of
        # the training: it goes on with the recalibrated statistics)
        hooks.append(dict(type='PositionEraserHook',
                          interval=(s.val_every or s.max_iters)
                          if s.tail_iters else None,
                          begin=s.val_begin))
    if progress_every:
        hooks.append(dict(type='StudyProgressHook',
                          interval=int(progress_every), label=cell.label))
    opts['custom_hooks'] = hooks
    if quiet:
        opts['log_level'] = 'WARNING'
    generate = data_args(cell, s)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        workers = int(s.num_workers)
        opts.update({
            f'{loader}.num_workers': workers,
            f'{loader}.persistent_workers': workers > 0,
            f'{loader}.dataset.data_root': root,
            f'{loader}.dataset.generate': generate,
        })
    opts['train_dataloader.batch_size'] = int(s.batch_size)
    for loader in ('val_dataloader', 'test_dataloader'):
        opts[f'{loader}.batch_size'] = int(s.val_batch_size)
    return opts
