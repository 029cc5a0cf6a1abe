"""Pack what possec needs on a lent GPU machine that has torch but not the
OpenMMLab stack, so that one ``device`` call runs the position study there.

    python tools/device_bundle.py [--out .device_carry]

The device machine has no network and no mmcv build for its torch. This
copies, from the environment that runs this script, the pure-Python
distributions possec needs that the machine's image lacks (mmengine,
mmsegmentation, mmcv's Python code, captum and their small
dependencies: :data:`DEVICE_IMAGE` lists what the image holds) into
``OUT/site``, with a stand-in for mmcv's compiled ops (``mmcv/_ext.py``:
importing works, calling an op raises; possec's models call none), and a
shallow bare clone of this checkout's HEAD into ``OUT/git`` so that the
study's records name the commit they ran (``tools/device_study.sh``
points git there). ``OUT`` is git-ignored and travels with ``carry``;
see docs/position_study.md, "On a lent GPU machine".
"""
import possec.bootstrap  # noqa: F401,I001  (first: the stack's warnings)
import argparse
import importlib.metadata as md
import json
import os
import os.path as osp
import platform
import shutil
import subprocess
import sys
import tempfile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as _key

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

#: Distributions the device image already holds (the workplace's package
#: list for nvidia-h200, /work/.library/device/KINDS.md, as last read on
#: 2026-11-17), reduced to those possec's requirements can reach. A
#: requirement outside this set is packed.
DEVICE_IMAGE = frozenset({
    'contourpy', 'cycler', 'filelock', 'fonttools', 'fsspec', 'jinja2',
    'kiwisolver', 'markdown-it-py', 'markupsafe', 'matplotlib', 'mdurl',
    'mpmath', 'networkx', 'numpy', 'opencv-python-headless', 'packaging',
    'pillow', 'pygments', 'pyparsing', 'python-dateutil', 'pyyaml',
    'regex', 'rich', 'scipy', 'six', 'sympy', 'torch', 'tqdm',
    'typing-extensions', 'setuptools'
})
#: The device's Python, for the requirements' markers (``extra`` left
#: empty: a requirement of an extra is not followed).
DEVICE_PYTHON = dict(python_version='3.12', python_full_version='3.12.3',
                     extra='')
#: Requirements met on the device by another distribution of the image.
SATISFIED_BY = {'opencv-python': 'opencv-python-headless'}
#: The one distribution whose compiled part is replaced by a stand-in.
STUBBED = {'mmcv': 'mmcv/_ext'}
#: Distributions packed even though the image holds one: mmengine's
#: ``mmseg::`` config resolution imports pkg_resources, which setuptools
#: 82 removed, and the image's version is not known here.
ALWAYS = ('setuptools', )
#: Top-level folders some distributions ship that possec does not import;
#: ``tests`` would shadow the repository's own on the device.
SKIP_TOP = ('tests', 'yapftests')

STAND_IN = '''"""Stand-in for mmcv's compiled ops (``mmcv._ext``), packed by
tools/device_bundle.py for a machine without an mmcv build for its torch:
importing mmcv.ops works, calling any of its compiled ops raises."""


def __getattr__(name):
    if name.startswith('__'):
        raise AttributeError(name)

    def op(*args, **kwargs):
        raise RuntimeError(
            f'mmcv op {name!r} is not available: this mmcv was packed '
            f'without its compiled ops (tools/device_bundle.py); build mmcv '
            f'for this torch to use it')
    return op
'''


