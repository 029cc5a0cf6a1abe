"""Receptive field, occlusion, deconvnet and invariance tools: numbers
against the formulas and explicit implementations, the behaviours the
tools exist to show, and each CLI end to end on the demo config."""
import csv
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import Deconvolution, Occlusion
from PIL import Image
from torch import nn

from possec.analysis.fields import (layer_fn, occlusion, occlusion_map,
                                    project, receptive_field,
                                    theoretical_field)
from possec.analysis.fields.invariance import feature_change, transform, undo
from possec.apis.checks import UserError

from .conftest import ROOT

DEMO = osp.join(ROOT, 'configs', 'demo', 'parsenet_pos_synthetic.py')


def _by_formula(layers, size=1., jump=1., start=0.):
    """r, j, centre of unit 0 through (k, s, d, p) layers, by the textbook
    recursion."""
    for k, s, d, p in layers:
        size, start = size + (k - 1) * d * jump, start + (
            (k - 1) * d / 2 - p) * jump
        jump *= s
    return size, jump, start


class _Residual(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.b = nn.Conv2d(c, c, 3, padding=2, dilation=2)
        self.short = nn.Conv2d(c, c, 1, stride=2)

    def forward(self, x):
        out = self.b(torch.relu(self.a(x)))
        out += self.short(x)
        return out


def _chain():
    return nn.Sequential(
        nn.Conv2d(2, 3, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, 1),
        _Residual(3), nn.Conv2d(3, 2, 3, dilation=3)).double().eval()


def test_theoretical_field_matches_the_recursion():
    layers = [(5, 1, 1, 2), (3, 2, 1, 1), (3, 2, 1, 1), (3, 1, 2, 2),
              (3, 1, 3, 0)]
    size, jump, start = _by_formula(layers)
    field = theoretical_field(_chain(), torch.rand(1, 2, 48, 48).double())
    assert field.size == (size, size) and field.jump == (jump, jump)
    assert field.start == (start, start) and not field.is_global


def test_theoretical_box_is_the_gradient_support():
    # positive weights, no ReLU clipping, average pools: every pixel of the
    # theoretical field has a non-zero gradient, every other pixel zero
    net = _chain()
    for p in net.parameters():
        p.data = p.data.abs() + 0.1
    net[1] = nn.Identity()
    x = torch.rand(1, 2, 48, 48, dtype=torch.float64, requires_grad=True)
    field = theoretical_field(net, x.detach())
    for unit in [(0, 0), (2, 3), (5, 5)]:
        (grad, ) = torch.autograd.grad(net(x)[0, 0, unit[0], unit[1]], x)
        rows, cols = np.nonzero(grad[0].abs().sum(0).numpy())
        y0, x0, y1, x1 = field.box(unit, (48, 48))
        assert (rows.min(), cols.min(), rows.max(), cols.max()) == (
            y0, x0, y1, x1)


def test_empirical_field_lies_within_theoretical_for_pure_convs():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU(),
                        nn.Conv2d(8, 4, 3, padding=1)).double().eval()
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    res = receptive_field(net, x, point=(16, 16), patch=1, batch_size=512)
    # r = 3 + 2 + 2 * 2 = 9 pixels, unit 8 centred on pixel 16
    assert res['theoretical']['local_size'] == (9., 9.)
    assert res['theoretical']['local_box'] == (12., 12., 20., 20.)
    assert res['theoretical']['area'] == 81
    assert res['empirical_area'] > 0 and res['empirical_near_local'] == 1
    assert res['region'][12:21, 12:21].sum() == res['empirical_area']
    assert res['max_change_beyond_local'] < 1e-12 * res['max_change']


def _segmentor(head):
    from mmseg.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    backbone = dict(type='ResNetV1c', depth=18, num_stages=2,
                    strides=(1, 2), dilations=(1, 1), out_indices=(0, 1),
                    stem_channels=16, base_channels=8)
    torch.manual_seed(0)
    model = MODELS.build(dict(type='EncoderDecoder', backbone=backbone,
                              decode_head=head))
    return model.double().eval()


