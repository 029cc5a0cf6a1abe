"""Tests of the synthetic VOC generator, its CLI and SyntheticVOCDataset."""
import glob
import importlib.util
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from possec.datasets import synthetic, synthetic_render
from possec.datasets.synthetic import (CLASSES, LAYOUTS, POSITION_PAIRS,
                                       generate_synthetic_voc)

from .conftest import ROOT as REPO
TINY = dict(num_train=6, num_val=3, img_size=32, progress=False)


def _files(root):
    """Relative path -> bytes of every file under ``root``."""
    out = {}
    for path in glob.glob(osp.join(root, '**', '*'), recursive=True):
        if osp.isfile(path):
            with open(path, 'rb') as f:
                out[osp.relpath(path, root)] = f.read()
    return out


def _load(root, split):
    """Images (N, H, W, 3) float64 and masks (N, H, W) of one split."""
    names = _split(root, split)
    images = [np.asarray(Image.open(osp.join(root, 'JPEGImages',
                                             f'{n}.jpg')), np.float64)
              for n in names]
    masks = [np.asarray(Image.open(osp.join(root, 'SegmentationClass',
                                            f'{n}.png'))) for n in names]
    return np.stack(images), np.stack(masks)


def _split(root, split):
    with open(osp.join(root, 'ImageSets', 'Segmentation',
                       f'{split}.txt')) as f:
        return f.read().split()


@pytest.mark.parametrize('kwargs, match', [
    (dict(layout='diagonal'), "'uniform', 'position-coded', 'border-shift'"),
    (dict(num_train=0), 'num_train'),
    (dict(num_val=-2), 'num_val'),
    (dict(img_size=0), 'img_size'),
    (dict(img_size=(32, 0)), 'img_size'),
    (dict(img_size=(32, 32, 3)), 'img_size'),
    (dict(seed=-1), 'seed'),
])
def test_bad_arguments_raise(tmp_path, kwargs, match):
    root = str(tmp_path / 'data')
    with pytest.raises(ValueError, match=match):
        generate_synthetic_voc(root, **{**TINY, **kwargs})
    assert not osp.exists(root)


def test_refuses_to_replace_foreign_folder(tmp_path):
    root = tmp_path / 'VOC2012'
    root.mkdir()
    (root / 'precious.txt').write_text('user data')
    with pytest.raises(ValueError, match='refusing'):
        generate_synthetic_voc(str(root), **TINY)
    assert (root / 'precious.txt').read_text() == 'user data'


def test_refuses_a_file_and_accepts_a_trailing_slash(tmp_path):
    (tmp_path / 'file').write_text('x')
    with pytest.raises(ValueError, match='is a file'):
        generate_synthetic_voc(str(tmp_path / 'file'), **TINY)
    generate_synthetic_voc(str(tmp_path / 'data') + os.sep, **TINY)
    assert sorted(os.listdir(tmp_path)) == ['data', 'file']
    assert len(_split(str(tmp_path / 'data'), 'train')) == 6


def test_deterministic_for_a_seed(tmp_path):
    first = _files(generate_synthetic_voc(str(tmp_path / 'a'), **TINY))
    second = _files(generate_synthetic_voc(str(tmp_path / 'b'), **TINY))
    assert len(first) == 2 * 9 + 3  # jpg + png per image, 2 lists, meta
    assert first == second
    # A sample depends on (seed, split, index), not on the counts ...
    fewer = _files(generate_synthetic_voc(
        str(tmp_path / 'c'), **{**TINY, 'num_train': 2}))
    assert fewer['JPEGImages/train_000001.jpg'] == \
        first['JPEGImages/train_000001.jpg']
    # ... and another seed gives other images.
    other = _files(generate_synthetic_voc(
        str(tmp_path / 'd'), **{**TINY, 'seed': 1}))
    assert all(other[k] != first[k] for k in first if k.endswith('.jpg'))


