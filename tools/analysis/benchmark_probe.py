"""Time possec's cached position probe against the naive loop.

    python tools/analysis/benchmark_probe.py                  # VGG16, 224²
    python tools/analysis/benchmark_probe.py --quick          # seconds
    python tools/analysis/benchmark_probe.py --num-images 20 --epochs 15 \\
        --out probe_bench.json

Both run the full 5-pattern probe of a random-init VGG on the same noise
images and settings; prints the wall times with their ratio, both SPC/MAE
tables, and whether the target (>= 10x faster, SPC within 0.02) is met.

Every keyword of the benchmark's function is an option with the function's
default (``--help`` lists them); ``--out`` writes settings and result as
JSON. The same benchmark runs in the suite:
``python tools/analysis/benchmark.py probe``.
"""
import sys

from possec.analysis.bench_cli import main

if __name__ == '__main__':
    main('probe', sys.argv[1:])
