"""Training efficiency: achieved GFLOP/s of a training step as a share of
the fp32 matmul rate.

For each model (the demo config at 128² batch 8, as ``make demo`` trains
it; the study's cell, the same config at 64² batch 4 as
``possec.analysis.study`` trains it; the headline config at a size that
fits a CPU budget) one **training step** is: ``model.loss`` on a random
batch (backbone, decode head, auxiliary heads, losses), ``parse_losses``,
backward, and an AdamW step. Its time is measured interleaved with a square
fp32 ``torch.mm`` in one process (:func:`~.timing.time_interleaved`).

**FLOPs.** The forward (``model.loss``) is counted by
:class:`torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per multiply-add
of convolutions and matrix products; element-wise work is not counted). The
backward is counted as **2x the forward** (a gradient for the inputs and
one for the weights of every product), so a step is 3x the forward; the
counter's own count of the backward is reported beside it (a little less
than 2x: the stem's input needs no gradient). The optimizer step is
element-wise and not counted. The achieved rate is 3 x forward FLOPs /
median step time, and its **share of the matmul rate** divides by the
matmul's GFLOP/s of the same rounds.

Variants of each model (rows ``'<model>, <variant>'``): ``channels_last``
(weights and input in that memory format), ``1 thread``
(``torch.set_num_threads(1)`` during the step), ``readout before`` (the
position head's readout as before commit ``12470f2``: resize, concatenate,
convolve; the study cell's before/after), ``compiled`` (``torch.compile``
of the model's ``loss``, when asked: its compile time is reported apart).
The plain variant of each model is profiled (``torch.profiler``, top
operators by self CPU time, convolutions by shape with their rates).
"""
import copy
import time
from typing import Dict, Optional, Sequence

import torch

from .models import DEMO_CONFIG, HEADLINE_CONFIG, build_model, \
    use_readout_before
from .profile import conv_table, count_step_flops, profile_ops
from .rows import row
from .runner import BenchmarkRunner
from .timing import format_table

TITLE = ('training step: achieved GFLOP/s (backward = 2x forward) as a '
         'share of the fp32 matmul rate')
#: name -> (config, size, batch)
MODELS = {
    'demo': (DEMO_CONFIG, 128, 8),
    'study cell': (DEMO_CONFIG, 64, 4),
    'headline': (HEADLINE_CONFIG, 256, 1),
}
VARIANTS = ('channels_last', '1 thread', 'readout before', 'compiled')
QUICK = dict(models=('study cell', ), sizes={'study cell': 32},
             batches={'study cell': 2}, matmul_size=256, repeats=1,
             warmup=0, top_ops=5, variants=('channels_last', '1 thread',
                                            'readout before'))


def _loss(model, inputs, samples, loss_fn=None):
    """The forward of a segmentor's training step: its parsed loss."""
    loss_fn = loss_fn or model.loss
    return lambda: model.parse_losses(loss_fn(inputs, samples))[0]


def _variant(runner: BenchmarkRunner, variant: str, model, inputs,
             samples):
    """The training step of one of :data:`VARIANTS` on a copy of
    ``model``: (timed unit, extra row fields), or None where the variant
    does not apply (``'readout before'`` without a position head)."""
    net, x, loss_fn, extra = copy.deepcopy(model), inputs, None, {}
    threads = None
    if variant == 'channels_last':
        net = net.to(memory_format=torch.channels_last)
        x = inputs.contiguous(memory_format=torch.channels_last)
    elif variant == '1 thread':
        threads = 1
    elif variant == 'readout before':
        if not use_readout_before(net):
            return None
    elif variant == 'compiled':
        loss_fn = torch.compile(net.loss)
        start = time.perf_counter()
        runner.train_step(_loss(net, x, samples, loss_fn), net.parameters())()
        extra['compile_s'] = time.perf_counter() - start
    return runner.train_step(_loss(net, x, samples, loss_fn),
                             net.parameters(), threads=threads), extra


