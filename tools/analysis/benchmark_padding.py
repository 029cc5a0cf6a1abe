"""Time each padding mode on the same R-50-D8 backbone, ratios vs zeros.

    python tools/analysis/benchmark_padding.py                 # 1x3x512x512
    python tools/analysis/benchmark_padding.py --quick         # seconds
    python tools/analysis/benchmark_padding.py --modes zeros partial \\
        --size 256 --repeats 5 --out padding.json

Prints markdown tables (training step and inference) of medians and ratios
to 'zeros'; the target is every mode within 1.10x. 'none' needs inputs of
431 pixels or more for R-50-D8 and is skipped, with the reason, below that.

Every keyword of the benchmark's function is an option with the function's
default (``--help`` lists them); ``--out`` writes settings and result as
JSON. The same benchmark runs in the suite:
``python tools/analysis/benchmark.py padding``.
"""
import sys

from possec.analysis.bench_cli import main

if __name__ == '__main__':
    main('padding', sys.argv[1:])
