"""Time possec's cached position probe against the naive loop.

    python tools/analysis/benchmark_probe.py                  # VGG16, 224²
    python tools/analysis/benchmark_probe.py --quick          # seconds
    python tools/analysis/benchmark_probe.py --num-images 20 --epochs 15 \\
        --out probe_bench.json

Both run the full 5-pattern probe of a random-init VGG on the same noise
images and settings; prints the wall times with their ratio, both SPC/MAE
tables, and whether the target (>= 10x faster, SPC within 0.02) is met.
"""
import argparse

from possec.analysis.bench_probe import QUICK, benchmark_probe
from possec.fileio import dump_json


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Benchmark the cached position probe vs the naive loop')
    parser.add_argument('--num-images', type=int, default=40)
    parser.add_argument('--input-size', type=int, default=224)
    parser.add_argument('--grid', type=int, default=28)
    parser.add_argument('--epochs', type=int, default=15)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=0.01,
                        help="readout lr (the paper's 0.1 diverges on a "
                        'random-init VGG16)')
    parser.add_argument('--vgg-depth', type=int, default=16)
    parser.add_argument('--repeats', type=int, default=1)
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
    settings = dict(num_images=args.num_images, input_size=args.input_size,
                    grid=args.grid, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr,
                    vgg_depth=args.vgg_depth)
    if args.quick:
        settings.update(QUICK)
    results = benchmark_probe(repeats=args.repeats, device=args.device,
                              threads=args.threads, **settings)
    print(results['table'])
    if args.out:
        dump_json(results, args.out)
    return results


if __name__ == '__main__':
    main()
