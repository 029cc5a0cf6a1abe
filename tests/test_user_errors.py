"""Every bad input ends in one line on stderr (expected / found / what to
do) and exit status 2, through possec.apis.cli.run_cli (what the tools
call), without a traceback: bad data, config keys, checkpoints, config
files, option values, swapped arguments and output folders; a run that
fails before its first iteration leaves no folder behind."""
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from possec.apis import test, train
from possec.apis.cli import run_cli
from possec.apis.explain import min_input_size
from possec.apis.train import prepare_config

from .conftest import DEMO_FCN, ROOT, run_tool, tiny_overrides

PARSENET_DEMO = osp.join(ROOT, 'configs', 'demo',
                         'parsenet_pos_synthetic.py')


def _opts(root, work_dir, **extra):
    opts = tiny_overrides(root, work_dir, max_iters=2, interval=2,
                          input_size=(64, 64))
    opts.update(extra)
    return opts


def _one_line(capsys, fn, *args, **kwargs):
    """Run through run_cli; assert exit 2 and return the error line."""
    with pytest.raises(SystemExit) as info:
        run_cli(fn, *args, **kwargs)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    lines = [line for line in err.splitlines() if line.startswith('error:')]
    assert len(lines) == 1, err[-2000:]
    return lines[0]


@pytest.fixture
def bad_voc(tiny_voc, tmp_path):
    """A copy of the tiny dataset whose train split holds one image, and
    the paths of that image and its label."""
    root = str(tmp_path / 'VOC2012')
    shutil.copytree(tiny_voc, root)
    split = osp.join(root, 'ImageSets', 'Segmentation', 'train.txt')
    name = open(split).read().split()[0]
    with open(split, 'w') as f:
        f.write(name + '\n')
    return root, osp.join(root, 'JPEGImages', f'{name}.jpg'), osp.join(
        root, 'SegmentationClass', f'{name}.png')


def test_corrupt_jpeg_names_the_image(bad_voc, tmp_path):
    root, img, _ = bad_voc
    with open(img, 'wb') as f:  # a JPEG whose bytes are garbage
        f.write(np.random.default_rng(0).bytes(3000))
    proc = run_tool(['tools/train.py', DEMO_FCN],
                    cfg_options=_opts(root, str(tmp_path / 'wd')))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (f"error: image {img!r} cannot be decoded: expected a "
                    'readable image file (JPEG/PNG), found a corrupt or '
                    'truncated one; replace it, or remove its name from the '
                    'split file')


def test_label_of_another_size_names_the_image(bad_voc, tmp_path, capsys):
    root, img, label = bad_voc
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(label)
    line = _one_line(capsys, train, DEMO_FCN,
                     cfg_options=_opts(root, str(tmp_path / 'wd')))
    assert line.startswith(f'error: label {label!r} is 64x48 (WxH) but its '
                           f'image {img!r} is 64x64: expected a label of '
                           "the image's size")
    # it failed in the first iteration: the work dir it made is gone
    assert not (tmp_path / 'wd').exists()


def test_label_value_out_of_range_names_the_image(bad_voc, tmp_path,
                                                  capsys):
    root, img, label = bad_voc
    array = np.array(Image.open(label))
    array[3, 5] = 40
    array[0, 0] = 255  # the ignore index is fine
    Image.fromarray(array).save(label)
    # with a DataLoader worker process: the worker's error still gives one
    # line
    opts = _opts(root, str(tmp_path / 'wd'), **{
        'train_dataloader.num_workers': 1})
    line = _one_line(capsys, train, DEMO_FCN, cfg_options=opts)
    assert line == (
        f'error: label {label!r} (image {img!r}) holds class value(s) 40: '
        'expected 0..20 (num_classes=21) or the ignore index 255; fix the '
        "label, or set the model's num_classes (decode_head.num_classes) "
        'to match the dataset')


def test_leftover_base_keys_after_switching_head(tmp_path, capsys):
    config = tmp_path / 'psp.py'
    config.write_text(f'_base_ = [{DEMO_FCN!r}]\n'
                      "model = dict(decode_head=dict(type='PSPHead', "
                      'pool_scales=(1, 2, 3, 6)))\n')
    line = _one_line(capsys, prepare_config, str(config))
    assert line.startswith(
        "error: model.decode_head (PSPHead) takes no argument 'num_convs', "
        "'concat_input'")
    assert "decode_head=dict(_delete_=True, type='PSPHead', ...)" in line


