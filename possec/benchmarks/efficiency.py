"""Model efficiency: FLOPs, inference speed, peak memory, share of matmul rate.

For each model (by default the demo config at 128² and the headline config at
512², both built from their config files with random weights) this measures:

- **FLOPs per image** with mmengine's complexity analysis (the counter of
  :func:`mmengine.analysis.get_model_complexity_info`) on the inference forward
  (backbone, decode head, resize to the input size; the auxiliary heads do
  not run at inference). mmengine counts one multiply-add as one FLOP
  (fvcore's convention), so its number is a MAC count; the rates below use
  2 x MACs floating-point operations, as the matmul rate does.
- **Images/s**: inference timed interleaved with a square fp32 matmul
  (``torch.mm`` of two 2048 x 2048 matrices, ``2 n³`` FLOPs) in one process
  by :func:`possec.benchmarks.timing.time_interleaved`.
- **Achieved GFLOP/s as a share of the matmul rate** measured in the same
  run: how close the model comes to this machine's best dense fp32 rate.
- **Peak memory**: the growth of the process's peak resident set size
  (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``) above the
  resident size just before one inference, after ``malloc_trim`` returned
  freed heap to the system: activations, convolution workspaces and
  allocator overhead, not the weights. None where ``/proc`` does not allow it.
- Where a model reaches less than ``profile_below`` of the matmul rate, the
  top operators by self CPU time of one inference (``torch.profiler``), and
  its convolutions grouped by shape with the GFLOP/s each group reaches.
"""
import copy
from typing import Dict, Optional, Sequence

import torch

from .models import (DEMO_CONFIG, HEADLINE_CONFIG, InferenceForward,
                     build_model, fold_batch_norm)
from .profile import conv_table, count_flops, peak_memory, profile_ops
from .rows import row
from .runner import BenchmarkRunner
from .timing import format_table

__all__ = ['MODELS', 'QUICK', 'TITLE', 'run', 'report', 'format_efficiency']

TITLE = ('FLOPs, inference images/s, peak memory and share of the fp32 '
         'matmul rate')
MODELS = {'demo': (DEMO_CONFIG, 128), 'headline': (HEADLINE_CONFIG, 512)}
QUICK = dict(sizes=dict(demo=32, headline=32), matmul_size=256, repeats=1,
             warmup=0, memory_repeats=1, top_ops=5)


def _form(net: torch.nn.Module, x: torch.Tensor,
          memory_format: Optional[torch.memory_format],
          fold: bool) -> tuple:
    """``net`` and ``x`` in one form: BN folded (with ``max_abs_diff``,
    the largest logit difference to ``net``) or in ``memory_format``.

    Returns:
        tuple: The network, the input and the extra row fields.
    """
    run_net, run_x, extra = net, x, {}
    if fold:
        run_net = fold_batch_norm(net)
        with torch.inference_mode():
            extra['max_abs_diff'] = float((run_net(x) - net(x)).abs().max())
    if memory_format is not None:
        run_net = copy.deepcopy(net).to(memory_format=memory_format)
        run_x = x.contiguous(memory_format=memory_format)
    return run_net, run_x, extra


