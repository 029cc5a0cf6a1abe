"""possec's benchmarks: one module per benchmark, the suite that runs them
and its command line (``tools/analysis/benchmark.py``).

Every benchmark module (:mod:`.heads`, :mod:`.padding`, :mod:`.probe`,
:mod:`.metric`, :mod:`.efficiency`, :mod:`.throughput`) exports ``TITLE``,
``QUICK``, ``run`` and ``report``; see :mod:`.suite`.
"""
from .suite import (MODULES, NAMES, Benchmark, get_benchmarks,
                    parse_overrides, run_benchmark, run_suite)
from .timing import format_table, time_interleaved

__all__ = [
    'Benchmark', 'MODULES', 'NAMES', 'format_table', 'get_benchmarks',
    'parse_overrides', 'run_benchmark', 'run_suite', 'time_interleaved'
]