def _padding_mode_error(capsys, tiny_voc, tmp_path, padding_mode):
    """The error line of training the FCN demo with a PadResNetV1c backbone
    of ``padding_mode`` set by --cfg-options."""
    opts = _opts(tiny_voc, str(tmp_path / 'wd'), **{
        'model.backbone.type': 'PadResNetV1c',
        'model.backbone.padding_mode': padding_mode})
    return _one_line(capsys, train, DEMO_FCN, cfg_options=opts)


def test_unknown_padding_mode_from_options(tiny_voc, tmp_path, capsys):
    line = _padding_mode_error(capsys, tiny_voc, tmp_path, 'mirror')
    assert line.startswith(
        'error: model.backbone (PadResNetV1c) rejected its config: unknown '
        "padding_mode 'mirror'; expected one of")
    assert 'set by --cfg-options model.backbone.type=PadResNetV1c ' \
        'model.backbone.padding_mode=mirror' in line


def test_min_input_size_of_valid_convolution_backbones():
    # the sizes the docs state (configs/_base_/padding, docs/benchmarks.md)
    base = dict(type='PadResNetV1c', padding_mode='none', num_stages=4,
                out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                strides=(1, 2, 1, 1), contract_dilation=True,
                norm_cfg=dict(type='BN', requires_grad=True))
    assert min_input_size(dict(base, depth=18)) == 311
    assert min_input_size(dict(base, depth=50)) == 431


def test_no_padding_on_too_small_images(tiny_voc, tmp_path, capsys):
    line = _padding_mode_error(capsys, tiny_voc, tmp_path, 'none')
    assert line.startswith(
        "error: model.backbone PadResNetV1c (depth 18) with padding_mode="
        "'none' needs inputs of at least 311x311 pixels")


@pytest.fixture(scope='module')
def fcn_checkpoint(tiny_voc, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('fcn'))
    train(DEMO_FCN, cfg_options=_opts(tiny_voc, work_dir))
    return osp.join(work_dir, 'iter_2.pth')


def test_truncated_checkpoint(fcn_checkpoint, tiny_voc, tmp_path, capsys):
    path = str(tmp_path / 'cut.pth')
    with open(fcn_checkpoint, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:100000])
    line = _one_line(capsys, test, DEMO_FCN, path,
                     cfg_options=_opts(tiny_voc, str(tmp_path / 'wd')),
                     out=str(tmp_path / 'out'))
    assert line.startswith(f'error: checkpoint {path!r} cannot be read (')
    assert 'it is truncated or not a checkpoint' in line
    # the run failed before its first iteration: the folders it made are
    # gone
    assert not (tmp_path / 'wd').exists()
    assert not (tmp_path / 'out').exists()


def test_checkpoint_of_another_model(fcn_checkpoint, tiny_voc, tmp_path,
                                     capsys):
    opts = _opts(tiny_voc, str(tmp_path / 'wd'))
    line = _one_line(capsys, test, PARSENET_DEMO, fcn_checkpoint,
                     cfg_options=opts)
    assert line.startswith(f'error: checkpoint {fcn_checkpoint!r} does not '
                           'fit the model (')
    assert ' missing from it (' in line and ' unexpected in it (' in line
    assert line.endswith('or pass --partial-load to load only the weights '
                         'that fit')
    assert not osp.exists(osp.join(str(tmp_path / 'wd'), 'metrics.json'))
    # the explicit opt-in runs the half-fitting model
    metrics = test(PARSENET_DEMO, fcn_checkpoint, cfg_options=opts,
                   partial_load=True)
    assert 'mIoU' in metrics


def test_misspelt_top_level_option(capsys):
    line = _one_line(capsys, prepare_config, DEMO_FCN, cfg_options={
        'test_evalutor.type': 'BorderIoUMetric'})
    assert line.startswith("error: --cfg-options test_evalutor.type: the "
                           "config has no top-level key 'test_evalutor'")
    assert 'closest valid names: test_evaluator' in line


def test_misspelt_module_argument_option(capsys):
    line = _one_line(capsys, prepare_config, DEMO_FCN, cfg_options={
        'model.backbone.type': 'PadResNetV1c',
        'model.backbone.paddng_mode': 'reflect'})
    assert line.startswith(
        "error: --cfg-options model.backbone.paddng_mode: model.backbone "
        "(PadResNetV1c) takes no argument 'paddng_mode'; closest valid "
        'names: padding_mode')


def test_misspelt_loop_argument_option(capsys):
    line = _one_line(capsys, prepare_config, DEMO_FCN, cfg_options={
        'train_cfg.max_iter': 10})
    assert line.startswith(
        "error: --cfg-options train_cfg.max_iter: train_cfg "
        "(IterBasedTrainLoop) takes no argument 'max_iter'; closest valid "
        'names: max_iters')


