"""The benchmark suite: quick mode end to end, files, sanity of the numbers.

Nothing here asserts a speed: quick mode runs tiny sizes once to prove that
every benchmark runs and reports well-formed numbers. FLOP counts are checked
against hand-computed counts and torch's own FLOP counter.
"""
import importlib.util
import json
import math
import os.path as osp

import pytest
import torch
from torch import nn

from possec.analysis.bench_efficiency import (DEMO_CONFIG, InferenceForward,
                                              build_model, count_flops,
                                              fold_batch_norm, profile_ops)
from possec.analysis.bench_suite import (NAMES, get_benchmarks, jsonable,
                                         parse_overrides, run_suite)

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Smaller still than each benchmark's QUICK, to keep this file fast on a
# shared 2-core machine; every benchmark still runs its whole path.
TEST_OVERRIDES = {
    'heads': dict(size=32),
    'padding': dict(size=48, modes=['zeros', 'reflect', 'partial']),
    'probe': dict(num_images=5, epochs=1),
    'efficiency': dict(memory_repeats=1),
    'throughput': dict(size=32, iters=1, warmup=0),
}


@pytest.fixture(scope='module')
def suite(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp('bench'))
    summary = run_suite(quick=True, out_dir=out_dir,
                        overrides=TEST_OVERRIDES, progress=False)
    results = {}
    for name in NAMES:
        with open(osp.join(out_dir, f'{name}.json')) as f:
            results[name] = json.load(f)
    return summary, results, out_dir


def _timings(node):
    """Every time_interleaved result dict below ``node``."""
    if isinstance(node, dict):
        if 'median_s' in node and 'ratio' in node:
            yield node
        for value in node.values():
            yield from _timings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _timings(value)


def test_suite_writes_every_file(suite):
    summary, results, out_dir = suite
    assert [b['name'] for b in summary['benchmarks']] == list(NAMES)
    for bench in summary['benchmarks']:
        assert bench['status'] == 'ok', bench['error']
        assert bench['rows'], bench['name']
        assert bench['wall_s'] > 0
    with open(osp.join(out_dir, 'summary.json')) as f:
        assert json.load(f) == summary
    with open(osp.join(out_dir, 'summary.md')) as f:
        markdown = f.read()
    assert 'quick mode' in markdown
    for name in NAMES:
        assert f'## {name}:' in markdown
        assert results[name]['settings']['repeats' if name != 'throughput'
                                         else 'iters'] <= 2
    # quick numbers measure nothing, so no target is judged
    assert all(row['met'] is None for b in summary['benchmarks']
               for row in b['rows'])


def test_every_timing_is_sane(suite):
    _, results, _ = suite
    for name in ('heads', 'padding', 'probe', 'metric', 'efficiency',
                 'throughput'):
        found = list(_timings(results[name]['result']))
        assert found, f'{name} reported no timings'
        for t in found:
            assert math.isfinite(t['ratio']) and t['ratio'] > 0, name
            assert 0 < t['min_s'] <= t['median_s'] <= t['max_s'], name
            assert t['spread'] >= 0


def test_benchmark_specific_numbers(suite):
    _, results, _ = suite
    padding = results['padding']['result']
    assert set(padding['train']) == {'zeros', 'reflect', 'partial'}
    assert padding['train']['zeros']['ratio'] == pytest.approx(1.0)
    probe = results['probe']['result']
    assert probe['speedup'] > 0 and 0 <= probe['max_spc_diff'] <= 2
    metric = results['metric']['result']
    assert metric['IoUMetric']['ratio'] == pytest.approx(1.0)
    assert {'BorderIoUMetric'} <= set(metric)

    eff = results['efficiency']['result']
    assert eff['matmul']['gflops_per_s'] > 0
    demo, headline = eff['models']['demo'], eff['models']['headline']
    assert demo['size'] == headline['size'] == 32
    for model in (demo, headline):
        assert model['macs'] > 0 and model['params'] > 0
        assert 0 < model['macs_by_operator']['conv'] <= model['macs']
        assert model['images_per_s'] > 0 and model['matmul_share'] > 0
        assert model['peak_memory_bytes'] is None or \
            model['peak_memory_bytes'] >= 0
    for name in ('demo', 'headline'):
        other = eff['models'][f'{name}, channels_last']
        assert other['memory_format'] == 'channels_last'
        assert other['macs'] == eff['models'][name]['macs']
        assert other['images_per_s'] > 0
    for name in ('demo', 'headline'):
        folded = eff['models'][f'{name}, BN folded']
        assert folded['bn_folded'] and folded['images_per_s'] > 0
        assert folded['max_abs_diff'] < 1e-3
    # R-50-D8 does more work than R-18-D8 on the same input
    assert headline['macs'] > demo['macs']
    assert headline['params'] > demo['params']

    thr = results['throughput']['result']
    assert thr['settings']['batch'] == 2 and thr['settings']['size'] == 32
    assert len(thr['included']['times_s']) == thr['settings']['iters']
    assert thr['included']['images_per_s'] > 0
    assert thr['excluded']['images_per_s'] > 0
    assert 0 <= thr['included']['data_wait_share'] <= 1


