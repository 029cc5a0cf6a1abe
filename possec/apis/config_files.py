"""Loading a config file with one-line errors that name the user's file.

mmengine's ``Config.fromfile`` reports a misspelt ``_base_`` entry as
``file "/abs/.../x.py" does not exist`` (or a ``KeyError`` deep inside its
package lookup for the ``possec::`` / ``mmseg::`` form), without saying
which config named it; a syntax error, an undefined name or a key defined
by two bases come as tracebacks. :func:`load_config` checks the ``_base_``
chain first and turns these failures into
:class:`~possec.errors.UserError`: the config that holds the entry, the
entry, and the closest existing names.

It also holds the one setting of where generated data goes
(:func:`data_home`): ``--data-root``, else ``$POSSEC_DATA_ROOT``, else
``~/.cache/possec/data``, never the working directory. The synthetic data
configs read it as ``'{{$POSSEC_DATA_ROOT:~/.cache/possec/data}}/...'``.
"""
import contextlib
import difflib
import os
import os.path as osp
from typing import Iterator, List, Optional, Set, Tuple

from mmengine.config import Config

from ..errors import UserError
from .paths import CONFIG_EXTS, check_config_path

__all__ = ['DATA_ROOT_ENV', 'base_entries', 'data_home', 'load_config']


def base_entries(path: str) -> List[str]:
    """The ``_base_`` entries of one config file, as written."""
    return list(Config._get_base_files(path))


def _scope_root(entry: str) -> Optional[str]:
    """The config folder of ``scope::`` (``<package>/.mim/configs``)."""
    from mmengine.config.utils import MODULE2PACKAGE
    from mmengine.utils import get_installed_path
    scope = entry.partition('::')[0]
    try:
        root = get_installed_path(MODULE2PACKAGE.get(scope, scope))
    except Exception:
        return None
    root = osp.join(root, '.mim', 'configs')
    return root if osp.isdir(root) else None


def _configs_under(root: str, limit: int = 5000) -> List[str]:
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if osp.splitext(name)[1] in CONFIG_EXTS:
                found.append(osp.relpath(osp.join(folder, name), root))
                if len(found) >= limit:
                    return found
    return found


def _suggest(entry: str, owner: str) -> str:
    """The closest existing names for a ``_base_`` entry."""
    if '::' in entry:
        scope, rel = entry.split('::', 1)
        root = _scope_root(entry)
        if root is None:
            return (f'{scope}:: is not an installed package\'s config scope '
                    f'(possec::, mmseg::)')
        names = _configs_under(root)
        close = difflib.get_close_matches(rel, names, n=3, cutoff=0.6)
        return ('closest existing: ' + ', '.join(f'{scope}::{c}'
                                                  for c in close)
                if close else f'no config of {scope}:: has a close name')
    folder = osp.dirname(osp.join(osp.dirname(osp.abspath(owner)), entry))
    while not osp.isdir(folder):
        folder = osp.dirname(folder)
    base = osp.dirname(osp.abspath(owner))
    names = [osp.relpath(osp.join(folder, n), base) for n in
             sorted(os.listdir(folder)) if osp.splitext(n)[1] in CONFIG_EXTS]
    close = difflib.get_close_matches(osp.normpath(entry), names, n=3,
                                      cutoff=0.6)
    return ('closest existing: ' + ', '.join(close) if close else
            f'no config in {folder!r} has a close name')


def _resolve(entry: str, owner: str) -> Tuple[Optional[str], str]:
    """``(path, '')`` of a ``_base_`` entry, or ``(None, reason)``."""
    try:
        path, _ = Config._get_cfg_path(entry, osp.abspath(owner))
    except Exception as exc:  # mmengine's package lookup, in many forms
        return None, str(exc).strip().splitlines()[0] if str(exc).strip() \
            else type(exc).__name__
    path = osp.normpath(path)
    if not osp.isfile(path):
        return None, f'no file {path}'
    return path, ''