def test_parsenet_sees_beyond_its_local_field_and_fcn_does_not():
    common = dict(in_channels=16, in_index=1, num_classes=3)
    parsenet = _segmentor(dict(type='ParseNetHead', **common))
    fcn = _segmentor(dict(type='FCNHead', channels=16, num_convs=1,
                          concat_input=False, **common))
    x = torch.randn(1, 3, 128, 128, dtype=torch.float64)
    found = {}
    for name, model in (('parsenet', parsenet), ('fcn', fcn)):
        # unit centred on (32, 32): the FCN's field ends at row/col 91, so
        # the 32-pixel patches from 96 on lie wholly beyond it
        found[name] = receptive_field(model._forward, x, point=(32, 32),
                                      cls=1, patch=32, batch_size=16)
    # ResNetV1c stem + layer1 + layer2: 103 px at stride 8 (3, 7, 11, 15
    # after the stem and its pool, +32 in layer1, +8 and +48 in layer2)
    theory = found['parsenet']['theoretical']
    assert theory['is_global'] and theory['local_size'] == (103., 103.)
    assert found['fcn']['theoretical']['local_size'] == (119., 119.)
    assert not found['fcn']['theoretical']['is_global']
    assert found['fcn']['theoretical']['local_box'] == (0, 0, 91, 91)
    fcn_far = found['fcn']['max_change_beyond_local']
    assert fcn_far < 1e-12 * found['fcn']['max_change']
    far = found['parsenet']['max_change_beyond_local']
    assert far > 1e-4 * found['parsenet']['max_change']


def _numpy_occlusion(image, size, stride):
    """Occlusion map of the score mean(image) by explicit loops."""
    h, w = image.shape
    total, count = np.zeros((h, w)), np.zeros((h, w))
    ys = sorted(set(list(range(0, h - size + 1, stride)) + [h - size]))
    xs = sorted(set(list(range(0, w - size + 1, stride)) + [w - size]))
    for y in ys:
        for x in xs:
            hidden = image.copy()
            hidden[y:y + size, x:x + size] = 0
            total[y:y + size, x:x + size] += image.mean() - hidden.mean()
            count[y:y + size, x:x + size] += 1
    return total / count


def test_occlusion_map_matches_explicit_loops():
    x = torch.rand(1, 1, 20, 23, dtype=torch.float64)
    heat, clean = occlusion_map(lambda b: b, x, 0,
                                torch.ones(20, 23, dtype=torch.bool),
                                size=6, stride=4, batch_size=7)
    assert clean == pytest.approx(float(x.mean()))
    np.testing.assert_allclose(heat.numpy(),
                               _numpy_occlusion(x[0, 0].numpy(), 6, 4),
                               rtol=1e-12, atol=1e-15)
    with pytest.raises(UserError, match='stride 7 is larger'):
        occlusion_map(lambda b: b, x, 0, torch.ones(20, 23, dtype=bool),
                      size=6, stride=7)


