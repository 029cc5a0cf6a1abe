"""Which code made a study's cells, and the guard against mixing versions.

Every cell record carries ``code`` = ``{commit, dirty, version}``: the git
commit of the checkout possec was imported from, whether tracked files
differed from it, and possec's version. A study folder holds cells of one
code version: :func:`check_same_code` refuses, in one line, to add cells
made by other code to a folder unless told to (``allow_mixed=True``,
``--allow-mixed-code``); the report lists the versions it read.
"""
import functools
import os.path as osp
import subprocess
from typing import Iterable, Optional

from .settings import StudyError

_KEYS = ('commit', 'dirty', 'version')


def _git(repo: str, *args: str) -> Optional[str]:
    try:
        out = subprocess.run(['git', '-C', repo] + list(args),
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def code_version(repo: Optional[str] = None) -> dict:
    """``{commit, dirty, version}`` of the code that runs (computed once
    per process).

    Args:
        repo (str, optional): A folder inside the checkout; None for the
            one possec is imported from. Default: None.

    Returns:
        dict: ``commit`` (40 hex digits, or None outside a git checkout),
        ``dirty`` (tracked files differ from the commit; None when
        unknown) and ``version`` (``possec.__version__``).
    """
    from possec.version import __version__
    if repo is None:
        import possec
        repo = osp.dirname(osp.dirname(osp.abspath(possec.__file__)))
    head = _git(repo, 'rev-parse', '--verify', 'HEAD')
    commit = head.strip() if head else None
    dirty = None
    if commit:
        status = _git(repo, 'status', '--porcelain', '--untracked-files=no')
        dirty = None if status is None else bool(status.strip())
    return dict(commit=commit, dirty=dirty, version=__version__)


def code_key(code: Optional[dict]) -> tuple:
    """What two cells must share to be of one code version."""
    code = code or {}
    return tuple(code.get(k) for k in _KEYS)


def describe(code: Optional[dict]) -> str:
    """``commit 3d66469a1b (clean), possec 0.1.0`` or ``code not
    recorded``."""
    if not code or not code.get('commit'):
        if code and code.get('version'):
            return f"possec {code['version']} outside a git checkout"
        return 'code not recorded'
    state = {True: 'uncommitted changes', False: 'clean'}.get(
        code.get('dirty'), 'state unknown')
    return (f"commit {code['commit'][:10]} ({state}), possec "
            f"{code.get('version')}")


def check_same_code(records: Iterable[dict], code: dict, out_dir: str,
                    allow_mixed: bool = False) -> None:
    """Refuse to continue a study folder whose finished cells were made by
    other code.

    Args:
        records (Iterable[dict]): The folder's finished cell records.
        code (dict): :func:`code_version` of this run.
        out_dir (str): The folder (named in the message).
        allow_mixed (bool): Continue anyway. Default: False.

    Raises:
        StudyError: One line naming both versions and what to do.
    """
    if allow_mixed:
        return
    for record in records:
        found = record.get('code')
        if code_key(found) != code_key(code):
            raise StudyError(
                f'study folder {out_dir!r} holds cells made by other code '
                f'({record.get("name", "a cell")}: {describe(found)}; this '
                f'run: {describe(code)}): continue it with that code, '
                f'choose a new --out-dir, or pass --allow-mixed-code to mix '
                f'versions in one report')
