"""Tests of the position probe (possec.analysis.probe): inputs, cache,
readout = PosENetHead, training, reports, CLI, and the paper's findings."""
import csv
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from possec.analysis.probe import (FrozenEncoder, ProbeError, baseline_loss,
                                   build_encoder, cached_features, extract,
                                   format_table, make_readout,
                                   predict_readout, probe_images,
                                   readout_side, run_probe, score,
                                   split_indices, train_readout,
                                   write_results)
from possec.analysis.probe.readout import readout_loss
from possec.models.decode_heads import PosENetHead
from possec.models.layers import convert_padding
from possec.position import position_maps

from .conftest import ROOT


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Tiny tensors run faster on one thread than on two busy cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyCNN(nn.Module):
    """Three levels of 3x3 convs (stride 2 between levels), random init."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.stages = nn.ModuleList([
            nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=s, padding=1), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())
            for cin, cout, s in ((3, 8, 1), (8, 16, 2), (16, 16, 2))
        ])

    def forward(self, x):
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return tuple(outs)


def tiny_encoder(mode='zeros'):
    return FrozenEncoder(convert_padding(TinyCNN(), mode), name=mode)


def h_spc(result, setting=None):
    rows = result['rows']
    row = rows[0] if setting is None else next(
        r for r in rows if r['setting'] == setting)
    return row['spc']['H']


# ---------------------------------------------------------------- inputs


def test_generated_images():
    black = probe_images('black', 16, 3)
    white = probe_images('white', 16, 3)
    noise = probe_images('noise', 16, 3, seed=1)
    assert black.shape == (3, 3, 16, 16) and black.dtype == torch.uint8
    assert int(black.max()) == 0 and int(white.min()) == 255
    assert torch.equal(noise, probe_images('noise', 16, 3, seed=1))
    assert not torch.equal(noise, probe_images('noise', 16, 3, seed=2))
    # uniform over 0..255: mean 127.5, sd 73.9
    assert abs(noise.double().mean().item() - 127.5) < 3
    assert abs(noise.double().std().item() - 73.9) < 3


def test_folder_images(tmp_path):
    red = np.zeros((20, 30, 3), np.uint8)
    red[..., 2] = 255  # BGR on disk
    cv2.imwrite(str(tmp_path / 'a.png'), red)
    cv2.imwrite(str(tmp_path / 'b.jpg'), np.full((40, 10, 3), 90, np.uint8))
    (tmp_path / 'c.png').write_bytes(b'not an image')
    (tmp_path / 'notes.txt').write_text('ignored')
    with pytest.warns(UserWarning, match='c.png'):
        imgs = probe_images(str(tmp_path), 8)
    assert imgs.shape == (2, 3, 8, 8)
    assert imgs[0, 0].min() == 255 and imgs[0, 1:].max() == 0  # RGB order
    assert probe_images(str(tmp_path), 8, num=1).shape[0] == 1


def test_bad_image_sources(tmp_path):
    with pytest.raises(ValueError, match='no images found'):
        probe_images(str(tmp_path))
    (tmp_path / 'x.jpg').write_bytes(b'broken')
    with pytest.warns(UserWarning), pytest.raises(ValueError,
                                                  match='could be read'):
        probe_images(str(tmp_path))
    with pytest.raises(ValueError, match='black, white, noise'):
        probe_images('no/such/folder')
    # generated images without a number: the documented defaults
    assert probe_images('noise', 4).shape == (200, 3, 4, 4)
    assert probe_images('black', 4).shape == (64, 3, 4, 4)
    with pytest.raises(ValueError, match='number of images'):
        probe_images('noise', 4, 0)


def test_split_indices():
    train, test = split_indices(50, 0.2, seed=3)
    assert len(test) == 10 and len(train) == 40
    assert sorted(train.tolist() + test.tolist()) == list(range(50))
    assert torch.equal(test, split_indices(50, 0.2, seed=3)[1])
    assert len(split_indices(2, 0.01)[1]) == 1
    with pytest.raises(ValueError, match='at least 2 images'):
        split_indices(1)


# ---------------------------------------------------------------- cache


@pytest.mark.parametrize('budget', [1e9, 0])
def test_cache_memory_and_disk(budget, capsys):
    images = probe_images('noise', 12, 5)
    enc = tiny_encoder()
    cache = extract(enc, images, grid=6, budget_bytes=budget, batch_size=2,
                    progress=True)
    out = capsys.readouterr().out
    assert 'feature cache: 5 x 40 x 6 x 6 float32 = 28.1 KiB' in out
    assert cache.on_disk == (budget == 0)
    assert cache.level_channels == [8, 16, 16]
    # the head's resize: bilinear, align_corners=False, per level
    levels = enc(images)
    expected = torch.cat([
        F.interpolate(lv, size=(6, 6), mode='bilinear', align_corners=False)
        for lv in levels
    ], 1)
    index = torch.tensor([3, 0, 4])
    torch.testing.assert_close(cache.read(index), expected[index])
    torch.testing.assert_close(
        cache.read(index, cache.channels_of(['f2'])),
        expected[index][:, 8:24])
    with pytest.raises(ValueError, match='f1, f2, f3'):
        cache.channels_of(['f4'])
    tmpdir = cache._tmpdir
    cache.close()
    assert tmpdir is None or not osp.exists(tmpdir)


def test_disk_cache_gives_the_same_probe():
    images = probe_images('noise', 16, 20)
    kw = dict(grid=8, train=dict(epochs=2, batch_size=4), progress=False)
    mem = run_probe(images, tiny_encoder(), **kw)
    disk = run_probe(images, tiny_encoder(), cache_budget=0, **kw)
    assert disk['cache']['on_disk'] and not mem['cache']['on_disk']
    assert mem['rows'][0]['spc'] == disk['rows'][0]['spc']


# ---------------------------------------------------------------- encoders


def test_build_encoder_errors():
    with pytest.raises(ProbeError, match='posenet, vgg16'):  # a ValueError
        build_encoder('resnet')
    with pytest.raises(ValueError, match='raw image'):
        build_encoder('posenet', padding_mode='zeros')
    with pytest.raises(ValueError, match='unknown padding_mode'):
        build_encoder('vgg16', padding_mode='mirror')


def test_posenet_encoder_is_the_raw_image():
    images = probe_images('noise', 8, 2)
    (level, ) = build_encoder('posenet')(images)
    torch.testing.assert_close(level, images.float() / 255)


def test_vgg16_encoder_padding_and_frozen():
    zeros = build_encoder('vgg16', seed=0)
    levels = zeros(probe_images('noise', 32, 1))
    assert [f.shape[1] for f in levels] == [64, 128, 256, 512, 512]
    assert [f.shape[-1] for f in levels] == [32, 16, 8, 4, 2]
    # each 3x3 conv without padding loses 2 pixels (PadVGG's formula)
    none = build_encoder('vgg16', padding_mode='none', seed=0)
    levels = none(probe_images('noise', 224, 1))
    assert [f.shape[-1] for f in levels] == [220, 106, 47, 17, 2]
    assert not any(p.requires_grad for p in zeros.parameters())
    zeros.train()
    assert not zeros.training and not zeros.backbone.training


def test_config_and_checkpoint(tmp_path):
    cfg = tmp_path / 'r18.py'
    cfg.write_text(
        "model = dict(type='EncoderDecoder', data_preprocessor=dict("
        "mean=[10., 20., 30.], std=[2., 2., 2.]), backbone=dict("
        "type='ResNetV1c', depth=18, norm_cfg=dict(type='SyncBN'), "
        "init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://x')))\n")
    enc = build_encoder(config=str(cfg), seed=1)
    assert enc.mean.flatten().tolist() == [10., 20., 30.]
    donor = build_encoder(config=str(cfg), seed=2).backbone
    state = {f'backbone.{k}': v for k, v in donor.state_dict().items()}
    state['decode_head.conv_seg.weight'] = torch.zeros(1)
    torch.save(dict(state_dict=state), tmp_path / 'seg.pth')
    loaded = build_encoder(config=str(cfg), checkpoint=str(tmp_path /
                                                           'seg.pth'))
    for k, v in donor.state_dict().items():
        assert torch.equal(loaded.backbone.state_dict()[k], v), k
    # a bare backbone's state dict (torchvision-like layout) loads too
    torch.save(donor.state_dict(), tmp_path / 'bare.pth')
    bare = build_encoder(config=str(cfg), checkpoint=str(tmp_path /
                                                         'bare.pth'))
    assert torch.equal(bare.backbone.stem[0].weight, donor.stem[0].weight)
    with pytest.raises(ValueError, match='not found'):
        build_encoder(config=str(cfg), checkpoint=str(tmp_path / 'no.pth'))
    # a ResNet takes no padding_mode argument: converted after building
    circ = build_encoder(config=str(cfg), padding_mode='circular')
    assert circ.backbone.stem[0].padding_mode == 'circular'
    torch.save({'conv1.weight': torch.zeros(1)}, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match='does not fit'):
        build_encoder(config=str(cfg), checkpoint=str(tmp_path / 'bad.pth'))
    cfg.write_text('model = dict(type="EncoderDecoder")\n')
    with pytest.raises(ValueError, match='no model.backbone'):
        build_encoder(config=str(cfg))


# ---------------------------------------------------------------- readout


def test_readout_is_the_posenet_head():
    """Trained on the cache, the readout's weights make a full PosENetHead
    (one input per encoder level) that predicts the same maps."""
    images = probe_images('noise', 32, 10)
    enc = tiny_encoder()
    cache = extract(enc, images, grid=10, progress=False)
    head = make_readout([40], grid=10, num_convs=2, kernel_size=3,
                        conv_padding=1, channels=8)
    assert isinstance(head, PosENetHead)
    feats = cached_features(cache)
    train_readout(head, feats, torch.arange(10), epochs=2, batch_size=4,
                  progress=False)
    full = PosENetHead(in_channels=[8, 16, 16], channels=8, in_index=[0, 1,
                                                                       2],
                       grid_size=10, num_convs=2, kernel_size=3,
                       conv_padding=1)
    full.load_state_dict(head.state_dict())
    full.eval()
    with torch.no_grad():
        expected = full(enc(images))
    got = predict_readout(head, feats, torch.arange(10))
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_joint_training_equals_one_pattern_at_a_time():
    """The summed loss gives each pattern of a one-layer readout exactly the
    updates it gets when trained alone."""
    images = probe_images('noise', 16, 12)
    cache = extract(tiny_encoder(), images, grid=8, progress=False)
    feats = cached_features(cache)
    opts = dict(epochs=3, batch_size=4, lr_step=2, progress=False)
    joint = make_readout([40], grid=8, seed=5)
    init = {k: v.clone() for k, v in joint.state_dict().items()}
    train_readout(joint, feats, torch.arange(12), **opts)
    for k, p in enumerate(joint.patterns):
        alone = make_readout([40], (p, ), grid=8)
        alone.load_state_dict({n: v[k:k + 1] for n, v in init.items()})
        train_readout(alone, feats, torch.arange(12), **opts)
        torch.testing.assert_close(alone.conv_seg.weight,
                                   joint.conv_seg.weight[k:k + 1],
                                   atol=1e-6, rtol=1e-4)


def test_loss_and_score_formulas():
    torch.manual_seed(0)
    pred = torch.rand(3, 2, 5, 5, dtype=torch.float64)
    target = torch.rand(1, 2, 5, 5, dtype=torch.float64)
    per_pattern = [((pred[:, k] - target[:, k])**2).mean() for k in range(2)]
    torch.testing.assert_close(readout_loss(pred, target),
                               sum(per_pattern))
    head = make_readout([4], ('H', 'G'), grid=6)
    big = F.interpolate(pred, size=(9, 9), mode='bilinear',
                        align_corners=False)
    gt = position_maps(('H', 'G'), 9, dtype=torch.float64)[0]
    res = score(head, pred, size=9, batch_size=2)
    for k, p in enumerate(('H', 'G')):
        ref = np.mean([
            spearmanr(big[i, k].flatten(), gt[k].flatten())[0]
            for i in range(3)
        ])
        assert res['spc'][p] == pytest.approx(ref, abs=1e-9)
        assert res['mae'][p] == pytest.approx(
            (big[:, k] - gt[k]).abs().mean().item(), abs=1e-9)
    # a constant map stays constant when resized: no rank correlation
    flat = torch.full((1, 2, 5, 5), 0.3)
    assert score(head, flat, size=13)['spc'] == dict(H=0., G=0.)


@pytest.mark.parametrize('grid,convs,kernel,pad',
                         [(28, 1, 3, 0), (28, 2, 3, 0), (20, 2, 5, 1),
                          (16, 3, 1, 0), (12, 1, 7, 3)])
def test_readout_side_is_the_readouts_output_side(grid, convs, kernel, pad):
    head = make_readout([4], ('H', ), grid=grid, num_convs=convs,
                        kernel_size=kernel, conv_padding=pad)
    out = head([torch.zeros(1, 4, grid, grid)])
    assert tuple(out.shape[-2:]) == (readout_side(grid, convs, kernel,
                                                  pad), ) * 2


def test_baseline_loss_is_the_best_prediction_that_ignores_the_image():
    """The loss of the best constant per pattern, found by scipy's
    optimiser on the readout loss's formula (a sum over patterns of mean
    squared errors), not by the variance the code takes."""
    from scipy.optimize import minimize
    patterns, side = ('H', 'V', 'G'), 26
    gt = position_maps(patterns, side, dtype=torch.float64)[0].numpy()

    def loss(c):
        return sum(((gt[k] - c[k])**2).mean() for k in range(len(c)))

    best = minimize(loss, np.full(3, 0.9), method='Nelder-Mead',
                    options=dict(xatol=1e-10, fatol=1e-14, maxiter=4000))
    assert baseline_loss(patterns, side) == pytest.approx(best.fun,
                                                          rel=1e-6)
    # an order of patterns changes nothing; another side changes the maps
    assert baseline_loss(('G', 'H', 'V'), side) == pytest.approx(best.fun,
                                                                 rel=1e-6)
    assert baseline_loss(patterns, 64) != pytest.approx(best.fun, rel=1e-3)


def test_readouts_end_at_or_above_the_baseline_when_they_read_nothing():
    """A readout without padding on the raw image (PosENet alone) has no
    position to read: trained, its loss ends near the baseline loss. On
    features scaled x1000 at lr 0.01 its sigmoid outputs saturate and
    its loss ends far above the baseline (the failure the study's
    readout check catches)."""
    from possec.analysis.probe.encoders import IMAGENET_STD
    images = probe_images('noise', 16, 20)
    base = baseline_loss(('H', 'V', 'G'), readout_side(8, 1))
    plain = run_probe(images, FrozenEncoder(), patterns=('H', 'V', 'G'),
                      grid=8, train=dict(epochs=15, batch_size=4),
                      progress=False)['rows'][0]['loss'][-1]
    assert 0.8 < plain / base < 1.2
    scaled = FrozenEncoder(std=[s / 1000 for s in IMAGENET_STD])
    row = run_probe(images, scaled, patterns=('H', 'V', 'G'), grid=8,
                    train=dict(epochs=15, batch_size=4, lr=0.01),
                    progress=False)['rows'][0]
    assert row['loss'][-1] / base > 3


def test_divergence_warns():
    images = probe_images('noise', 16, 20)
    with pytest.warns(UserWarning, match='readout diverged'):
        res = run_probe(images, tiny_encoder(), grid=8,
                        train=dict(epochs=3, batch_size=4, lr=100.),
                        progress=False)
    assert res['rows'][0]['diverged'] and res['rows'][0]['lr'] == 100.


def test_auto_lr_retries_after_divergence(capsys):
    # 'auto' starts at the paper's 0.1; on features scaled x10 that run
    # diverges (SGD on a quadratic diverges once lr exceeds 2 / the largest
    # curvature, which grows with the square of the scale)
    from possec.analysis.probe.encoders import IMAGENET_STD
    images = probe_images('noise', 16, 20)
    # the raw image (PosENet alone) with values x10
    scaled = FrozenEncoder(std=[s / 10 for s in IMAGENET_STD])
    res = run_probe(images, scaled, grid=8,
                    train=dict(epochs=3, batch_size=4), progress=False)
    row = res['rows'][0]
    assert 'diverged at lr 0.1' in capsys.readouterr().out
    assert row['lr'] < 0.1 and not row['diverged']
    assert row['loss'][-1] < row['loss'][0]


def test_diverged_marked_everywhere(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'position_probe', osp.join(ROOT, 'tools/analysis/position_probe.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = ['noise', '--num-images', '10', '--input-size', '16', '--grid',
            '8', '--epochs', '3', '--batch-size', '4', '--lr', '100',
            '--num-show', '1', '--out-dir', str(tmp_path)]
    with pytest.warns(UserWarning), pytest.raises(SystemExit) as exc:
        tool.main(args)
    assert exc.value.code == 3
    out, err = capsys.readouterr()
    assert 'DIVERGED' in out and 'diverged' in err
    assert 'DIVERGED' in (tmp_path / 'results.md').read_text()
    with open(tmp_path / 'results.csv') as f:
        assert {r['diverged'] for r in csv.DictReader(f)} == {'1'}
    with pytest.warns(UserWarning):
        result = tool.main(args + ['--allow-diverged'])
    assert result['rows'][0]['diverged']
    from possec.analysis.probe.report import row_title
    assert row_title(result, result['rows'][0]).startswith('DIVERGED')


def test_run_probe_errors():
    images = probe_images('black', 8, 4)
    enc = build_encoder('posenet')
    with pytest.raises(ValueError, match='unknown ablation'):
        run_probe(images, enc, ablate='width', progress=False)
    with pytest.raises(ValueError, match="unknown level 'f2'"):
        run_probe(images, enc, grid=4, levels=['f2'], progress=False)
    with pytest.raises(ValueError, match='unknown position pattern'):
        run_probe(images, enc, patterns=['X'], progress=False)
    with pytest.raises(ValueError, match='rebuilt per padding mode'):
        run_probe(images, enc, ablate='encoder-padding', progress=False)


# ---------------------------------------------------------------- reports


def test_reports_and_cli(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location(
        'position_probe', osp.join(ROOT, 'tools/analysis/position_probe.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'out')
    result = tool.main([
        'noise', '--num-images', '10', '--input-size', '16', '--grid', '8',
        '--epochs', '2', '--batch-size', '4', '--ablate', 'depth',
        '--ablate-values', '1', '2', '--out-dir', out, '--num-show', '2'
    ])
    printed = capsys.readouterr().out
    assert '| layers | lr | H SPC | H MAE | V SPC |' in printed
    assert sorted(os.listdir(out)) == [
        'pred_1.png', 'pred_2.png', 'results.csv', 'results.json',
        'results.md'
    ]
    with open(osp.join(out, 'results.json')) as f:
        saved = json.load(f)
    with open(osp.join(out, 'results.csv')) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 5 and saved['meta']['num_images'] == 10
    for row in rows:
        ref = next(r for r in result['rows'] if r['setting'] == row['layers'])
        assert float(row['spc']) == pytest.approx(ref['spc'][row['pattern']],
                                                  abs=1e-6)
        saved_row = next(r for r in saved['rows']
                         if r['setting'] == row['layers'])
        assert saved_row['mae'][row['pattern']] == pytest.approx(
            float(row['mae']), abs=1e-6)
    png = cv2.imread(osp.join(out, 'pred_2.png'))
    assert png is not None and png.shape[0] > 100
    table = format_table(result).splitlines()
    assert len(table) == 2 + 2 and table[2].startswith('| 1 | ')
    with pytest.raises(SystemExit) as exc:
        tool.main(['black', '--num-images', '4', '--encoder', 'resnet'])
    assert exc.value.code == 2
    assert 'posenet, vgg16' in capsys.readouterr().err


def test_write_results_levels_ablation(tmp_path):
    images = probe_images('noise', 16, 10)
    result = run_probe(images, tiny_encoder(), grid=8, ablate='levels',
                       train=dict(epochs=1, batch_size=4), progress=False)
    assert [r['setting'] for r in result['rows']] == ['f1', 'f2', 'f3',
                                                      'all']
    paths = write_results(result, str(tmp_path))
    assert osp.isfile(paths['png:all']) and osp.isfile(paths['csv'])


# ------------------------------------------- the paper's findings, small


def test_posenet_alone_reads_position_only_through_padding():
    """Paper Table 3 (PosENet on raw images): readout padding 0/1/2 gives
    H SPC .012 / .274 / .397."""
    images = probe_images('noise', 56, 256)
    result = run_probe(images, build_encoder('posenet'), grid=28,
                       ablate='padding', progress=False)
    p0, p1, p2 = (h_spc(result, s) for s in ('0', '1', '2'))
    assert abs(p0) < 0.1
    assert p0 < p1 < p2
    assert p1 == pytest.approx(0.274, abs=0.05)
    assert p2 == pytest.approx(0.397, abs=0.05)


def test_zero_padding_carries_more_position_than_circular_or_none():
    images = probe_images('noise', 32, 64)
    kw = dict(grid=16, train=dict(batch_size=16), progress=False)
    spcs = {mode: h_spc(run_probe(images, tiny_encoder(mode), **kw))
            for mode in ('zeros', 'circular', 'none')}
    # circular padding keeps the CNN translation-equivariant, no padding
    # leaves it no border to see: neither carries absolute position
    assert abs(spcs['circular']) < 0.1 and abs(spcs['none']) < 0.1
    assert spcs['zeros'] > spcs['circular'] + 0.2
    assert spcs['zeros'] > spcs['none'] + 0.2


def test_black_images_zero_padding_reads_position_circular_cannot():
    images = probe_images('black', 32, 20)
    result = run_probe(images, lambda mode: tiny_encoder(mode or 'zeros'),
                       grid=16, ablate='encoder-padding',
                       values=['zeros', 'circular'],
                       train=dict(epochs=8, batch_size=8), progress=False)
    assert h_spc(result, 'zeros') > 0.5
    # circular padding of a constant image: constant features (up to the
    # rounding of the head's bilinear resize), constant maps, no ranks
    pred = result['rows'][1]['pred']
    spread = pred.flatten(2).amax(-1) - pred.flatten(2).amin(-1)
    assert spread.max() < 1e-6
    assert abs(h_spc(result, 'circular')) < 0.01
