"""Tests of the dose layouts (``position-prior``, ``prior-shift``, the tilt
as a dose): each dose changes only what it names, measured on generated
samples; the prior is honoured within a binomial interval."""
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage, stats

from possec.datasets.synthetic import (POSITION_PAIRS, SHORTCUT_TILT,
                                       SyntheticDataError,
                                       generate_synthetic_voc,
                                       generation_meta, read_generation_meta)
from possec.datasets.synthetic_render import render_sample
from possec.errors import UserError

A_CLASSES = [a for a, _ in POSITION_PAIRS]
B_CLASSES = [b for _, b in POSITION_PAIRS]
TINY = dict(num_train=8, num_val=4, img_size=32, progress=False)


def _tree(root):
    """``{name: (image, mask)}`` of every sample of a generated tree."""
    out = {}
    for split in ('train', 'val'):
        with open(osp.join(root, 'ImageSets', 'Segmentation',
                           f'{split}.txt')) as f:
            for name in f.read().split():
                out[name] = tuple(np.asarray(Image.open(osp.join(
                    root, sub, f'{name}.{ext}'))) for sub, ext in (
                        ('JPEGImages', 'jpg'), ('SegmentationClass', 'png')))
    return out


def test_prior_one_without_tilt_is_position_coded(tmp_path):
    coded = _tree(generate_synthetic_voc(
        str(tmp_path / 'coded'), layout='position-coded', **TINY))
    prior = _tree(generate_synthetic_voc(
        str(tmp_path / 'prior'), layout='position-prior', prior=1.0, tilt=0,
        **TINY))
    shift = _tree(generate_synthetic_voc(
        str(tmp_path / 'shift'), layout='prior-shift', prior=1.0,
        val_prior=1.0, tilt=0, **TINY))
    assert sorted(prior) == sorted(coded) and len(coded) == 12
    for name, (image, mask) in coded.items():
        for other in (prior, shift):
            np.testing.assert_array_equal(other[name][0], image)
            np.testing.assert_array_equal(other[name][1], mask)
    # prior 0: the same objects, each pair class in the other half.
    rows = np.arange(32)[:, None]
    flipped = 0
    for i in range(30):
        _, mask = render_sample('position-prior', 'train', i, 0, (32, 32),
                                tilt=0, prior=0.0)
        rr = np.broadcast_to(rows, mask.shape)
        assert np.all(rr[np.isin(mask, A_CLASSES)] >= 16)
        assert np.all(rr[np.isin(mask, B_CLASSES)] < 16)
        flipped += np.isin(mask, A_CLASSES + B_CLASSES).any()
    assert flipped >= 10


@pytest.mark.parametrize('layout, kwargs', [
    ('position-prior', dict(prior=0.75)),
    ('prior-shift', dict(prior=0.9)),
])
def test_tilt_changes_only_the_second_class(layout, kwargs):
    # (The shortcut layouts draw the tilt's direction from the sample's
    # own stream, as before the prior layouts existed: there another tilt
    # also redraws the objects after the first tilted one.)
    changed = 0
    for split in ('train', 'val'):
        for i in range(25):
            ref_image, ref_mask = render_sample(
                layout, split, i, 0, (48, 48), tilt=0, **kwargs)
            for tilt in (10, SHORTCUT_TILT, 45):
                image, mask = render_sample(layout, split, i, 0, (48, 48),
                                            tilt=tilt, **kwargs)
                np.testing.assert_array_equal(mask, ref_mask)
                diff = np.any(image != ref_image, axis=-1)
                # every pixel of another class (or background) is the same
                is_b = np.isin(mask, B_CLASSES)
                allowed = is_b | (mask == 255)
                assert not (diff & ~allowed).any()
                changed += int(diff[is_b].sum())
    assert changed > 1000  # the tilt does change the b pixels


def _pair_halves(layout, split, prior, num, size=32, **kwargs):
    """Per pair class ``a`` / ``b``: [objects in the top half, objects]
    over ``num`` samples, an object being a connected part of at least 6
    pixels."""
    counts = dict(a=[0, 0], b=[0, 0])
    rows = np.arange(size)[:, None]
    for i in range(num):
        _, mask = render_sample(layout, split, i, 0, (size, size),
                                prior=prior, **kwargs)
        for cls in A_CLASSES + B_CLASSES:
            parts, n = ndimage.label(mask == cls)
            for k in range(1, n + 1):
                pixels = parts == k
                if pixels.sum() < 6:
                    continue
                top = np.broadcast_to(rows, mask.shape)[pixels].mean() < \
                    size / 2
                key = 'a' if cls in A_CLASSES else 'b'
                counts[key][0] += int(top)
                counts[key][1] += 1
    return counts


