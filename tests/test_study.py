"""The position study: settings, design, builder, convergence, the
code-version guard, and an end-to-end run of a tiny grid that is
interrupted and continued."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from possec.analysis.study import cells as study_cells
from possec.analysis.study import run as study
from possec.analysis.study.builder import (cell_options, data_root,
                                           head_config)
from possec.analysis.study.convergence import judge
from possec.analysis.study.design import (CONTRASTS, DATA_SEEDS, HELP_PRIORS,
                                          HURT_PRIORS, MAIN_TILT, SEEDS,
                                          TILTS, Arm, Cell, comparisons,
                                          design_cells, position_free)
from possec.analysis.study.provenance import code_version
from possec.analysis.study.selection import block_cells, resolve_grid
from possec.analysis.study.settings import (CONVERGED, StudyError,
                                            StudySettings)

from .test_study_report import _tool

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


# ----- settings -----------------------------------------------------------


@pytest.mark.parametrize('values, word', [
    (dict(max_iter=3), 'unknown study settings'),
    (dict(max_iters=0), 'max_iters'),
    (dict(max_iters=2.5), 'max_iters'),
    (dict(batch_size=True), 'batch_size'),
    (dict(lr=0), 'lr'),
    (dict(probe_lr='fast'), 'probe_lr'),
    (dict(probe_images=1), 'probe_images'),
    (dict(optimizer='adam'), 'optimizer'),
    (dict(schedule='cosine'), 'schedule'),
    (dict(tail_iters=-1), 'tail_iters'),
    (dict(tail_iters=10), 'schedule'),  # a tail needs a constant rate
    (dict(device='tpu'), 'device'),
    (dict(threads=0), 'threads'),
    (dict(probe_patterns=()), 'probe_patterns'),
])
def test_settings_refuse_bad_values_in_one_line(values, word):
    with pytest.raises(StudyError, match=word) as err:
        StudySettings.from_dict(values)
    assert '\n' not in str(err.value)


def test_settings_round_trip_and_numbers():
    s = StudySettings.from_dict(dict(max_iters=7, threads=None))
    assert s.max_iters == 7 and s.threads is None  # None keeps the default
    assert StudySettings.from_dict(s.as_dict()) == s
    assert json.loads(json.dumps(s.as_dict()))['probe_patterns'] == [
        'H', 'V', 'G']
    # runtime fields do not belong to what a folder must share
    assert 'threads' not in s.numbers_dict()
    assert 'max_iters' in s.numbers_dict()
    assert CONVERGED.total_iters == 2 * CONVERGED.max_iters
    assert CONVERGED.schedule == 'constant'


# ----- design -------------------------------------------------------------


def test_design_cells_counts_and_keys():
    cells = design_cells()
    assert len(cells) == len(set(cells))
    # arms: help 2 per (prior, tilt); hurt 2 per (prior, tilt); context 2
    # per head (noglobal, fcn) at the 4 curve ends; removal 4
    arms = (2 * len(HELP_PRIORS) * len(TILTS) + 2 * len(HURT_PRIORS) *
            len(TILTS) + 2 * 2 * 4 + 4)
    assert arms == 48
    assert len(cells) == arms * len(SEEDS) * len(DATA_SEEDS) == 288
    assert len(SEEDS) >= 3 and len(DATA_SEEDS) >= 2
    # every comparison has both arms on its data for every seed pair
    have = set(cells)
    for c in comparisons():
        for arm in (c.variant, c.reference):
            for s in SEEDS:
                for d in DATA_SEEDS:
                    assert Cell(c.condition.layout, arm.head, arm.padding,
                                arm.pos, s, d, c.condition.prior,
                                c.condition.val_prior, c.condition.tilt,
                                c.condition.periodic) in have, (c, arm)
        # both arms of a comparison see the same data
        assert c.variant.head == c.reference.head
    # position-free arms (and so their references) train on periodic data
    assert all(c.periodic for c in cells if position_free(c.arm))
    assert all(c.periodic for c in cells)
    # the hurt doses validate at 1 - P
    for c in cells:
        if c.layout == 'prior-shift':
            assert c.val_prior == pytest.approx(1 - c.prior)
        if c.layout == 'position-prior':
            assert c.val_prior is None and c.prior in HELP_PRIORS
    # noglobal and FCN only at the curve ends of the main panel
    ends = {(c.layout, c.prior) for c in cells if c.head != 'parsenet'}
    assert ends == {('position-prior', HELP_PRIORS[0]),
                    ('position-prior', HELP_PRIORS[-1]),
                    ('prior-shift', HURT_PRIORS[0]),
                    ('prior-shift', HURT_PRIORS[-1])}
    assert {c.tilt for c in cells if c.head != 'parsenet'} == {MAIN_TILT}
    # the removal test on position-coded: zeros, circular, erase, shift
    removal = {c.arm for c in cells if c.layout == 'position-coded'}
    assert removal == {Arm('parsenet', 'zeros'), Arm('parsenet', 'circular'),
                       Arm('parsenet', 'zeros', 'erase'),
                       Arm('parsenet', 'zeros', 'shift')}
    # data-seed major, then training seed: a partial study has whole seeds
    order = [(c.data_seed, c.seed) for c in cells]
    assert order == sorted(order)
    # primary endpoints: ParseNet at the top dose of the main panel
    primary = [c for c in comparisons() if c.primary]
    assert [(c.contrast, c.condition.prior) for c in primary] == [
        ('help', HELP_PRIORS[-1]), ('hurt', HURT_PRIORS[-1])]
    assert all(c.variant.head == 'parsenet' and
               c.condition.tilt == MAIN_TILT for c in primary)
    for name, spec in CONTRASTS.items():
        assert spec['family'] and spec['layouts'], name


def test_cell_names_keep_the_old_form_without_doses():
    assert Cell('position-coded', 'parsenet', 'zeros', '+1', 0).name == \
        'position-coded__parsenet__zeros__pos+1__s0'
    cell = Cell('prior-shift', 'fcn', 'circular', 'none', 2, 1, 0.9, 0.1,
                10.0, True)
    assert cell.name == ('prior-shift-p0.9-q0.1-t10-per__fcn__circular__'
                         'posnone__s2__d1')


def test_resolve_grid_quick_primary_and_blocks():
    cells, settings = resolve_grid(quick=True)
    assert [(c.layout, c.prior, c.padding, c.seed, c.data_seed)
            for c in cells] == [
        ('position-prior', 1.0, 'zeros', 0, 0),
        ('position-prior', 1.0, 'circular', 0, 0),
        ('prior-shift', 0.9, 'zeros', 0, 0),
        ('prior-shift', 0.9, 'circular', 0, 0)]
    assert settings['threads'] == 1 and settings['max_iters'] == 300
    cells, _ = resolve_grid(primary=True)
    assert len(cells) == 4 * len(SEEDS) * len(DATA_SEEDS)
    cells, settings = resolve_grid(
        layouts=['position-prior', 'uniform'], priors=[0.5, 1.0],
        tilts=[10.0], periodic=True, seeds=[3],
        variants=['parsenet-noglobal/circular/none', 'fcn/zeros/none'],
        max_iters=7, img_size=None)
    assert settings == dict(max_iters=7)
    assert {(c.layout, c.prior, c.tilt, c.periodic) for c in cells} == {
        ('position-prior', 0.5, 10.0, True),
        ('position-prior', 1.0, 10.0, True),
        ('uniform', None, None, True)}
    assert len(cells) == 3 * 2 and {c.seed for c in cells} == {3}
    with pytest.raises(StudyError, match='needs --priors'):
        resolve_grid(layouts=['prior-shift'], heads=['fcn'])
    with pytest.raises(StudyError, match='head/padding/pos'):
        resolve_grid(variants=['parsenet-zeros-none'])
    with pytest.raises(StudyError, match='not both'):
        resolve_grid(variants=['fcn/zeros/none'], heads=['fcn'])
    with pytest.raises(StudyError, match='decode head'):
        resolve_grid(variants=['deeplab/zeros/none'])
    with pytest.raises(StudyError, match='explicit grid'):
        resolve_grid(priors=[0.5])


# ----- builder ------------------------------------------------------------


def _cfg(cell, settings, tmp_path):
    cfg = Config.fromfile(head_config(cell.head))
    cfg.merge_from_dict(cell_options(cell, settings, str(tmp_path / 'w'),
                                     'm.json'))
    return cfg


def _settings(tmp_path, **kw):
    return StudySettings.from_dict(dict(dict(img_size=48, max_iters=9,
                                             data_root=str(tmp_path)), **kw))


def test_noglobal_is_parsenet_without_the_global_branch(tmp_path):
    from mmseg.registry import MODELS
    s = _settings(tmp_path)
    kw = dict(layout='position-prior', padding='circular', pos='none',
              seed=1, data_seed=1, prior=0.9, tilt=10.0, periodic=True)
    full = _cfg(Cell(head='parsenet', **kw), s, tmp_path).to_dict()
    noglobal = _cfg(Cell(head='parsenet-noglobal', **kw), s,
                    tmp_path).to_dict()
    # the whole config is equal but for the head's use_global
    assert full['model']['decode_head'].pop('use_global') is True
    assert noglobal['model']['decode_head'].pop('use_global') is False
    assert full == noglobal
    model = MODELS.build(_cfg(Cell(head='parsenet-noglobal', **kw), s,
                              tmp_path).model)
    assert model.decode_head.use_global is False
    assert model.decode_head.global_norm is None


def _padded_convs(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)
            and (m.padding != (0, 0) or type(m).__name__ != 'Conv2d')
            and m.kernel_size != (1, 1)]


@pytest.mark.parametrize('border', ['circular', 'zeros', 'circular+coord'])
def test_fcn_heads_pad_like_the_backbone(border, tmp_path):
    from mmseg.registry import MODELS
    s = _settings(tmp_path)
    cell = Cell('position-coded', 'fcn', border, 'none', 0)
    model = MODELS.build(_cfg(cell, s, tmp_path).model)
    mode = border.split('+')[0]
    aux = model.auxiliary_head
    heads = [model.decode_head] + (list(aux) if isinstance(
        aux, torch.nn.ModuleList) else [aux])
    for head in heads:
        assert type(head).__name__ == 'PadFCNHead'
        assert head.padding_mode == mode
        convs = _padded_convs(head)
        assert convs  # FCN's 3x3 convs
        for conv in convs:
            if mode == 'circular':
                assert type(conv).__name__ == 'CircularConv2d'
            else:
                assert type(conv) is torch.nn.Conv2d
                assert conv.padding_mode == 'zeros'
    # ParseNet cells' auxiliary FCN head follows the backbone too
    cell = Cell('position-coded', 'parsenet', border, 'none', 0)
    model = MODELS.build(_cfg(cell, s, tmp_path).model)
    assert model.auxiliary_head[0].padding_mode == mode
    with pytest.raises(StudyError, match='changes feature sizes'):
        cell_options(Cell('uniform', 'fcn', 'full', 'none', 0), s, 'w')
    # the overrides pass the training entry point's option checks
    from possec.apis.train import prepare_config
    for head in ('fcn', 'parsenet', 'parsenet-noglobal'):
        cell = Cell('position-coded', head, border, 'none', 0)
        opts = cell_options(cell, s, str(tmp_path / 'w'), 'm.json')
        cfg = prepare_config(head_config(head), str(tmp_path / 'w'), opts)
        assert cfg.model.auxiliary_head is not None


def test_pad_fcn_head_against_mmseg_and_circular_shifts():
    """Zero padding computes exactly mmseg's FCNHead; circular padding
    makes the head commute with circular shifts of its input (no border
    anywhere), which zero padding does not."""
    from mmseg.models.decode_heads import FCNHead
    from possec.models.decode_heads import PadFCNHead
    kw = dict(in_channels=8, channels=6, num_convs=2, num_classes=3,
              concat_input=True, norm_cfg=None)
    torch.manual_seed(0)
    ref = FCNHead(**kw).eval()
    zeros = PadFCNHead(padding_mode='zeros', **kw).eval()
    circ = PadFCNHead(padding_mode='circular', **kw).eval()
    zeros.load_state_dict(ref.state_dict())
    circ.load_state_dict(ref.state_dict())
    x = torch.randn(2, 8, 12, 12)
    with torch.no_grad():
        assert torch.equal(zeros([x]), ref([x]))
        shifted = torch.roll(x, (5, 3), (2, 3))
        out, out_s = circ([x]), circ([shifted])
        assert torch.allclose(torch.roll(out, (5, 3), (2, 3)), out_s,
                              atol=1e-5)
        zout = zeros([x])
        assert not torch.allclose(torch.roll(zout, (5, 3), (2, 3)),
                                  zeros([shifted]), atol=1e-3)
    with pytest.raises(ValueError, match='feature size'):
        PadFCNHead(padding_mode='none', **kw)


def test_cell_options_set_data_schedule_and_validations(tmp_path):
    s = _settings(tmp_path, schedule='constant', tail_iters=5)
    cell = Cell('prior-shift', 'parsenet', 'zeros', 'erase', 4, 1, 0.75,
                0.25, 20.0, True)
    cfg = _cfg(cell, s, tmp_path)
    for loader in ('train_dataloader', 'val_dataloader'):
        gen = cfg[loader].dataset.generate
        assert (gen.layout, gen.prior, gen.val_prior, gen.tilt, gen.periodic,
                gen.seed, gen.img_size) == ('prior-shift', 0.75, 0.25, 20.0,
                                            True, 1, 48)
        assert cfg[loader].dataset.data_root == data_root(cell, s)
    assert cfg.randomness.seed == 4
    assert cfg.param_scheduler == []  # constant learning rate
    assert cfg.train_cfg.max_iters == 14
    assert (cfg.train_cfg.val_interval, cfg.train_cfg.val_begin) == (9, 9)
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert 'ValidationHistoryHook' in hooks and 'ValidationRNGHook' in hooks
    # the erasers are recalibrated before both validations
    assert hooks['PositionEraserHook']['interval'] == 9
    assert hooks['PositionEraserHook']['begin'] == 9
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=s.lr, betas=(0.9, 0.999), weight_decay=0.01,
        fused=True)
    poly = _cfg(cell, _settings(tmp_path), tmp_path)
    assert poly.param_scheduler[0].type == 'PolyLR'
    assert poly.param_scheduler[0].end == 9 == poly.train_cfg.max_iters
    # a cell without doses passes no dose arguments to the generator
    plain = _cfg(Cell('uniform', 'parsenet', 'zeros', 'none', 0), s,
                 tmp_path).train_dataloader.dataset.generate
    assert not {'prior', 'val_prior', 'tilt', 'periodic'} & set(plain)


def _formula_step(name, p, g, state, t, lr, wd, momentum=0.9,
                  betas=(0.9, 0.999), eps=1e-8):
    """One update by the published formula, in float64: AdamW
    (Loshchilov & Hutter, decoupled decay, bias-corrected moments) or SGD
    with L2 decay and heavy-ball momentum (the first step starts the
    buffer at the gradient)."""
    if name == 'SGD':
        d = g + wd * p
        state['buf'] = d if t == 1 else momentum * state['buf'] + d
        return p - lr * state['buf']
    b1, b2 = betas
    m = state['m'] = b1 * state.get('m', 0) + (1 - b1) * g
    v = state['v'] = b2 * state.get('v', 0) + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    return p * (1 - lr * wd) - lr * m_hat / (v_hat.sqrt() + eps)


@pytest.mark.parametrize('name', ['AdamW', 'SGD'])
def test_fused_optimizer_makes_the_formula_update(name):
    """The cells' fused optimizers and torch's per-parameter loop both
    follow the optimizer's formula (computed here in float64) to float32
    rounding. Five steps of lr 0.01 move a weight by up to ~0.05 (AdamW)
    or ~0.3 (SGD); rounding bounds the gap at a few 1e-6 for weights of
    |w| < 5, so 1e-5 separates rounding from a changed formula (AdamW
    without its decoupled decay is off by ~5e-4 |w|, without bias
    correction by ~0.1)."""
    lr, wd = 0.01, 0.01
    kw = dict(lr=lr, weight_decay=wd)
    if name == 'SGD':
        kw['momentum'] = 0.9
    torch.manual_seed(0)
    shapes = [(64, 32, 3, 3), (64, ), (10, 64)]
    a = [torch.nn.Parameter(torch.randn(s)) for s in shapes]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    start = [p.detach().double() for p in a]
    ref = list(start)
    states = [{} for _ in shapes]
    cls = getattr(torch.optim, name)
    fused = cls(a, fused=True, **kw)
    looped = cls(b, foreach=False, **kw)
    for t in range(1, 6):
        grads = [torch.randn(s) for s in shapes]
        for p, q, g in zip(a, b, grads):
            p.grad, q.grad = g.clone(), g.clone()
        fused.step()
        looped.step()
        ref = [_formula_step(name, r, g.double(), st, t, lr, wd)
               for r, g, st in zip(ref, grads, states)]
    moved = max((r - s).abs().max().item() for r, s in zip(ref, start))
    assert moved > 1e-2  # the five steps moved the weights
    for label, params in (('fused', a), ('looped', b)):
        gap = max((p.detach().double() - r).abs().max().item()
                  for p, r in zip(params, ref))
        assert gap < 1e-5, f'{name} {label}: max |w - formula| = {gap:.3g}'


@pytest.mark.parametrize('border, pos', [
    ('circular+coord', 'none'), ('full', 'none'), ('zeros', 'remove'),
    ('zeros', 'shift'), ('zeros', '+1')])
def test_cell_options_of_the_position_components(border, pos, tmp_path):
    """Each arm's config builds the model its name says (CoordConv at the
    stem, full padding, the confusion head, shift consistency, the
    PosENet head)."""
    from mmseg.registry import MODELS
    cell = Cell('shortcut-swap', 'parsenet', border, pos, 0)
    cfg = _cfg(cell, _settings(tmp_path, img_size=64), tmp_path)
    model = MODELS.build(cfg.model)
    backbone = model.backbone
    assert backbone.padding_mode == border.split('+')[0]
    assert backbone.coord_conv == ('stem' if '+coord' in border else 'none')
    aux = [type(h).__name__ for h in model.auxiliary_head]
    assert aux == ['PadFCNHead'] + {'remove': ['PosConfusionHead'],
                                    '+1': ['PosENetHead']}.get(pos, [])
    assert type(model).__name__ == ('ShiftConsistencyEncoderDecoder'
                                    if pos == 'shift' else 'EncoderDecoder')


def _loss_grads(model, data, key):
    """The backbone's gradients of the loss ``key`` alone."""
    model.zero_grad()
    model(**data, mode='loss')[key].backward()
    return [p.grad.clone() for p in model.backbone.parameters()
            if p.grad is not None]


