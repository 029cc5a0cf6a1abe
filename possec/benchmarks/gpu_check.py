"""One-command GPU check (``make gpu-check``, ``tools/gpu_check.py``).

Three parts, one summary (``gpu_check.md`` and ``gpu_check.json``):

1. **The GPU-marked tests** (``pytest -m gpu tests/test_gpu.py``, in a
   subprocess; the tool passes the test file of its checkout, a wheel has
   none): a training step of the headline config with its SyncBN kept
   (one process: SyncBN normalises like BN), AMP, the position head and the
   position probe on CUDA, ``tools/test.py`` (with ``--fuse-conv-bn``) on
   CUDA.
2. **GPU variants of a training step and of an inference** of the demo and
   headline models, interleaved (:class:`~.runner.BenchmarkRunner`, every
   timed unit synchronised): plain fp32, ``cudnn.benchmark``,
   ``channels_last``, AMP (float16 autocast with a ``GradScaler`` on CUDA), and for inference
   the BN-folded model; each as a share of the device's fp32 matmul rate
   (FLOPs by :class:`~torch.utils.flop_counter.FlopCounterMode`, backward
   counted as 2x forward), with the fp16 matmul rate beside it.
3. **The suite's device-aware benchmarks** on the device (``heads``,
   ``padding``, ``probe``; their ``device`` setting) at sizes that keep the
   whole check under 8 minutes on one GPU.

``dry_run=True`` runs all of it on CPU at tiny sizes (the tests with
``POSSEC_GPU_DRY_RUN=1``, which turns their CUDA skip into a CPU run;
AMP as bfloat16 autocast), so that the code is exercised where no GPU is.
"""
import copy
import os
import subprocess
import sys
import time
from typing import Optional

import torch

from ..errors import UserError
from ..fileio import atomic_path
from .models import (DEMO_CONFIG, HEADLINE_CONFIG, InferenceForward,
                     build_model, fold_batch_norm)
from .profile import count_flops, count_step_flops
from .runner import BenchmarkRunner, gpu_device
from .summary import load_average, machine_info, write_summary
from .timing import format_table

#: Per mode: models (name -> (config, size, train batch)), matmul size,
#: rounds, calls per timed unit (``inner``: a GPU step of a few
#: milliseconds is timed over 20 calls, so that launch jitter does not
#: make the spread) and the suite benchmarks' settings.
SIZES = dict(
    full=dict(models=dict(demo=(DEMO_CONFIG, 128, 8),
                          headline=(HEADLINE_CONFIG, 512, 2)),
              matmul=8192, repeats=7, warmup=2, inner=20,
              suite=dict(heads=dict(size=512, batch=2, repeats=5),
                         padding=dict(size=512, repeats=3),
                         probe=dict(num_images=12, repeats=1))),
    dry=dict(models=dict(demo=(DEMO_CONFIG, 32, 2),
                         headline=(HEADLINE_CONFIG, 32, 1)),
             matmul=128, repeats=1, warmup=0, inner=1,
             suite=dict(heads=dict(size=32, variants=[
                 'ParseNetHead (paper form)',
                 'ParseNetHead + PosENetHead (position head)']),
                        padding=dict(size=32, modes=['zeros']),
                        probe=dict(num_images=5, epochs=1))))
#: Environment variable that lets tests/test_gpu.py run on CPU.
DRY_RUN_ENV = 'POSSEC_GPU_DRY_RUN'
#: The time budget of the whole check on one GPU, in seconds.
BUDGET_S = 480