def test_tree_and_split_lists_consistent(tmp_path):
    root = generate_synthetic_voc(
        str(tmp_path / 'data'), **{**TINY, 'img_size': (24, 40)})
    train, val = _split(root, 'train'), _split(root, 'val')
    assert len(train) == 6 and len(val) == 3 and not set(train) & set(val)
    names = sorted(train + val)
    for sub, ext in (('JPEGImages', '.jpg'), ('SegmentationClass', '.png')):
        assert sorted(f[:-len(ext)] for f in os.listdir(
            osp.join(root, sub))) == names
    for name in names:
        image = Image.open(osp.join(root, 'JPEGImages', f'{name}.jpg'))
        mask = Image.open(osp.join(root, 'SegmentationClass', f'{name}.png'))
        assert image.format == 'JPEG' and image.mode == 'RGB'
        assert mask.mode == 'P'
        assert image.size == mask.size == (40, 24)  # PIL sizes are (w, h)
    # VOC colours from the VOC devkit's colour map: background, aeroplane,
    # bicycle, person (15) and the ignore label (255).
    palette = np.asarray(mask.getpalette()).reshape(-1, 3)
    assert palette[[0, 1, 2, 15, 255]].tolist() == [
        [0, 0, 0], [128, 0, 0], [0, 128, 0], [192, 128, 128],
        [224, 224, 192]]
    assert synthetic.read_generation_meta(root)['img_size'] == [24, 40]


def test_masks_hold_valid_ids_and_an_ignore_band(tmp_path):
    root = generate_synthetic_voc(str(tmp_path / 'data'), **TINY)
    masks = np.concatenate([_load(root, 'train')[1], _load(root, 'val')[1]])
    values = set(np.unique(masks).tolist())
    assert values <= set(range(len(CLASSES))) | {255}
    assert {0, 255} <= values and len(values) > 3
    # Two different labels never touch: 255 separates them (8-neighbours).
    for mask in masks:
        padded = np.pad(mask, 1, constant_values=255)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near = padded[1 + dy:1 + dy + 32, 1 + dx:1 + dx + 32]
                clash = (mask != near) & (mask != 255) & (near != 255)
                assert not clash.any()
        # The band is thin: every ignore pixel is near a labelled one (at
        # most 3 px where a 1-2 px sliver of an object vanished in the band).
        dist = ndimage.distance_transform_cdt(mask == 255, 'chessboard')
        assert dist.max() <= 3


@pytest.mark.parametrize('half_width', [1, 2])
def test_ignore_band_matches_scipy_morphology(half_width):
    rng = np.random.default_rng(0)
    label = rng.integers(0, 3, size=(6, 7)).repeat(3, 0).repeat(2, 1)
    size = 2 * half_width + 1
    expected = (ndimage.grey_dilation(label, size=size, mode='nearest') !=
                ndimage.grey_erosion(label, size=size, mode='nearest'))
    np.testing.assert_array_equal(
        synthetic_render._ignore_band(label, half_width), expected)


def _chromaticity(images, masks, cls):
    """Mean colour of the pixels of ``cls`` with its brightness removed."""
    mean = images[masks == cls].mean(axis=0)
    return mean / mean.sum()


def test_position_coded_classes_differ_only_by_position(tmp_path):
    kw = dict(num_train=40, num_val=1, img_size=32, progress=False)
    coded = _load(generate_synthetic_voc(
        str(tmp_path / 'coded'), layout='position-coded', **kw), 'train')
    uniform = _load(generate_synthetic_voc(
        str(tmp_path / 'uniform'), layout='uniform', **kw), 'train')
    half = 32 / 2
    rows = np.arange(32)[None, :, None]
    for a, b in POSITION_PAIRS:
        # Same drawing (shape, texture and colour) for a and b ...
        assert synthetic_render.class_look(a, 'position-coded') == \
            synthetic_render.class_look(b, 'position-coded')
        assert synthetic_render.class_look(a, 'uniform') != \
            synthetic_render.class_look(b, 'uniform')
        # ... so the same colour in the images (brightness jitter and the
        # light / dark tones only scale it), unlike the uniform layout.
        # Measured over seeds 0-2: coded gaps <= 0.041, uniform >= 0.42.
        gap = np.abs(_chromaticity(*coded, a) - _chromaticity(*coded, b))
        gap_uniform = np.abs(
            _chromaticity(*uniform, a) - _chromaticity(*uniform, b))
        assert gap.max() < 0.06 < 0.3 < gap_uniform.max()
        # ... and only position tells them apart: a wholly in the top half,
        # b wholly in the bottom half.
        masks = coded[1]
        assert (masks == a).any() and (masks == b).any()
        assert np.all(np.broadcast_to(rows, masks.shape)[masks == a] < half)
        assert np.all(np.broadcast_to(rows, masks.shape)[masks == b] >= half)
    # In the uniform layout the same classes lie in both halves.
    umasks = uniform[1]
    urows = np.broadcast_to(rows, umasks.shape)
    for members in zip(*POSITION_PAIRS):
        in_pairs = np.isin(umasks, members)
        assert (urows[in_pairs] < half).any()
        assert (urows[in_pairs] >= half).any()