def test_occlusion_progress_counts_the_forward_passes(monkeypatch):
    """The bar's total is the number of times the model runs: counted by
    wrapping the model, and by the window grid of the explicit loops
    (ceil(windows / batch) occluded batches plus two clean passes)."""
    import importlib
    module = importlib.import_module('possec.analysis.fields.occlusion')
    bars = []

    class Recorder:
        def __init__(self, total, enabled=True, warmup=0):
            self.total, self.done, self.enabled = total, 0, enabled
            self.warmup = warmup
            bars.append(self)

        def update(self, num=1):
            self.done += num

        def close(self):
            pass

    monkeypatch.setattr(module, 'Progress', Recorder)
    calls = []

    def fn(b):
        calls.append(len(b))
        return b

    x = torch.rand(1, 1, 20, 23, dtype=torch.float64)
    occlusion_map(fn, x, 0, torch.ones(20, 23, dtype=torch.bool), size=6,
                  stride=4, batch_size=7, progress=True)
    (bar, ) = bars
    windows = len(set(range(0, 15, 4)) | {14}) * len(
        set(range(0, 18, 4)) | {17})
    assert bar.enabled
    assert bar.total == len(calls) == bar.done == -(-windows // 7) + 2
    assert sum(calls) == windows + 2  # every window once, clean twice
    assert bar.warmup == 1 and calls[0] == 1  # the first: one image


def test_occlusion_eta_extrapolates_the_batched_passes(monkeypatch,
                                                       capsys):
    """On a fake clock where a pass costs 1 s + 2 s per image, the bar's
    ETA after each pass is the passes left times the mean time of the
    batched passes done (13 s for 6 images), not the elapsed time spread
    over every pass including the first one on the clean image (3 s)."""
    import re

    import mmengine.utils.timer as timer
    clock = [1000.]
    monkeypatch.setattr(timer, 'time', lambda: clock[0])
    costs = []

    def fn(b):
        costs.append(1. + 2. * len(b))
        clock[0] += costs[-1]
        return b

    x = torch.rand(1, 1, 20, 23, dtype=torch.float64)
    # 5 x 6 windows: five batches of 6, between two clean passes
    occlusion_map(fn, x, 0, torch.ones(20, 23, dtype=torch.bool), size=6,
                  stride=4, batch_size=6, progress=True)
    assert costs == [3.] + [13.] * 5 + [3.]
    total = len(costs)
    shown = re.findall(r'(\d+)/(\d+), [^\r]*ETA: *(\d*)s?',
                       capsys.readouterr().out)
    assert [int(d) for d, _, _ in shown] == list(range(total + 1))
    for done, of, eta in shown[1:]:
        done = int(done)
        assert int(of) == total
        if done == 1:  # only the warm-up pass: no rate yet
            assert eta == ''
            continue
        batched = costs[1:done]
        expected = (total - done) * sum(batched) / len(batched)
        assert int(eta) == int(expected + 0.5)
    # mmengine's own ETA after the 2nd pass: 16 s x 5/2 = 40 s, not 65 s
    assert int(shown[2][2]) == 65


def test_occlusion_equals_captum_where_windows_align():
    """Captum's Occlusion crops its last window at the stride grid, possec
    puts it flush with the border: on a 22x26 image, 6-pixel squares every
    4 pixels align on both axes and the maps agree; on 23 columns they
    differ only where Captum's cropped window lies. (Captum divides by the
    window count in float32: the maps agree to float32 rounding.)"""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 5, padding=2).double()

    def fn(b):
        return conv(b)

    region = torch.zeros(22, 26, dtype=torch.bool)
    region[5:15, 8:20] = True
    for width in (26, 23):
        x = torch.randn(1, 3, 22, width, dtype=torch.float64)
        mask = region[:, :width]
        heat, _ = occlusion_map(fn, x, 2, mask, size=6, stride=4,
                                batch_size=5)
        ref = Occlusion(lambda b: fn(b)[:, 2][:, mask].mean(1)).attribute(
            x, sliding_window_shapes=(3, 6, 6), strides=(3, 4, 4),
            perturbations_per_eval=5)[0, 0].double()
        if width == 26:
            torch.testing.assert_close(heat, ref, rtol=1e-6, atol=1e-7)
        else:  # Captum's last column window starts at 20, possec's at 17
            torch.testing.assert_close(heat[:, :17], ref[:, :17], rtol=1e-6,
                                       atol=1e-7)
            assert (heat[:, 17:] - ref[:, 17:]).abs().max() > 1e-3


def test_occlusion_peaks_over_a_planted_object():
    blur = nn.Conv2d(1, 1, 5, padding=2, bias=False).double()
    nn.init.constant_(blur.weight, 1 / 25)

    def fn(b):  # class 1: "bright here", class 0: a constant threshold
        score = blur(b[:, :1]) * 10
        return torch.cat([torch.full_like(score, 2.), score], 1)
    x = torch.zeros(1, 3, 48, 48, dtype=torch.float64)
    x[..., 28:38, 8:18] = 1
    res = occlusion(fn, x, size=6, stride=2)
    assert res['cls'] == 1
    py, px = res['peak']
    assert 28 <= py < 38 and 8 <= px < 18
    heat = res['heat']
    assert heat[28:38, 8:18].mean() > 10 * heat[:20].abs().mean()
    with pytest.raises(UserError, match='out of range'):
        occlusion(fn, x, cls=5)
    with pytest.raises(UserError, match='predicted nowhere'):
        occlusion(fn, torch.zeros_like(x), cls=1)