def test_flops_of_a_tiny_net_match_the_hand_count():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 4, 3, stride=2, padding=1), nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10))
    x = torch.randn(1, 3, 16, 16)
    # multiply-adds: Cin * Cout * k * k * Hout * Wout, and in * out
    conv1 = 3 * 8 * 3 * 3 * 16 * 16
    conv2 = 8 * 4 * 3 * 3 * 8 * 8
    linear = 256 * 10
    info = count_flops(net, x)
    assert info['macs'] == conv1 + conv2 + linear == 76288
    assert info['macs_by_operator']['conv'] == conv1 + conv2
    assert info['params'] == sum(p.numel() for p in net.parameters())
    # the same counts as mmengine's one-call interface
    from mmengine.analysis import get_model_complexity_info
    ref = get_model_complexity_info(net, inputs=(x, ), show_table=False,
                                    show_arch=False)
    assert (ref['flops'], ref['params']) == (info['macs'], info['params'])


def test_profiled_convolutions_carry_their_hand_counted_macs():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
        nn.Conv2d(8, 4, 3, stride=2, padding=2, dilation=2),
        nn.Conv2d(4, 4, 3, padding=1, groups=2))
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ops, convs = profile_ops(lambda: net(x), limit=10)
    assert ops and all(op['self_cpu_s'] >= 0 for op in ops)
    found = {tuple(c['weight']): (c['macs'], c['calls'], c['stride'],
                                  c['dilation']) for c in convs}
    # N * Cout * Cin/groups * k * k * Hout * Wout
    assert found == {
        (8, 3, 3, 3): (2 * 8 * 3 * 9 * 16 * 16, 1, [1, 1], [1, 1]),
        (4, 8, 3, 3): (2 * 4 * 8 * 9 * 8 * 8, 1, [2, 2], [2, 2]),
        (4, 2, 3, 3): (2 * 4 * 2 * 9 * 8 * 8, 1, [1, 1], [1, 1]),
    }


def test_folding_batch_norm_matches_the_bn_formula():
    """Conv then BN in eval mode, written out: (w*x + b - mean) * gamma /
    sqrt(var + eps) + beta; the folded net has no BN left and gives the
    same values, and the real demo model keeps its logits."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4),
                        nn.ReLU())
    bn = net[1]
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    x = torch.randn(2, 3, 8, 8)
    conv = torch.nn.functional.conv2d(x, net[0].weight)
    shape = (1, 4, 1, 1)
    ref = ((conv - bn.running_mean.view(shape)) * bn.weight.view(shape) /
           torch.sqrt(bn.running_var.view(shape) + bn.eps) +
           bn.bias.view(shape)).relu()
    folded = fold_batch_norm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), ref)

    demo = InferenceForward(build_model(DEMO_CONFIG, 32), 32).eval()
    for m in demo.modules():  # non-trivial statistics to fold
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, 32, 32)
    folded = fold_batch_norm(demo)
    assert not any(
        isinstance(m, nn.modules.batchnorm._BatchNorm)
        for m in folded.segmentor.backbone.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), demo(x), rtol=1e-4,
                                   atol=1e-4)


def test_demo_model_conv_flops_match_torch_counter():
    from torch.utils.flop_counter import FlopCounterMode
    net = InferenceForward(build_model(DEMO_CONFIG, 32), 32).eval()
    x = torch.randn(1, 3, 32, 32)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    counts = counter.get_flop_counts()['Global']
    torch_conv = sum(v for k, v in counts.items() if 'convolution' in str(k))
    # torch counts 2 FLOPs per multiply-add, mmengine counts 1
    assert count_flops(net, x)['macs_by_operator']['conv'] * 2 == torch_conv


def test_registry_and_settings_errors():
    assert list(get_benchmarks()) == list(NAMES)
    with pytest.raises(ValueError, match='unknown benchmark'):
        get_benchmarks(['heads', 'speed'])
    heads = get_benchmarks(['heads'])['heads']
    assert heads.settings()['depth'] == 50
    assert heads.settings(quick=True)['depth'] == 18
    assert heads.settings(quick=True, overrides=dict(size=48))['size'] == 48
    with pytest.raises(ValueError, match="unknown setting.*'sise'"):
        heads.settings(overrides=dict(sise=48))
    with pytest.raises(ValueError, match='not run'):
        run_suite(['heads'], quick=True, overrides={'padding': {}})


def test_parse_overrides_and_jsonable():
    assert parse_overrides(['heads.size=64', 'heads.device=cpu',
                            "efficiency.sizes={'headline': 256}"]) == {
        'heads': dict(size=64, device='cpu'),
        'efficiency': dict(sizes={'headline': 256})}
    for bad in ('heads=64', 'size=64', 'heads.size'):
        with pytest.raises(ValueError, match='NAME.KEY=VALUE'):
            parse_overrides([bad])
    import numpy as np
    assert jsonable(dict(a=np.float32(0.5), b=(1, float('nan')),
                         c=np.arange(2))) == dict(a=0.5, b=[1, None],
                                                  c=[0, 1])


def test_cli_lists_and_rejects():
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(ROOT, 'tools/analysis/benchmark.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(['--list', '--quick', 'metric']) == 0
    assert tool.main(['nope']) == 2
    assert tool.main(['heads', '--set', 'heads.sise=3']) == 2
