"""A seeded generator of synthetic segmentation data in Pascal VOC 2012 format.

Every image holds one to four objects on a textured background. An object
is one of 5 shapes filled with one of 4 two-tone textures in its own colour,
which gives background + 20 object classes, the class count of VOC. Textures
are drawn procedurally with numpy (stripes, checkers, dots, smooth value
noise) in the object's own coordinates, so an object looks the same wherever
it is placed and the generator needs nothing beyond numpy and Pillow.

Seven layouts ask the position question in a controlled way:

- ``uniform``: the class is given by appearance; positions are uniformly
  random, so position carries no label information.
- ``position-coded``: for each pair ``(a, b)`` in :data:`POSITION_PAIRS`
  (the ``*-hstripes`` / ``*-vstripes`` classes of each shape), class ``b`` is
  drawn exactly like class ``a`` (same shape, texture and colour); ``a`` lies
  wholly in the top half of the image, ``b`` wholly in the bottom half. Only
  absolute position separates them. The other ten classes keep their own
  look and random positions.
- ``border-shift``: training objects are centred near the image centre,
  validation objects near the image border.
- ``shortcut``: position is a shortcut that breaks. For each pair
  ``(a, b)`` of :data:`SHORTCUT_PAIRS` (the pairs of ``position-coded``),
  ``b`` has the shape and colour of ``a``, and one real but subtle
  appearance cue separates them: ``a`` has horizontal stripes, ``b``
  stripes tilted by ``tilt`` degrees (:data:`SHORTCUT_TILT` unless given),
  clockwise or anticlockwise at random, so that the horizontal flip of
  training keeps each class's look. In training ``a`` lies wholly in the
  top half and ``b`` wholly in the bottom half, so location separates the
  pair perfectly as well; in validation each object's half is a coin flip,
  independent of its class. A network that can read absolute position may
  take the easy cue and fail on validation; one that cannot has to learn
  the tilt, which transfers.
- ``shortcut-swap``: as ``shortcut``, but in validation the halves are
  swapped (``a`` at the bottom, ``b`` at the top), so a network that
  relies on location alone is wrong on every pair pixel.
- ``position-prior`` (``prior`` P): the dose of the help. As
  ``shortcut``, with one real but subtle appearance cue (``tilt``), but
  each pair's ``a`` lies wholly in the top half with probability P and
  ``b`` wholly in the bottom half with probability P, in training and
  validation alike. P = 0.5 carries no position, P = 1 is
  ``position-coded``'s rule; with ``tilt=0`` the pair is pixel-identical,
  and ``prior=1, tilt=0`` writes ``position-coded``'s very samples.
- ``prior-shift`` (``prior`` P, ``val_prior`` Q, default 1 - P): the dose
  of the hurt. Training as ``position-prior`` with P, validation as
  ``position-prior`` with Q; same samples otherwise.

The two prior layouts draw every sample from ``position-coded``'s random
stream and each object's half and tilt direction from a second one, so
that a dose moves only what it names: another ``tilt`` changes only the
pixels of the ``b`` classes, another prior only which half each pair
object lies in (common random numbers across the doses).

``periodic`` makes samples tileable, to take away the image's seam from
a network with circular padding: ``'background'`` builds the value-noise
background on a torus (row 0 joins row H-1, column 0 joins column W-1),
``'objects'`` wraps every object across the edges instead of cutting it
(labels and ignore band wrap with it), ``'both'`` (or True) does both.
No layout's class rule changes, nor any random draw: the same objects,
wrapped.

Masks follow VOC: palette-indexed PNGs with the VOC palette, and 255 (ignore)
on a thin band along every boundary between two labels.
"""
import fcntl
import glob
import json
import os
import os.path as osp
import shutil
import sys
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image

from possec.fileio import atomic_path
from .synthetic_layouts import (CLASSES, CUE_LAYOUTS, IGNORE_INDEX,
                                LAYOUTS, PERIODIC, POSITION_PAIRS,
                                PRIOR_LAYOUTS, SHAPES, SHORTCUT_LAYOUTS,
                                SHORTCUT_PAIRS, SHORTCUT_TILT, TEXTURES,
                                SyntheticDataError, class_look, layout_args,
                                stripe_tilt)
from .synthetic_render import render_sample

