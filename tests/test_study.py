"""The position study: grid, config overrides, report numbers, and an
end-to-end run of a tiny grid that is interrupted and continued."""
import json
import os
import os.path as osp
import shutil
import statistics

import numpy as np
import pytest
from scipy import stats as scipy_stats
from mmengine.config import Config
from PIL import Image

from possec.analysis.study import cells as study
from possec.analysis.study.aggregate import contrasts, group, mean_sd
from possec.analysis.study.grid import (DEFAULT_BLOCKS, DEFAULT_SETTINGS,
                                        RUNTIME_SETTINGS, Cell,
                                        StudyError, build_grid, cell_options,
                                        data_root, head_config, resolve_grid)
from possec.analysis.study.report import write_report

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def test_grid_is_the_union_of_blocks_seed_major():
    cells = build_grid(['position-coded', 'border-shift'], [0, 1])
    per_layout_seed = sum(
        len(b['heads']) * len(b['paddings']) * len(b['pos_heads'])
        for b in DEFAULT_BLOCKS)
    # ParseNet x {zeros, circular}, ParseNet zeros x {+1, -1}, FCN x 2
    assert per_layout_seed == 6
    assert {(c.head, c.padding, c.pos) for c in cells} == {
        ('parsenet', 'zeros', 'none'), ('parsenet', 'circular', 'none'),
        ('parsenet', 'zeros', '+1'), ('parsenet', 'zeros', '-1'),
        ('fcn', 'zeros', 'none'), ('fcn', 'circular', 'none')}
    assert len(cells) == 2 * 2 * per_layout_seed == len(set(cells))
    # the first half holds every variant and layout for seed 0
    assert {c.seed for c in cells[:12]} == {0}
    assert {c.layout for c in cells[:12]} == {'position-coded',
                                              'border-shift'}
    # overlapping blocks give each cell once
    twice = build_grid(['uniform'], [0], [DEFAULT_BLOCKS[2]] * 2)
    assert twice == [Cell('uniform', 'fcn', 'zeros', 'none', 0),
                     Cell('uniform', 'fcn', 'circular', 'none', 0)]


@pytest.mark.parametrize('kwargs, word', [
    (dict(layouts=['diagonal']), 'layout'),
    (dict(seeds=[-1]), 'seeds'),
    (dict(seeds=[]), 'seeds'),
    (dict(blocks=[dict(heads=['fcn'], paddings=['zero'],
                       pos_heads=['none'])]), 'padding'),
    (dict(blocks=[dict(heads=['fcn'], paddings=['zeros'],
                       pos_heads=['+2'])]), 'position head'),
    (dict(blocks=[dict(heads=[], paddings=['zeros'],
                       pos_heads=['none'])]), 'decode head'),
    (dict(blocks=[dict(heads=['fcn'], paddings=['zeros'], pos=['none'])]),
     'block keys'),
])
def test_grid_refuses_bad_values(kwargs, word):
    with pytest.raises(StudyError, match=word):
        build_grid(**kwargs)


def test_resolve_grid_quick_and_one_block():
    cells, settings = resolve_grid(quick=True)
    # the headline help and hurt comparisons: ParseNet, zeros vs circular,
    # on position-coded and shortcut-swap, seed 0
    assert [(c.layout, c.head, c.padding, c.pos, c.seed) for c in cells] == [
        (layout, 'parsenet', padding, 'none', 0)
        for layout in ('position-coded', 'shortcut-swap')
        for padding in ('zeros', 'circular')]
    # the full study's training recipe and length, on smaller data, one
    # thread per worker unless given
    for key in ('max_iters', 'batch_size', 'optimizer', 'lr', 'img_size',
                'num_train', 'probe_images'):
        assert settings[key] == DEFAULT_SETTINGS[key], key
    assert settings['num_val'] < DEFAULT_SETTINGS['num_val']
    assert settings['probe_epochs'] < DEFAULT_SETTINGS['probe_epochs']
    assert settings['threads'] == 1
    assert resolve_grid(quick=True, threads=2)[1]['threads'] == 2
    cells, settings = resolve_grid(layouts=['uniform'], seeds=[3],
                                   heads=['fcn'], max_iters=7,
                                   img_size=None)
    # the factors not given take the first default block's values
    assert {(c.head, c.padding, c.pos) for c in cells} == {
        ('fcn', p, q) for p in DEFAULT_BLOCKS[0]['paddings']
        for q in DEFAULT_BLOCKS[0]['pos_heads']}
    assert settings == dict(max_iters=7)
    cells, _ = resolve_grid(seeds=[0], layouts=['uniform'], variants=[
        'fcn/zeros/none', 'parsenet/circular/-1'])
    assert cells == [Cell('uniform', 'fcn', 'zeros', 'none', 0),
                     Cell('uniform', 'parsenet', 'circular', '-1', 0)]
    with pytest.raises(StudyError, match='head/padding/pos'):
        resolve_grid(variants=['parsenet-zeros-none'])
    with pytest.raises(StudyError, match='not both'):
        resolve_grid(variants=['fcn/zeros/none'], heads=['fcn'])


