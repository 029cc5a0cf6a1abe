"""Time BorderIoUMetric against mmseg's IoUMetric on the same predictions.

    python tools/analysis/benchmark_metric.py                 # 200 x 512², 21
    python tools/analysis/benchmark_metric.py --quick         # seconds
    python tools/analysis/benchmark_metric.py --repeats 9 --out metric.json

Prints a markdown table of medians and ratios to IoUMetric (one full
evaluation each: process every image, then evaluate).
"""
import argparse

from possec.analysis.bench_metric import QUICK, run
from possec.analysis.benchmark import format_table
from possec.fileio import dump_json


def parse_args():
    parser = argparse.ArgumentParser(
        description='Benchmark BorderIoUMetric against IoUMetric')
    parser.add_argument('--images', type=int, default=200)
    parser.add_argument('--size', type=int, default=512,
                        help='image height and width')
    parser.add_argument('--classes', type=int, default=21)
    parser.add_argument('--batch', type=int, default=8,
                        help='images per process() call')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument(
        '--quick', action='store_true',
        help='tiny smoke run: ' +
        ', '.join(f'{k}={v}' for k, v in QUICK.items()))
    parser.add_argument('--out', help='also write the results as JSON here')
    return parser.parse_args()


def main():
    args = parse_args()
    settings = dict(images=args.images, size=args.size, classes=args.classes,
                    batch=args.batch, repeats=args.repeats,
                    warmup=args.warmup)
    if args.quick:
        settings.update(QUICK)
    results = run(threads=args.threads, **settings)
    title = (f"one evaluation of {settings['images']} images of "
             f"{settings['size']}x{settings['size']}, {settings['classes']} "
             f"classes, {settings['repeats']} repeats")
    print(format_table(results, title))
    if args.out:
        dump_json(dict(settings=dict(settings, threads=args.threads),
                       results=results), args.out)


if __name__ == '__main__':
    main()
