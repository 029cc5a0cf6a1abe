"""Time one training step of an R50-D8 backbone with different decode heads.

    python tools/analysis/benchmark_heads.py                 # 2x3x128x128
    python tools/analysis/benchmark_heads.py --quick         # seconds
    python tools/analysis/benchmark_heads.py --repeats 9 --out heads.json

Prints a markdown table of medians and ratios to the bare 1x1 classifier.

Every keyword of the benchmark's function is an option with the function's
default (``--help`` lists them); ``--out`` writes settings and result as
JSON. The same benchmark runs in the suite:
``python tools/analysis/benchmark.py heads``.
"""
import sys

from possec.analysis.bench_cli import main

if __name__ == '__main__':
    main('heads', sys.argv[1:])
