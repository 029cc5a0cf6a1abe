"""Position channels (possec.analysis.channels): the canvas, the
placement score against a least-squares ANOVA, planted channels ranked
and decoded, the permutation control, the mean ablation against a
hand-written forward, the zone mIoU against mmseg's IoUMetric, and the
tool end to end on the demo config with a checkpoint made here."""
import csv
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from possec.analysis.channels import (ablate, cell_box, channel_table,
                                      decode, decode_all, make_canvases,
                                      order_free, placement_anova,
                                      record_means)
from possec.analysis.channels.canvas import texture_background
from possec.analysis.channels.evaluate import ZoneCounts, region_index_map
from possec.analysis.channels.layers import parse_layer, pooled
from possec.errors import UserError

from .conftest import ROOT

DEMO = osp.join(ROOT, 'configs', 'demo', 'parsenet_pos_synthetic.py')
PLAIN = (10, 20, 30)


def _flat(colour, size=40):
    img = np.empty((size, size + 7, 3), np.uint8)
    img[:] = colour
    return img


def test_canvas_places_content_at_the_named_cells():
    sources = [_flat((200, 0, 0)), _flat((0, 200, 0))]
    canv = make_canvases(sources, 31, grid=3, crops=2,
                         backgrounds=('plain', 'texture'), plain_rgb=PLAIN)
    assert len(canv.images) == 2 * 2 * 2 * 9
    texture = torch.from_numpy(texture_background(31).transpose(2, 0, 1))
    for img, cell, src, bg in zip(canv.images, canv.cell, canv.source,
                                  canv.background):
        row, col = divmod(int(cell), 3)
        # cell (row, col) of a 31px canvas cut 3x3: 10px cells from the
        # top-left, the last row and column of pixels left as background
        box = np.zeros((31, 31), bool)
        box[10 * row:10 * row + 10, 10 * col:10 * col + 10] = True
        assert cell_box(int(cell), 3, 31) == (10 * row, 10 * col,
                                              10 * row + 10, 10 * col + 10)
        colour = torch.tensor([200, 0, 0] if src == 0 else [0, 200, 0],
                              dtype=torch.uint8)
        assert (img[:, box] == colour[:, None]).all()
        if bg == 0:
            assert (img[:, ~box] == torch.tensor(
                PLAIN, dtype=torch.uint8)[:, None]).all()
        else:
            assert (img[:, ~box] == texture[:, ~box]).all()
    # the texture differs from place to place (it is no plain colour)
    assert texture.float().std() > 20


def test_canvas_refuses_a_grid_without_room():
    with pytest.raises(UserError, match='per cell'):
        make_canvases([_flat(1), _flat(2)], 16, grid=5)
    with pytest.raises(UserError, match='at least 2 source images'):
        make_canvases([_flat(1)], 32)


