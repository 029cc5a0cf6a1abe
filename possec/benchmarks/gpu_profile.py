"""Where the GPU time of the position head and of circular padding goes.

One command (``make gpu-profile``, or ``python tools/gpu_check.py
--profile``; ``--dry-run`` runs it on CPU at tiny sizes) times four
training steps interleaved on the device, as the GPU check does (every
timed unit several calls, then a device sync):

- R-50-D8 with the paper-form ParseNet head, and with the position head
  of the zoo configs added (the ``heads`` benchmark's pair);
- the R-50-D8 backbone alone with zero and with circular padding (the
  ``padding`` benchmark's pair, same weights);

at a batch of 2 images of 512², the size of the GPU numbers in
docs/benchmarks.md. It reports each pair's ratio against :data:`TARGET`
and profiles one step of each variant with ``torch.profiler`` (CPU and
CUDA activity): the top operators by self time on the device, so that the
extra time of the position head and of circular padding has names. Writes
``gpu_profile.md`` and ``gpu_profile.json``.
"""
import time
from typing import Optional

from mmseg.registry import MODELS

from .models import (backbone_loss, build_backbone, decode_loss,
                     parsenet_head_config, position_head_config,
                     stage_channels)
from .profile import profile_ops
from .runner import BenchmarkRunner, gpu_device
from .summary import load_average, machine_info, write_summary
from .timing import format_table

__all__ = ['PAIRS', 'SIZES', 'TARGET', 'profile_variants',
           'run_gpu_profile', 'format_gpu_profile']

#: Largest accepted ratio of each pair (variant / its baseline).
TARGET = 1.10
PAPER = 'ParseNetHead (paper form)'
POSITION = 'ParseNetHead + PosENetHead (position head)'
ZEROS = 'backbone, zeros padding'
CIRCULAR = 'backbone, circular padding'
#: What is compared: name -> (variant, baseline).
PAIRS = {'position head': (POSITION, PAPER),
         'circular padding': (CIRCULAR, ZEROS)}
#: Per mode: the R-D8 depth, input side, batch, rounds, calls per timed
#: unit and operators listed per profile.
SIZES = dict(
    full=dict(depth=50, size=512, batch=2, repeats=7, warmup=2, inner=5,
              top=15),
    dry=dict(depth=18, size=32, batch=1, repeats=1, warmup=0, inner=1,
             top=5))


def profile_variants(runner: BenchmarkRunner, depth: int, size: int,
                     batch: int, num_classes: int = 21) -> dict:
    """The four training steps (forward and backward) of the module
    docstring as timed units of ``runner``, by name."""
    device = runner.device
    norm_cfg = dict(type='BN', requires_grad=True)
    stages = stage_channels(depth)
    backbone = build_backbone(depth).to(device)
    inputs, samples = runner.batch(batch, size, num_classes)
    runner.reseed(1)
    paper = MODELS.build(
        parsenet_head_config(stages[-1], num_classes, norm_cfg))
    position = MODELS.build(position_head_config(stages))
    steps = {}
    for name, heads in ((PAPER, [paper]), (POSITION, [paper, position])):
        heads = [head.to(device).train() for head in heads]
        params = [p for m in [backbone] + heads for p in m.parameters()]
        steps[name] = runner.train_step(
            decode_loss(backbone, heads, inputs, samples), params,
            optimizer=False)
    zeros = build_backbone(depth, 'zeros').to(device)
    circular = build_backbone(depth, 'circular').to(device)
    circular.load_state_dict(zeros.state_dict())
    for name, net in ((ZEROS, zeros), (CIRCULAR, circular)):
        steps[name] = runner.train_step(backbone_loss(net, inputs),
                                        net.parameters(), optimizer=False)
    return steps


def run_gpu_profile(out_dir: str = 'work_dirs/gpu_profile',
                    dry_run: bool = False,
                    device: Optional[str] = None,
                    progress: bool = True) -> dict:
    """Time and profile the position head and circular padding on the
    device; write ``gpu_profile.md`` and ``gpu_profile.json`` into
    ``out_dir``.

    Args:
        out_dir (str): Where the summary goes. Default:
            'work_dirs/gpu_profile'.
        dry_run (bool): CPU at tiny sizes. Default: False.
        device (str, optional): Default: 'cuda' (the dry run: 'cpu').
        progress (bool): Print one line per round. Default: True.

    Returns:
        dict: ``settings``, ``times`` (of
        :func:`~.timing.time_interleaved`), ``pairs`` (per pair its ratio
        of medians, the target and whether it is met), ``profiles`` (per
        variant the top operators) and ``ok`` (every pair within the
        target; None for the dry run, whose sizes measure nothing).
    """
    device = gpu_device(device, dry_run)
    sizes = SIZES['dry' if dry_run else 'full']
    start = time.perf_counter()
    runner = BenchmarkRunner(device, repeats=sizes['repeats'],
                             warmup=sizes['warmup'], inner=sizes['inner'],
                             progress=progress)
    steps = profile_variants(runner, sizes['depth'], sizes['size'],
                             sizes['batch'])
    times = runner.time(steps, baseline=PAPER)
    pairs = {}
    for pair, (variant, base) in PAIRS.items():
        ratio = times[variant]['median_s'] / times[base]['median_s']
        pairs[pair] = dict(variant=variant, baseline=base, ratio=ratio,
                           target=TARGET, met=ratio <= TARGET)
    profiles = {
        name: profile_ops(step, sizes['top'], device)[0]
        for name, step in steps.items()
    }
    summary = dict(
        dry_run=dry_run, device=str(device), settings=dict(sizes),
        machine=machine_info(), load_after=load_average(), times=times,
        pairs=pairs, profiles=profiles,
        ok=None if dry_run else all(p['met'] for p in pairs.values()),
        wall_s=time.perf_counter() - start)
    write_summary(out_dir, 'gpu_profile', summary, format_gpu_profile(summary))
    return summary


def format_gpu_profile(s: dict) -> str:
    """The markdown summary of :func:`run_gpu_profile`."""
    st = s['settings']
    mode = (' (CPU dry run at tiny sizes: the numbers measure nothing)'
            if s['dry_run'] else '')
    lines = [
        f'# possec GPU profile: position head and circular padding{mode}',
        '', f"device {s['device']}; R-{st['depth']}-D8, "
        f"{st['batch']}x3x{st['size']}x{st['size']}, training steps "
        f"(forward and backward), {st['inner']} per timed unit; wall "
        f"{s['wall_s']:.0f} s", '',
        '| pair | ratio | target | met |', '|---|---:|---|---|'
    ]
    lines += [
        f"| {name}: {p['variant']} / {p['baseline']} | {p['ratio']:.3f}x | "
        f"<= {p['target']:g}x | "
        f"{'' if s['dry_run'] else ('yes' if p['met'] else 'NO')} |"
        for name, p in s['pairs'].items()
    ]
    lines += ['', format_table(s['times'], 'interleaved timings')]
    for name, ops in s['profiles'].items():
        device = 'self_device_s' in (ops[0] if ops else {})
        unit = 'device' if device else 'CPU'
        lines += [
            '', f'#### {name}: top operators by self {unit} time', '',
            f'| op | self {unit} (s) | share | calls |', '|---|---:|---:|---:|'
        ]
        lines += [
            f"| {p['op']} | "
            f"{p['self_device_s' if device else 'self_cpu_s']:.4f} | "
            f"{100 * p['share']:.1f}% | {p['calls']} |" for p in ops
        ]
    return '\n'.join(lines) + '\n'
