"""Tests of periodic synthetic data: the samples tile (no seam where the
image meets its own copy), every layout keeps its class rules, and on them
a circularly padded network commutes with circular shifts."""
import importlib.util
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from scipy import stats

from possec.datasets.synthetic import (POSITION_PAIRS, generate_synthetic_voc,
                                       read_generation_meta)
from possec.datasets.synthetic_render import render_sample

from .conftest import ROOT as REPO
from .test_shortcut_layout import _load as _load_split

A_CLASSES = [a for a, _ in POSITION_PAIRS]
B_CLASSES = [b for _, b in POSITION_PAIRS]
SIZE = 64


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp('periodic')
    kw = dict(layout='uniform', num_train=40, num_val=1, img_size=SIZE,
              progress=False)
    return {mode: _load_split(generate_synthetic_voc(str(base / mode),
                                                     periodic=mode, **kw),
                              'train')
            for mode in ('none', 'background', 'objects', 'both')}


#: JPEG's block size: row pairs across a block boundary are rougher than
#: those inside a block, and the seam is one, so it is compared with them.
BLOCK = 8


def _seam_ranks(images, masks=None):
    """Where the seam ranks among an image's block-boundary row pairs.

    The image tiled 2x2 is read as a cycle of row pairs, ``(y, y + 1)``
    inside and ``(H - 1, 0)`` across the seam; each pair's step is the
    mean |difference| of its two rows (over the columns where both rows
    are background, when ``masks`` are given). Of the ``H / 8`` pairs that
    cross a JPEG block boundary (the seam among them), returns the number
    whose step is smaller than the seam's, for every image, rows then
    columns: uniform on ``0 .. H / 8 - 1`` when the seam is a row pair like
    the others.
    """
    ranks = []
    for transpose in (False, True):
        for k, image in enumerate(images):
            if transpose:
                image = image.T
            steps = np.abs(np.roll(image, -1, axis=0) - image)
            if masks is not None:
                bg = masks[k].T if transpose else masks[k]
                keep = (bg == 0) & np.roll(bg == 0, -1, axis=0)
                steps = np.where(keep, steps, np.nan)
            mean = np.nanmean(steps, axis=1)[BLOCK - 1::BLOCK]
            ranks.append(int((mean[:-1] < mean[-1]).sum()))
    return np.array(ranks)


def _roughest_test(ranks):
    """p-value of "the seam is the roughest block boundary more often than
    chance" (binomial, one-sided)."""
    pairs = SIZE // BLOCK
    hits = int((ranks == pairs - 1).sum())
    return stats.binomtest(hits, len(ranks), 1 / pairs,
                           alternative='greater').pvalue