def _rows(found: dict, times: dict, matmul_gflops: float) -> dict:
    """Per timed step: its time, images/s, GFLOP/s (3x the forward's
    FLOPs), share of the matmul rate and ratio to its model's plain
    step."""
    rows = {}
    for label, info in found.items():
        timing = times[label]
        plain = next(lb for lb, i in found.items()
                     if i['model'] == info['model'] and i['variant'] ==
                     'plain')
        step_flops = 3 * info['forward_flops']
        gflops = step_flops / timing['median_s'] / 1e9
        rows[label] = dict(
            info, step_flops=step_flops, step_s=timing['median_s'],
            spread=timing['spread'], images_per_s=info['batch'] /
            timing['median_s'], gflops_per_s=gflops,
            matmul_share=gflops / matmul_gflops,
            vs_plain=timing['median_s'] / times[plain]['median_s'])
    return rows


def run(models: Sequence[str] = ('demo', 'study cell', 'headline'),
        sizes: Optional[Dict[str, int]] = None,
        batches: Optional[Dict[str, int]] = None,
        variants: Sequence[str] = ('channels_last', '1 thread',
                                   'readout before'),
        matmul_size: int = 2048,
        repeats: int = 5,
        warmup: int = 1,
        top_ops: int = 10,
        profile: bool = True,
        threads: Optional[int] = None,
        seed: int = 0,
        progress: bool = True) -> dict:
    """Time training steps and the matmul; see the module docstring.

    Args:
        models (Sequence[str]): Names from :data:`MODELS`. Default: all.
        sizes (dict[str, int], optional): Input side per model. Default:
            :data:`MODELS`'s (128, 64, 256).
        batches (dict[str, int], optional): Batch per model. Default:
            :data:`MODELS`'s (8, 4, 1).
        variants (Sequence[str]): Of :data:`VARIANTS`; ``'readout before'``
            applies to models with a position head. Default:
            ('channels_last', '1 thread', 'readout before').
        matmul_size (int): Side of the reference fp32 matmul. Default: 2048.
        repeats (int): Timed rounds. Default: 5.
        warmup (int): Untimed rounds first. Default: 1.
        top_ops (int): Operators listed per profile. Default: 10.
        profile (bool): Profile one step of each plain model. Default: True.
        threads (int, optional): ``torch.set_num_threads``. Default: None.
        seed (int): Seed of weights and data. Default: 0.
        progress (bool): Print one line per round. Default: True.

    Returns:
        dict: ``settings``, ``matmul`` (GFLOP/s), ``rows`` (per variant:
        model, size, batch, FLOPs, step time, GFLOP/s, share of the matmul
        rate, ratio to its plain model), ``profiles``, ``times``.
    """
    unknown = [m for m in models if m not in MODELS] + [
        v for v in variants if v not in VARIANTS]
    if unknown or not models:
        raise ValueError(f'unknown models or variants {unknown}; expected '
                         f'models from {list(MODELS)} and variants from '
                         f'{list(VARIANTS)}')
    runner = BenchmarkRunner(threads=threads, seed=seed, repeats=repeats,
                             warmup=warmup, progress=progress)
    mm_name, mm_unit, mm_flops = runner.matmul(matmul_size)
    steps = {mm_name: mm_unit}
    found, profiles = {}, {}
    for name in models:
        config, size, batch = MODELS[name]
        size = (sizes or {}).get(name, size)
        batch = (batches or {}).get(name, batch)
        runner.reseed()
        model = build_model(config, size).train()
        num_classes = model.decode_head.num_classes
        inputs, samples = runner.batch(batch, size, num_classes)
        flops = count_step_flops(model, inputs, samples)
        base = dict(model=name, config=config, size=size, batch=batch,
                    **flops)
        label = f'{name} ({batch}x3x{size}x{size})'
        steps[label] = runner.train_step(_loss(model, inputs, samples),
                                         model.parameters())
        found[label] = dict(base, variant='plain', compile_s=None)
        if profile:
            profiles[name] = profile_ops(steps[label], top_ops)
        for variant in variants:
            built = _variant(runner, variant, model, inputs, samples)
            if built is None:
                continue
            vlabel = f'{name}, {variant} ({batch}x3x{size}x{size})'
            steps[vlabel], extra = built
            found[vlabel] = dict(base, variant=variant,
                                 **dict(dict(compile_s=None), **extra))
    times = runner.time(steps, baseline=mm_name)
    matmul_gflops = mm_flops / times[mm_name]['median_s'] / 1e9
    rows = _rows(found, times, matmul_gflops)
    for name, (ops, convs) in profiles.items():
        for conv in convs:
            conv['matmul_share'] = conv['gflops_per_s'] / matmul_gflops
    settings = dict(models=list(models), sizes=sizes, batches=batches,
                    variants=list(variants), matmul_size=matmul_size,
                    repeats=repeats, warmup=warmup, top_ops=top_ops,
                    threads=torch.get_num_threads())
    return dict(settings=settings,
                matmul=dict(size=matmul_size, gflops_per_s=matmul_gflops,
                            spread=times[mm_name]['spread']),
                rows=rows,
                profiles={k: dict(ops=o, convs=c)
                          for k, (o, c) in profiles.items()},
                times=times)