def test_border_shift_val_objects_lie_nearer_the_border(tmp_path):
    root = generate_synthetic_voc(
        str(tmp_path / 'data'), layout='border-shift', num_train=20,
        num_val=20, img_size=32, progress=False)
    y, x = np.mgrid[:32, :32]
    to_border = np.minimum.reduce([y, x, 31 - y, 31 - x])
    mean = {}
    for split in ('train', 'val'):
        masks = _load(root, split)[1]
        objects = (masks > 0) & (masks != 255)
        mean[split] = np.broadcast_to(to_border, masks.shape)[objects].mean()
    # Measured: train 10.7 px, val 2.3 px from the border (32 x 32 images).
    assert mean['val'] < 0.5 * mean['train']


def test_failed_generation_leaves_nothing(tmp_path, monkeypatch):
    root = str(tmp_path / 'data')
    written = []
    real_write = synthetic._write_sample

    def flaky_write(*args):
        if len(written) == 3:
            raise RuntimeError('disk full')
        written.append(args[1])
        real_write(*args)

    monkeypatch.setattr(synthetic, '_write_sample', flaky_write)
    with pytest.raises(RuntimeError, match='disk full'):
        generate_synthetic_voc(root, **TINY)
    assert len(written) == 3
    assert os.listdir(tmp_path) == []  # no data root, no temporary folder
    # A failed regeneration keeps the previous complete tree.
    monkeypatch.setattr(synthetic, '_write_sample', real_write)
    before = _files(generate_synthetic_voc(root, **TINY))
    written.clear()
    monkeypatch.setattr(synthetic, '_write_sample', flaky_write)
    with pytest.raises(RuntimeError):
        generate_synthetic_voc(root, **{**TINY, 'seed': 5})
    assert _files(root) == before
    assert os.listdir(tmp_path) == ['data']


def test_stale_temporary_folders_are_removed(tmp_path):
    stale = tmp_path / '.data.k1ll3d.tmp'
    stale.mkdir()
    (stale / 'train_000000.jpg').write_bytes(b'half')
    generate_synthetic_voc(str(tmp_path / 'data'), **TINY)
    assert os.listdir(tmp_path) == ['data']


def _generate_in_child(root):
    generate_synthetic_voc(root, **TINY)


def test_concurrent_writers_of_one_root(tmp_path):
    """Workers generating the same data root at once all succeed and leave
    the tree one writer alone writes (no half-deleted temporaries)."""
    import multiprocessing as mp
    root = str(tmp_path / 'shared')
    ctx = mp.get_context('fork')
    procs = [ctx.Process(target=_generate_in_child, args=(root, ))
             for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0, 0]
    alone = _files(generate_synthetic_voc(str(tmp_path / 'alone'), **TINY))
    assert _files(root) == alone
    assert not glob.glob(str(tmp_path / '.shared.*.tmp'))


def test_progress_goes_to_stderr(tmp_path, capsys):
    generate_synthetic_voc(str(tmp_path / 'a'), **{**TINY, 'progress': True})
    out, err = capsys.readouterr()
    assert out == '' and '9/9' in err
    generate_synthetic_voc(str(tmp_path / 'b'), **TINY)
    assert capsys.readouterr() == ('', '')


def test_cli_writes_the_same_tree(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_voc', osp.join(REPO, 'tools', 'make_synthetic_voc.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.main([str(tmp_path / 'cli'), '--layout', 'border-shift',
               '--num-train', '6', '--num-val', '3', '--size', '32',
               '--quiet'])
    api = generate_synthetic_voc(str(tmp_path / 'api'), layout='border-shift',
                                 **TINY)
    assert _files(str(tmp_path / 'cli')) == _files(api)
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / 'x'), '--layout', 'diagonal'])


def _pipeline():
    return [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs'),
    ]


@pytest.mark.parametrize('dataset_type',
                         ['SyntheticVOCDataset', 'PascalVOCDataset'])