def _explicit_deconvnet(net, x, channel, unit):
    """Zeiler & Fergus by hand: unpool with switches, ReLU, transposed
    filters, from the top layer down."""
    conv1, conv2 = net[0], net[3]
    a1 = torch.relu(conv1(x))
    p1, switches = F.max_pool2d(a1, 2, return_indices=True)
    a2 = torch.relu(conv2(p1))
    r = torch.zeros_like(a2)
    r[0, channel, unit[0], unit[1]] = a2[0, channel, unit[0], unit[1]]
    r = F.conv_transpose2d(torch.relu(r), conv2.weight, padding=1)
    r = F.max_unpool2d(r, switches, 2, output_size=a1.shape[-2:])
    return F.conv_transpose2d(torch.relu(r), conv1.weight, padding=1)


def test_deconvnet_matches_explicit_and_stays_in_the_field():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(4, 5, 3, padding=1),
                        nn.ReLU(inplace=True)).double().eval()
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    fn = layer_fn(net, '4')
    act = fn(x).detach()
    channel = int(act.amax(dim=(0, 2, 3)).argmax())
    unit = divmod(int(act[0, channel].argmax()), act.shape[-1])
    proj = project(net, fn, x, channel, [unit])[0]
    expected = _explicit_deconvnet(net, x, channel, unit)[0]
    torch.testing.assert_close(proj, expected, rtol=1e-12, atol=1e-12)
    # Captum's Deconvolution starts from 1, possec from the activation
    captum = Deconvolution(net).attribute(
        x.clone(), target=(channel, ) + tuple(unit))[0].detach()
    torch.testing.assert_close(proj / act[0, channel][unit], captum,
                               rtol=0, atol=1e-12)
    # field: conv3 (3 px), pool 2 (4 px, stride 2, centre 0.5), conv3
    # (8 px): unit u sees rows 2u-3 .. 2u+4
    rows, cols = np.nonzero(proj.abs().sum(0).detach().numpy())
    assert len(rows) > 0
    assert rows.min() >= 2 * unit[0] - 3 and rows.max() <= 2 * unit[0] + 4
    assert cols.min() >= 2 * unit[1] - 3 and cols.max() <= 2 * unit[1] + 4
    with pytest.raises(UserError, match='unknown layer'):
        layer_fn(net, 'nope')


def _padded_backbone(mode):
    from possec.models.backbones import PadResNetV1c
    torch.manual_seed(0)
    return PadResNetV1c(depth=18, padding_mode=mode, strides=(1, 2, 1, 1),
                        dilations=(1, 1, 2, 4), stem_channels=16,
                        base_channels=8).double().eval()


def test_circular_padding_is_exactly_shift_equivariant():
    x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    shifts = [0, 8, 24]  # multiples of the deepest stride, 8
    circular = feature_change(_padded_backbone('circular'), x, 'translate',
                              shifts)
    zeros = feature_change(_padded_backbone('zeros'), x, 'translate', shifts)
    assert circular.shape == (4, 3) and np.abs(circular).max() < 1e-12
    assert (zeros[:, 1:] > 1e-3).all() and (zeros[:, 0] == 0).all()