@pytest.mark.parametrize('head, pos, scales', [
    ('parsenet', 'none', []), ('parsenet', '+1', [1.0]),
    ('fcn', '-1', [-1.0])])
def test_cell_options_make_the_cells_model(head, pos, scales, tmp_path):
    settings = study.check_settings(dict(img_size=48, max_iters=9,
                                         data_root=str(tmp_path)))
    cell = Cell('border-shift', head, 'circular', pos, 5)
    cfg = Config.fromfile(head_config(head))
    cfg.merge_from_dict(cell_options(cell, settings, str(tmp_path / 'w'),
                                     'm.json'))
    model = cfg.model
    assert model.decode_head.type == ('ParseNetHead' if head == 'parsenet'
                                      else 'FCNHead')
    assert model.backbone.type == 'PadResNetV1c'
    assert model.backbone.padding_mode == 'circular'
    aux = model.auxiliary_head
    assert [h.type for h in aux] == ['FCNHead'] + ['PosENetHead'] * len(
        scales)
    assert [h.grad_scale for h in aux[1:]] == scales
    # the PosENet head reads R-18's four stages, as the demo's does
    demo = Config.fromfile(head_config('parsenet')).model.auxiliary_head
    for h in aux[1:]:
        assert h.in_channels == demo[1].in_channels == [64, 128, 256, 512]
    assert cfg.randomness.seed == 5
    # the study's recipe (AdamW by default), set whole by the cell
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=settings['lr'], betas=(0.9, 0.999),
        weight_decay=0.01)
    assert cfg.param_scheduler[0].eta_min == 1e-5
    assert cfg.train_cfg.max_iters == 9 == cfg.param_scheduler[0].end
    assert cfg.train_cfg.val_begin > 9  # evaluated once, after training
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        assert ds.generate.layout == 'border-shift'
        assert ds.generate.img_size == 48
        assert ds.data_root.startswith(str(tmp_path))
        assert 'border-shift_48px' in ds.data_root
    assert cfg.val_evaluator.type == 'BorderIoUMetric'
    assert cfg.val_evaluator.results_file == 'm.json'
    sgd = dict(settings, optimizer='sgd', lr=0.05)
    cfg = Config.fromfile(head_config(head))
    cfg.merge_from_dict(cell_options(cell, sgd, str(tmp_path / 'w'), 'm'))
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.05, momentum=0.9, weight_decay=0.0005)
    assert cfg.param_scheduler[0].eta_min == 1e-4


def test_settings_are_checked():
    with pytest.raises(StudyError, match='unknown study settings'):
        study.check_settings(dict(max_iter=3))
    with pytest.raises(StudyError, match='max_iters'):
        study.check_settings(dict(max_iters=0))
    with pytest.raises(StudyError, match='probe_images'):
        study.check_settings(dict(probe_images=1))
    with pytest.raises(StudyError, match='probe_lr'):
        study.check_settings(dict(probe_lr=0))


def _fake_result(layout, head, padding, pos, seed, miou, band0, spc):
    return dict(cell=dict(layout=layout, head=head, padding=padding,
                          pos=pos, seed=seed),
                metrics=dict(mIoU=miou, mIoU_pairs=miou / 2, aAcc=90.),
                bands=[dict(name='band0pct_5pct', lo=0., hi=.05, mIoU=band0),
                       dict(name='band5pct_inf', lo=.05, hi=None,
                            mIoU=miou)],
                probe=dict(spc=dict(H=spc, V=spc / 2, G=0.), mae={}))