def run(models: Sequence[str] = ('demo', 'headline'),
        sizes: Optional[Dict[str, int]] = None,
        batch: int = 1,
        matmul_size: int = 2048,
        repeats: int = 5,
        warmup: int = 1,
        memory_repeats: int = 3,
        profile_below: float = 0.85,
        top_ops: int = 10,
        channels_last: bool = True,
        fold_bn: bool = True,
        threads: Optional[int] = None,
        seed: int = 0,
        progress: bool = True) -> dict:
    """Measure FLOPs, images/s, peak memory and matmul share per model.

    Args:
        models (Sequence[str]): Names from :data:`MODELS`. Default: both.
        sizes (dict[str, int], optional): Input side per model. Default:
            128 for the demo, 512 for the headline model.
        batch (int): Images per inference call. Default: 1.
        matmul_size (int): Side of the reference fp32 matmul. Default: 2048.
        repeats (int): Timed rounds. Default: 5.
        warmup (int): Untimed rounds first. Default: 1.
        memory_repeats (int): Inferences whose peak memory is measured (the
            median is kept). Default: 3.
        profile_below (float): Profile models below this share of the
            matmul rate. Default: 0.85.
        top_ops (int): Operators listed per profile. Default: 10.
        channels_last (bool): Also time each model with weights and input
            in ``torch.channels_last`` memory format (rows named
            ``'<model>, channels_last'``; not profiled). Default: True.
        fold_bn (bool): Also time each model with its BatchNorms folded
            into the convolutions (:func:`fold_batch_norm`; rows named
            ``'<model>, BN folded'``, profiled like the plain model, with
            ``max_abs_diff`` of the logits against it). Default: True.
        threads (int, optional): ``torch.set_num_threads``. Default: None.
        seed (int): Seed of weights and inputs. Default: 0.
        progress (bool): Print one line per round. Default: True.

    Returns:
        dict: ``settings``, ``matmul`` (GFLOP/s), ``models`` (per model:
        config, size, FLOPs, params, images/s, GFLOP/s, share of the matmul
        rate, peak memory, profile), ``times`` (of ``time_interleaved``) and
        the markdown ``table``.
    """
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f'unknown models {unknown}; expected a non-empty '
                         f'list from {list(MODELS)}')
    runner = BenchmarkRunner(threads=threads, seed=seed, repeats=repeats,
                             warmup=warmup, progress=progress)
    sizes = {name: (sizes or {}).get(name, MODELS[name][1])
             for name in models}
    mm_name, mm_unit, mm_flops = runner.matmul(matmul_size)
    variants = {mm_name: mm_unit}
    # (row suffix, memory format, BN folded)
    forms = [('', None, False)]
    if channels_last:
        forms.append((', channels_last', torch.channels_last, False))
    if fold_bn:
        forms.append((', BN folded', None, True))
    found = {}
    for name in models:
        config, _ = MODELS[name]
        size = sizes[name]
        net = InferenceForward(build_model(config, size), size).eval()
        x = torch.randn(batch, 3, size, size)
        flops = count_flops(net, x[:1])
        for suffix, fmt, fold in forms:
            run_net, run_x, extra = _form(net, x, fmt, fold)
            infer = runner.inference(run_net, run_x)
            label = f'{name}{suffix} inference ({batch}x3x{size}x{size})'
            memory, memory_note = peak_memory(infer, memory_repeats)
            variants[label] = infer
            found[name + suffix] = dict(
                model=name, config=config, size=size, label=label,
                memory_format='channels_last' if fmt else 'contiguous',
                bn_folded=fold, infer=infer, peak_memory_bytes=memory,
                memory_measure=memory_note, **flops, **extra)
    times = runner.time(variants, baseline=mm_name)
    matmul_gflops = mm_flops / times[mm_name]['median_s'] / 1e9
    rows = {}
    for name, info in found.items():
        infer = info.pop('infer')
        timing = times[info['label']]
        gflops = 2 * info['macs'] * batch / timing['median_s'] / 1e9
        info.update(images_per_s=batch / timing['median_s'],
                    spread=timing['spread'], gflops_per_s=gflops,
                    matmul_share=gflops / matmul_gflops, profile=None,
                    conv_profile=None)
        if info['matmul_share'] < profile_below and \
                info['memory_format'] == 'contiguous':
            info['profile'], info['conv_profile'] = profile_ops(
                infer, top_ops)
            for conv in info['conv_profile']:
                conv['matmul_share'] = conv['gflops_per_s'] / matmul_gflops
        rows[name] = info
    settings = dict(models=list(models), sizes=sizes, batch=batch,
                    matmul_size=matmul_size, repeats=repeats, warmup=warmup,
                    memory_repeats=memory_repeats,
                    profile_below=profile_below,
                    channels_last=channels_last, fold_bn=fold_bn,
                    threads=torch.get_num_threads())
    return dict(settings=settings,
                matmul=dict(size=matmul_size, gflops_per_s=matmul_gflops),
                models=rows, times=times,
                table=format_efficiency(rows, matmul_gflops, times))