def test_fcn_cells_take_the_position_heads(tmp_path):
    """An FCN cell with a position head (``--variants fcn/zeros/+1``):
    the FCN config's single auxiliary head (a dict) becomes a list with
    the PosENet head, past the training entry point's option checks; one
    training forward pass gives every head's loss, and the ``-1`` head's
    gradient at the backbone is the ``+1`` head's negated (the same
    weights)."""
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    from possec.apis.train import prepare_config
    s = _settings(tmp_path, img_size=32)
    models = {}
    for pos in ('+1', '-1', 'remove'):
        cell = Cell('position-coded', 'fcn', 'zeros', pos, 0)
        opts = cell_options(cell, s, str(tmp_path / 'w'), 'm.json')
        cfg = prepare_config(head_config('fcn'), str(tmp_path / 'w'), opts)
        torch.manual_seed(0)
        models[pos] = MODELS.build(cfg.model)
        aux = [type(h).__name__ for h in models[pos].auxiliary_head]
        assert aux == ['PadFCNHead', 'PosConfusionHead' if pos == 'remove'
                       else 'PosENetHead']
    models['-1'].load_state_dict(models['+1'].state_dict())
    gen = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        sample = SegDataSample(metainfo=dict(img_shape=(32, 32),
                                             ori_shape=(32, 32)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 21, (1, 32, 32), generator=gen))
        samples.append(sample)
    images = [torch.randint(0, 256, (3, 32, 32), generator=gen,
                            dtype=torch.uint8) for _ in range(2)]
    data = models['+1'].data_preprocessor(dict(inputs=images,
                                               data_samples=samples), True)
    for pos, model in models.items():
        model.train()
        losses = model(**data, mode='loss')
        keys = {'decode.loss_ce', 'aux_0.loss_ce', 'aux_1.loss_pos'}
        if pos == 'remove':
            keys.add('aux_1.loss_confusion')
        assert keys <= set(losses)
        assert all(torch.isfinite(losses[k]).all() for k in keys)
    plus = _loss_grads(models['+1'], data, 'aux_1.loss_pos')
    minus = _loss_grads(models['-1'], data, 'aux_1.loss_pos')
    assert plus and len(plus) == len(minus)
    assert any(g.abs().max() > 0 for g in plus)
    for p, m in zip(plus, minus):
        assert torch.allclose(m, -p, rtol=1e-5, atol=1e-8)