def test_legitimate_additions_pass():
    cfg = prepare_config(DEMO_FCN, cfg_options={
        'model.backbone.type': 'PadResNetV1c',
        'model.backbone.padding_mode': 'reflect',
        'test_evaluator.type': 'BorderIoUMetric',
        'train_cfg.max_iters': 10,
        'default_hooks.checkpoint.max_keep_ckpts': 2,
        'optim_wrapper.optimizer.lr': 0.01,
        'trust_load_from': True})
    assert cfg.model.backbone.padding_mode == 'reflect'
    assert cfg.test_evaluator.type == 'BorderIoUMetric'


def test_every_config_passes_the_key_checks():
    """No false alarm: every leaf config's model keys are accepted."""
    import glob

    from possec.apis.checks import load_config
    from possec.apis.config_keys import check_model_args
    paths = [p for p in sorted(glob.glob(osp.join(ROOT, 'configs', '**',
                                                  '*.py'), recursive=True))
             if '_base_' not in p]
    # one config per model family (the name up to the first '_'): loading
    # all of them takes minutes on a loaded 2-core machine
    families = {}
    for path in paths:
        families.setdefault(osp.basename(path).split('_')[0], path)
    assert len(families) >= 4
    for path in families.values():
        check_model_args(load_config(path))


def test_debug_shows_the_traceback_too(capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(prepare_config, DEMO_FCN, debug=True,
                cfg_options={'test_evalutor.type': 'IoUMetric'})
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'Traceback (most recent call last)' in err
    assert 'ConfigKeyError' in err
    assert err.strip().splitlines()[-1].startswith(
        'error: --cfg-options test_evalutor.type:')


# One test per class of mistake: each ends in one line naming the user's
# file, key or argument, and nothing computed or left on disk.

def test_misspelt_base_names_the_config(tmp_path, capsys):
    """Config load errors: a misspelt _base_ entry, in its possec:: form,
    its path form and one level down, names the config that holds it and
    the closest existing name."""
    scoped = tmp_path / 'scoped.py'
    scoped.write_text("_base_ = ['possec::demo/parsenet_pos_synthetc.py']\n")
    line = _one_line(capsys, prepare_config, str(scoped))
    assert line.startswith(
        "error: _base_ entry 'possec::demo/parsenet_pos_synthetc.py' in "
        f"config {str(scoped)!r} names no config (")
    assert 'closest existing: possec::demo/parsenet_pos_synthetic.py' in line
    demo = osp.join(ROOT, 'configs', 'demo')
    local = tmp_path / 'local.py'
    missing = osp.join(demo, 'fcn_r18-d8_1xb8-160_synthetc-128x128.py')
    local.write_text(f'_base_ = [{missing!r}]\n')
    line = _one_line(capsys, prepare_config, str(local))
    assert f"in config {str(local)!r} names no config (no file " in line
    assert 'fcn_r18-d8_1xb8-160_synthetic-128x128.py' in line.split(
        'closest existing: ')[1]
    top = tmp_path / 'top.py'
    top.write_text("_base_ = ['./local.py']\n")
    line = _one_line(capsys, prepare_config, str(top))
    assert f"in {str(local)!r}, a base of config {str(top)!r} names no " \
        'config' in line


def test_broken_config_file_names_it(tmp_path, capsys):
    """Config load errors beyond _base_: a syntax error, an undefined name
    and a key two bases define."""
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(type=\n')
    line = _one_line(capsys, prepare_config, str(bad))
    assert line.startswith(f'error: config {str(bad)!r} cannot be read: ')
    assert 'fix the Python syntax of the file' in line
    bad.write_text('model = dict(depth=depth)\n')
    line = _one_line(capsys, prepare_config, str(bad))
    assert "name 'depth' is not defined" in line
    (tmp_path / 'a.py').write_text('x = 1\n')
    (tmp_path / 'b.py').write_text('x = 2\n')
    bad.write_text("_base_ = ['./a.py', './b.py']\n")
    line = _one_line(capsys, prepare_config, str(bad))
    assert 'Duplicate key' in line and 'define the key in one base' in line


@pytest.mark.parametrize('key,value,expected,old', [
    ('train_cfg.max_iters', 'abc', 'a number', '160'),
    ('train_dataloader.batch_size', 'two', 'a number', '8'),
    ('model.data_preprocessor.size', 'big', 'a list', '(128, 128)'),
    ('model.backbone', 'resnet', 'a dict', "{'type': "),
])
def test_option_of_the_wrong_type_names_the_key(capsys, key, value,
                                                expected, old):
    """--cfg-options values whose type cannot replace the config's, as
    mmengine's DictAction parses them (text stays text)."""
    from mmengine.config import DictAction
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    opts = parser.parse_args(['--cfg-options', f'{key}={value}']).cfg_options
    line = _one_line(capsys, prepare_config, DEMO_FCN, cfg_options=opts)
    assert line.startswith(f'error: --cfg-options {key}: expected '
                           f'{expected}')
    assert f'(the config has {old}' in line
    assert f"found the text {value!r}" in line


def test_option_list_replaces_a_dict_only_as_a_list_of_dicts(capsys):
    """mmseg takes one auxiliary head or a list of them: a list of dicts
    may replace the FCN config's single head, a list of text may not."""
    from mmengine.config import Config, DictAction
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    opts = parser.parse_args(['--cfg-options',
                              'model.auxiliary_head=[fcn,pos]']).cfg_options
    assert opts['model.auxiliary_head'] == ['fcn', 'pos']
    line = _one_line(capsys, prepare_config, DEMO_FCN, cfg_options=opts)
    assert line.startswith('error: --cfg-options model.auxiliary_head: '
                           'expected a dict')
    assert "found list ['fcn', 'pos']" in line
    head = Config.fromfile(DEMO_FCN).model.auxiliary_head.to_dict()
    cfg = prepare_config(DEMO_FCN, cfg_options={
        'model.auxiliary_head': [head, dict(head, in_index=3,
                                            in_channels=512)]})
    assert [h['in_index'] for h in cfg.model.auxiliary_head] == [2, 3]


def test_config_and_checkpoint_swapped(tmp_path, capsys):
    """Wrong file types: a checkpoint where the config goes, a config where
    the checkpoint goes, in tools/test.py, training and the analysis
    tools."""
    from possec.analysis.common.models import load_segmentor
    ckpt = tmp_path / 'iter_2.pth'
    ckpt.write_bytes(b'not read')
    line = _one_line(capsys, test, str(ckpt), DEMO_FCN,
                     work_dir=str(tmp_path / 'wd'))
    assert line.startswith(f'error: config file {str(ckpt)!r} is a '
                           'checkpoint (.pth file), not a config')
    assert line.endswith('the order is tools/test.py CONFIG CHECKPOINT')
    line = _one_line(capsys, test, DEMO_FCN, DEMO_FCN)
    assert line.startswith(f'error: checkpoint {DEMO_FCN!r} is a config '
                           '(.py file), not a checkpoint')
    line = _one_line(capsys, train, str(ckpt))
    assert 'is a checkpoint (.pth file), not a config' in line
    line = _one_line(capsys, load_segmentor, DEMO_FCN, DEMO_FCN)
    assert line.startswith(f'error: --checkpoint {DEMO_FCN!r} is a config')
    line = _one_line(capsys, load_segmentor, str(ckpt))
    assert 'is a checkpoint (.pth file), not a config' in line
    assert not (tmp_path / 'wd').exists()


def test_output_path_that_is_a_file(tmp_path, capsys, monkeypatch):
    """Output folders that are files (or below a file) are refused before
    anything is computed, by every tool."""
    import importlib
    occlusion = importlib.import_module('possec.analysis.fields.occlusion')
    receptive = importlib.import_module('possec.analysis.fields.receptive')
    probe_run = importlib.import_module('possec.analysis.probe.run')
    from possec.analysis.study import resolve_grid, run_study
    taken = tmp_path / 'taken'
    taken.write_text('a file')
    ckpt = tmp_path / 'iter_2.pth'
    ckpt.write_bytes(b'not read')

    def compute(*args, **kwargs):
        raise AssertionError('computed before checking the output folder')

    monkeypatch.setattr(occlusion, 'prepare_one', compute)
    monkeypatch.setattr(receptive, 'prepare_one', compute)
    monkeypatch.setattr(probe_run, 'probe_images', compute)
    calls = [
        (train, (DEMO_FCN, ), dict(work_dir=str(taken)), '--work-dir'),
        (test, (DEMO_FCN, str(ckpt)), dict(out=str(taken)), '--out'),
        (occlusion.run_occlusion, (DEMO_FCN, ), dict(out_dir=str(taken)),
         '--out-dir'),
        (receptive.run_receptive_field, (DEMO_FCN, ),
         dict(out_dir=str(taken / 'sub')), '--out-dir'),
        (probe_run.position_probe, ('noise', ), dict(out_dir=str(taken)),
         '--out-dir'),
        (run_study, (resolve_grid(quick=True)[0], str(taken)),
         dict(cell_fn=compute), '--out-dir'),
    ]
    for fn, args, kwargs, option in calls:
        line = _one_line(capsys, fn, *args, **kwargs)
        assert line.startswith(f'error: {option} '), line
        assert ' is a file' in line, line
    assert taken.read_text() == 'a file'