def format_efficiency(rows: Dict[str, dict], matmul_gflops: float,
                      times: Dict[str, dict]) -> str:
    """Markdown tables of :func:`run`'s per-model numbers and profiles."""
    lines = [
        f'fp32 matmul rate in this run: {matmul_gflops:.1f} GFLOP/s', '',
        '| model | input | GMACs/image | params (M) | images/s | spread | '
        'GFLOP/s | share of matmul | peak memory (MiB) |',
        '|---|---|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for name, r in rows.items():
        mem = ('n/a' if r['peak_memory_bytes'] is None else
               f"{r['peak_memory_bytes'] / 2**20:.0f}")
        lines.append(
            f"| {name} | {r['size']}x{r['size']} | {r['macs'] / 1e9:.2f} | "
            f"{r['params'] / 1e6:.2f} | {r['images_per_s']:.2f} | "
            f"{100 * r['spread']:.1f}% | {r['gflops_per_s']:.1f} | "
            f"{100 * r['matmul_share']:.0f}% | {mem} |")
    folded = [(n, r['max_abs_diff']) for n, r in rows.items()
              if r.get('bn_folded')]
    if folded:
        lines += ['', 'BN folded into the convolutions: largest absolute '
                  'logit difference to the plain model ' + ', '.join(
                      f'{d:.2g} ({n})' for n, d in folded) + '.']
    lines += ['', format_table(times, 'interleaved timings')]
    for name, r in rows.items():
        if not r['profile']:
            continue
        lines += [
            '', f'#### where the time goes: {name} (top ops by self CPU '
            f'time, one inference)', '',
            '| op | self CPU (s) | share | calls |', '|---|---:|---:|---:|'
        ]
        lines += [
            f"| {p['op']} | {p['self_cpu_s']:.4f} | {100 * p['share']:.1f}% "
            f"| {p['calls']} |" for p in r['profile']
        ]
        lines += conv_table(
            f'convolutions of {name} by CPU time (same inference)',
            r['conv_profile'])
    return '\n'.join(lines)


def report(result: dict, settings: dict) -> tuple:
    """The tables of :func:`run`; per model its MACs, images/s, share of
    the matmul rate (the plain models and the BN-folded headline model,
    as ``tools/test.py --fuse-conv-bn`` runs it, judged against 85%) and
    peak memory."""
    rows = [
        row('fp32 matmul rate (GFLOP/s)', result['matmul']['gflops_per_s'],
            '{:.1f}')
    ]
    for name, r in result['models'].items():
        size = f"{r['size']}x{r['size']}"
        plain = (r.get('memory_format', 'contiguous') == 'contiguous'
                 and not r.get('bn_folded'))
        # the headline model as --fuse-conv-bn runs it is judged too
        judged = plain or (r.get('bn_folded')
                           and r.get('model') == 'headline')
        if plain:
            rows.append(
                row(f'{name} {size}: GMACs per image', r['macs'] / 1e9,
                    '{:.2f}'))
        rows += [
            row(f'{name} {size}: inference images/s', r['images_per_s'],
                '{:.2f}'),
            row(f'{name} {size}: share of the matmul rate', r['matmul_share'],
                '{:.0%}', '>= 85%' if judged else None,
                r['matmul_share'] >= 0.85 if judged else None),
        ]
        if r['peak_memory_bytes'] is not None:
            rows.append(
                row(f'{name} {size}: peak memory growth (MiB)',
                    r['peak_memory_bytes'] / 2**20, '{:.0f}'))
    return result['table'], rows