def test_rotation_undo_is_exact_for_quarter_turns():
    x = torch.randn(1, 2, 12, 12, dtype=torch.float64)
    for angle in (90, 180, -90):
        moved = transform(x, 'rotate', angle)
        torch.testing.assert_close(moved, torch.rot90(
            x, angle // 90, dims=(-2, -1)), rtol=0, atol=1e-12)
        back, mask = undo(moved, 'rotate', angle, (12, 12))
        assert mask.all()
        torch.testing.assert_close(back, x, rtol=0, atol=1e-12)


def _tool(name):
    path = osp.join(ROOT, 'tools', 'analysis', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


CLI_CASES = [
    ('receptive_field', ['--patch', '8', '--no-progress']),
    ('occlusion', ['--occluder', '8', '--stride', '8', '--no-progress']),
    ('deconvnet', ['--num-images', '3', '--topk', '2', '--layer', 'layer1']),
    ('invariance', ['--num-images', '1', '--modes', 'zeros', 'circular',
                    '--transforms', 'translate', 'scale', '--shifts', '0',
                    '8', '--scales', '1.5', '--no-progress']),
]


@pytest.mark.parametrize('name,args', CLI_CASES)
def test_cli_writes_png_and_json(name, args, tiny_voc, tmp_path):
    out = str(tmp_path / name)
    opts = ['--cfg-options', f'test_dataloader.dataset.data_root={tiny_voc}',
            'test_dataloader.dataset.generate=None']
    with pytest.warns(UserWarning, match='random weights'):
        result = _tool(name)([DEMO, '--out-dir', out, '--image-size', '32',
                              '32'] + args + opts)
    with open(osp.join(out, f'{name}.json')) as f:
        saved = json.load(f)
    assert saved['config'] == DEMO and saved['checkpoint'] is None
    with Image.open(osp.join(out, f'{name}.png')) as png:
        assert png.size[0] > 300 and png.size[1] > 200
    if name == 'receptive_field':
        assert saved['theoretical']['is_global']  # ParseNet's global branch
        assert 0 < saved['empirical_area'] <= 32 * 32
    elif name == 'occlusion':
        assert saved['region_pixels'] > 0
    elif name == 'deconvnet':
        assert [t['inside_share'] for t in saved['top']] == pytest.approx(
            [1., 1.])
        # one window for every panel, odd, within the image and the field
        side = saved['crop']['side']
        assert side % 2 == 1 and 9 <= side <= max(saved['field']['size'])
    else:
        assert max(saved['change']['circular']['translate'][0]) < 1e-4
        assert saved['change']['zeros']['translate'][0][1] > 1e-3
        with open(osp.join(out, 'invariance.csv')) as f:
            rows = list(csv.DictReader(f))
        # 2 modes x (2 shifts + 1 scale) x levels
        assert len(rows) == 2 * 3 * len(saved['strides'])
        for row in rows:
            kind, lvl = row['transform'], int(row['level'])
            k = saved['values'][kind].index(float(row['value']))
            assert float(row['change']) == pytest.approx(
                saved['change'][row['padding']][kind][lvl][k], abs=1e-6)
    assert result['files']['json'] == osp.join(out, f'{name}.json')


@pytest.mark.parametrize('name,args,message', [
    ('receptive_field', ['--class', '21'], 'class 21 is out of range'),
    ('deconvnet', ['--layer', 'layer9'], "unknown layer 'layer9'"),
    ('deconvnet', ['--layer', 'layer1', '--channel', '64'],
     'channel 64 is out of range'),
])
def test_cli_errors_name_the_bad_argument(name, args, message, tiny_voc,
                                          tmp_path, capsys):
    opts = ['--cfg-options', f'test_dataloader.dataset.data_root={tiny_voc}',
            'test_dataloader.dataset.generate=None', '--num-images' if
            name == 'deconvnet' else '--index', '1']
    with pytest.raises(SystemExit) as exc, pytest.warns(UserWarning):
        _tool(name)([DEMO, '--out-dir', str(tmp_path), '--image-size', '32',
                     '32'] + args + opts)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize('backbone,accepted', [
    (dict(type='PadVGG', depth=11, num_stages=3, strides=(1, 2, 2),
          dilations=(1, 1, 1), out_indices=(0, 1, 2)), False),
    (dict(type='PadResNetV1c', depth=18, strides=(1, 2, 1, 1),
          dilations=(1, 1, 2, 4), norm_cfg=dict(type='BN')), True),
])
def test_invariance_refuses_full_padding_that_grows_the_maps(backbone,
                                                             accepted):
    """``full`` on a VGG lets every conv grow the map by 2 (a 64-pixel
    image gives 68x68 after two convs), so features cannot be aligned by
    stride and the tool refuses it with a one-line error; PadResNet crops
    its full convs back to the 'same' sizes per block and is accepted."""
    from types import SimpleNamespace

    from mmengine.config import Config
    from mmseg.registry import MODELS

    from possec.analysis.fields.invariance import mode_backbones
    from possec.errors import UserError
    model = SimpleNamespace(cfg=Config(dict(model=dict(backbone=backbone))),
                            backbone=MODELS.build(dict(backbone)))
    if accepted:
        assert set(mode_backbones(model, ['zeros', 'full'])) == {'zeros',
                                                                 'full'}
    else:
        mode_backbones(model, ['zeros'])  # same padding: accepted
        with pytest.raises(UserError, match="padding mode 'full' gives"):
            mode_backbones(model, ['zeros', 'full'])