# ----- convergence --------------------------------------------------------


def _val(it, pairs, miou=50.):
    return dict(iter=it, metrics=dict(mIoU=miou, mIoU_pairs=pairs))


def test_convergence_criterion_on_planted_validations():
    ok = judge('position-prior', [_val(100, 60.), _val(200, 61.5)], 100, 2.)
    assert ok['converged'] is True and ok['change'] == pytest.approx(1.5)
    assert ok['key'] == 'mIoU_pairs' and ok['iters'] == [100, 200]
    assert ok['values'] == [60., 61.5]
    moving = judge('position-coded', [_val(100, 60.), _val(200, 57.)], 100,
                   2.)
    assert moving['converged'] is False
    assert moving['change'] == pytest.approx(-3.)
    # uniform has no pairs: judged on mIoU
    flat = judge('uniform', [_val(100, 10., 70.), _val(200, 40., 71.)],
                 100, 2.)
    assert flat['key'] == 'mIoU' and flat['converged'] is True
    # no tail: not measured
    none = judge('position-coded', [_val(100, 60.)], 100, 2.)
    assert none['converged'] is None and 'not measured' in none['criterion']
    # the tail's loss plateau is recorded beside the verdict
    rec = judge('position-coded', [_val(10, 1.), _val(20, 1.)], 10, 2.,
                [1.0, 1.0, 1.0, 0.99, 0.99, 0.99])
    assert rec['loss_plateau']['plateau'] is True


