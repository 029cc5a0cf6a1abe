"""The command line of one benchmark, derived from its function.

``tools/analysis/benchmark_<name>.py`` are thin wrappers over :func:`main`:
every keyword of the benchmark's function becomes an option with the
function's own default (``num_images`` -> ``--num-images``), so the
defaults live in one place, the function's signature. The tool prints the
benchmark's tables and its summary rows (with the targets), and ``--out``
writes ``{"settings": ..., "result": ...}`` as JSON, atomically.
"""
import argparse
import ast
import inspect
import sys
from typing import Optional, Sequence

from ..fileio import dump_json
from .bench_suite import get_benchmarks, run_benchmark
from .bench_summary import format_short, jsonable


def _literal(text: str):
    """A Python literal when ``text`` is one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser(name: str,
                 description: Optional[str] = None) -> argparse.ArgumentParser:
    """An argument parser with one option per setting of benchmark
    ``name`` (see :func:`possec.analysis.bench_suite.get_benchmarks`)."""
    bench = get_benchmarks([name])[name]
    parser = argparse.ArgumentParser(
        description=description or f'possec benchmark {name!r}: '
        f'{bench.title}',
)
    params = inspect.signature(bench.function).parameters
    for key, default in bench.settings().items():
        flag = '--' + key.replace('_', '-')
        # no argparse default: only what the user typed overrides --quick
        opts = dict(default=argparse.SUPPRESS, help=f'default: {default!r}')
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                **opts)
        elif isinstance(default, (list, tuple)):
            parser.add_argument(flag, nargs='+', type=_literal,
                                metavar=key.upper(), **opts)
        elif default is None or isinstance(default, dict):
            opts['help'] += ' (a Python literal)'
            parser.add_argument(flag, type=_literal, metavar=key.upper(),
                                **opts)
        else:
            kind = params[key].annotation
            kind = kind if kind in (int, float, str) else type(default)
            parser.add_argument(flag, type=kind, **opts)
    parser.add_argument(
        '--quick', action='store_true',
        help='tiny smoke run, measures nothing: ' + ', '.join(
            f'{k}={v}' for k, v in bench.quick.items()))
    parser.add_argument('--out', help='also write settings and result as '
                        'JSON to this file')
    return parser


def main(name: str, argv: Optional[Sequence[str]] = None,
         description: Optional[str] = None):
    """Parse ``argv``, run benchmark ``name``, print its tables.

    Settings given on the command line win over ``--quick``'s, which win
    over the function's defaults.

    Returns:
        The benchmark function's result. Exits with status 1 (after
        printing the traceback) when the benchmark failed.
    """
    parser = build_parser(name, description)
    args = vars(parser.parse_args(argv))
    quick, out = args.pop('quick'), args.pop('out')
    bench = get_benchmarks([name])[name]
    record = run_benchmark(bench, quick=quick, overrides=args)
    if record['status'] != 'ok':
        print(record['error'], file=sys.stderr)
        sys.exit(1)
    summary = dict(benchmarks=[dict(record, status='ok')])
    print(record['table'])
    print()
    print(format_short(summary))
    if out:
        dump_json(jsonable(dict(settings=record['settings'],
                                result=record['result'])), out)
    return record['result']
