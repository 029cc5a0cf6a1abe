"""Time one training step of an R50-D8 backbone with different decode heads.

    python tools/analysis/benchmark_heads.py                 # 2x3x128x128
    python tools/analysis/benchmark_heads.py --quick         # seconds
    python tools/analysis/benchmark_heads.py --repeats 9 --out heads.json

Prints a markdown table of medians and ratios to the bare 1x1 classifier.
"""
import argparse

from possec.analysis.bench_heads import QUICK, run
from possec.analysis.benchmark import format_table
from possec.fileio import dump_json


def parse_args():
    parser = argparse.ArgumentParser(
        description='Benchmark decode heads (one training step each)')
    parser.add_argument('--depth', type=int, default=50,
                        help='ResNetV1c depth (18, 34, 50, 101)')
    parser.add_argument('--size', type=int, default=128,
                        help='input height and width')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--channels', type=int, default=512,
                        help='inner width of the heads')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu')
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
    settings = dict(depth=args.depth, size=args.size, batch=args.batch,
                    channels=args.channels, repeats=args.repeats,
                    warmup=args.warmup)
    if args.quick:
        settings.update(QUICK)
    results = run(device=args.device, threads=args.threads, **settings)
    title = (f"one training step, ResNetV1c-{settings['depth']}-D8, input "
             f"{settings['batch']}x3x{settings['size']}x{settings['size']}, "
             f"{args.device}, {settings['repeats']} repeats")
    print(format_table(results, title))
    if args.out:
        dump_json(dict(settings=dict(settings, device=args.device,
                                     threads=args.threads),
                       results=results), args.out)


if __name__ == '__main__':
    main()
