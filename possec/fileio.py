"""Atomic file writing: a killed process never leaves a half-written file."""
import contextlib
import json
import os
import os.path as osp
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path: str, is_dir: bool = False):
    """Yield a temporary sibling of ``path``; move it onto ``path`` on success.

    The temporary file (or folder, with ``is_dir=True``) lives in the same
    folder as ``path`` so that the final ``os.replace`` is atomic. On any
    exception the temporary is removed and ``path`` is left untouched.
    """
    dirname = osp.dirname(osp.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    prefix = f'.{osp.basename(path)}.'
    if is_dir:
        tmp = tempfile.mkdtemp(dir=dirname, prefix=prefix, suffix='.tmp')
    else:
        fd, tmp = tempfile.mkstemp(dir=dirname, prefix=prefix, suffix='.tmp')
        os.close(fd)
    # mkstemp/mkdtemp create owner-only entries; give the result the
    # permissions a plain open()/makedirs would (0666/0777 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, (0o777 if is_dir else 0o666) & ~umask)
    try:
        yield tmp
        if is_dir and osp.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif osp.exists(tmp):
            os.remove(tmp)
        raise


def dump_json(obj, path: str, **kwargs) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    kwargs.setdefault('indent', 2)
    with atomic_path(path) as tmp:
        with open(tmp, 'w') as f:
            json.dump(obj, f, **kwargs)
            f.write('\n')
