"""Measurement helpers of the efficiency benchmark: peak memory of one call
and where its time goes (torch.profiler), convolutions grouped by shape with
the rate each reaches.
"""
import ctypes
import statistics
from typing import Callable, Dict, List, Optional, Tuple

from torch.profiler import ProfilerActivity, profile


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
                limit: int = 10) -> Tuple[List[dict], List[dict]]:
    """Where one call of ``fn`` spends its time (torch.profiler).

    Returns:
        tuple: The top ``limit`` operators by self CPU time, and the top
        ``limit`` convolution shapes by total CPU time with their
        multiply-adds and achieved GFLOP/s (2 FLOPs per multiply-add).
    """
    with profile(activities=[ProfilerActivity.CPU],
                 record_shapes=True) as prof:
        fn()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
    ops = [
        dict(op=e.key, self_cpu_s=e.self_cpu_time_total / 1e6,
             share=e.self_cpu_time_total / total, calls=e.count)
        for e in rows[:limit]
    ]
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