def test_convergence_window_reads_the_median_of_each_end():
    # a transient at the schedule's end: one validation 45 points low
    vals = [_val(i, v) for i, v in ((80, 79.), (90, 34.), (100, 80.),
                                    (110, 80.5), (120, 80.), (130, 79.5),
                                    (140, 80.4), (150, 81.), (160, 80.),
                                    (170, 80.3), (180, 79.9), (190, 80.5),
                                    (200, 80.2))]
    one = judge('position-prior', vals, 100, 2.)
    assert one['values'] == [80., 80.2] and one['converged'] is True
    mean = judge('position-prior', vals, 100, 2., window=3, every=10)
    assert mean['window_iters'] == [[80, 90, 100], [180, 190, 200]]
    assert mean['window_values'] == [[79., 34., 80.], [79.9, 80.5, 80.2]]
    # the medians, by hand: of (79, 34, 80) and of (79.9, 80.5, 80.2)
    assert mean['values'] == [79., 80.2]
    assert mean['change'] == pytest.approx(1.2)
    assert mean['converged'] is True and 'median' in mean['criterion'] \
        and '3 validations' in mean['criterion']
    assert mean['window'] == 3 and mean['every'] == 10
    # the transient read alone (window 1 at iteration 90) fails the cell
    assert judge('position-prior', vals[:2] + vals[-1:], 90, 2.)[
        'converged'] is False
    # a level that still climbs fails with the window too
    climbing = [_val(i, 60. + i / 10) for i in range(80, 210, 10)]
    rising = judge('position-prior', climbing, 100, 2., window=3, every=10)
    assert rising['values'] == [69., 79.] and rising['converged'] is False
    # a window missing a validation is not judged, and says where
    gap = judge('position-prior', [v for v in vals if v['iter'] != 190],
                100, 2., window=3, every=10)
    assert gap['converged'] is None and 'iteration 190' in gap['criterion']
    with pytest.raises(ValueError, match='spacing'):
        judge('position-prior', vals, 100, 2., window=3)