def training_variants(runner: BenchmarkRunner, name: str, config: str,
                      size: int, batch: int) -> dict:
    """Training-step variants of one model.

    Returns:
        dict: label -> (timed unit, forward FLOPs, batch).
    """
    model = build_model(config, size).to(runner.device).train()
    if runner.device.type != 'cuda':
        from mmengine.model import revert_sync_batchnorm
        model = revert_sync_batchnorm(model)  # SyncBN raises off CUDA
    inputs, samples = runner.batch(batch, size,
                                   model.decode_head.num_classes)
    flops = count_step_flops(model, inputs, samples)['forward_flops']
    calls = {}
    for suffix, fmt, bench, amp in (('', None, False, False),
                                    (', cudnn.benchmark', None, True, False),
                                    (', channels_last', torch.channels_last,
                                     False, False),
                                    (', AMP', None, False, True)):
        net = copy.deepcopy(model)
        x = inputs
        if fmt is not None:
            net = net.to(memory_format=fmt)
            x = inputs.contiguous(memory_format=fmt)

        def loss(net=net, x=x):
            return net.parse_losses(net.loss(x, samples))[0]

        label = f'train {name}{suffix} ({batch}x3x{size}x{size})'
        calls[label] = (runner.train_step(loss, net.parameters(), amp=amp,
                                          cudnn_benchmark=bench),
                        flops, batch)
    return calls


def inference_variants(runner: BenchmarkRunner, name: str, config: str,
                       size: int) -> dict:
    """Inference variants of one model (batch 1).

    Returns:
        dict: label -> (timed unit, FLOPs, 1).
    """
    segmentor = build_model(config, size)
    net = InferenceForward(segmentor, size).eval()
    x = torch.randn(1, 3, size, size)
    flops = 2 * count_flops(net, x)['macs']
    net, x = net.to(runner.device), x.to(runner.device)
    calls = {}
    for suffix, fmt, bench, amp, fold in (
            ('', None, False, False, False),
            (', cudnn.benchmark', None, True, False, False),
            (', channels_last', torch.channels_last, False, False, False),
            (', AMP', None, False, True, False),
            (', BN folded', None, False, False, True)):
        run_net, run_x = (fold_batch_norm(net) if fold else net), x
        if fmt is not None:
            run_net = copy.deepcopy(net).to(memory_format=fmt)
            run_x = x.contiguous(memory_format=fmt)
        label = f'infer {name}{suffix} (1x3x{size}x{size})'
        calls[label] = (runner.inference(run_net, run_x, amp=amp,
                                         cudnn_benchmark=bench), flops, 1)
    return calls


def gpu_benchmarks(device: torch.device, dry_run: bool = False,
                   progress: bool = True) -> dict:
    """Part 2 of the module docstring: every variant interleaved with the
    fp32, TF32 and half-precision matmuls."""
    sizes = SIZES['dry' if dry_run else 'full']
    runner = BenchmarkRunner(device, repeats=sizes['repeats'],
                             warmup=sizes['warmup'], inner=sizes['inner'],
                             progress=progress)
    n, inner = sizes['matmul'], sizes['inner']
    half = torch.float16 if runner.device.type == 'cuda' else torch.bfloat16
    mm32, mm32_unit, mm_flops = runner.matmul(n)
    mmtf, mmtf_unit, _ = runner.matmul(n, tf32=True)
    mm16, mm16_unit, _ = runner.matmul(n, half)
    variants = {mm32: mm32_unit, mmtf: mmtf_unit, mm16: mm16_unit}
    meta = {}
    for name, (config, size, batch) in sizes['models'].items():
        for label, (call, flops, nb) in {
                **training_variants(runner, name, config, size, batch),
                **inference_variants(runner, name, config, size)
        }.items():
            variants[label] = call
            meta[label] = dict(forward_flops=flops, batch=nb,
                               training=label.startswith('train'))
    times = runner.time(variants, baseline=mm32)
    rate32 = mm_flops * inner / times[mm32]['median_s'] / 1e9
    rate_tf32 = mm_flops * inner / times[mmtf]['median_s'] / 1e9
    rate16 = mm_flops * inner / times[mm16]['median_s'] / 1e9
    rows = {}
    for label, m in meta.items():
        t = times[label]
        per_call = t['median_s'] / inner
        flops = m['forward_flops'] * (3 if m['training'] else 1)
        gflops = flops / per_call / 1e9
        rows[label] = dict(m, median_s=per_call, spread=t['spread'],
                           images_per_s=m['batch'] / per_call,
                           gflops_per_s=gflops, fp32_share=gflops / rate32,
                           tf32_share=gflops / rate_tf32)
    return dict(matmul=dict(size=n, fp32_gflops_per_s=rate32,
                            tf32_gflops_per_s=rate_tf32,
                            half_gflops_per_s=rate16, half=str(half),
                            inner=inner,
                            cudnn_allow_tf32=torch.backends.cudnn.allow_tf32),
                rows=rows, times=times)


