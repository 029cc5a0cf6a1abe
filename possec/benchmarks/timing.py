"""Timing helpers for possec's benchmarks.

Shared machines are noisy, so possec never reports an absolute time on its
own: every benchmark runs a baseline and the compared variants in the same
process, interleaved (``A B C A B C ...``) so that a slow phase of the machine
hits all of them alike, and reports each variant's median and spread together
with its ratio to the baseline's median.
"""
import statistics
import time
from typing import Callable, Dict, List, Optional


def time_interleaved(variants: Dict[str, Callable[[], object]],
                     repeats: int = 5,
                     warmup: int = 1,
                     baseline: Optional[str] = None,
                     progress: bool = True) -> Dict[str, dict]:
    """Time several zero-argument callables interleaved in one process.

    Args:
        variants (dict[str, callable]): Name -> function doing one unit of
            work (e.g. one training step). Insertion order is run order.
        repeats (int): Timed rounds; each round runs every variant once.
            Default: 5.
        warmup (int): Untimed rounds before timing. Default: 1.
        baseline (str, optional): Name of the variant the ratios refer to.
            Default: the first variant.
        progress (bool): Print one line per round. Default: True.

    Returns:
        dict[str, dict]: Per variant ``median_s``, ``min_s``, ``max_s``,
        ``spread`` ((max - min) / median), ``ratio`` (median / baseline
        median) and the raw ``times_s``.
    """
    if not variants:
        raise ValueError('time_interleaved needs at least one variant')
    if repeats < 1 or warmup < 0:
        raise ValueError(f'repeats must be >= 1 and warmup >= 0, got '
                         f'repeats={repeats}, warmup={warmup}')
    names = list(variants)
    baseline = names[0] if baseline is None else baseline
    if baseline not in variants:
        raise ValueError(f'baseline {baseline!r} is not one of {names}')
    times: Dict[str, List[float]] = {name: [] for name in names}
    for round_idx in range(warmup + repeats):
        for name in names:
            start = time.perf_counter()
            variants[name]()
            elapsed = time.perf_counter() - start
            if round_idx >= warmup:
                times[name].append(elapsed)
        if progress:
            tag = 'warm-up' if round_idx < warmup else 'round'
            num = round_idx + 1 if round_idx < warmup else \
                round_idx - warmup + 1
            total = warmup if round_idx < warmup else repeats
            print(f'  {tag} {num}/{total} done', flush=True)
    base_median = statistics.median(times[baseline])
    results = {}
    for name in names:
        med = statistics.median(times[name])
        results[name] = dict(
            median_s=med,
            min_s=min(times[name]),
            max_s=max(times[name]),
            spread=(max(times[name]) - min(times[name])) / med,
            ratio=med / base_median,
            times_s=times[name])
    return results


def format_table(results: Dict[str, dict], title: str = '') -> str:
    """Render :func:`time_interleaved` results as a markdown table."""
    lines = [f'### {title}', ''] if title else []
    lines += ['| variant | median (s) | spread | ratio |',
              '|---|---:|---:|---:|']
    for name, res in results.items():
        lines.append(f"| {name} | {res['median_s']:.4f} | "
                     f"{100 * res['spread']:.1f}% | {res['ratio']:.3f}x |")
    return '\n'.join(lines)