def _crossed(num_content=6, grid=3, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    content = torch.arange(num_content).repeat_interleave(grid * grid)
    cell = torch.arange(grid * grid).repeat(num_content)
    values = torch.from_numpy(rng.normal(size=(len(cell), channels)))
    return values, content, cell, rng


def test_placement_anova_matches_least_squares():
    values, content, cell, rng = _crossed()
    values[:, 0] += torch.from_numpy(rng.normal(size=9))[cell]  # placement
    values[:, 1] += 3 * torch.from_numpy(rng.normal(size=6))[content]
    res = placement_anova(values, content, cell)
    # independent: residual sums of squares of the content-only and the
    # content + placement linear models (dummy coding, numpy lstsq)
    dummies_u = np.eye(6)[content.numpy()]
    dummies_p = np.eye(9)[cell.numpy()][:, 1:]
    for c in range(4):
        y = values[:, c].numpy()
        rss = []
        for design in (dummies_u, np.hstack([dummies_u, dummies_p])):
            coef = np.linalg.lstsq(design, y, rcond=None)[0]
            rss.append(((y - design @ coef)**2).sum())
        ss_p, ss_e = rss[0] - rss[1], rss[1]
        f_value = (ss_p / 8) / (ss_e / (5 * 8))
        assert res['ss_placement'][c] == pytest.approx(ss_p, rel=1e-9)
        assert res['ss_residual'][c] == pytest.approx(ss_e, rel=1e-9)
        assert res['eta2'][c] == pytest.approx(ss_p / (ss_p + ss_e))
        assert res['F'][c] == pytest.approx(f_value, rel=1e-9)
        assert res['p'][c] == pytest.approx(stats.f.sf(f_value, 8, 40),
                                            rel=1e-6)
    assert res['p'][0] < 1e-6 < res['p'][1]


def test_placement_anova_refuses_an_uncrossed_set():
    values, content, cell, _ = _crossed()
    with pytest.raises(UserError, match='exactly once'):
        placement_anova(values[1:], content[1:], cell[1:])


def _planted(num_source=6, crops=4, grid=3, noise=0.3, content_sd=0.3,
             seed=0):
    """Pooled vectors of a crossed canvas set: channels 0..8 a one-hot
    placement code (channel c fires for cell c), channel 9 the column
    (overall position), channel 10 the source image (large), channels 11..
    content and noise only."""
    rng = np.random.default_rng(seed)
    n_cell = grid * grid
    source = torch.arange(num_source).repeat_interleave(crops * n_cell)
    crop = torch.arange(crops).repeat_interleave(n_cell).repeat(num_source)
    cell = torch.arange(n_cell).repeat(num_source * crops)
    values = rng.normal(0, noise, size=(len(cell), 24))
    content = (source * crops + crop).numpy()
    values[:, 11:] += rng.normal(0, content_sd, size=(num_source * crops, 13))[
        content]
    values[np.arange(len(cell)), cell.numpy()] += 2.
    values[:, 9] += (cell % grid).numpy()
    values[:, 10] += 20 + 3 * source.numpy()
    return torch.from_numpy(values), source, crop, cell


def test_planted_position_channels_rank_first_and_are_decoded():
    values, source, crop, cell = _planted()
    table = channel_table(values, source * 10 + crop, cell)
    assert set(table['order'][:10].tolist()) == set(range(10))
    assert list(table['kind'][:9]) == ['region'] * 9
    assert table['kind'][9] == 'overall'
    assert set(table['kind'][10:]) == {'none'}
    assert table['peak'][:9].tolist() == list(range(9))
    # the region contrast of channel c is largest at its own cell
    assert table['contrast'][:, :9].argmax(0).tolist() == list(range(9))
    out = decode_all(values, cell, source, crop, 3)
    assert out['position']['acc'] > 0.95 and out['position']['p'] < 1e-10


def test_permutation_collapses_position_and_keeps_the_semantic_channel():
    values, source, crop, cell = _planted(num_source=3, crops=8,
                                          content_sd=0.)
    values = values[:, list(range(9)) + [10] + list(range(11, 24))]
    out = decode_all(values, cell, source, crop, 3)
    assert out['position']['acc'] > 0.95
    # one-hot placement: the same multiset of values wherever the content
    # lies, so without channel identity the read-out is at chance (1/9)
    assert out['position_permuted']['acc'] < 0.25
    assert out['position_permuted']['p'] > 0.01
    # the source lives in one channel's magnitude, which survives
    assert out['content']['acc'] > 0.9
    assert out['content_permuted']['acc'] > 0.9


def test_accuracy_interval_is_the_two_sided_wilson_interval():
    from possec.analysis.channels.decode import accuracy
    pred = torch.tensor([1] * 30 + [0] * 10)
    out = accuracy(pred, torch.ones(40, dtype=torch.long), 0.5)
    p, n, z = 0.75, 40, stats.norm.ppf(0.975)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z /
                                                                  n)
    assert out['acc'] == 0.75
    assert out['ci'] == pytest.approx([centre - half, centre + half])
    assert out['p'] == pytest.approx(stats.binom.sf(29, 40, 0.5))