def format_training(result: dict) -> str:
    """Markdown tables of :func:`run`'s rows and profiles."""
    mm = result['matmul']
    lines = [
        f"fp32 matmul rate in this run: {mm['gflops_per_s']:.1f} GFLOP/s "
        f"(spread {100 * mm['spread']:.1f}%); a step's FLOPs are 3x the "
        'forward\'s (backward counted as 2x forward)', '',
        '| step | forward GFLOP | backward GFLOP (counted) | step (s) | '
        'spread | images/s | GFLOP/s | share of matmul | vs plain |',
        '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
    ]
    for label, r in result['rows'].items():
        lines.append(
            f"| {label} | {r['forward_flops'] / 1e9:.2f} | "
            f"{r['backward_flops_counted'] / 1e9:.2f} | {r['step_s']:.3f} "
            f"| {100 * r['spread']:.1f}% | {r['images_per_s']:.2f} | "
            f"{r['gflops_per_s']:.1f} | {100 * r['matmul_share']:.0f}% | "
            f"{r['vs_plain']:.3f}x |")
    compiled = [(k, r['compile_s']) for k, r in result['rows'].items()
                if r.get('compile_s')]
    if compiled:
        lines += ['', 'torch.compile time (first call): ' + ', '.join(
            f'{s:.0f} s ({k})' for k, s in compiled)]
    lines += ['', format_table(result['times'], 'interleaved timings')]
    for name, prof in result['profiles'].items():
        lines += [
            '', f'#### where the time goes: {name}, one training step (top '
            'ops by self CPU time)', '', '| op | self CPU (s) | share | '
            'calls |', '|---|---:|---:|---:|'
        ]
        lines += [
            f"| {p['op']} | {p['self_cpu_s']:.4f} | "
            f"{100 * p['share']:.1f}% | {p['calls']} |" for p in prof['ops']
        ]
        lines += conv_table(f'forward convolutions of {name} by CPU time',
                            prof['convs'])
    return '\n'.join(lines)


def report(result: dict, settings: dict) -> tuple:
    """The tables of :func:`run`; per step its share of the matmul rate and
    its time relative to the model's plain step (no target: the number
    and what raises it are the findings)."""
    rows = [
        row('fp32 matmul rate (GFLOP/s)', result['matmul']['gflops_per_s'],
            '{:.1f}')
    ]
    for label, r in result['rows'].items():
        rows.append(
            row(f'training {label}: share of the matmul rate (spread '
                f"{100 * r['spread']:.0f}%)", r['matmul_share'], '{:.0%}'))
        if r['variant'] != 'plain':
            rows.append(row(f'training {label} / plain', r['vs_plain'],
                            '{:.3f}x'))
    return format_training(result), rows
