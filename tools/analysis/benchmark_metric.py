"""Time BorderIoUMetric against mmseg's IoUMetric on the same predictions.

    python tools/analysis/benchmark_metric.py                 # 200 x 512², 21
    python tools/analysis/benchmark_metric.py --quick         # seconds
    python tools/analysis/benchmark_metric.py --repeats 9 --out metric.json

Prints a markdown table of medians and ratios to IoUMetric (one full
evaluation each: process every image, then evaluate).

Every keyword of the benchmark's function is an option with the function's
default (``--help`` lists them); ``--out`` writes settings and result as
JSON. The same benchmark runs in the suite:
``python tools/analysis/benchmark.py metric``.
"""
import sys

from possec.analysis.bench_cli import main

if __name__ == '__main__':
    main('metric', sys.argv[1:])
