"""Run possec's benchmark suite, some of its benchmarks, or one with its
own settings.

    python tools/analysis/benchmark.py                       # all, full size
    python tools/analysis/benchmark.py --quick               # smoke test
    python tools/analysis/benchmark.py heads metric --out-dir bench/
    python tools/analysis/benchmark.py heads --size 64 --repeats 9 \\
        --out heads.json
    python tools/analysis/benchmark.py padding --help        # its settings

Benchmarks: heads, padding, probe, metric, efficiency, throughput (see
docs/benchmarks.md). Writes <name>.json per benchmark, summary.json and
summary.md into --out-dir, and prints the short summary table (with one
benchmark, its own tables first). With one NAME, every keyword of its
function is an option with the function's default; --out also writes that
benchmark's settings and result as JSON. Exits with status 1 when a
benchmark failed (the others still run), 2 for bad arguments.
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import sys

from possec.benchmarks.cli import main

if __name__ == '__main__':
    sys.exit(main())