@pytest.mark.parametrize('values, word', [
    (dict(max_iters=100, tail_iters=100, schedule='constant',
          val_every=30), 'divide max_iters'),
    (dict(max_iters=90, tail_iters=100, schedule='constant',
          val_every=30), 'divide tail_iters'),
    (dict(converge_window=3), 'needs val_every'),
    (dict(max_iters=100, tail_iters=100, schedule='constant',
          converge_window=3, val_every=50), 'overlap'),
    (dict(converge_window=0), 'converge_window'),
])
def test_validation_window_settings_are_checked(values, word):
    with pytest.raises(StudyError, match=word):
        StudySettings(**values)


def test_cell_options_validate_over_the_window(tmp_path):
    s = _settings(tmp_path, schedule='constant', tail_iters=6,
                  max_iters=6, converge_window=3, val_every=2)
    cell = Cell('prior-shift', 'parsenet', 'zeros', 'erase', 4, 1, 0.75,
                0.25, 20.0, True)
    cfg = _cfg(cell, s, tmp_path)
    # validations at 2, 4, 6 (the schedule's window) and on to 12
    assert (cfg.train_cfg.val_begin, cfg.train_cfg.val_interval) == (2, 2)
    hooks = {h['type']: h for h in cfg.custom_hooks}
    assert {'ValidationHistoryHook', 'ValidationRNGHook'} <= set(hooks)
    # the erasers are recalibrated before each of those validations
    assert (hooks['PositionEraserHook']['interval'],
            hooks['PositionEraserHook']['begin']) == (2, 2)


def test_nonlinear_probe_is_accepted_only_if_it_reads_as_much():
    def rec(name, padding, linear, nonlinear, pos='none'):
        return dict(name=name, cell=dict(padding=padding, pos=pos),
                    probe=dict(spc=dict(H=linear, V=linear)),
                    probe_nonlinear=dict(spc=dict(H=nonlinear,
                                                  V=nonlinear)))
    records = [rec('a', 'zeros', .4, .5), rec('b', 'zeros', .6, .55),
               rec('c', 'circular', .1, .9), rec('d', 'zeros', .1, .9,
                                                 'erase')]
    check = study_cells.nonlinear_probe_check(records)
    # only the zero-padding cells without a mechanism: (+.1 - .05) / 2
    assert check['n'] == 2
    assert check['mean_difference'] == pytest.approx(0.025)
    assert check['accepted'] is True
    records[1] = rec('b', 'zeros', .6, .4)
    assert study_cells.nonlinear_probe_check(records)['accepted'] is False
    assert study_cells.nonlinear_probe_check(records[2:])['accepted'] is None


# ----- the code-version guard ---------------------------------------------


def test_code_version_is_the_checkouts(repo_root):
    code = code_version()
    head = subprocess.run(['git', '-C', repo_root, 'rev-parse', 'HEAD'],
                          capture_output=True, text=True)
    if head.returncode:
        assert code['commit'] is None
    else:
        assert code['commit'] == head.stdout.strip()
        assert isinstance(code['dirty'], bool)
    import possec
    assert code['version'] == possec.__version__


def _tiny_cell(cell, settings, work_dir, images, heads):
    """A stand-in for a training (the runner's tests): records which
    process ran the cell, in one shared append-only file."""
    import time
    os.makedirs(work_dir, exist_ok=True)
    time.sleep(0.2)
    with open(osp.join(osp.dirname(osp.dirname(work_dir)), 'ran.txt'),
              'a') as f:
        f.write(f'{cell.name} {os.getpid()}\n')
    miou = 40. + cell.seed
    return dict(cell=cell._asdict(), name=cell.name,
                metrics=dict(mIoU=miou, mIoU_pairs=miou / 2, aAcc=90.),
                bands=[dict(name='band0pct_5pct', lo=0., hi=.05, mIoU=30.),
                       dict(name='band5pct_inf', lo=.05, hi=None,
                            mIoU=miou)],
                probe=dict(spc=dict(H=.5, V=.25, G=0.), mae={}),
                time_s=dict(total=0.2))


def test_a_folder_refuses_cells_of_other_code(tmp_path):
    out = str(tmp_path / 'study')
    cells = block_cells(
        [Cell('uniform', 'parsenet', 'zeros', 'none', 0).condition],
        [Arm('parsenet', 'zeros'), Arm('parsenet', 'circular')], [0], [0])
    run = study.run_study(cells, out, dict(threads=1), cell_fn=_tiny_cell,
                          log=lambda line: None)
    for r in run['results']:  # every record says which code made it
        assert r['code'] == code_version()
        assert r['settings']['threads'] == 1
    # plant a cell of another commit
    path = osp.join(out, 'runs', cells[0].name, 'result.json')
    record = json.load(open(path))
    record['code'] = dict(record['code'], commit='0' * 40)
    json.dump(record, open(path, 'w'))
    with pytest.raises(StudyError, match='--allow-mixed-code') as err:
        study.run_study(cells, out, dict(threads=1), cell_fn=_tiny_cell,
                        log=lambda line: None)
    assert '\n' not in str(err.value) and '0000000000' in str(err.value)
    # a record without code counts as other code too
    del record['code']
    json.dump(record, open(path, 'w'))
    with pytest.raises(StudyError, match='code not recorded'):
        study.run_study(cells, out, dict(threads=1), cell_fn=_tiny_cell,
                        log=lambda line: None)
    again = study.run_study(cells, out, dict(threads=1), cell_fn=_tiny_cell,
                            log=lambda line: None, allow_mixed_code=True)
    assert again['ran'] == []