def test_report_numbers_against_statistics(tmp_path):
    results = [
        _fake_result('border-shift', 'parsenet', 'zeros', 'none', 0, 40., 30.,
                     .9),
        _fake_result('border-shift', 'parsenet', 'zeros', 'none', 1, 44., 31.,
                     .8),
        _fake_result('border-shift', 'parsenet', 'circular', 'none', 0, 41.,
                     35., .3),
        _fake_result('border-shift', 'parsenet', 'circular', 'none', 1, 47.,
                     37., .2),
        _fake_result('border-shift', 'parsenet', 'zeros', '-1', 0, 39., 29.,
                     .5),
    ]
    grouped = group(results)
    zeros = grouped['border-shift'][('parsenet', 'zeros', 'none')]
    assert mean_sd([v['mIoU'] for v in zeros.values()]) == (
        42., statistics.stdev([40., 44.]))
    assert mean_sd([None, 3.]) == (3., None)
    assert mean_sd([None]) == (None, None)
    items = {(c['variant'], c['factor']): c
             for c in contrasts(grouped['border-shift'])}
    circ = items[(('parsenet', 'circular', 'none'), 'padding')]
    assert circ['reference'] == ('parsenet', 'zeros', 'none')
    assert circ['deltas']['mIoU'] == [1., 3.]  # paired by seed
    assert circ['deltas']['band0'] == [5., 6.]
    assert circ['deltas']['spc'] == pytest.approx(
        [(.3 + .15) / 3 - (.9 + .45) / 3, (.2 + .1) / 3 - (.8 + .4) / 3])
    adv = items[(('parsenet', 'zeros', '-1'), 'pos')]
    assert adv['seeds'] == [0] and adv['deltas']['mIoU'] == [-1.]
    files = write_report(results, str(tmp_path), dict(
        probe_patterns=['H', 'V', 'G']), command='python x.py', total=9)
    text = open(files['markdown']).read()
    assert '5 of 9 cells finished' in text and 'python x.py' in text
    assert f'| parsenet / zeros / pos none | 2 | 42.0 ± ' \
           f'{statistics.stdev([40., 44.]):.1f} |' in text
    # circular - zeros mIoU, paired by seed: [1, 3]; the 95% t-interval
    # from scipy's paired t-test
    ci = scipy_stats.ttest_rel([41., 47.], [40., 44.]).confidence_interval()
    assert f'+2.0 [{ci.low:+.1f}, {ci.high:+.1f}]' in text
    assert '| mIoU 0-5% | mIoU >=5% |' in text
    for key in ('bands', 'spc'):
        with open(files[key], 'rb') as f:
            assert f.read(8) == PNG_MAGIC
    assert json.load(open(files['json']))['finished'] == 5


class _Interrupt(Exception):
    pass


