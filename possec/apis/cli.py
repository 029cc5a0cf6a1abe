"""Shared pieces of possec's command-line tools.

One way to turn a function into a tool: :func:`add_signature_options` adds
one option per keyword of the function the tool calls, with the function's
own default and the meaning its docstring's ``Args:`` gives, and
:func:`given_options` hands back only what the user typed, so that every
default lives in one place, the function's signature.
"""
import argparse
import ast
import inspect
import os
import re
import sys
import traceback
from typing import Callable, Dict, Iterable, Mapping, Optional

from mmengine.config import DictAction

from ..errors import UserError


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by train and test, spelled as in mmseg's tools."""
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
    parser.add_argument(
        '--data-root', metavar='DIR',
        help='where generated (synthetic) data goes (default: '
        '$POSSEC_DATA_ROOT, else ~/.cache/possec/data)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config entries, e.g. train_cfg.max_iters=100 '
        'model.backbone.padding_mode=reflect')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher (pytorch under torchrun)')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='unpickle the given checkpoint fully, for a file you trust: '
        'by default only tensors and the few types of possec/mmseg '
        'checkpoints are loaded, since a pickle can run code')
    parser.add_argument(
        '--partial-load', action='store_true',
        help='load a checkpoint whose weights fit the model only in part '
        '(by default missing or unexpected weights stop the run)')
    parser.add_argument('--debug', action='store_true',
                        help='print the traceback behind an error message')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def run_cli(fn: Callable, *args, debug: bool = False, **kwargs):
    """Call ``fn``; print a :class:`UserError` as one line and exit 2
    (after its traceback, with ``debug``)."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(kwargs.pop('local_rank', 0))
    else:
        kwargs.pop('local_rank', None)
    try:
        return fn(*args, **kwargs)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        message = ' '.join(str(exc).split('\n'))
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)


def literal(text: str):
    """A Python literal when ``text`` is one, else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def signature_defaults(fn: Callable,
                       names: Optional[Iterable[str]] = None) -> dict:
    """The keyword defaults of ``fn`` (those of ``names`` only, when
    given), in signature order."""
    wanted = None if names is None else set(names)
    return {
        k: p.default
        for k, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty and (
            wanted is None or k in wanted)
    }


def docstring_args(fn: Callable) -> Dict[str, str]:
    """The meaning of each argument in ``fn``'s mmseg-style docstring
    (``name (type): meaning. Default: x.``), without its default."""
    doc = inspect.getdoc(fn) or ''
    found, name, inside = {}, None, False
    for line in doc.splitlines():
        if line.strip() in ('Args:', 'Arguments:'):
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(' '):  # the next section
            break
        head = re.match(r'^    (\*{0,2}\w+)(?: \(([^)]*)\))?: ?(.*)$', line)
        if head:
            name = head.group(1)
            found[name] = head.group(3)
        elif name and line.strip():
            found[name] += ' ' + line.strip()
    return {k: re.sub(r'\s*Default: .*$', '', v).replace('``', '').strip()
            for k, v in found.items()}


def add_signature_options(parser,
                          fn: Callable,
                          names: Optional[Iterable[str]] = None,
                          flags: Optional[Mapping[str, str]] = None,
                          exclude: Iterable[str] = (),
                          types: Optional[Mapping[str, Callable]] = None,
                          helps: Optional[Mapping[str, str]] = None,
                          choices: Optional[Mapping[str, Iterable]] = None
                          ) -> Dict[str, str]:
    """Add one option per keyword of ``fn`` to ``parser`` (a parser or an
    argument group).

    Each option has no default of its own (``argparse.SUPPRESS``): only
    what the user types reaches ``fn``, whose signature keeps the default
    (shown in the help). ``num_images`` becomes ``--num-images``; a bool
    gets ``--x/--no-x``; a list or tuple default takes several values; a
    None or dict default takes a Python literal; otherwise the value has
    the annotated type (or the default's type).

    Args:
        parser (argparse.ArgumentParser | argparse._ArgumentGroup): Where
            the options go.
        fn (callable): The function whose keywords become options.
        names (Iterable[str], optional): Only these keywords. Default: all
            with a default.
        flags (Mapping[str, str], optional): A flag other than the
            keyword's own name (``{'num_convs': '--depth'}``).
        exclude (Iterable[str]): Keywords left out. Default: ().
        types (Mapping[str, callable], optional): A parse function other
            than the one the default implies.
        helps (Mapping[str, str], optional): Help instead of the
            docstring's.
        choices (Mapping[str, Iterable], optional): The values an option
            (or each of a list option's values) may take.

    Returns:
        dict[str, str]: ``args`` attribute -> keyword of ``fn``, for
        :func:`given_options`.
    """
    flags, types, helps = dict(flags or {}), dict(types or {}), \
        dict(helps or {})
    choices = {k: list(v) for k, v in (choices or {}).items()}
    params = inspect.signature(fn).parameters
    meaning = docstring_args(fn)
    dests = {}
    for key, default in signature_defaults(fn, names).items():
        if key in exclude:
            continue
        flag = flags.get(key, '--' + key.replace('_', '-'))
        dest = flag.lstrip('-').replace('-', '_')
        text = f'{helps.get(key, meaning.get(key, ""))} (default: ' \
            f'{default!r})'
        opts = dict(dest=dest, default=argparse.SUPPRESS,
                    help=text.strip().replace('%', '%%'))
        if key in choices:
            opts['choices'] = choices[key]
        kind = params[key].annotation
        if key in types:
            parser.add_argument(flag, type=types[key], **opts)
        elif isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                **opts)
        elif isinstance(default, (list, tuple)):
            parser.add_argument(flag, nargs='+', type=literal,
                                metavar=key.upper(), **opts)
        elif default is None or isinstance(default, dict):
            opts['help'] += ' (a Python literal)'
            parser.add_argument(flag, type=literal, metavar=key.upper(),
                                **opts)
        else:
            kind = kind if kind in (int, float, str) else type(default)
            parser.add_argument(flag, type=kind, **opts)
        dests[dest] = key
    return dests


def given_options(args: argparse.Namespace,
                  dests: Mapping[str, str]) -> dict:
    """The options of :func:`add_signature_options` the user typed, as
    keyword arguments of the function."""
    return {key: getattr(args, dest) for dest, key in dests.items()
            if hasattr(args, dest)}