def test_collect_reports_every_cell_of_every_command(tmp_path):
    """Two commands (other seeds) into one folder: each command's own
    results file holds its grid's cells; --collect holds them all and
    quotes both commands, each once although the first ran twice."""
    out, report = str(tmp_path / 'study'), str(tmp_path / 'all')
    arms = [Arm('parsenet', 'zeros'), Arm('parsenet', 'circular')]
    cond = [Cell('uniform', 'parsenet', 'zeros', 'none', 0).condition]
    first, second = block_cells(cond, arms, [0], [0]), block_cells(
        cond, arms, [1], [0])
    quiet = dict(cell_fn=_tiny_cell, log=lambda line: None)
    for cells, cmd in ((first, 'cmd --seeds 0'), (first, 'cmd --seeds 0'),
                       (second, 'cmd --seeds 1')):
        run = study.run_study(cells, out, dict(threads=1), command=cmd,
                              **quiet)
    assert sorted(r['name'] for r in run['results']) == sorted(
        c.name for c in second)
    with pytest.raises(SystemExit):  # argparse: not allowed together
        _tool().main(['--report', 'x.json', '--collect', out])
    _tool().main(['--collect', out, '--out-dir', report])
    data = json.load(open(osp.join(report, 'study_results.json')))
    assert sorted(r['name'] for r in data['cells']) == sorted(
        c.name for c in first + second)
    assert data['command'] == 'cmd --seeds 0\ncmd --seeds 1'
    assert data['settings']['max_iters'] == StudySettings().max_iters
    for cell in first + second:  # the same records as in the folder
        record = json.load(open(osp.join(out, 'runs', cell.name,
                                         'result.json')))
        assert record in data['cells']
        assert record['command'] == ('cmd --seeds 0' if cell in first
                                     else 'cmd --seeds 1')
    # a command recorded in the folder whose cells have not finished (a
    # run still going) is not quoted
    study.record_command(out, 'cmd --seeds 2')
    again = str(tmp_path / 'again')
    _tool().main(['--collect', out, '--out-dir', again])
    data = json.load(open(osp.join(again, 'study_results.json')))
    assert data['command'] == 'cmd --seeds 0\ncmd --seeds 1'
    # records from before the field: every command of the folder
    for cell in first:
        path = osp.join(out, 'runs', cell.name, 'result.json')
        record = json.load(open(path))
        del record['command']
        json.dump(record, open(path, 'w'))
    older = str(tmp_path / 'older')
    _tool().main(['--collect', out, '--out-dir', older])
    data = json.load(open(osp.join(older, 'study_results.json')))
    assert data['command'] == 'cmd --seeds 0\ncmd --seeds 1\ncmd --seeds 2'


@pytest.mark.parametrize('make, word', [
    (lambda d: None, 'not a study folder'),
    (lambda d: (os.makedirs(d), open(osp.join(d, 'study_settings.json'),
                                     'w').write('{}')), 'no finished cell'),
])
def test_collect_refuses_a_folder_without_cells(tmp_path, make, word):
    folder, report = str(tmp_path / 'study'), str(tmp_path / 'all')
    make(folder)
    with pytest.raises(StudyError, match=word) as err:
        study.collect_folder(folder, report)
    assert '\n' not in str(err.value)
    assert not osp.exists(report)  # nothing written


def test_slurm_without_submitit_is_one_line(monkeypatch, tmp_path):
    from possec.analysis.study.launch import submit_slurm
    monkeypatch.setitem(sys.modules, 'submitit', None)
    with pytest.raises(StudyError, match='pip install submitit') as err:
        submit_slurm([], str(tmp_path), StudySettings(), 2)
    assert '\n' not in str(err.value)


# ----- end to end ---------------------------------------------------------


class _Interrupt(Exception):
    pass


def test_study_runs_resumes_and_records(tmp_path, monkeypatch, repo_root):
    """Two tiny cells with a constant-rate tail and both probes; the
    second dies in its probe; the rerun skips the first and redoes the
    second from scratch; the records carry code, settings and the
    convergence test, and --report re-derives the report from the results
    file alone."""
    out = str(tmp_path / 'study')
    settings = dict(max_iters=2, tail_iters=2, schedule='constant',
                    batch_size=2, img_size=32, num_train=4, num_val=2,
                    probe_images=6, probe_epochs=1, nonlinear_probe_epochs=1,
                    threads=1, val_batch_size=2)
    cells = block_cells(
        [Cell('position-coded', 'parsenet', 'zeros', 'none', 0).condition],
        [Arm('parsenet', 'zeros'), Arm('parsenet-noglobal', 'circular')],
        [0], [0])
    real_probe = study_cells.probe_backbone

    def probe_dies_on_second(backbone, images, settings_, seed, *args,
                             **kwargs):
        if osp.isfile(osp.join(out, 'runs', cells[0].name, 'result.json')):
            raise _Interrupt
        return real_probe(backbone, images, settings_, seed, *args,
                          **kwargs)

    monkeypatch.setattr(study_cells, 'probe_backbone', probe_dies_on_second)
    lines = []
    with pytest.raises(_Interrupt):
        study.run_study(cells, out, settings, log=lines.append)
    first, second = (osp.join(out, 'runs', c.name) for c in cells)
    assert osp.isfile(osp.join(first, 'result.json'))
    assert not osp.isfile(osp.join(second, 'result.json'))
    open(osp.join(second, 'left_by_the_killed_run'), 'w').close()
    monkeypatch.setattr(study_cells, 'probe_backbone', real_probe)
    lines.clear()
    # threads and data_root do not change the numbers: the study continues
    run = study.run_study(cells, out, dict(settings, threads=2,
                                           data_root=osp.join(out, 'data')),
                          log=lines.append)
    assert run['ran'] == [cells[1].name]
    assert not osp.exists(osp.join(second, 'left_by_the_killed_run'))
    lines = [x for x in lines if x.startswith('[')]
    assert lines[0].endswith('finished before, skipped')

    s = StudySettings.from_dict(dict(settings,
                                     data_root=osp.join(out, 'data')))
    root = data_root(cells[0], s)
    names = open(osp.join(root, 'ImageSets', 'Segmentation',
                          'val.txt')).read().split()
    labelled = sum(int((np.array(Image.open(osp.join(
        root, 'SegmentationClass', f'{n}.png'))) != 255).sum())
        for n in names)
    for r in run['results']:
        # provenance: the checkout's commit, the settings of the cell
        assert r['code'] == code_version()
        assert r['settings']['max_iters'] == 2
        assert r['settings']['tail_iters'] == 2
        # validated at the schedule's end (2) and the tail's end (4)
        assert [v['iter'] for v in r['validations']] == [2, 4]
        conv = r['convergence']
        assert conv['iters'] == [2, 4] and conv['key'] == 'mIoU_pairs'
        a, b = (v['metrics']['mIoU_pairs'] for v in r['validations'])
        assert conv['values'] == [a, b]
        assert conv['converged'] == (abs(b - a) < 2.0)
        # the last validation is the record's, as the metric file says
        metrics = json.load(open(osp.join(out, 'runs', r['name'],
                                          'metrics.json')))
        assert r['metrics']['mIoU'] == pytest.approx(metrics['mIoU'])
        assert r['validations'][-1]['metrics']['mIoU'] == pytest.approx(
            metrics['mIoU'])
        pixels = [b['pixels'] for b in r['bands']]
        assert len(pixels) == 4 and sum(pixels) == labelled
        assert sorted(r['probe']['spc']) == ['G', 'H', 'V']
        assert r['probe']['convs'] == 1
        assert r['probe_nonlinear']['convs'] == 2
        assert r['probe_nonlinear']['saturated'] is None  # one epoch
        assert all(-1 <= v <= 1 for v in r['probe']['spc'].values())
        assert set(r['time_s']) == {'train', 'eval', 'probe', 'total'}
        assert r['time_s']['eval'] > 0
    # the results file, and the report from it alone
    results = run['files']['results']
    data = json.load(open(results))
    assert data['format'] == 'possec-study-results'
    assert sorted(c['name'] for c in data['cells']) == sorted(
        c.name for c in cells)
    tool = _tool()
    report_dir = str(tmp_path / 'again')
    tool.main(['--report', results, '--out-dir', report_dir])
    assert osp.isfile(osp.join(report_dir, 'study.md'))
    with open(osp.join(report_dir, 'study_bands.png'), 'rb') as f:
        assert f.read(8) == PNG_MAGIC

    # the same folder with other settings is refused, naming the key
    with pytest.raises(StudyError, match='max_iters'):
        study.run_study(cells, out, dict(settings, max_iters=3))