__all__ = [
    'CLASSES', 'CUE_LAYOUTS', 'IGNORE_INDEX', 'LAYOUTS', 'PERIODIC',
    'POSITION_PAIRS', 'PRIOR_LAYOUTS', 'SHAPES', 'SHORTCUT_LAYOUTS',
    'SHORTCUT_PAIRS', 'SHORTCUT_TILT', 'TEXTURES', 'SyntheticDataError',
    'class_look', 'render_sample', 'stripe_tilt', 'voc_palette',
    'generation_meta', 'read_generation_meta', 'generate_synthetic_voc'
]

META_FILE = 'possec_synthetic.json'
MIN_SIZE = 16
_JPEG_QUALITY = 90


def voc_palette(num: int = 256) -> list:
    """The Pascal VOC colour map: entry ``i`` spreads the bits of ``i`` over
    the high bits of R, G and B (index 255, the ignore label, is cream)."""
    palette = []
    for i in range(num):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette.append([r, g, b])
    return palette


def generation_meta(layout: str = 'uniform',
                    num_train: int = 300,
                    num_val: int = 100,
                    img_size: Union[int, Sequence[int]] = 128,
                    seed: int = 0,
                    tilt: Optional[float] = None,
                    prior: Optional[float] = None,
                    val_prior: Optional[float] = None,
                    periodic: Union[bool, str] = False) -> dict:
    """Check generation arguments and return them in canonical form (the
    content of the tree's ``possec_synthetic.json``). A layout's own
    arguments are recorded for the layouts that have them only
    (:func:`~.synthetic_layouts.layout_args`: ``tilt``, ``prior``,
    ``val_prior``, and ``periodic`` unless ``'none'``), so the records of
    the older layouts are unchanged."""
    extra = layout_args(layout, tilt, prior, val_prior, periodic)
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise SyntheticDataError(
                f'{name} must be a positive int, got {value!r}')
    size = [img_size] * 2 if np.isscalar(img_size) else list(img_size)
    if len(size) != 2 or not all(
            isinstance(s, (int, np.integer)) and s >= MIN_SIZE for s in size):
        raise SyntheticDataError(f'img_size must be an int or an (h, w) '
                                 f'pair of ints >= {MIN_SIZE}, got '
                                 f'{img_size!r}')
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SyntheticDataError(
            f'seed must be a non-negative int, got {seed!r}')
    meta = dict(generator='possec.datasets.synthetic', version=1,
                layout=layout, num_train=int(num_train),
                num_val=int(num_val), img_size=[int(s) for s in size],
                seed=int(seed))
    meta.update(extra)
    return meta