def test_mmseg_pipeline_loads_the_tree(tmp_path, dataset_type):
    import cv2
    from mmengine.registry import DefaultScope
    from mmseg.datasets import PascalVOCDataset
    from mmseg.registry import DATASETS

    import possec  # noqa: F401  (registers SyntheticVOCDataset)
    root = generate_synthetic_voc(str(tmp_path / 'data'), **TINY)
    with DefaultScope.overwrite_default_scope('mmseg'):  # as configs do
        dataset = DATASETS.build(
            dict(type=dataset_type, data_root=root,
                 data_prefix=dict(img_path='JPEGImages',
                                  seg_map_path='SegmentationClass'),
                 ann_file='ImageSets/Segmentation/val.txt',
                 pipeline=_pipeline()))
    assert len(dataset) == 3
    # The VOC palette as mmseg itself defines it.
    assert dataset.metainfo['palette'] == PascalVOCDataset.METAINFO['palette']
    expected_classes = (CLASSES if dataset_type == 'SyntheticVOCDataset' else
                        PascalVOCDataset.METAINFO['classes'])
    assert tuple(dataset.metainfo['classes']) == tuple(expected_classes)
    for i, name in enumerate(_split(root, 'val')):
        item = dataset[i]
        image = cv2.imread(osp.join(root, 'JPEGImages', f'{name}.jpg'))
        mask = np.asarray(Image.open(
            osp.join(root, 'SegmentationClass', f'{name}.png')))
        np.testing.assert_array_equal(
            item['inputs'].numpy().transpose(1, 2, 0), image)
        np.testing.assert_array_equal(
            item['data_samples'].gt_sem_seg.data[0].numpy(), mask)


def _synthetic_cfg(root, **kwargs):
    return dict(type='SyntheticVOCDataset', data_root=root,
                data_prefix=dict(img_path='JPEGImages',
                                 seg_map_path='SegmentationClass'),
                ann_file='ImageSets/Segmentation/train.txt', **kwargs)


def test_dataset_generates_on_first_use(tmp_path):
    from mmseg.registry import DATASETS

    import possec  # noqa: F401
    root = str(tmp_path / 'fresh')
    generate = dict(layout='position-coded', num_train=4, num_val=2,
                    img_size=32, progress=False)
    dataset = DATASETS.build(_synthetic_cfg(root, generate=generate))
    assert len(dataset) == 4
    assert synthetic.read_generation_meta(root)['layout'] == 'position-coded'
    # Present and matching: read as is, not regenerated.
    stamp = os.stat(osp.join(root, synthetic.META_FILE)).st_mtime_ns
    assert len(DATASETS.build(_synthetic_cfg(root, generate=generate))) == 4
    assert os.stat(osp.join(root, synthetic.META_FILE)).st_mtime_ns == stamp
    # Present but generated with other arguments: a clear error.
    with pytest.raises(ValueError, match='delete the folder'):
        DATASETS.build(_synthetic_cfg(
            root, generate={**generate, 'layout': 'uniform'}))


def test_dataset_without_generate_fails_like_voc(tmp_path):
    from mmseg.registry import DATASETS

    import possec  # noqa: F401
    root = str(tmp_path / 'missing')
    for dataset_type in ('PascalVOCDataset', 'SyntheticVOCDataset'):
        with pytest.raises(AssertionError, match='Failed to load'):
            DATASETS.build({**_synthetic_cfg(root), 'type': dataset_type})
    assert not osp.exists(root)


@pytest.mark.parametrize('rank', [0, 1])
def test_only_rank_zero_generates(tmp_path, monkeypatch, rank):
    from possec.datasets import synthetic_voc
    calls = []
    monkeypatch.setattr(synthetic_voc, 'get_dist_info', lambda: (rank, 2))
    monkeypatch.setattr(synthetic_voc, 'barrier',
                        lambda: calls.append('barrier'))
    monkeypatch.setattr(synthetic_voc, 'generate_synthetic_voc',
                        lambda root, **kw: calls.append('generate'))
    synthetic_voc.SyntheticVOCDataset._generate_if_missing(
        str(tmp_path / 'data'), dict(num_train=2, num_val=1, img_size=32))
    assert calls == (['generate', 'barrier'] if rank == 0 else ['barrier'])