def _check_bases(path: str, top: str, seen: Set[str]) -> None:
    """Raise :class:`UserError` for the first ``_base_`` entry of the chain
    below ``path`` that names no file."""
    key = osp.realpath(path)
    if key in seen:
        return
    seen.add(key)
    try:
        entries = base_entries(path)
    except Exception:  # fromfile reports a broken file itself
        return
    for entry in entries:
        resolved, reason = _resolve(entry, path)
        if resolved is None:
            where = (f'config {top!r}' if key == osp.realpath(top) else
                     f'{path!r}, a base of config {top!r}')
            raise UserError(
                f'_base_ entry {entry!r} in {where} names no config '
                f'({reason}); {_suggest(entry, path)}: fix the entry\'s '
                f'spelling (possec\'s own configs: possec::<folder>/<name>.py'
                f', e.g. possec::demo/parsenet_pos_synthetic.py)')
        _check_bases(resolved, top, seen)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: The environment variable of the folder where generated data goes.
DATA_ROOT_ENV = 'POSSEC_DATA_ROOT'
#: Where generated data goes when neither ``--data-root`` nor
#: :data:`DATA_ROOT_ENV` says otherwise (outside the working directory).
DEFAULT_DATA_ROOT = '~/.cache/possec/data'


def data_home(data_root: Optional[str] = None) -> str:
    """The folder where generated data goes: ``data_root`` if given, else
    ``$POSSEC_DATA_ROOT``, else :data:`DEFAULT_DATA_ROOT` (``~`` expanded).

    Configs read the same setting as
    ``'{{$POSSEC_DATA_ROOT:~/.cache/possec/data}}/...'``.
    """
    root = data_root or os.environ.get(DATA_ROOT_ENV) or DEFAULT_DATA_ROOT
    return osp.abspath(osp.expanduser(root))


@contextlib.contextmanager
def _data_root_env(data_root: Optional[str]) -> Iterator[None]:
    """``$POSSEC_DATA_ROOT`` set to ``data_root`` inside (configs read it
    while they load), restored on exit."""
    if not data_root:
        yield
        return
    old = os.environ.get(DATA_ROOT_ENV)
    os.environ[DATA_ROOT_ENV] = data_home(data_root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(DATA_ROOT_ENV, None)
        else:
            os.environ[DATA_ROOT_ENV] = old


def load_config(path: str, order: Optional[str] = None,
                data_root: Optional[str] = None) -> Config:
    """``Config.fromfile(path)`` with one-line errors.

    Args:
        path (str): The config file given.
        order (str, optional): The tool's usage, named when a checkpoint
            is given as the config (see
            :func:`~possec.apis.paths.check_config_path`).
        data_root (str, optional): The folder of generated data, for the
            configs that read ``$POSSEC_DATA_ROOT`` (``--data-root``).
            Default: None (the environment's, see :func:`data_home`).

    Returns:
        Config: The loaded config.
    """
    check_config_path(path, order=order)
    _check_bases(path, path, set())
    try:
        with _data_root_env(data_root):
            return Config.fromfile(path)
    except SyntaxError as exc:
        where = f' ({exc.filename}, line {exc.lineno})' if exc.lineno else ''
        raise UserError(
            f'config {path!r} cannot be read: {_first_line(exc)}{where}; fix '
            f'the Python syntax of the file') from exc
    except NameError as exc:
        raise UserError(
            f'config {path!r} cannot be read: {_first_line(exc)}; a config '
            f'may use only its own names, those of its _base_ (as '
            f'_base_.NAME or {{{{_base_.NAME}}}}) and Python\'s') from exc
    except KeyError as exc:
        if 'Duplicate key' not in str(exc):
            raise
        raise UserError(
            f'config {path!r} cannot be read: {_first_line(exc)} (two of its '
            f'_base_ files define the same top-level key; mmengine allows '
            f'one): define the key in one base only, or in the config '
            f'itself') from exc
    except ImportError as exc:
        raise UserError(
            f'config {path!r}: its custom_imports cannot be imported '
            f'({_first_line(exc.__cause__ or exc)}); install the package or '
            f'fix the module name in custom_imports') from exc