@pytest.mark.parametrize('layout, split, prior, val_prior', [
    ('position-prior', 'train', 0.75, None),
    ('position-prior', 'val', 0.75, None),
    ('position-prior', 'train', 0.5, None),
    ('prior-shift', 'train', 0.9, None),
    ('prior-shift', 'val', 0.9, None),  # Q = 1 - P = 0.1
    ('prior-shift', 'val', 0.9, 0.3),
])
def test_the_prior_is_honoured(layout, split, prior, val_prior):
    kwargs = {} if layout == 'position-prior' else dict(val_prior=val_prior)
    expected = prior
    if split == 'val' and layout == 'prior-shift':
        expected = 1 - prior if val_prior is None else val_prior
    counts = _pair_halves(layout, split, prior, 300, **kwargs)
    # a lies on top with probability P, b at the bottom with probability P
    top_a, n_a = counts['a']
    top_b, n_b = counts['b']
    assert n_a > 100 and n_b > 100
    assert stats.binomtest(top_a, n_a, expected).pvalue > 0.001
    assert stats.binomtest(n_b - top_b, n_b, expected).pvalue > 0.001
    if abs(expected - 0.5) > 0.2:  # the test tells the prior from 1/2
        assert stats.binomtest(top_a, n_a, 0.5).pvalue < 0.001


def test_generation_meta_records_the_doses(tmp_path):
    meta = generation_meta('prior-shift', prior=0.9)
    assert (meta['prior'], meta['tilt']) == (0.9, SHORTCUT_TILT)
    assert meta['val_prior'] == pytest.approx(0.1)
    assert 'periodic' not in meta
    assert generation_meta('position-prior', prior=0.75, tilt=10,
                           periodic=True)['periodic'] == 'both'
    assert generation_meta('position-prior', prior=0.75, periodic='none') \
        == generation_meta('position-prior', prior=0.75)
    # the older layouts keep their records
    assert set(generation_meta('uniform')) == {
        'generator', 'version', 'layout', 'num_train', 'num_val',
        'img_size', 'seed'}
    root = generate_synthetic_voc(str(tmp_path / 'd'), layout='prior-shift',
                                  prior=0.8, val_prior=0.4, tilt=5,
                                  periodic='objects', **TINY)
    found = read_generation_meta(root)
    assert {k: found[k] for k in ('prior', 'val_prior', 'tilt',
                                  'periodic')} == dict(
        prior=0.8, val_prior=0.4, tilt=5.0, periodic='objects')


def test_dataset_refuses_a_tree_of_other_doses(tmp_path):
    from mmseg.registry import DATASETS

    import possec  # noqa: F401
    root = str(tmp_path / 'data')
    generate = dict(layout='position-prior', prior=0.75, num_train=4,
                    num_val=2, img_size=32, progress=False)
    cfg = dict(type='SyntheticVOCDataset', data_root=root,
               data_prefix=dict(img_path='JPEGImages',
                                seg_map_path='SegmentationClass'),
               ann_file='ImageSets/Segmentation/train.txt')
    assert len(DATASETS.build(dict(cfg, generate=generate))) == 4
    for other in (dict(prior=0.5), dict(tilt=10), dict(periodic=True)):
        with pytest.raises(ValueError, match='delete the folder'):
            DATASETS.build(dict(cfg, generate={**generate, **other}))


@pytest.mark.parametrize('kwargs, match', [
    (dict(layout='position-prior'), 'needs prior'),
    (dict(layout='prior-shift', prior=1.5), r'prior must be .*\[0, 1\]'),
    (dict(layout='prior-shift', prior=True), 'prior must be'),
    (dict(layout='prior-shift', prior=0.9, val_prior=-0.1), 'val_prior'),
    (dict(layout='position-prior', prior=0.5, val_prior=0.5),
     'leave val_prior unset'),
    (dict(layout='uniform', prior=0.5), 'leave prior unset'),
    (dict(layout='position-coded', tilt=10), 'leave tilt unset'),
    (dict(layout='position-prior', prior=0.5, tilt=91), r'\[0, 90\]'),
    (dict(layout='uniform', periodic='yes'), "'none', 'background'"),
])
def test_bad_doses_raise_one_line(tmp_path, kwargs, match):
    root = str(tmp_path / 'data')
    with pytest.raises(SyntheticDataError, match=match) as info:
        generate_synthetic_voc(root, **{**TINY, **kwargs})
    assert isinstance(info.value, UserError)
    assert '\n' not in str(info.value)
    assert not osp.exists(root)
