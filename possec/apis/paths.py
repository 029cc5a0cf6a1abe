"""Checks of the paths a user gives, made before anything is computed or
written: a config that is a config, a checkpoint that is not a config, and
an output folder that can be created; and the folders a run creates,
removed again when it fails before producing anything
(:func:`removed_on_failure`).

Each check raises :class:`~possec.errors.UserError` with one line naming
the argument, what was expected, what was found and what to do.
"""
import contextlib
import os
import os.path as osp
import shutil
from typing import Callable, Iterable, Iterator, List, Optional

from ..errors import UserError

__all__ = [
    'CHECKPOINT_EXTS', 'CONFIG_EXTS', 'check_checkpoint_path',
    'check_config_path', 'check_output_dir', 'removed_on_failure'
]

#: File types mmengine reads as configs.
CONFIG_EXTS = ('.py', '.json', '.yaml', '.yml')
#: File types of checkpoints (anything else is tried as one too).
CHECKPOINT_EXTS = ('.pth', '.pt', '.ckpt', '.bin', '.tar')


def _exists_hint(path: str) -> str:
    return 'a folder' if osp.isdir(path) else 'nothing'


def _check_file(path: str, what: str, order: Optional[str], wrong: tuple,
                wrong_kind: str, expected: str, missing: str) -> str:
    """The shared shape of the config and checkpoint checks: a file of the
    other kind (``wrong`` extensions) names the tool's argument order, a
    missing file says what is there instead."""
    ext = osp.splitext(path)[1].lower()
    if ext in wrong:
        swap = f'; the order is {order}' if order else ''
        raise UserError(f'{what} {path!r} is a {wrong_kind} ({ext} file), '
                        f'{expected}{swap}')
    if not osp.isfile(path):
        raise UserError(
            f'{what} {path!r} not found (found {_exists_hint(path)} there): '
            f'{missing}')
    return ext


def check_config_path(path: str, what: str = 'config file',
                      order: Optional[str] = None) -> str:
    """Raise :class:`UserError` unless ``path`` is an existing config file
    of a type mmengine reads.

    Args:
        path (str): The path given.
        what (str): The argument, for the message. Default: 'config file'.
        order (str, optional): The tool's usage (``tools/test.py CONFIG
            CHECKPOINT``), named when a checkpoint is given as the config.

    Returns:
        str: ``path``.
    """
    ext = _check_file(
        path, what, order, CHECKPOINT_EXTS, 'checkpoint',
        'not a config: expected a .py config, e.g. configs/demo/'
        'parsenet_pos_synthetic.py',
        'pass the path of a .py config, e.g. configs/demo/parsenet_pos_'
        'synthetic.py (run from the repository root)')
    if ext not in CONFIG_EXTS:
        raise UserError(
            f'{what} {path!r} is a {ext or "extension-less"} file: expected '
            f'a config ({", ".join(CONFIG_EXTS)}), e.g. configs/demo/'
            f'parsenet_pos_synthetic.py')
    return path


def check_checkpoint_path(path: str, what: str = 'checkpoint',
                          order: Optional[str] = None) -> str:
    """Raise :class:`UserError` unless ``path`` is an existing file that is
    not a config.

    Args:
        path (str): The path given.
        what (str): The argument, for the message. Default: 'checkpoint'.
        order (str, optional): The tool's usage, named when a config is
            given as the checkpoint.

    Returns:
        str: ``path``.
    """
    _check_file(
        path, what, order, CONFIG_EXTS, 'config',
        'not a checkpoint: expected the .pth file written by training, '
        'e.g. work_dirs/NAME/iter_N.pth',
        'pass the .pth file written by training, e.g. '
        'work_dirs/NAME/iter_N.pth')
    return path


def check_output_dir(path: str, option: str) -> str:
    """Raise :class:`UserError` unless ``path`` is a folder, or a folder
    this process can create; nothing is created here.

    Args:
        path (str): The output folder given.
        option (str): The option, for the message (``--out-dir``).

    Returns:
        str: ``path``.
    """
    if not path:
        raise UserError(f'{option} is empty: expected a folder path')
    full = osp.abspath(osp.expanduser(path))
    if osp.exists(full) and not osp.isdir(full):
        raise UserError(
            f'{option} {path!r} is a file: expected a folder (created if '
            f'missing); pass another path, or move the file away')
    existing = full
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise UserError(
            f'{option} {path!r} cannot be created: {existing!r} is a file, '
            f'not a folder; pass another path')
    if not os.access(existing, os.W_OK | os.X_OK):
        what = 'is not writable' if existing == full else \
            f'cannot be created in {existing!r}, which is not writable'
        raise UserError(
            f'{option} {path!r} {what} by this user: pass a folder you can '
            f'write to')
    return path


def _topmost_missing(path: str) -> Optional[str]:
    """The highest folder of ``path`` that does not exist yet (what
    creating ``path`` creates), or None when ``path`` exists."""
    full = osp.abspath(osp.expanduser(path))
    if osp.exists(full):
        return None
    while not osp.exists(osp.dirname(full)):
        full = osp.dirname(full)
    return full


class _Created:
    """The folders :func:`removed_on_failure` removes."""

    def __init__(self, paths: Iterable[Optional[str]]) -> None:
        self.paths: List[str] = []
        for path in paths:
            if path:
                top = _topmost_missing(path)
                if top and top not in self.paths:
                    self.paths.append(top)

    def add(self, path: Optional[str]) -> None:
        """Remove ``path`` too (a folder the run made, e.g. its log
        folder inside an existing work dir)."""
        if path and osp.abspath(path) not in self.paths:
            self.paths.append(osp.abspath(path))


@contextlib.contextmanager
def removed_on_failure(paths: Iterable[Optional[str]],
                       produced: Callable[[], bool] = lambda: False
                       ) -> Iterator[_Created]:
    """Remove the folders of ``paths`` that this block creates if it fails
    before it produced anything; the exception propagates.

    Args:
        paths (Iterable[str | None]): Output folders of the run; those that
            exist already are kept (only what the block creates is
            removed). ``add`` on the yielded object adds a folder.
        produced (callable): True once the run has results worth keeping
            (e.g. a training iteration done); then nothing is removed.
            Default: never.
    """
    created = _Created(paths)
    try:
        yield created
    except BaseException:
        if not produced():
            for path in created.paths:
                shutil.rmtree(path, ignore_errors=True)
        raise