def test_study_runs_resumes_and_skips(tmp_path, monkeypatch):
    """Two tiny cells; the second dies in its probe; the rerun skips the
    first and redoes the second from scratch."""
    out = str(tmp_path / 'study')
    settings = dict(max_iters=2, batch_size=2, img_size=32, num_train=4,
                    num_val=2, probe_images=6, probe_epochs=1, threads=1)
    cells = build_grid(['border-shift'], [0], [dict(
        heads=['parsenet'], paddings=['zeros', 'circular'],
        pos_heads=['-1'])])
    assert len(cells) == 2
    real_probe = study.probe_backbone

    def probe_dies_on_second(backbone, images, settings_, seed, *args):
        if osp.isfile(osp.join(out, 'runs', cells[0].name, 'result.json')):
            raise _Interrupt
        return real_probe(backbone, images, settings_, seed, *args)

    monkeypatch.setattr(study, 'probe_backbone', probe_dies_on_second)
    lines = []
    with pytest.raises(_Interrupt):
        study.run_study(cells, out, settings, log=lines.append)
    first, second = (osp.join(out, 'runs', c.name) for c in cells)
    assert osp.isfile(osp.join(first, 'result.json'))
    assert osp.isdir(second)
    assert not osp.isfile(osp.join(second, 'result.json'))
    lines = [x for x in lines if x.startswith('[')]
    assert len(lines) == 1 and lines[0].startswith(
        '[1/2] parsenet / zeros / pos -1 | border-shift | seed 0: mIoU ')
    report = json.load(open(osp.join(out, 'study.json')))
    assert report['finished'] == 1 and report['total'] == 2
    stamp = os.stat(osp.join(first, 'result.json')).st_mtime_ns
    open(osp.join(second, 'left_by_the_killed_run'), 'w').close()

    monkeypatch.setattr(study, 'probe_backbone', real_probe)
    ran = []
    real_cell = study.run_cell

    def counting(cell, *args):
        ran.append(cell)
        return real_cell(cell, *args)

    monkeypatch.setattr(study, 'run_cell', counting)
    lines.clear()
    # threads and data_root do not change the numbers: the study continues
    run = study.run_study(cells, out, dict(settings, threads=2,
                                           data_root=osp.join(out, 'data')),
                          log=lines.append)
    assert ran == [cells[1]]  # the finished cell is not run again
    assert os.stat(osp.join(first, 'result.json')).st_mtime_ns == stamp
    assert not osp.exists(osp.join(second, 'left_by_the_killed_run'))
    lines = [x for x in lines if x.startswith('[')]
    assert lines[0].endswith('finished before, skipped')
    assert lines[1].startswith('[2/2] parsenet / circular / pos -1 | ')
    assert run['ran'] == [cells[1].name]

    results = run['results']
    # the data lives in the study folder unless data_root says otherwise
    root = data_root(dict(study.check_settings(settings),
                          data_root=osp.join(out, 'data')), 'border-shift')
    assert osp.isdir(root)
    names = open(osp.join(root, 'ImageSets', 'Segmentation',
                          'val.txt')).read().split()
    labelled = sum(int((np.array(Image.open(osp.join(
        root, 'SegmentationClass', f'{n}.png'))) != 255).sum())
        for n in names)
    assert [r['name'] for r in results] == [c.name for c in cells]
    for result in results:
        metrics = json.load(open(osp.join(out, 'runs', result['name'],
                                          'metrics.json')))
        assert result['metrics']['mIoU'] == pytest.approx(metrics['mIoU'])
        # the bands split exactly the labelled pixels of the val masks
        pixels = [b['pixels'] for b in result['bands']]
        assert len(pixels) == 4 and sum(pixels) == labelled
        assert sorted(result['probe']['spc']) == ['G', 'H', 'V']
        assert all(-1 <= v <= 1 for v in result['probe']['spc'].values())
        assert len(result['class_iou']) == 21
    for name in ('study.json', 'study.md', 'study_bands.png',
                 'study_spc.png'):
        assert osp.isfile(osp.join(out, name)), name
    assert json.load(open(osp.join(out, 'study.json')))['finished'] == 2
    text = open(osp.join(out, 'study.md')).read()
    assert 'parsenet / circular / pos -1' in text

    # the same folder with other settings is refused, naming the key
    with pytest.raises(StudyError, match='max_iters'):
        study.run_study(cells, out, dict(settings, max_iters=3))


def test_cli_parses_signed_position_heads(repo_root):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'position_study_tool',
        osp.join(repo_root, 'tools', 'analysis', 'position_study.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = tool.parse_args(['--pos-heads', 'none', '-1', '+1', '--seeds',
                            '0', '2', '--max-iters', '5'])
    assert args.pos_heads == ['none', '-1', '+1'] and args.seeds == [0, 2]
    options = {k: v for k, v in vars(args).items() if k != 'out'}
    cells, settings = resolve_grid(**options)
    assert {c.pos for c in cells} == {'none', '-1', '+1'}
    assert settings == dict(max_iters=5)


def test_folders_from_before_the_optimizer_setting_continue_as_sgd(tmp_path):
    """A study folder whose settings file predates the ``optimizer`` setting
    was trained with SGD: it continues with ``optimizer='sgd'`` and refuses
    AdamW (which would mix two recipes in one report)."""
    old = study.check_settings(dict(optimizer='sgd', lr=0.05))
    recorded = {k: v for k, v in old.items()
                if k not in RUNTIME_SETTINGS and k != 'optimizer'}
    (tmp_path / study.SETTINGS_FILE).write_text(json.dumps(recorded))
    study._check_same_settings(str(tmp_path), old)  # continues
    with pytest.raises(StudyError, match='differing: optimizer'):
        study._check_same_settings(str(tmp_path),
                                   dict(old, optimizer='adamw'))
    with pytest.raises(StudyError, match='optimizer must be one of'):
        study.check_settings(dict(optimizer='adam'))


# ----- the contrasts, the workers, the report's intervals -----------------