def read_generation_meta(data_root: str) -> Optional[dict]:
    """The generation arguments stored in ``data_root``, or None."""
    path = osp.join(data_root, META_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _write_sample(root, name, image, label, palette):
    """Write ``JPEGImages/name.jpg`` and ``SegmentationClass/name.png``."""
    Image.fromarray(image).save(
        osp.join(root, 'JPEGImages', f'{name}.jpg'), quality=_JPEG_QUALITY)
    png = Image.frombytes('P', label.shape[::-1], label.tobytes())
    png.putpalette(palette)
    png.save(osp.join(root, 'SegmentationClass', f'{name}.png'))


def generate_synthetic_voc(data_root: str,
                           layout: str = 'uniform',
                           num_train: int = 300,
                           num_val: int = 100,
                           img_size: Union[int, Sequence[int]] = 128,
                           seed: int = 0,
                           progress: bool = True,
                           tilt: Optional[float] = None,
                           prior: Optional[float] = None,
                           val_prior: Optional[float] = None,
                           periodic: Union[bool, str] = False) -> str:
    """Write a synthetic VOC2012-format tree to ``data_root``.

    The tree is ``JPEGImages/*.jpg``, ``SegmentationClass/*.png``,
    ``ImageSets/Segmentation/{train,val}.txt`` and ``possec_synthetic.json``
    (the arguments). The same arguments give the same bytes. Writing is
    atomic: the tree is built in a hidden sibling folder and renamed onto
    ``data_root`` last, so an interrupted run leaves no partial dataset;
    hidden folders left by killed runs are removed at the next start.
    Processes that generate the same ``data_root`` at once (study workers)
    take turns on a lock of its parent folder (``flock``); one that finds
    the tree written with its arguments by another while it waited returns
    it as it is.

    Args:
        data_root (str): Output folder. An existing tree written by this
            function is replaced; any other non-empty folder is refused.
        layout (str): One of :data:`LAYOUTS` (see the module
            docstring). Default: 'uniform'.
        num_train (int): Training images. Default: 300.
        num_val (int): Validation images. Default: 100.
        img_size (int | tuple[int, int]): Image size, ``(h, w)`` if a pair;
            at least 16. Default: 128.
        seed (int): Random seed. Default: 0.
        progress (bool): Print progress lines (every 10%) on stderr.
            Default: True.
        tilt (float, optional): The cue of the ``shortcut`` and prior
            layouts: how far the stripes of ``b`` are tilted from the
            horizontal ones of ``a``, in degrees, in [0, 90]. Only for
            those layouts. Default: None (:data:`SHORTCUT_TILT`).
        prior (float, optional): The prior layouts' probability, in
            [0, 1], that a pair's ``a`` lies in the top half (and ``b`` in
            the bottom half). Required by them, refused by the others.
            Default: None.
        val_prior (float, optional): ``prior-shift`` only: the prior in
            validation. Default: None (``1 - prior``).
        periodic (bool | str): Tileable samples: ``'background'``,
            ``'objects'``, ``'both'`` (True) or ``'none'`` (False); see
            the module docstring. Default: False.

    Returns:
        str: ``data_root``.
    """
    meta = generation_meta(layout, num_train, num_val, img_size, seed, tilt,
                           prior, val_prior, periodic)
    root = osp.abspath(data_root)
    if osp.exists(root) and not osp.isdir(root):
        raise SyntheticDataError(f'data root {data_root} is a file; '
                                 f'expected a folder to write the dataset '
                                 f'into')
    if (osp.isdir(root) and os.listdir(root)
            and read_generation_meta(root) is None):
        raise SyntheticDataError(
            f'data root {data_root} exists and was not written by '
            f'generate_synthetic_voc; refusing to replace it: choose an '
            f'empty or new folder')
    found = read_generation_meta(root) if osp.isdir(root) else None
    # One writer at a time in the parent folder: workers that need the same
    # data wait here, and find it written when they get the lock. The lock
    # is the folder itself (no lock file left behind); the kernel releases
    # it when its holder dies, so a killed writer blocks nobody.
    os.makedirs(osp.dirname(root), exist_ok=True)
    lock = os.open(osp.dirname(root), os.O_RDONLY)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if found != meta and read_generation_meta(root) == meta:
            return data_root  # another process wrote it while we waited
        _write_tree(root, data_root, meta, progress)
    finally:
        os.close(lock)
    return data_root


def _write_tree(root: str, data_root: str, meta: dict,
                progress: bool) -> None:
    """Write the tree of :func:`generate_synthetic_voc` (lock held)."""
    # Hidden siblings that atomic_path left behind in killed runs.
    stale = f'.{glob.escape(osp.basename(root))}.*.tmp'
    for path in glob.glob(osp.join(osp.dirname(root), stale)):
        shutil.rmtree(path, ignore_errors=True)
    palette = [v for rgb in voc_palette() for v in rgb]
    layout, seed = meta['layout'], meta['seed']
    dose = {k: meta[k] for k in ('tilt', 'prior', 'val_prior', 'periodic')
            if k in meta}
    splits = [('train', meta['num_train']), ('val', meta['num_val'])]
    total, done = meta['num_train'] + meta['num_val'], 0
    if progress:
        print(f'generating {total} synthetic VOC images ({layout}) in '
              f'{data_root}', file=sys.stderr)
    with atomic_path(root, is_dir=True) as tmp:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private (0o700)
        for sub in ('JPEGImages', 'SegmentationClass',
                    osp.join('ImageSets', 'Segmentation')):
            os.makedirs(osp.join(tmp, sub))
        for split, num in splits:
            names = [f'{split}_{i:06d}' for i in range(num)]
            for i, name in enumerate(names):
                image, label = render_sample(layout, split, i, seed,
                                             meta['img_size'], **dose)
                _write_sample(tmp, name, image, label, palette)
                done += 1
                if progress and done * 10 // total > (done - 1) * 10 // total:
                    print(f'  {done}/{total}', file=sys.stderr)
            with open(osp.join(tmp, 'ImageSets', 'Segmentation',
                               f'{split}.txt'), 'w') as f:
                f.write(''.join(f'{n}\n' for n in names))
        with open(osp.join(tmp, META_FILE), 'w') as f:
            json.dump(meta, f, indent=2)
            f.write('\n')
