"""The command line of the benchmark suite (``tools/analysis/benchmark.py``).

One tool runs the whole suite, some benchmarks, or one benchmark with its
own settings::

    benchmark.py                                  # all, full size
    benchmark.py --quick                          # smoke test
    benchmark.py heads metric --out-dir bench/    # some
    benchmark.py heads --size 64 --repeats 9      # one, with its settings

With one benchmark named, every keyword of its ``run`` function is an
option with the function's own default (``num_images`` ->
``--num-images``; ``benchmark.py NAME --help`` lists them, by
:func:`possec.apis.cli.add_signature_options`), so the defaults live in one
place, the function's signature. Settings given on the command line win
over ``--quick``'s, which win over the defaults. The older spelling
``--set NAME.KEY=VALUE`` still works in this release, with a notice.
"""
import argparse
import sys
from typing import List, Optional, Sequence

from ..analysis.common import to_jsonable
from ..apis.cli import add_signature_options
from ..fileio import dump_json
from .suite import (NAMES, Benchmark, format_short, get_benchmarks,
                    parse_overrides, run_suite)

# settings that the suite's own options set (``--threads``)
_SUITE_SETTINGS = ('threads', )


def suite_parser() -> argparse.ArgumentParser:
    """The options of the suite: names, ``--quick``, ``--out-dir``,
    ``--set``, ``--threads``, ``--list`` and ``--out``."""
    parser = argparse.ArgumentParser(
        description='Run possec benchmarks and write JSON + markdown. With '
        'one NAME, that benchmark\'s settings are options too (see '
        '"NAME --help").')
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help=f'benchmarks to run (default: all): '
                        f'{", ".join(NAMES)}')
    parser.add_argument('--quick', action='store_true',
                        help='tiny sizes, one repeat: checks that it runs, '
                        'measures nothing')
    parser.add_argument('--out-dir', default='work_dirs/benchmarks',
                        help='folder for the JSON and markdown files')
    parser.add_argument(
        '--set', nargs='+', default=[], metavar='NAME.KEY=VALUE',
        help='deprecated: name one benchmark and give its settings as '
        'options (benchmark.py heads --size 64)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads for every benchmark')
    parser.add_argument('--list', action='store_true',
                        help='print the benchmarks and their settings')
    parser.add_argument('--out', help='with one NAME: also write its '
                        'settings and result as JSON to this file')
    return parser


def settings_parser(bench: Benchmark) -> argparse.ArgumentParser:
    """An argument parser with one option per setting of ``bench``."""
    parser = argparse.ArgumentParser(
        prog=f'benchmark.py {bench.name}',
        description=f'settings of benchmark {bench.name!r}: {bench.title} '
        f'(--quick sets ' + ', '.join(
            f'{k}={v}' for k, v in bench.quick.items()) + ')')
    add_signature_options(parser, bench.function,
                          exclude=_SUITE_SETTINGS + ('progress', ))
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv``, run the benchmarks, print and write their results.

    Returns:
        int: 0, 1 when a benchmark failed (the others still run), 2 for
        bad arguments.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    base = suite_parser()
    if argv[1:2] in (['-h'], ['--help']) and argv[0] in NAMES:
        settings_parser(get_benchmarks(argv[:1])[argv[0]]).print_help()
        return 0
    args, extra = base.parse_known_args(argv)
    if args.set:
        print('notice: --set is deprecated and goes in the next release: '
              'name one benchmark and give its settings as options '
              '(benchmark.py heads --size 64)', file=sys.stderr)
    try:
        overrides = parse_overrides(args.set)
        if extra or args.out:
            if len(args.names) != 1:
                raise ValueError(
                    f'{" ".join(extra) or "--out"} needs exactly one '
                    f'benchmark NAME (got {args.names or "none"}); for '
                    f'several, run the tool once per benchmark')
            name = args.names[0]
            bench = get_benchmarks([name])[name]
            own = settings_parser(bench)
            own.exit = _raise  # errors as ValueError: one line, status 2
            overrides.setdefault(name, {}).update(
                vars(own.parse_args(extra)))
        if args.list:
            for name, bench in get_benchmarks(args.names).items():
                print(f'{name}: {bench.title}\n  settings: '
                      f'{bench.settings(args.quick, overrides.get(name))}')
            return 0
        records: List[dict] = []
        summary = run_suite(args.names, quick=args.quick,
                            out_dir=args.out_dir, overrides=overrides,
                            threads=args.threads, records=records)
    except ValueError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if len(records) == 1 and records[0]['status'] == 'ok':
        print(records[0]['table'])
    print()
    print(format_short(summary))
    if args.out and records[0]['status'] == 'ok':
        dump_json(to_jsonable(dict(settings=records[0]['settings'],
                                   result=records[0]['result'])), args.out)
    print(f'\nwritten to {args.out_dir}/ (summary.md, summary.json, '
          f'one JSON per benchmark)')
    failed = [b['name'] for b in summary['benchmarks']
              if b['status'] != 'ok']
    return 1 if failed else 0


def _raise(status: int = 0, message: Optional[str] = None):
    """``ArgumentParser.exit`` for the settings parser: raise instead."""
    raise ValueError((message or '').strip().replace('\n', ' '))