def check_tests(tests: str) -> str:
    """The absolute path of the GPU tests; a
    :class:`~possec.errors.UserError` where there are none."""
    path = os.path.abspath(tests)
    if not os.path.exists(path):
        raise UserError(f'GPU tests {tests} not found: pass the GPU test '
                        f'file of a possec checkout (tests/test_gpu.py), or '
                        f'no tests to skip that part')
    return path


def run_gpu_tests(tests: str, dry_run: bool = False, timeout: int = 300,
                  log_file: Optional[str] = None) -> dict:
    """Part 1: ``pytest -m gpu TESTS`` in a subprocess, run from the folder
    above ``tests``; its whole output goes to ``log_file`` (when given),
    the failures' one-line reasons into the summary.

    Args:
        tests (str): The GPU tests (a file or folder; the tool passes the
            repository's ``tests/test_gpu.py``).
        dry_run (bool): Set :data:`DRY_RUN_ENV` so that the tests run on
            CPU. Default: False.
        timeout (int): Seconds before the tests are stopped. Default: 300.
        log_file (str, optional): Where the whole output goes.
    """
    tests = check_tests(tests)
    root = os.path.dirname(os.path.dirname(tests))
    env = dict(os.environ)
    if dry_run:
        env[DRY_RUN_ENV] = '1'
    cmd = [sys.executable, '-m', 'pytest', '-m', 'gpu', '-rfEs',
           '-p', 'no:warnings', os.path.relpath(tests, root)]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True,
                              text=True, timeout=timeout)
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        code, out = 'timeout', f'{err}'
    lines = [ln for ln in out.strip().splitlines() if ln.strip()]
    if log_file:
        with atomic_path(log_file) as path:
            with open(path, 'w') as f:
                f.write(out)
    return dict(command=' '.join(cmd), returncode=code,
                summary=lines[-1] if lines else '', output_tail=out[-4000:],
                failures=[ln for ln in lines
                          if ln.startswith(('FAILED ', 'ERROR '))],
                log_file=log_file, wall_s=time.perf_counter() - start)


def run_gpu_check(out_dir: str = 'work_dirs/gpu_check',
                  dry_run: bool = False,
                  device: Optional[str] = None,
                  tests: Optional[str] = None,
                  progress: bool = True) -> dict:
    """Run the three parts and write ``gpu_check.md`` and
    ``gpu_check.json`` into ``out_dir``.

    Args:
        out_dir (str): Where the summary goes. Default:
            'work_dirs/gpu_check'.
        dry_run (bool): CPU at tiny sizes. Default: False.
        device (str, optional): Default: 'cuda' (the dry run: 'cpu').
        tests (str, optional): The GPU-marked tests of part 1 (see
            :func:`run_gpu_tests`); None skips part 1. Default: None.
        progress (bool): Print progress. Default: True.

    Returns:
        dict: The summary (also in ``gpu_check.json``); its ``ok`` is
        False when a part failed.
    """
    device = gpu_device(device, dry_run)
    tests = check_tests(tests) if tests else None
    start = time.perf_counter()
    summary = dict(dry_run=dry_run, device=str(device),
                   card=(torch.cuda.get_device_name(device)
                         if device.type == 'cuda' else None),
                   machine=machine_info(), load_before=load_average())
    if progress:
        print('[1/3] GPU-marked tests', flush=True)
    summary['tests'] = run_gpu_tests(
        tests, dry_run, log_file=os.path.join(out_dir, 'gpu_tests.log')
    ) if tests else dict(
        command='(not run: no tests given)', returncode=0, summary='',
        output_tail='', failures=[], log_file=None, wall_s=0.)
    if progress:
        print('  ' + summary['tests']['summary'], flush=True)
        print('[2/3] training and inference variants', flush=True)
    try:
        summary['variants'] = gpu_benchmarks(device, dry_run, progress)
        summary['variants_error'] = None
    except Exception:  # report and go on
        import traceback
        summary['variants'], summary['variants_error'] = (
            None, traceback.format_exc())
    suite_cfg = SIZES['dry' if dry_run else 'full']['suite']
    summary['suite'] = []
    if progress:
        print('[3/3] suite benchmarks on the device', flush=True)
    from .suite import get_benchmarks, run_benchmark
    for name, bench in get_benchmarks(['heads', 'padding',
                                       'probe']).items():
        overrides = dict(device=str(device), **((suite_cfg or {}).get(
            name, {})))
        summary['suite'].append(run_benchmark(
            bench, quick=dry_run, overrides=overrides, progress=progress))
    summary['wall_s'] = time.perf_counter() - start
    summary['load_after'] = load_average()
    summary['ok'] = (summary['tests']['returncode'] == 0
                     and summary['variants_error'] is None and all(
                         r['status'] == 'ok' for r in summary['suite']))
    write_summary(out_dir, 'gpu_check', summary, format_gpu_check(summary))
    return summary