def test_periodic_images_join_at_the_seam(trees):
    """The image tiled 2x2 is no rougher across the seam than inside: the
    seam is a row (and column) pair like the others, not the roughest
    more often than chance; without ``periodic`` it is."""
    ranks = {mode: _seam_ranks(trees[mode][0]) for mode in ('none', 'both')}
    # Measured over data seeds 0-3 (80 rows and columns each): periodic,
    # the roughest in 8-13 and mean rank 2.9-3.8 (chance: 10, 3.5); not
    # periodic, the roughest in 47-56, mean rank 6.3-6.5.
    assert _roughest_test(ranks['both']) > 0.001
    assert abs(ranks['both'].mean() - (SIZE // BLOCK - 1) / 2) < 1
    assert _roughest_test(ranks['none']) < 1e-6


def test_periodic_background_alone_joins(trees):
    """With ``periodic='background'`` the background meets itself across
    the seam as it meets itself inside (objects are still cut there)."""
    ranks = {mode: _seam_ranks(*trees[mode])
             for mode in ('none', 'background')}
    # Measured over data seeds 0-3: periodic, the roughest in 7-11 of 80,
    # mean rank 3.2-3.4; not periodic, the roughest in 80 of 80.
    assert _roughest_test(ranks['background']) > 0.001
    assert abs(ranks['background'].mean() - (SIZE // BLOCK - 1) / 2) < 1
    assert _roughest_test(ranks['none']) < 1e-6


def _seam_clashes(mask):
    """Pixel pairs across the seams (wrapping, 8-neighbours) holding two
    different labels, neither of them the ignore label."""
    out = 0
    for dy, dx in ((1, -1), (1, 0), (1, 1), (0, 1)):
        near = np.roll(mask, (-dy, -dx), axis=(0, 1))
        clash = (mask != near) & (mask != 255) & (near != 255)
        edge = np.zeros_like(clash)
        if dy:
            edge[-1] = True
        if dx:
            edge[:, -1 if dx > 0 else 0] = True
        out += int((clash & edge).sum())
    return out


def test_periodic_objects_wrap_with_their_labels(trees):
    """Objects and their ignore band continue across the seam: two labels
    never touch there without 255 between them, and some objects do
    cross it."""
    for mode in ('objects', 'both'):
        masks = trees[mode][1]
        assert sum(_seam_clashes(m) for m in masks) == 0
        crossing = sum(int(((m[0] == m[-1]) & (m[0] > 0) & (m[0] < 255))
                           .sum()) for m in masks)
        assert crossing > 20
    for mode in ('none', 'background'):  # cut objects clash at the seam
        assert sum(_seam_clashes(m) for m in trees[mode][1]) > 20
    # periodic='background' changes the background only: same labels
    np.testing.assert_array_equal(trees['background'][1], trees['none'][1])
    # periodic='objects': the same objects; only the rows and columns an
    # object can reach across an edge (its radius + 2 px) differ
    frame = np.ones((SIZE, SIZE), bool)
    reach = int(0.2 * SIZE) + 3
    frame[reach:-reach, reach:-reach] = False
    differ = trees['objects'][1] != trees['none'][1]
    assert not differ[:, ~frame].any() and differ.any()


def _rows(mask):
    return np.broadcast_to(np.arange(mask.shape[-2])[:, None], mask.shape)


@pytest.mark.parametrize('layout, kwargs', [
    ('position-coded', {}),
    ('shortcut', {}),
    ('shortcut-swap', {}),
    ('position-prior', dict(prior=1.0)),
    ('prior-shift', dict(prior=1.0)),
])
def test_half_rules_hold_on_periodic_data(layout, kwargs):
    for split in ('train', 'val'):
        masks = np.stack([render_sample(layout, split, i, 0, (32, 32),
                                        periodic=True, **kwargs)[1]
                          for i in range(30)])
        rows = _rows(masks)
        top = {'train': True, 'val': True}
        if layout in ('shortcut-swap', 'prior-shift'):
            top['val'] = False
        if layout == 'shortcut' and split == 'val':
            continue  # a coin flip
        a_rows, b_rows = (rows[np.isin(masks, A_CLASSES)],
                          rows[np.isin(masks, B_CLASSES)])
        assert a_rows.size and b_rows.size
        if top[split]:
            assert a_rows.max() < 16 <= b_rows.min()
        else:
            assert b_rows.max() < 16 <= a_rows.min()


def test_border_shift_and_uniform_rules_hold_on_periodic_data():
    y, x = np.mgrid[:32, :32]
    to_border = np.minimum.reduce([y, x, 31 - y, 31 - x])
    mean = {}
    for split in ('train', 'val'):
        masks = np.stack([render_sample('border-shift', split, i, 0,
                                        (32, 32), periodic=True)[1]
                          for i in range(20)])
        objects = (masks > 0) & (masks != 255)
        mean[split] = np.broadcast_to(to_border, masks.shape)[objects].mean()
    assert mean['val'] < 0.5 * mean['train']
    masks = np.stack([render_sample('uniform', 'train', i, 0, (32, 32),
                                    periodic=True)[1] for i in range(40)])
    pairs = np.isin(masks, A_CLASSES + B_CLASSES)
    assert (_rows(masks)[pairs] < 16).any() and (_rows(masks)[pairs] >= 16
                                                 ).any()


@pytest.mark.parametrize('mode', ['circular', 'zeros'])
def test_circular_network_commutes_with_circular_shifts(mode):
    """On a periodic sample the study's backbone (R-18-D8 with circular
    padding) gives, for the input rolled by a multiple of its stride 8,
    its output rolled by the same amount; zero padding does not."""
    import torch

    from possec.models.backbones import PadResNetV1c
    torch.manual_seed(0)
    net = PadResNetV1c(depth=18, padding_mode=mode, strides=(1, 2, 1, 1),
                       dilations=(1, 1, 2, 4)).eval()
    image = render_sample('position-coded', 'train', 3, 0, (SIZE, SIZE),
                          periodic=True)[0]
    x = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None]
    x = (x - 128) / 64
    with torch.no_grad():
        outs = net(x)
        for shift in ((32, 0), (8, 24), (-16, 40)):
            rolled = net(torch.roll(x, shift, dims=(2, 3)))
            worst = 0.0
            for out, got in zip(outs, rolled):
                step = SIZE // out.shape[-1]
                want = torch.roll(out, (shift[0] // step, shift[1] // step),
                                  dims=(2, 3))
                scale = out.abs().max().item()
                worst = max(worst, (got - want).abs().max().item() / scale)
            if mode == 'circular':
                assert worst < 1e-5
            else:
                assert worst > 1e-2


def test_cli_periodic_flag(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'make_synthetic_voc', osp.join(REPO, 'tools', 'make_synthetic_voc.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'cli')
    tool.main([out, '--layout', 'position-prior', '--prior', '0.75',
               '--tilt', '10', '--periodic', '--num-train', '2',
               '--num-val', '1', '--size', '32', '--quiet'])
    meta = read_generation_meta(out)
    assert (meta['prior'], meta['tilt'], meta['periodic']) == (0.75, 10.0,
                                                                'both')
    tool.main([str(tmp_path / 'bg'), '--periodic', 'background',
               '--num-train', '2', '--num-val', '1', '--size', '32',
               '--quiet'])
    assert read_generation_meta(str(tmp_path / 'bg'))['periodic'] == \
        'background'
    with pytest.raises(SystemExit) as info:  # a one-line error, status 2
        tool.main([str(tmp_path / 'x'), '--layout', 'position-prior',
                   '--quiet'])
    assert info.value.code == 2 and not osp.exists(tmp_path / 'x')
