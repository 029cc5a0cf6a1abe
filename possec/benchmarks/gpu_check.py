"""One-command GPU check (``make gpu-check``, ``tools/gpu_check.py``).

Three parts, one summary (``gpu_check.md`` and ``gpu_check.json``):

1. **The GPU-marked tests** (``pytest -m gpu tests/test_gpu.py``, in a
   subprocess): a training step of the headline config with its SyncBN kept
   (one process: SyncBN normalises like BN), AMP, the position head and the
   position probe on CUDA, ``tools/test.py`` (with ``--fuse-conv-bn``) on
   CUDA.
2. **GPU variants of a training step and of an inference** of the demo and
   headline models, interleaved (:func:`~.timing.time_interleaved`, every
   call synchronised): plain fp32, ``cudnn.benchmark``, ``channels_last``,
   AMP (float16 autocast with a ``GradScaler`` on CUDA), and for inference
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
import os
import subprocess
import sys
import time
from typing import Optional

import torch

from ..fileio import atomic_path, dump_json
from .efficiency import HEADLINE_CONFIG, build_model, fold_batch_norm
from .efficiency import DEMO_CONFIG, InferenceForward
from .summary import load_average, machine_info
from .timing import format_table, time_interleaved
from .training import count_step_flops, random_batch

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
#: The time budget of the whole check on one GPU (issue 18).
BUDGET_S = 480


def _sync(device: torch.device):
    return torch.cuda.synchronize if device.type == 'cuda' else (
        lambda: None)


def _variant(fn, device, cudnn_benchmark=False, amp=False, scaler=None,
             inner=1):
    """``fn`` under the variant's switches, ``inner`` times, then
    synchronised."""
    sync = _sync(device)
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16

    def call():
        saved = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = cudnn_benchmark
        try:
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                for _ in range(inner):
                    out = fn(scaler)
            sync()
            return out
        finally:
            torch.backends.cudnn.benchmark = saved

    return call


def training_variants(name, config, size, batch, device,
                      inner=1) -> tuple:
    """Training-step variants of one model: {label: call}, forward FLOPs."""
    import copy
    model = build_model(config, size).to(device).train()
    if device.type != 'cuda':
        from mmengine.model import revert_sync_batchnorm
        model = revert_sync_batchnorm(model)  # SyncBN raises off CUDA
    inputs, samples = random_batch(batch, size,
                                   model.decode_head.num_classes, device)
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
        optim = torch.optim.AdamW(net.parameters(), lr=1e-4)
        scaler = torch.amp.GradScaler(device.type) if (
            amp and device.type == 'cuda') else None

        def step(scaler, net=net, x=x, optim=optim):
            optim.zero_grad(set_to_none=True)
            loss, _ = net.parse_losses(net.loss(x, samples))
            if scaler is None:
                loss.backward()
                optim.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optim)
                scaler.update()
            return loss

        label = f'train {name}{suffix} ({batch}x3x{size}x{size})'
        calls[label] = (_variant(step, device, bench, amp, scaler, inner),
                        flops, batch)
    return calls


def inference_variants(name, config, size, device, inner=1) -> dict:
    """Inference variants of one model (batch 1)."""
    import copy
    from .efficiency import count_flops
    segmentor = build_model(config, size)
    net = InferenceForward(segmentor, size).eval()
    x = torch.randn(1, 3, size, size)
    flops = 2 * count_flops(net, x)['macs']
    net, x = net.to(device), x.to(device)
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

        def infer(_, net=run_net, x=run_x):
            with torch.inference_mode():
                return net(x)

        label = f'infer {name}{suffix} (1x3x{size}x{size})'
        calls[label] = (_variant(infer, device, bench, amp, inner=inner),
                        flops, 1)
    return calls


def gpu_benchmarks(device: torch.device, dry_run: bool = False,
                   progress: bool = True) -> dict:
    """Part 2 of the module docstring: every variant interleaved with the
    fp32 and the half-precision matmul."""
    sizes = SIZES['dry' if dry_run else 'full']
    n = sizes['matmul']
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    half = torch.float16 if device.type == 'cuda' else torch.bfloat16
    ah, bh = a.to(half), b.to(half)
    sync = _sync(device)
    saved_tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # a true fp32 rate

    inner = sizes['inner']

    def mm(x, y, tf32=False):
        def call():
            torch.backends.cuda.matmul.allow_tf32 = tf32
            try:
                for _ in range(inner):
                    torch.mm(x, y)
                sync()
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False
        return call

    mm32, mm16 = f'fp32 matmul {n}x{n}', f'{half} matmul {n}x{n}'
    mmtf = f'TF32 matmul {n}x{n}'
    variants = {mm32: mm(a, b), mmtf: mm(a, b, tf32=True),
                mm16: mm(ah, bh)}
    meta = {}
    try:
        for name, (config, size, batch) in sizes['models'].items():
            for label, (call, flops, nb) in {
                    **training_variants(name, config, size, batch, device,
                                        inner),
                    **inference_variants(name, config, size, device, inner)
            }.items():
                variants[label] = call
                meta[label] = dict(forward_flops=flops, batch=nb,
                                   training=label.startswith('train'))
        times = time_interleaved(variants, repeats=sizes['repeats'],
                                 warmup=sizes['warmup'], baseline=mm32,
                                 progress=progress)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved_tf32
    rate32 = 2 * n**3 * inner / times[mm32]['median_s'] / 1e9
    rate_tf32 = 2 * n**3 * inner / times[mmtf]['median_s'] / 1e9
    rate16 = 2 * n**3 * inner / times[mm16]['median_s'] / 1e9
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


def run_gpu_tests(dry_run: bool = False, timeout: int = 300,
                  log_file: Optional[str] = None) -> dict:
    """Part 1: ``pytest -m gpu tests/test_gpu.py`` in a subprocess; its
    whole output goes to ``log_file`` (when given), the failures' one-line
    reasons into the summary."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env = dict(os.environ)
    if dry_run:
        env[DRY_RUN_ENV] = '1'
    cmd = [sys.executable, '-m', 'pytest', '-m', 'gpu', '-rfEs',
           '-p', 'no:warnings', os.path.join('tests', 'test_gpu.py')]
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
                  run_tests: bool = True,
                  progress: bool = True) -> dict:
    """Run the three parts and write ``gpu_check.md`` and
    ``gpu_check.json`` into ``out_dir``.

    Args:
        out_dir (str): Where the summary goes. Default:
            'work_dirs/gpu_check'.
        dry_run (bool): CPU at tiny sizes. Default: False.
        device (str, optional): Default: 'cuda' (the dry run: 'cpu').
        run_tests (bool): Run part 1 (the GPU-marked tests). Default: True.
        progress (bool): Print progress. Default: True.

    Returns:
        dict: The summary (also in ``gpu_check.json``); its ``ok`` is
        False when a part failed.
    """
    device = torch.device(device or ('cpu' if dry_run else 'cuda'))
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(
            'gpu-check needs CUDA, found torch ' + torch.__version__ +
            ' without a usable GPU: run it on a GPU machine, or '
            '`make gpu-check DRY_RUN=1` for the CPU dry run')
    start = time.perf_counter()
    summary = dict(dry_run=dry_run, device=str(device),
                   card=(torch.cuda.get_device_name(device)
                         if device.type == 'cuda' else None),
                   machine=machine_info(), load_before=load_average())
    if progress:
        print('[1/3] GPU-marked tests', flush=True)
    summary['tests'] = run_gpu_tests(
        dry_run, log_file=os.path.join(out_dir, 'gpu_tests.log')
    ) if run_tests else dict(
        command='(not run: run_tests=False)', returncode=0, summary='',
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
    with atomic_path(os.path.join(out_dir, 'gpu_check.md')) as path:
        with open(path, 'w') as f:
            f.write(format_gpu_check(summary))
    dump_json(summary, os.path.join(out_dir, 'gpu_check.json'))
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
