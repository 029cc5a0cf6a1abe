"""Time each padding mode on the same R-50-D8 backbone, ratios vs zeros.

    python tools/analysis/benchmark_padding.py                 # 1x3x512x512
    python tools/analysis/benchmark_padding.py --quick         # seconds
    python tools/analysis/benchmark_padding.py --modes zeros partial \\
        --size 256 --repeats 5 --out padding.json

Prints markdown tables (training step and inference) of medians and ratios
to 'zeros'; the target is every mode within 1.10x. 'none' needs inputs of
431 pixels or more for R-50-D8 and is skipped, with the reason, below that.
"""
import argparse

from possec.analysis.bench_padding import QUICK, benchmark_padding
from possec.fileio import dump_json
from possec.models.layers.padding import PADDING_MODES


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark the padding modes of the R-D8 backbone')
    parser.add_argument('--modes', nargs='+', default=list(PADDING_MODES),
                        help=f'modes to time (zeros is always the '
                        f'baseline); from {", ".join(PADDING_MODES)}')
    parser.add_argument('--depth', type=int, default=50,
                        help='ResNetV1c depth (18, 34, 50, 101)')
    parser.add_argument('--size', type=int, default=512,
                        help='input height and width')
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--target', type=float, default=1.10,
                        help='largest acceptable ratio to zeros')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: torch\'s)')
    parser.add_argument(
        '--quick', action='store_true',
        help='tiny smoke run: ' +
        ', '.join(f'{k}={v}' for k, v in QUICK.items()))
    parser.add_argument('--out', help='also write the results as JSON here')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    settings = dict(depth=args.depth, size=args.size, batch=args.batch,
                    repeats=args.repeats, warmup=args.warmup)
    if args.quick:
        settings.update(QUICK)
    results = benchmark_padding(
        modes=args.modes, target=args.target, device=args.device,
        threads=args.threads, **settings)
    print(results['table'])
    missed = [m for m, ok in results['within_target'].items() if not ok]
    verdict = 'all but ' + ', '.join(missed) if missed else 'all timed modes'
    print(f'\nwithin {args.target:.2f}x of zeros: {verdict}')
    if args.out:
        dump_json(results, args.out)
    return results


if __name__ == '__main__':
    main()