def test_a_folder_from_before_the_window_settings_continues(tmp_path):
    """A settings file written before converge_window / val_every existed
    meant one validation at each end: the same settings continue it, a
    window is refused, naming the keys."""
    s = StudySettings(max_iters=100, tail_iters=100, schedule='constant')
    old = {k: v for k, v in s.numbers_dict().items()
           if k not in ('converge_window', 'val_every')}
    with open(tmp_path / study.SETTINGS_FILE, 'w') as f:
        json.dump(old, f)
    study.check_same_settings(str(tmp_path), s)  # accepted
    with open(tmp_path / study.SETTINGS_FILE, 'w') as f:
        json.dump(old, f)
    with pytest.raises(StudyError, match='converge_window, val_every'):
        study.check_same_settings(str(tmp_path), s.replace(
            converge_window=2, val_every=20))


def test_a_windowed_cell_validates_and_judges_over_its_windows(tmp_path):
    """A cell with a window of 2 validations 2 iterations apart validates
    at 2, 4 (the schedule's window), 6 and 8 (the tail's); its verdict
    reads the means of the recorded validations, and the report names the
    spans."""
    out = str(tmp_path / 'study')
    settings = dict(max_iters=4, tail_iters=4, schedule='constant',
                    converge_window=2, val_every=2, batch_size=2,
                    img_size=32, num_train=4, num_val=2, probe_images=6,
                    probe_epochs=1, threads=1, val_batch_size=2)
    cells = block_cells(
        [Cell('position-coded', 'parsenet', 'zeros', 'none', 0).condition],
        [Arm('parsenet', 'zeros')], [0], [0])
    run = study.run_study(cells, out, settings, log=lambda line: None)
    r = run['results'][0]
    assert [v['iter'] for v in r['validations']] == [2, 4, 6, 8]
    pairs = {v['iter']: v['metrics']['mIoU_pairs'] for v in r['validations']}
    conv = r['convergence']
    assert conv['window_iters'] == [[2, 4], [6, 8]]
    # the median of two validations is their mean
    assert conv['values'] == pytest.approx([(pairs[2] + pairs[4]) / 2,
                                            (pairs[6] + pairs[8]) / 2])
    assert conv['converged'] == (abs((pairs[6] + pairs[8]) / 2 -
                                     (pairs[2] + pairs[4]) / 2) < 2.0)
    report = open(run['files']['markdown']).read()
    assert '| 2-4 / 6-8 |' in report and 'last 2 validations' in report


def test_cli_parses_signed_position_heads_and_workers(repo_root):
    tool = _tool()
    args = tool.parse_args(['--pos-heads', 'none', '-1', '+1', '--seeds',
                            '0', '2', '--max-iters', '5', '--workers',
                            'auto'])
    assert args.pos_heads == ['none', '-1', '+1'] and args.seeds == [0, 2]
    options = {k: v for k, v in vars(args).items()
               if k not in tool._NOT_SETTINGS}
    options['periodic'] = bool(options['periodic'])
    cells, settings = resolve_grid(**options)
    assert {c.pos for c in cells} == {'none', '-1', '+1'}
    assert settings == dict(max_iters=5)


def test_cli_converged_grid_and_workers(repo_root, monkeypatch, capsys):
    tool = _tool()
    seen = {}

    def fake_run(cells, out, settings, **kwargs):
        seen.update(cells=cells, settings=settings, **kwargs)
        return dict(results=[], files=dict(markdown='m', results='r'))

    monkeypatch.setattr(tool, 'run_study', fake_run)
    monkeypatch.setattr(os, 'cpu_count', lambda: 16)
    tool.main(['--converged', '--contrasts', 'removal', '--seeds', '0',
               '--data-seeds', '0', '--workers', 'auto', '--threads', '2',
               '--out-dir', 'unused'])
    assert seen['settings'] == CONVERGED.replace(threads=2)
    assert len(seen['cells']) == 4 and all(
        c.layout == 'position-coded' and c.periodic for c in seen['cells'])
    assert seen['workers'] == 16 // 2  # one per two cores on CPU
    with pytest.raises(StudyError, match='--workers'):
        tool.main(['--quick', '--workers', 'many', '--out-dir', 'unused'])


