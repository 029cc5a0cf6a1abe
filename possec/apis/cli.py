"""Shared pieces of possec's command-line tools."""
import argparse
import os
import sys
import traceback
from typing import Callable

from mmengine.config import DictAction

from ..errors import UserError


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by train and test, spelled as in mmseg's tools."""
    parser.add_argument('--work-dir', help='folder for logs and checkpoints')
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
