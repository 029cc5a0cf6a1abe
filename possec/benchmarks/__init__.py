"""possec's benchmarks: one module per benchmark, the suite that runs them
and its command line (``tools/analysis/benchmark.py``), and the GPU check.

Every benchmark module (:mod:`.heads`, :mod:`.padding`, :mod:`.probe`,
:mod:`.metric`, :mod:`.efficiency`, :mod:`.throughput`, :mod:`.training`)
exports ``TITLE``, ``QUICK``, ``run`` and ``report`` (see :mod:`.suite`)
and holds only its variants and its report: threads, seed, device sync,
timed units and the random batch come from :mod:`.runner`, the shared
models from :mod:`.models`, FLOPs, memory and profiles from
:mod:`.profile`. No benchmark imports another. :mod:`.gpu_check` and
:mod:`.gpu_profile` run on CUDA (``tools/gpu_check.py``).
"""
from .runner import BenchmarkRunner
from .suite import (MODULES, NAMES, Benchmark, get_benchmarks,
                    parse_overrides, run_benchmark, run_suite)
from .timing import format_table, time_interleaved

__all__ = [
    'Benchmark', 'BenchmarkRunner', 'MODULES', 'NAMES', 'format_table',
    'get_benchmarks', 'parse_overrides', 'run_benchmark', 'run_suite',
    'time_interleaved'
]