def test_two_workers_run_every_cell_exactly_once(tmp_path):
    out = str(tmp_path / 'study')
    conditions = [Cell(layout, 'parsenet', 'zeros', 'none', 0).condition
                  for layout in ('uniform', 'position-coded')]
    cells = block_cells(conditions, [Arm('parsenet', 'zeros'),
                                     Arm('parsenet', 'circular')],
                        [0, 1, 2], [0])
    assert len(cells) == 12
    # a half-finished cell of an earlier run: no result.json, no .done
    half = osp.join(out, 'runs', cells[3].name)
    os.makedirs(half)
    open(osp.join(half, 'partial'), 'w').close()
    lines = []
    run = study.run_study(cells, out, dict(threads=1), cell_fn=_tiny_cell,
                          workers=2, log=lines.append)
    ran = open(osp.join(out, 'ran.txt')).read().split('\n')[:-1]
    names = [line.split()[0] for line in ran]
    assert sorted(names) == sorted(c.name for c in cells)  # each once
    assert not osp.exists(osp.join(half, 'partial'))
    assert [r['name'] for r in run['results']] == [c.name for c in cells]
    assert set(run['ran']) <= set(names)
    # a second run (here, or another invocation) runs nothing again
    again = study.run_study(cells, out, dict(threads=1),
                            cell_fn=_tiny_cell, workers=2,
                            log=lines.append)
    assert again['ran'] == []
    assert len(open(osp.join(out, 'ran.txt')).read().split('\n')) == 13
    # a finished cell whose folder the user deleted runs again
    shutil.rmtree(osp.join(out, 'runs', cells[5].name))
    redo = study.run_study(cells, out, dict(threads=1), cell_fn=_tiny_cell,
                           log=lines.append)
    assert redo['ran'] == [cells[5].name]
    assert any('result.json is missing; running it again' in line
               for line in lines)


def test_two_invocations_share_one_folder(tmp_path, repo_root):
    """Two independent processes over one folder (a Slurm array's shape)
    run every cell once between them."""
    out = str(tmp_path / 'study')
    script = (
        'import sys; sys.path.insert(0, {root!r});'
        'from tests.test_study import _tiny_cell;'
        'from possec.analysis.study import run as study;'
        'from possec.analysis.study.design import Arm, Condition;'
        'from possec.analysis.study.selection import block_cells;'
        'cells = block_cells([Condition("uniform")], [Arm("fcn", "zeros"),'
        ' Arm("fcn", "circular")], [0, 1, 2, 3], [0]);'
        'study.run_study(cells, {out!r}, dict(threads=1), '
        'cell_fn=_tiny_cell, log=lambda line: None)').format(
            root=repo_root, out=out)
    procs = [subprocess.Popen([sys.executable, '-c', script])
             for _ in range(2)]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    names = [line.split()[0] for line in open(
        osp.join(out, 'ran.txt')).read().split('\n')[:-1]]
    assert len(names) == 8 == len(set(names))


def test_progress_hook_prints_iteration_and_eta(capsys):
    from types import SimpleNamespace
    from possec.engine.hooks import StudyProgressHook
    hook = StudyProgressHook(interval=2, label='cell')
    runner = SimpleNamespace(iter=0, max_iters=5)
    hook.before_train(runner)
    for i in range(5):
        runner.iter = i
        hook.after_train_iter(runner, i, outputs=dict(loss=1.5))
    lines = capsys.readouterr().out.splitlines()
    # iterations 2, 4 and the last one
    assert [line.split('iter ')[1].split(' ')[0] for line in lines] == [
        '2/5', '4/5', '5/5']
    assert all('loss 1.500' in line and 'ETA' in line for line in lines)
    assert lines[-1].endswith('ETA 0 s')
    with pytest.raises(ValueError, match='interval'):
        StudyProgressHook(interval=0)


def test_cli_ctrl_c_says_how_to_continue(repo_root, monkeypatch, capsys):
    tool = _tool()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tool, 'run_study', interrupted)
    with pytest.raises(SystemExit) as exc:
        tool.main(['--quick', '--out', 'unused'])
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert 'interrupted; rerun the same command to continue' in err
    assert 'Traceback' not in err


def test_study_eta_extrapolates_the_cells_rate(monkeypatch):
    """3 cells finished in 60 s since the start (1 was done before): 20 s
    a cell, 8 left -> 160 s; in minutes from 90 s on."""
    from possec.analysis.study import run as study_run
    monkeypatch.setattr(study_run.time, 'monotonic', lambda: 1060.0)
    assert study_run.study_eta(4, 12, 1000.0, 1) == \
        ' | 4/12 cells, ETA 3 min'
    assert study_run.study_eta(4, 5, 1000.0, 1) == ' | 4/5 cells, ETA 20 s'
    assert study_run.study_eta(5, 5, 1000.0, 1) == ' | 5/5 cells'
    assert study_run.study_eta(1, 5, 1000.0, 1) == ' | 1/5 cells'


def test_probe_images_are_periodic(tmp_path):
    """The probe reads position from periodic images, like every cell's
    data: a seam would give a circular backbone a landmark (the leak of
    docs/position_study.md). The seam itself is tested in
    tests/test_periodic.py; here, that the probe's tree is drawn so."""
    from possec.analysis.study.builder import probe_data_root
    from possec.datasets.synthetic import read_generation_meta
    s = StudySettings(data_root=str(tmp_path), img_size=32, probe_images=8)
    images = study_cells.study_probe_images(s)
    assert tuple(images.shape) == (8, 3, 32, 32)
    assert read_generation_meta(probe_data_root(s))['periodic'] == 'both'


def test_study_cells_print_no_run_summary(tmp_path, capsys):
    """A study cell trains without the run summary block (the study
    prints its own progress); the same cell's options through the
    training entry point still end with it."""
    from possec.apis import train
    s = StudySettings.from_dict(dict(
        max_iters=1, batch_size=2, img_size=32, num_train=2, num_val=1,
        probe_images=2, probe_epochs=1, val_batch_size=1, threads=1,
        data_root=str(tmp_path / 'data')))
    cell = Cell('position-coded', 'parsenet', 'zeros', 'none', 0)
    images = study_cells.study_probe_images(s)
    record = study_cells.run_cell(cell, s, str(tmp_path / 'cell'), images)
    assert [v['iter'] for v in record['validations']] == [1]
    assert '==== possec:' not in capsys.readouterr().out
    opts = cell_options(cell, s, str(tmp_path / 'train'))
    train(head_config(cell.head), work_dir=str(tmp_path / 'train'),
          cfg_options=opts)
    out = capsys.readouterr().out
    assert out.count('==== possec: training finished: 1 iterations') == 1
