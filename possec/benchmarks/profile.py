"""What the benchmarks measure besides time: FLOPs of an inference
(mmengine's counter) and of a training step (torch's), the peak memory of
one call, and where its time goes (torch.profiler), convolutions grouped by
shape with the rate each reaches.
"""
import ctypes
import statistics
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from torch import nn
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from ..analysis.common import quiet_logger


def count_flops(model: nn.Module, inputs: torch.Tensor) -> dict:
    """FLOPs of ``model(inputs)`` by mmengine's complexity analysis.

    Uses :class:`mmengine.analysis.FlopAnalyzer` and
    :func:`mmengine.analysis.parameter_count`, the counters behind
    :func:`mmengine.analysis.get_model_complexity_info` (same totals), with
    one trace instead of its two and a per-operator breakdown.

    Returns:
        dict: ``macs`` (mmengine's ``flops``: multiply-adds), ``params``
        and ``macs_by_operator``.
    """
    # mmengine warns once per op without a FLOP formula (add, relu, ...)
    # and per module the forward does not call (the auxiliary heads).
    with quiet_logger('ERROR'), torch.no_grad():
        analyzer = FlopAnalyzer(model, (inputs, ))
        by_op = analyzer.by_operator()
        macs = analyzer.total()
    return dict(macs=int(macs), params=int(parameter_count(model)['']),
                macs_by_operator={k: int(v) for k, v in by_op.items()})


def count_step_flops(model: nn.Module, inputs: torch.Tensor,
                     samples: list) -> dict:
    """Forward and backward FLOPs of one training step of a segmentor by
    :class:`~torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per
    multiply-add; the optimizer step is not counted).

    Returns:
        dict: ``forward_flops`` and ``backward_flops_counted``.
    """
    model.zero_grad(set_to_none=True)
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _ = model.parse_losses(model.loss(inputs, samples))
    forward = counter.get_total_flops()
    counter = FlopCounterMode(display=False)
    with counter:
        loss.backward()
    model.zero_grad(set_to_none=True)
    return dict(forward_flops=int(forward),
                backward_flops_counted=int(counter.get_total_flops()))


def _proc_status(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_memory(fn: Callable[[], object],
                repeats: int = 3) -> Tuple[Optional[int], str]:
    """Median peak RSS growth (bytes) of ``fn`` above the RSS before it.

    Returns:
        tuple: The bytes (None when unsupported here) and what was measured
        or why nothing was.
    """
    try:
        libc = ctypes.CDLL('libc.so.6')
        growth = []
        for _ in range(repeats):
            libc.malloc_trim(0)
            before = _proc_status('VmRSS')
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # reset VmHWM to the current RSS
            fn()
            growth.append(_proc_status('VmHWM') - before)
    except (OSError, KeyError, AttributeError) as err:
        return None, f'peak RSS not measurable here: {err}'
    return int(statistics.median(growth)), (
        'peak RSS growth during one inference above the RSS before it '
        '(VmHWM reset via /proc/self/clear_refs, after malloc_trim)')


def _conv_macs(event) -> Optional[int]:
    """Multiply-adds of one recorded ``aten::convolution`` call."""
    try:
        (n, _, h, w), (cout, cin_g, kh, kw) = event.input_shapes[:2]
        args = event.concrete_inputs
        stride, padding, dilation = args[3], args[4], args[5]
        if args[6]:  # transposed
            return None
    except (IndexError, TypeError, ValueError):
        return None
    hout = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wout = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return n * cout * cin_g * kh * kw * hout * wout


def profile_ops(fn: Callable[[], object],
                limit: int = 10,
                device='cpu') -> Tuple[List[dict], List[dict]]:
    """Where one call of ``fn`` spends its time (torch.profiler).

    Args:
        fn (callable): The call to profile.
        limit (int): Rows of each table. Default: 10.
        device (str | torch.device): With a CUDA device the kernels are
            recorded too and the operators are ranked by their self time
            on the device (``self_device_s``). Default: 'cpu'.

    Returns:
        tuple: The top ``limit`` operators by self time, and the top
        ``limit`` convolution shapes by total CPU time with their
        multiply-adds and achieved GFLOP/s (2 FLOPs per multiply-add).
    """
    cuda = torch.device(device).type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA]
                                           if cuda else [])
    with profile(activities=activities, record_shapes=True) as prof:
        fn()
    events = prof.key_averages()

    def own(e):
        return _device_time(e) if cuda else e.self_cpu_time_total

    total = sum(own(e) for e in events) or 1.
    rows = sorted(events, key=own, reverse=True)
    ops = [
        dict(op=e.key, self_cpu_s=e.self_cpu_time_total / 1e6,
             share=own(e) / total, calls=e.count,
             **(dict(self_device_s=own(e) / 1e6) if cuda else {}))
        for e in rows[:limit]
    ]
    total = sum(e.self_cpu_time_total for e in events) or 1.
    convs: Dict[tuple, dict] = {}
    for event in prof.events():
        macs = _conv_macs(event) if event.name == 'aten::convolution' \
            else None
        if macs is None:
            continue
        args = event.concrete_inputs
        key = (tuple(event.input_shapes[0]), tuple(event.input_shapes[1]),
               tuple(args[3]), tuple(args[5]))
        entry = convs.setdefault(key, dict(
            input=list(key[0]), weight=list(key[1]), stride=list(key[2]),
            dilation=list(key[3]), calls=0, cpu_s=0., macs=0))
        entry['calls'] += 1
        entry['cpu_s'] += event.cpu_time_total / 1e6
        entry['macs'] += macs
    conv_rows = sorted(convs.values(), key=lambda c: c['cpu_s'],
                       reverse=True)[:limit]
    for c in conv_rows:
        c['share'] = c['cpu_s'] * 1e6 / total
        c['gflops_per_s'] = 2 * c['macs'] / max(c['cpu_s'], 1e-9) / 1e9
    return ops, conv_rows


def _device_time(event) -> float:
    """Self time of a profiler row on the device (µs), by the name of this
    torch version."""
    for name in ('self_device_time_total', 'self_cuda_time_total'):
        if hasattr(event, name):
            return getattr(event, name)
    return 0.


def conv_table(title: str, convs: list) -> List[str]:
    """Markdown lines of the per-convolution rows of :func:`profile_ops`
    (its ``convs``), under the heading ``title``."""
    lines = [
        '', f'#### {title}', '',
        '| input | weight | stride | dilation | calls | CPU (s) | '
        'share | GFLOP/s | share of matmul |',
        '|---|---|---|---|---:|---:|---:|---:|---:|'
    ]
    lines += [
        f"| {'x'.join(map(str, c['input']))} | "
        f"{'x'.join(map(str, c['weight']))} | {c['stride'][0]} | "
        f"{c['dilation'][0]} | {c['calls']} | {c['cpu_s']:.4f} | "
        f"{100 * c['share']:.1f}% | {c['gflops_per_s']:.1f} | "
        f"{100 * c['matmul_share']:.0f}% |" for c in convs
    ]
    return lines
