"""The benchmark suite: quick mode end to end, files, sanity of the numbers,
the shared runner, the package's layering, and the command line
(``tools/analysis/benchmark.py``) of each benchmark.

Nothing here asserts a speed: quick mode runs tiny sizes once to prove that
every benchmark runs and reports well-formed numbers. FLOP counts are checked
against hand-computed counts and torch's own FLOP counter; the runner's
training step against the AdamW update written out.
"""
import ast
import glob
import json
import math
import os.path as osp
import statistics

import numpy as np
import pytest
import torch
from torch import nn

from possec.analysis.common import to_jsonable
from possec.benchmarks import cli
from possec.benchmarks.models import (DEMO_CONFIG, InferenceForward,
                                      build_model, fold_batch_norm)
from possec.benchmarks.profile import count_flops, profile_ops
from possec.benchmarks.runner import BenchmarkRunner, random_batch
from possec.benchmarks.suite import (NAMES, get_benchmarks, parse_overrides,
                                     run_suite)
from possec.errors import UserError

from .conftest import ROOT, run_tool
# Smaller still than each benchmark's QUICK, to keep this file fast on a
# shared 2-core machine; every benchmark still runs its whole path.
TEST_OVERRIDES = {
    'heads': dict(size=32),
    'padding': dict(size=48, modes=['zeros', 'reflect', 'partial']),
    'probe': dict(num_images=5, epochs=1),
    'efficiency': dict(memory_repeats=1),
    'throughput': dict(size=32, iters=1, warmup=0),
    'training': dict(variants=['readout before'], top_ops=3),
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
    """The reported statistics are those of the raw times, and all timed
    calls together took less than the benchmark's own wall time (measured
    apart, around the whole benchmark)."""
    _, results, _ = suite
    for name in NAMES:
        found = list(_timings(results[name]['result']))
        assert found, f'{name} reported no timings'
        for t in found:
            times = t['times_s']
            assert times and min(times) > 0, name
            assert t['median_s'] == pytest.approx(statistics.median(times))
            assert (t['min_s'], t['max_s']) == (min(times), max(times))
            assert t['spread'] == pytest.approx(
                (max(times) - min(times)) / statistics.median(times))
            assert math.isfinite(t['ratio']) and t['ratio'] > 0, name
        timed = sum(sum(t['times_s']) for t in found)
        assert timed < results[name]['wall_s'], name


def test_benchmark_specific_numbers(suite):
    _, results, _ = suite
    padding = results['padding']['result']
    assert set(padding['train']) == {'zeros', 'reflect', 'partial'}
    assert padding['train']['zeros']['ratio'] == pytest.approx(1.0)
    probe = results['probe']['result']
    # cached and naive probes compute the same readouts (the speed is
    # reported, never asserted)
    assert probe['max_spc_diff'] < 1e-3
    assert probe['speedup'] == pytest.approx(
        1 / probe['times']['cached']['ratio'])
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


def test_benchmark_configs_load_with_one_line_errors(tmp_path):
    """The benchmarks read configs as the tools do: ``possec::`` names
    and a user's file, a misspelt ``_base_`` refused in one line naming
    the entry and its file."""
    from possec.benchmarks.throughput import _train_config
    leaf = tmp_path / 'my_demo.py'
    leaf.write_text(f"_base_ = ['{DEMO_CONFIG}']\n"
                    "model = dict(backbone=dict(padding_mode='reflect'))\n")
    model = build_model(str(leaf), 32)
    assert model.backbone.padding_mode == 'reflect'
    bad = tmp_path / 'typo.py'
    bad.write_text(f"_base_ = ['{DEMO_CONFIG[:-3]}x.py']\n")
    for load in (lambda: build_model(str(bad), 32),
                 lambda: _train_config(str(bad), str(tmp_path), str(
                     tmp_path / 'w'), 1, None, None, None)):
        with pytest.raises(UserError) as info:
            load()
        message = str(info.value)
        assert '\n' not in message
        assert f"_base_ entry '{DEMO_CONFIG[:-3]}x.py'" in message
        assert str(bad) in message


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
    assert to_jsonable(dict(a=np.float32(0.5), b=(1, float('nan')),
                         c=np.arange(2))) == dict(a=0.5, b=[1, None],
                                                     c=[0, 1])


def test_cli_lists_and_rejects(capsys):
    assert cli.main(['--list', '--quick', 'metric']) == 0
    assert 'metric: BorderIoUMetric vs IoUMetric' in capsys.readouterr().out
    assert cli.main(['nope']) == 2
    assert cli.main(['heads', '--set', 'heads.sise=3']) == 2
    err = capsys.readouterr().err
    assert "unknown setting(s) ['sise']" in err
    # the older spelling still works, with a one-line notice
    assert err.count('notice: --set is deprecated') == 1
    assert cli.main(['metric', '--list', '--set', 'metric.images=6']) == 0
    assert "'images': 6" in capsys.readouterr().out
    assert cli.main(['heads', '--sise', '3']) == 2
    assert 'unrecognized arguments: --sise 3' in capsys.readouterr().err
    # a setting of one benchmark needs exactly one NAME
    assert cli.main(['heads', 'metric', '--size', '3']) == 2
    assert 'exactly one benchmark' in capsys.readouterr().err
    assert cli.main(['heads', '--help']) == 0
    assert '--num-classes' in capsys.readouterr().out


def _bench(name, args, tmp_path, capsys):
    """Run ``benchmark.py NAME --quick --threads 1 ARGS`` in this process
    (the tool's whole body); return its stdout and ``--out`` JSON."""
    out = tmp_path / f'{name}.json'
    code = cli.main([name, '--quick', '--threads', '1', '--out', str(out),
                     '--out-dir', str(tmp_path / 'suite')] + list(args))
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    assert (tmp_path / 'suite' / 'summary.md').is_file()
    return stdout, json.loads(out.read_text())


def test_cli_heads(tmp_path, capsys):
    stdout, report = _bench('heads', [], tmp_path, capsys)
    names = list(report['result'])
    assert names[0] == 'bare 1x1 classifier' and len(names) == 7
    assert names[-1] == 'ParseNetHead + PosENetHead (position head)'
    assert report['result'][names[0]]['ratio'] == 1.0
    assert report['settings']['depth'] == 18
    assert report['settings']['threads'] == 1
    for name in names:  # the table printed every variant
        assert f'| {name} |' in stdout


def test_cli_metric(tmp_path, capsys):
    stdout, result = _bench('metric', ['--images', '6'], tmp_path, capsys)
    assert '| BorderIoUMetric |' in stdout
    assert result['settings']['images'] == 6  # the option beats --quick
    assert result['result']['IoUMetric']['ratio'] == 1.0
    border = result['result']['BorderIoUMetric']
    assert border['ratio'] == pytest.approx(
        border['median_s'] / result['result']['IoUMetric']['median_s'])


def test_cli_probe(tmp_path, capsys):
    """The cached probe and the naive loop compute the same readouts (the
    benchmark's speed is reported, never asserted)."""
    _, report = _bench('probe', [], tmp_path, capsys)
    res = report['result']
    assert not res['diverged'] and res['spc']['cached']['H'] > 0.5
    assert res['max_spc_diff'] < 1e-3
    for p in ('H', 'V', 'G', 'HS', 'VS'):
        assert res['mae']['cached'][p] == pytest.approx(
            res['mae']['naive'][p], abs=1e-4)
    assert res['times']['naive']['ratio'] == 1.0
    assert report['settings']['num_images'] == 8


def test_tool_padding_in_a_subprocess(tmp_path):
    """The script itself, as a user runs it."""
    out = tmp_path / 'padding.json'
    proc = run_tool(['tools/analysis/benchmark.py', 'padding', '--quick',
                     '--threads', '1', '--modes', 'partial', 'none', '--out',
                     str(out), '--out-dir', str(tmp_path / 'suite')],
                    timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())['result']
    assert report['setup']['depth'] == 18 and report['setup']['size'] == 64
    # valid convolutions leave nothing of a 64-pixel input: skipped, said why
    assert list(report['skipped']) == ['none']
    timed = ['zeros', 'partial']  # zeros: always there, the baseline
    for part in ('train', 'inference'):
        assert list(report[part]) == timed
        assert report[part]['zeros']['ratio'] == 1.0
        for mode in timed:
            assert f'| {mode} |' in proc.stdout
    assert set(report['within_target']) == set(timed)


# ------------------------------------------------------ layering and runner

#: Modules of possec/benchmarks that every benchmark may import: the shared
#: runner, models, measurements, timing, rows, summary, command line and the
#: registry of the suite.
SHARED = {'runner', 'models', 'profile', 'timing', 'rows', 'summary', 'cli',
          'suite'}


def _sibling_imports(path):
    """Names of the possec.benchmarks modules that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split('.')[0])
            elif node.level == 1:  # from . import x, y
                found.update(a.name for a in node.names)
            elif (node.module or '').startswith('possec.benchmarks.'):
                found.add(node.module.split('.')[2])
        elif isinstance(node, ast.Import):
            found.update(a.name.split('.')[2] for a in node.names
                         if a.name.startswith('possec.benchmarks.'))
    return found


def test_no_benchmark_imports_a_peer():
    """Each benchmark module imports only the shared modules, never
    another benchmark (the registry, suite.py, imports them all)."""
    paths = sorted(glob.glob(osp.join(ROOT, 'possec', 'benchmarks', '*.py')))
    names = {osp.basename(p)[:-3] for p in paths}
    checked = 0
    for path in paths:
        name = osp.basename(path)[:-3]
        if name in ('__init__', 'suite'):
            continue
        peers = (_sibling_imports(path) & names) - SHARED - {name}
        assert not peers, f'{name} imports the benchmark(s) {sorted(peers)}'
        checked += 1
    # the benchmarks of the suite and the GPU check were all read
    assert checked >= len(NAMES) + 2 and {'gpu_check', 'gpu_profile'} <= names
    # and the check sees a peer import where there is one
    assert _sibling_imports(osp.join(ROOT, 'possec', 'benchmarks',
                                     'suite.py')) >= set(NAMES)


def test_random_batch_shapes_and_labels():
    inputs, samples = random_batch(3, 16, 5)
    assert inputs.shape == (3, 3, 16, 16) and inputs.dtype == torch.float32
    labels = torch.stack([s.gt_sem_seg.data for s in samples])
    assert labels.shape == (3, 1, 16, 16)
    assert set(labels.unique().tolist()) <= set(range(5))
    assert samples[0].img_shape == (16, 16)
    packed, _ = random_batch(2, 8, 3, packed=True)
    assert [p.shape for p in packed] == [(3, 8, 8)] * 2
    assert all(p.dtype == torch.uint8 for p in packed)
    # a generator makes the batch repeatable
    a, _ = random_batch(1, 4, 2, generator=torch.Generator().manual_seed(3))
    b, _ = random_batch(1, 4, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_runner_units_matmul_and_threads():
    calls = []
    runner = BenchmarkRunner(inner=3, repeats=2, warmup=1, progress=False)
    unit = runner.unit(lambda: calls.append(1))
    unit()
    assert len(calls) == 3  # one unit is `inner` calls
    times = runner.time({'a': unit, 'b': unit}, baseline='b')
    assert len(calls) == 3 + 3 * 2 * (2 + 1)
    assert times['b']['ratio'] == 1.0 and len(times['a']['times_s']) == 2
    name, mm, flops = BenchmarkRunner(seed=5, progress=False).matmul(8)
    assert name == 'fp32 matmul 8x8' and flops == 2 * 8**3
    # the runner seeded torch, then drew the two matrices
    gen = torch.Generator().manual_seed(5)
    a, b = (torch.randn(8, 8, generator=gen).numpy() for _ in range(2))
    np.testing.assert_allclose(mm().numpy(), a @ b, rtol=1e-5, atol=1e-5)
    saved = torch.get_num_threads()
    try:
        BenchmarkRunner(threads=1, progress=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
    with pytest.raises(ValueError, match='inner must be >= 1'):
        BenchmarkRunner(inner=0)


def test_train_step_is_one_adamw_update():
    """The runner's step against AdamW's first update written out: with
    m = (1 - b1) g and v = (1 - b2) g², the bias-corrected step is
    lr * g / (|g| + eps), after the decoupled decay p * (1 - lr * wd)."""
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    x = torch.randn(5, 4)
    before = [p.detach().clone() for p in net.parameters()]
    loss = (net(x)**2).mean()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    runner = BenchmarkRunner(progress=False)
    step = runner.train_step(lambda: (net(x)**2).mean(), net.parameters())
    step()
    lr, wd, eps = 1e-4, 1e-2, 1e-8
    for p, p0, g in zip(net.parameters(), before, grads):
        ref = p0 * (1 - lr * wd) - lr * g / (g.abs() + eps)
        torch.testing.assert_close(p.detach(), ref, rtol=1e-6, atol=1e-9)
    # without the optimizer: the weights stay, the gradients are autograd's
    frozen = [p.detach().clone() for p in net.parameters()]
    grads = torch.autograd.grad((net(x)**2).mean(), list(net.parameters()))
    runner.train_step(lambda: (net(x)**2).mean(), net.parameters(),
                      optimizer=False)()
    for p, p0, g in zip(net.parameters(), frozen, grads):
        assert torch.equal(p.detach(), p0)
        torch.testing.assert_close(p.grad, g)


def test_gpu_profile_dry_run(tmp_path):
    """``tools/gpu_check.py --profile --dry-run``'s code: the four steps
    timed and profiled on CPU, each pair's ratio that of its medians."""
    from possec.benchmarks.gpu_profile import PAIRS, run_gpu_profile
    summary = run_gpu_profile(str(tmp_path), dry_run=True, progress=False)
    times = summary['times']
    for pair, (variant, base) in PAIRS.items():
        assert summary['pairs'][pair]['ratio'] == pytest.approx(
            times[variant]['median_s'] / times[base]['median_s'])
        assert summary['profiles'][variant], variant
    assert summary['ok'] is None  # a dry run judges nothing
    with open(tmp_path / 'gpu_profile.json') as f:
        assert set(json.load(f)['pairs']) == set(PAIRS)
    md = (tmp_path / 'gpu_profile.md').read_text()
    assert 'CPU dry run' in md and '| circular padding:' in md


def test_gpu_check_errors_in_one_line(tmp_path):
    from possec.benchmarks.gpu_check import check_tests
    from possec.benchmarks.runner import gpu_device
    with pytest.raises(UserError, match='not found: pass the GPU test file'):
        check_tests(str(tmp_path / 'nope.py'))
    assert gpu_device(None, dry_run=True).type == 'cpu'
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match='needs CUDA.*--dry-run'):
            gpu_device('cuda')