def needed(root: str = 'possec') -> list:
    """The distributions ``root`` requires (transitively, extras left out)
    that the device image lacks, plus :data:`ALWAYS`; sorted names.

    Raises:
        SystemExit: A requirement is not installed here (so it cannot be
            packed).
    """
    seen, stack, missing = set(), [root], []
    while stack:
        name = stack.pop()
        key = _key(name)
        if key in seen:
            continue
        seen.add(key)
        if key in DEVICE_IMAGE or SATISFIED_BY.get(key) in DEVICE_IMAGE:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            missing.append(name)
            continue
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate(DEVICE_PYTHON):
                stack.append(req.name)
    if missing:
        raise SystemExit(f'device_bundle: possec needs {", ".join(missing)}'
                         f', which is not installed here; install possec '
                         f'(make install) and run this again')
    out = {k for k in seen if k not in DEVICE_IMAGE and
           SATISFIED_BY.get(k) not in DEVICE_IMAGE and k != _key(root)}
    return sorted(out | set(ALWAYS))


def pack(names, site: str) -> dict:
    """Copy the installed files of each distribution in ``names`` into
    ``site`` (no caches, no scripts outside it); returns ``{name:
    version}``.

    Raises:
        SystemExit: A distribution other than mmcv holds a compiled
            extension that would not load on the device's Python 3.12
            (one of the stable ABI, ``.abi3.so``, built here on x86-64,
            does).
    """
    versions = {}
    for name in names:
        dist = md.distribution(name)
        versions[dist.metadata['Name']] = dist.version
        stub = STUBBED.get(_key(name))
        for rel in dist.files or ():
            rel = str(rel)
            if rel.startswith('..') or '__pycache__' in rel or \
                    rel.endswith('.pyc') or rel.split('/')[0] in SKIP_TOP:
                continue
            compiled = rel.endswith(('.so', '.pyd'))
            if compiled and stub and rel.startswith(stub):
                continue
            if rel.endswith('.abi3.so') and platform.machine() == 'x86_64':
                compiled = False  # the stable ABI loads on a later Python
            if compiled:
                raise SystemExit(
                    f'device_bundle: {name} holds a compiled extension '
                    f'({rel}) that would not load on the device; carry a '
                    f'wheel for its Python instead (device README)')
            src = str(dist.locate_file(rel))
            if not osp.isfile(src):
                continue
            dst = osp.join(site, rel)
            os.makedirs(osp.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst)
        if stub:
            with open(osp.join(site, stub + '.py'), 'w') as f:
                f.write(STAND_IN)
    return versions


def clone_head(repo: str, dst: str) -> str:
    """A shallow bare clone of ``repo``'s HEAD at ``dst``; its commit."""
    subprocess.run(['git', 'clone', '-q', '--bare', '--depth', '1',
                    'file://' + repo, dst], check=True)
    return subprocess.run(['git', '--git-dir', dst, 'rev-parse', 'HEAD'],
                          check=True, capture_output=True,
                          text=True).stdout.strip()


def build(out: str, repo: str = REPO) -> dict:
    """Write the bundle to ``out`` (replaced whole only once complete)."""
    names = needed()
    parent = osp.dirname(osp.abspath(out)) or '.'
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.device_carry.', dir=parent)
    try:
        versions = pack(names, osp.join(tmp, 'site'))
        commit = clone_head(repo, osp.join(tmp, 'git'))
        size = sum(osp.getsize(osp.join(d, f))
                   for d, _, fs in os.walk(tmp) for f in fs)
        info = dict(commit=commit, python=sys.version.split()[0],
                    packed=versions, bytes=size)
        with open(osp.join(tmp, 'bundle.json'), 'w') as f:
            json.dump(info, f, indent=2)
        if osp.isdir(out):
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--out', default=osp.join(REPO, '.device_carry'),
                   help='the bundle folder (default: .device_carry in the '
                   'repository, which git ignores)')
    args = p.parse_args(argv)
    info = build(args.out)
    print(f"device bundle in {args.out}: {len(info['packed'])} "
          f"distributions ({', '.join(sorted(info['packed']))}), "
          f"{info['bytes'] / 2**20:.1f} MiB, commit {info['commit'][:10]}")
    if info['bytes'] > 48 * 2**20:
        print('warning: over 48 MiB; with the working tree it may pass the '
              'device tool\'s 64 MiB limit')
    return 0


if __name__ == '__main__':
    sys.exit(main())