def test_contrast_grid_seeds_and_union():
    from possec.analysis.study.grid import (CONTRASTS, HEADLINE_SEEDS,
                                            SEEDS, contrast_cells)
    cells = contrast_cells()
    assert len(cells) == len(set(cells))
    keys = {(c.layout, c.head, c.padding, c.pos) for c in cells}
    for name, spec in CONTRASTS.items():
        for layout in spec['layouts']:
            for head in spec['heads']:
                variants = spec['variants']
                if isinstance(variants, dict):
                    variants = variants[layout]
                for variant, reference in spec['comparisons']:
                    if variant not in variants:  # skipped on this layout
                        continue
                    for key in (variant, reference):
                        seeds = {c.seed for c in cells if (
                            c.layout, c.head, c.padding, c.pos) == (
                                layout, head) + tuple(key)}
                        # >= 3 seeds per cell, 5 for the headline ones
                        assert len(seeds) >= 3, (name, layout, head, key)
    for name in ('help', 'hurt'):
        spec = CONTRASTS[name]
        for key in spec['headline']:
            seeds = {c.seed for c in cells if (c.layout, c.head, c.padding,
                                               c.pos) == (
                spec['layouts'][0], 'parsenet') + tuple(key)}
            assert seeds == set(HEADLINE_SEEDS)
    # 4 help variants per head on position-coded; on shortcut-swap 6 hurt
    # variants with ParseNet (the help ones, shift and erase) and 5 with
    # FCN (context: no erase); 4 removal variants on uniform
    assert len(keys) == 2 * 4 + (6 + 5) + 4
    # seed-major: every seed-0 cell comes before any seed-1 cell
    seeds = [c.seed for c in cells]
    assert seeds == sorted(seeds)
    assert contrast_cells(['help'], headline_only=True, seeds=[7]) == [
        Cell('position-coded', 'parsenet', p, 'none', 7)
        for p in ('zeros', 'circular')]
    with pytest.raises(StudyError, match='contrast'):
        contrast_cells(['helps'])
    with pytest.raises(StudyError, match='no cells'):
        contrast_cells(['removal'], headline_only=True)
    assert set(SEEDS) < set(HEADLINE_SEEDS)


@pytest.mark.parametrize('border, pos', [
    ('circular+coord', 'none'), ('full', 'none'), ('zeros', 'remove'),
    ('zeros', 'shift'), ('zeros', 'erase')])
def test_cell_options_of_the_position_components(border, pos, tmp_path):
    """Each variant's config builds the model its name says (CoordConv at
    the stem, full padding, the confusion head, shift consistency, the
    position erasers with their calibration hook)."""
    from mmseg.registry import MODELS
    settings = study.check_settings(dict(img_size=64, max_iters=9,
                                         data_root=str(tmp_path)))
    cell = Cell('shortcut-swap', 'parsenet', border, pos, 0)
    cfg = Config.fromfile(head_config('parsenet'))
    cfg.merge_from_dict(cell_options(cell, settings, str(tmp_path / 'w')))
    model = MODELS.build(cfg.model)
    backbone = model.backbone
    assert backbone.padding_mode == border.split('+')[0]
    assert backbone.coord_conv == ('stem' if '+coord' in border else 'none')
    aux = [type(h).__name__ for h in model.auxiliary_head]
    assert aux == ['FCNHead'] + (['PosConfusionHead'] if pos == 'remove'
                                 else [])
    assert type(model).__name__ == ('ShiftConsistencyEncoderDecoder'
                                    if pos == 'shift' else 'EncoderDecoder')
    assert backbone.erase_position == ('mean' if pos == 'erase' else 'none')
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    assert ('PositionEraserHook' in hooks) == (pos == 'erase')
    assert cell.label == (f'parsenet / {border} / pos {pos} | '
                          f'shortcut-swap | seed 0')


def _tiny_cell(cell, settings, work_dir, images, heads):
    """A stand-in for a training (the runner's tests): records which
    process ran the cell, in one shared append-only file."""
    import time
    os.makedirs(work_dir, exist_ok=True)
    time.sleep(0.2)
    with open(osp.join(osp.dirname(osp.dirname(work_dir)), 'ran.txt'),
              'a') as f:
        f.write(f'{cell.name} {os.getpid()}\n')
    return dict(_fake_result(cell.layout, cell.head, cell.padding, cell.pos,
                             cell.seed, 40. + cell.seed, 30., .5),
                name=cell.name, time_s=dict(total=0.2))


