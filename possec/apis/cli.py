"""Shared pieces of possec's command-line tools."""
import argparse
import os
import sys
from typing import Callable

from mmengine.config import DictAction

from .checks import UserError


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
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)


def run_cli(fn: Callable, *args, **kwargs):
    """Call ``fn``; print a :class:`UserError` as one line and exit 2."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(kwargs.pop('local_rank', 0))
    else:
        kwargs.pop('local_rank', None)
    try:
        return fn(*args, **kwargs)
    except UserError as exc:
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(2)
