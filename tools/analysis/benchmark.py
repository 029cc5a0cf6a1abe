"""Run possec's benchmark suite, or some of its benchmarks.

    python tools/analysis/benchmark.py                       # all, full size
    python tools/analysis/benchmark.py --quick               # smoke test
    python tools/analysis/benchmark.py heads metric --out-dir bench/
    python tools/analysis/benchmark.py padding --set padding.size=256 \\
        padding.repeats=5

Benchmarks: heads, padding, probe, metric, efficiency, throughput (see
docs/benchmarks.md). Writes <name>.json per benchmark, summary.json and
summary.md into --out-dir, and prints the short summary table. Exits with
status 1 when a benchmark failed (the others still run).
"""
import argparse
import sys

from possec.analysis.bench_suite import (NAMES, format_short,
                                         get_benchmarks, parse_overrides,
                                         run_suite)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Run possec benchmarks and write JSON + markdown')
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help=f'benchmarks to run (default: all): '
                        f'{", ".join(NAMES)}')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, one repeat: checks that it runs')
    parser.add_argument('--out-dir', default='work_dirs/benchmarks',
                        help='folder for the JSON and markdown files')
    parser.add_argument(
        '--set', nargs='+', default=[], metavar='NAME.KEY=VALUE',
        help='override a benchmark setting, e.g. heads.size=64 '
        'probe.input_size=112 (values are Python literals)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads for every benchmark')
    parser.add_argument('--list', action='store_true',
                        help='print the benchmarks and their settings')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        overrides = parse_overrides(args.set)
        if args.list:
            for name, bench in get_benchmarks(args.names).items():
                print(f'{name}: {bench.title}\n  settings: '
                      f'{bench.settings(args.quick, overrides.get(name))}')
            return 0
        summary = run_suite(args.names, quick=args.quick,
                            out_dir=args.out_dir, overrides=overrides,
                            threads=args.threads)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print()
    print(format_short(summary))
    print(f'\nwritten to {args.out_dir}/ (summary.md, summary.json, '
          f'one JSON per benchmark)')
    failed = [b['name'] for b in summary['benchmarks']
              if b['status'] != 'ok']
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