def test_order_free_forgets_only_the_channel_order():
    x = torch.randn(5, 7)
    perm = torch.randperm(7)
    assert torch.equal(order_free(x, 1), order_free(x[:, perm], 2))
    assert torch.equal(order_free(x).sort(1).values, x.sort(1).values)


def test_decode_refuses_a_split_without_test_rows():
    values, source, crop, cell = _planted()
    with pytest.raises(UserError, match='rows to fit on and rows to test'):
        decode(values, cell, torch.ones(len(cell), dtype=torch.bool))


class _Net(nn.Module):
    """A stem, a two-output 'backbone' and a head."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.mid = nn.Conv2d(6, 6, 3, padding=1)
        self.head = nn.Conv2d(6, 2, 1)

    def backbone(self, x):
        a = torch.relu(self.stem(x))
        return a, torch.relu(self.mid(a))

    def forward(self, x):
        return self.head(self.backbone(x)[1])


class _Wrapped(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.levels = _Levels(net)

    def forward(self, x):
        return self.net.head(self.levels(x)[1])


class _Levels(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.backbone(x)


def test_ablation_replaces_exactly_the_chosen_channels_by_their_means():
    torch.manual_seed(0)
    net = _Net().double().eval()
    x = torch.randn(4, 3, 9, 9, dtype=torch.float64)
    with record_means(net, 'stem') as rec:
        net(x)
        net(x[:2])
    stem = net.stem(torch.cat([x, x[:2]]))
    assert torch.allclose(rec.mean, stem.mean((0, 2, 3)))
    means = torch.arange(6, dtype=torch.float64) * 0.1 - 0.2
    chans = [1, 4]

    def by_hand(x):  # the forward, written out, with the replacement
        a = net.stem(x).clone()
        a[:, 1] = means[1]
        a[:, 4] = means[4]
        return net.head(torch.relu(net.mid(torch.relu(a))))

    with ablate(net, 'stem', chans, means):
        got = net(x)
    assert torch.equal(got, by_hand(x))
    assert not torch.equal(net(x), got)  # the hook is gone after the block
    # NAME[i]: element i of a tuple output
    wrapped = _Wrapped(net).eval()
    with ablate(wrapped, 'levels[1]', [0], means):
        got = wrapped(x)
    b = net.backbone(x)[1].clone()
    b[:, 0] = means[0]
    assert torch.equal(got, net.head(b))


def test_layer_names_fail_in_one_line():
    net = _Wrapped(_Net())
    with pytest.raises(UserError, match="'nope' is not a module"):
        parse_layer(net, 'nope')
    with pytest.raises(UserError, match='malformed'):
        parse_layer(net, 'levels[')
    with pytest.raises(UserError, match='expected a feature map'):
        with pooled(net, ['levels']):
            net(torch.randn(1, 3, 8, 8))


def test_zone_miou_matches_mmseg_iou_metric():
    from mmseg.evaluation import IoUMetric
    gen = torch.Generator().manual_seed(0)
    num_classes = 4
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=[str(i) for i in range(num_classes)])
    counts = ZoneCounts(num_classes, grid=3)
    for _ in range(3):
        label = torch.randint(0, num_classes, (20, 26), generator=gen)
        label[torch.rand(20, 26, generator=gen) < 0.1] = 255
        pred = torch.where(torch.rand(20, 26, generator=gen) < 0.6, label,
                           torch.randint(0, num_classes, (20, 26),
                                         generator=gen)).clamp(max=3)
        counts.add(pred, label)
        metric.process([], [dict(pred_sem_seg=dict(data=pred[None]),
                                 gt_sem_seg=dict(data=label[None]))])
    ours = counts.metrics()
    theirs = metric.compute_metrics(metric.results)
    assert ours['mIoU'] == pytest.approx(theirs['mIoU'], abs=0.006)
    assert ours['aAcc'] == pytest.approx(theirs['aAcc'], abs=0.006)


def test_region_index_map_cuts_the_image_in_equal_parts():
    zones = region_index_map(7, 9, 3)
    assert zones[0, 0] == 0 and zones[0, 8] == 2 and zones[6, 0] == 6
    assert zones[6, 8] == 8
    # columns 0-2, 3-5, 6-8; rows 0-2, 3-4, 5-6
    assert zones[:, 3].tolist() == [1, 1, 1, 4, 4, 7, 7]


def _tool():
    path = osp.join(ROOT, 'tools', 'analysis', 'position_channels.py')
    spec = importlib.util.spec_from_file_location('_tool_channels', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _checkpoint(tmp_path):
    """A checkpoint of the demo model with random weights, written the way
    mmengine does (state_dict and meta)."""
    from mmengine.config import Config

    from possec.analysis.common import build_offline
    cfg = Config.fromfile(DEMO)
    model = build_offline(cfg.model, seed=0)
    path = str(tmp_path / 'tiny.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def test_tool_end_to_end_on_a_tiny_checkpoint(tiny_voc, tmp_path):
    out = str(tmp_path / 'out')
    ckpt = _checkpoint(tmp_path)
    result = _tool()([
        DEMO, '--checkpoint', ckpt, '--out-dir', out, '--num-sources', '3',
        '--crops', '2', '--grid', '2', '--canvas-size', '32', '--ks', '1',
        '4', '--draws', '2', '--region-k', '4', '--no-progress',
        '--cfg-options', f'test_dataloader.dataset.data_root={tiny_voc}',
        'test_dataloader.dataset.generate=None'])
    with open(osp.join(out, 'position_channels.json')) as f:
        saved = json.load(f)
    assert saved['layer'] == 'backbone[3]' and saved['num_channels'] == 512
    features = {r['feature'] for r in saved['decoding']}
    assert features == {'backbone[0]', 'backbone[1]', 'backbone[2]',
                        'backbone[3]', 'decode_head.global_norm'}
    assert len(saved['channels']) == 512
    assert [c['rank'] for c in saved['channels']] == list(range(512))
    eta2 = [c['eta2'] for c in saved['channels']]
    assert eta2 == sorted(eta2, reverse=True)
    curve = saved['reliance']['curve']
    assert {(r['k'], r['metric']) for r in curve} >= {
        (1, 'mIoU'), (4, 'mIoU'), (4, 'mIoU_pairs')}
    assert all(len(r['random']['draws']) == 2 for r in curve
               if r['metric'] == 'mIoU')
    assert len(saved['regions']['regions']) == 4
    with open(osp.join(out, 'position_channels.csv')) as f:
        rows = list(csv.DictReader(f))
    assert {r['section'] for r in rows} == {'decoding', 'channel',
                                            'reliance', 'region'}
    for key in ('reliance', 'regions', 'decoding'):
        assert osp.getsize(osp.join(out, f'position_channels_{key}.png')) \
            > 1000
    assert result['files']['json'] == osp.join(out, 'position_channels.json')
    # saved runs side by side, without a model
    saved_json = result['files']['json']
    png = _tool()(['--compare', saved_json, saved_json, '--labels', 'a',
                   'b', '--out-dir', str(tmp_path / 'cmp')])
    assert osp.getsize(png) > 1000
    with pytest.raises(SystemExit) as exc:
        _tool()(['--compare', saved_json, '--labels', 'a', 'b',
                 '--out-dir', str(tmp_path / 'cmp')])
    assert exc.value.code == 2


def test_tool_refuses_an_output_path_that_is_a_file(tmp_path, capsys):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(SystemExit) as exc:
        _tool()([DEMO, '--out-dir', str(blocker / 'out'), '--no-progress'])
    assert exc.value.code == 2
    assert 'is a file' in capsys.readouterr().err


def test_tool_stops_on_missing_data_before_writing(tmp_path, capsys):
    out = tmp_path / 'out'
    with pytest.raises(SystemExit) as exc, pytest.warns(UserWarning):
        _tool()([DEMO, '--out-dir', str(out), '--no-progress',
                 '--cfg-options',
                 f'test_dataloader.dataset.data_root={tmp_path / "none"}',
                 'test_dataloader.dataset.generate=None'])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert 'data root' in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