def format_gpu_check(s: dict) -> str:
    """The markdown summary of :func:`run_gpu_check`."""
    card = s['card'] or 'no GPU (CPU dry run at tiny sizes: the numbers '\
        'measure nothing)'
    lines = [
        '# possec GPU check', '',
        f"device: {s['device']}; card: {card}; torch "
        f"{s['machine']['torch']}; wall {s['wall_s']:.0f} s (budget "
        f'{BUDGET_S} s); load {s["load_before"]} -> {s["load_after"]}; '
        f"{'all parts ok' if s['ok'] else 'SOME PART FAILED'}", '',
        '## GPU-marked tests', '',
        f"`{s['tests']['command']}`: {s['tests']['summary']} "
        f"(exit {s['tests']['returncode']}, {s['tests']['wall_s']:.0f} s"
        + (f"; whole output: {os.path.basename(s['tests']['log_file'])}"
           if s['tests'].get('log_file') else '') + ')', ''
    ]
    lines += [f'- {ln}' for ln in s['tests'].get('failures', [])]
    if s['tests'].get('failures'):
        lines.append('')
    v = s['variants']
    lines += ['## training and inference variants', '']
    if v is None:
        lines += ['failed:', '', '```', s['variants_error'][-2000:], '```']
    else:
        mm = v['matmul']
        lines += [
            f"fp32 matmul {mm['size']}² (TF32 off): "
            f"{mm['fp32_gflops_per_s']:.0f} GFLOP/s; TF32: "
            f"{mm.get('tf32_gflops_per_s', float('nan')):.0f} GFLOP/s; "
            f"{mm['half']}: {mm['half_gflops_per_s']:.0f} GFLOP/s. A "
            'training step counts 3x its forward FLOPs (backward = 2x '
            'forward). The fp32 variants\' convolutions ran with '
            f"torch.backends.cudnn.allow_tf32={mm.get('cudnn_allow_tf32')} "
            "(PyTorch's default lets cuDNN use TF32), so read their share "
            'of the TF32 matmul. Each timed unit is '
            f"{mm.get('inner', 1)} calls; times are per call.", '',
            '| variant | median (s) | spread | images/s | GFLOP/s | share '
            'of fp32 matmul | share of TF32 matmul |',
            '|---|---:|---:|---:|---:|---:|---:|'
        ]
        lines += [
            f"| {k} | {r['median_s']:.4f} | {100 * r['spread']:.1f}% | "
            f"{r['images_per_s']:.2f} | {r['gflops_per_s']:.0f} | "
            f"{100 * r['fp32_share']:.0f}% | "
            f"{100 * r.get('tf32_share', float('nan')):.0f}% |"
            for k, r in v['rows'].items()
        ]
        lines += ['', format_table(
            v['times'], f"interleaved timings (per unit of "
            f"{v['matmul'].get('inner', 1)} calls)")]
    lines += ['', '## suite benchmarks on the device']
    for r in s['suite']:
        lines += ['', f"### {r['name']}: {r['title']} ({r['status']}, "
                  f"{r['wall_s']:.0f} s)", '']
        if r['status'] != 'ok':
            lines += ['```', r['error'][-2000:], '```']
            continue
        lines += [r['table'], '']
        lines += [f"- {row['measure']}: {row['text']}" for row in r['rows']]
    return '\n'.join(lines) + '\n'