def test_two_workers_run_every_cell_exactly_once(tmp_path):
    out = str(tmp_path / 'study')
    cells = build_grid(['uniform', 'position-coded'], [0, 1, 2], [dict(
        heads=['parsenet'], paddings=['zeros', 'circular'],
        pos_heads=['none'])])
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
    assert len(again['results']) == 12
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
    import subprocess
    import sys
    out = str(tmp_path / 'study')
    script = (
        'import sys; sys.path.insert(0, {root!r});'
        'from tests.test_study import _tiny_cell;'
        'from possec.analysis.study import cells as study;'
        'from possec.analysis.study.grid import build_grid;'
        'cells = build_grid(["uniform"], [0, 1, 2, 3], [dict('
        'heads=["fcn"], paddings=["zeros", "circular"], '
        'pos_heads=["none"])]);'
        'study.run_study(cells, {out!r}, dict(threads=1), '
        'cell_fn=_tiny_cell, log=lambda line: None)').format(
            root=repo_root, out=out)
    procs = [subprocess.Popen([sys.executable, '-c', script])
             for _ in range(2)]
    assert [p.wait(timeout=600) for p in procs] == [0, 0]
    names = [line.split()[0] for line in open(
        osp.join(out, 'ran.txt')).read().split('\n')[:-1]]
    assert len(names) == 8 == len(set(names))


def test_named_contrasts_intervals_against_scipy(tmp_path):
    """Help contrast, 3 seeds: the interval is scipy's paired t-test's;
    the context interaction is FCN's difference minus ParseNet's."""
    from possec.analysis.study.aggregate import named_contrasts
    zeros = {0: 60., 1: 64., 2: 61.}
    circ = {0: 30., 1: 41., 2: 33.}
    fz, fc = {0: 20., 1: 22., 2: 25.}, {0: 18., 1: 19., 2: 24.}
    results = []
    for head, values in (('parsenet', (zeros, circ)), ('fcn', (fz, fc))):
        for padding, per_seed in zip(('zeros', 'circular'), values):
            for seed, v in per_seed.items():
                results.append(_fake_result('position-coded', head, padding,
                                            'none', seed, v, v, .5))
    rows = named_contrasts(group(results))
    help_row = [r for r in rows if r['contrast'] == 'help'][0]
    assert help_row['headline'] and help_row['head'] == 'parsenet'
    st = help_row['stats']['mIoU_pairs']  # pairs mIoU is mIoU / 2 here
    ref = scipy_stats.ttest_rel([circ[s] / 2 for s in range(3)],
                                [zeros[s] / 2 for s in range(3)])
    ci = ref.confidence_interval()
    assert st['mean'] == pytest.approx(np.mean([circ[s] - zeros[s]
                                                for s in range(3)]) / 2)
    assert (st['ci_low'], st['ci_high']) == pytest.approx((ci.low, ci.high))
    assert st['effect'] == (ci.high < 0 or ci.low > 0)
    inter = [r for r in rows if r['interaction']]
    assert len(inter) == 1
    d = [(fc[s] - fz[s]) - (circ[s] - zeros[s]) for s in range(3)]
    ref = scipy_stats.ttest_1samp(d, 0.).confidence_interval()
    st = inter[0]['stats']['mIoU']
    assert st['diffs'] == pytest.approx(d)
    assert (st['ci_low'], st['ci_high']) == pytest.approx((ref.low,
                                                           ref.high))
    files = write_report(results, str(tmp_path), dict(
        probe_patterns=['H', 'V', 'G']))
    text = open(files['markdown']).read()
    assert '### help' in text and '### context' in text
    assert 'an effect: the variant is worse' in text  # circular, help
    with open(files['contrasts'], 'rb') as f:
        assert f.read(8) == PNG_MAGIC


def test_progress_hook_prints_iteration_and_eta(capsys):
    from types import SimpleNamespace
    from possec.analysis.study.progress import StudyProgressHook
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
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'position_study_tool',
        osp.join(repo_root, 'tools', 'analysis', 'position_study.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tool, 'run_study', interrupted)
    with pytest.raises(SystemExit) as exc:
        tool.main(['--quick', '--out', 'unused'])
    assert exc.value.code == 130
    err = capsys.readouterr().err
    assert 'interrupted; rerun the same command to continue' in err
    assert 'Traceback' not in err
