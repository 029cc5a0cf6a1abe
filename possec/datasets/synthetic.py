"""A seeded generator of synthetic segmentation data in Pascal VOC 2012 format.

Every image holds one to four objects on a textured background. An object
is one of 5 shapes filled with one of 4 two-tone textures in its own colour,
which gives background + 20 object classes, the class count of VOC. Textures
are drawn procedurally with numpy (stripes, checkers, dots, smooth value
noise) in the object's own coordinates, so an object looks the same wherever
it is placed and the generator needs nothing beyond numpy and Pillow.

Three layouts ask the position question in a controlled way:

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

Masks follow VOC: palette-indexed PNGs with the VOC palette, and 255 (ignore)
on a thin band along every boundary between two labels.
"""
import colorsys
import glob
import json
import os
import os.path as osp
import shutil
import sys
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from possec.fileio import atomic_path

LAYOUTS = ('uniform', 'position-coded', 'border-shift')
SHAPES = ('disc', 'square', 'triangle', 'diamond', 'cross')
TEXTURES = ('hstripes', 'vstripes', 'checker', 'dots')
#: Class names: ``background`` then ``{shape}-{texture}``; class
#: ``1 + 4 * shape_index + texture_index``.
CLASSES = ('background', ) + tuple(f'{s}-{t}' for s in SHAPES
                                   for t in TEXTURES)
#: ``(a, b)`` class pairs of the ``position-coded`` layout: ``b`` looks like
#: ``a``; ``a`` lies in the top half, ``b`` in the bottom half.
POSITION_PAIRS = tuple((1 + 4 * s, 2 + 4 * s) for s in range(len(SHAPES)))
IGNORE_INDEX = 255
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


def class_look(cls: int, layout: str) -> Tuple[str, str, tuple]:
    """``(shape, texture, rgb)`` that class ``cls`` (1..20) is drawn with."""
    if layout == 'position-coded':
        cls = {b: a for a, b in POSITION_PAIRS}.get(cls, cls)
    shape, texture = divmod(cls - 1, len(TEXTURES))
    # Hue steps of 9/20 of a turn: consecutive classes get far-apart hues.
    hue = ((cls - 1) * 9 % 20) / 20
    rgb = tuple(255 * v for v in colorsys.hsv_to_rgb(hue, 0.8, 0.9))
    return SHAPES[shape], TEXTURES[texture], rgb


def generation_meta(layout: str = 'uniform',
                    num_train: int = 300,
                    num_val: int = 100,
                    img_size: Union[int, Sequence[int]] = 128,
                    seed: int = 0) -> dict:
    """Check generation arguments and return them in canonical form (the
    content of the tree's ``possec_synthetic.json``)."""
    if layout not in LAYOUTS:
        raise ValueError(f'unknown layout {layout!r}; expected one of '
                         f'{", ".join(map(repr, LAYOUTS))}')
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    size = [img_size] * 2 if np.isscalar(img_size) else list(img_size)
    if len(size) != 2 or not all(
            isinstance(s, (int, np.integer)) and s >= MIN_SIZE for s in size):
        raise ValueError(f'img_size must be an int or an (h, w) pair of '
                         f'ints >= {MIN_SIZE}, got {img_size!r}')
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    return dict(generator='possec.datasets.synthetic', version=1,
                layout=layout, num_train=int(num_train),
                num_val=int(num_val), img_size=[int(s) for s in size],
                seed=int(seed))


def read_generation_meta(data_root: str) -> Optional[dict]:
    """The generation arguments stored in ``data_root``, or None."""
    path = osp.join(data_root, META_FILE)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _value_noise(rng, h, w, cells):
    """Smooth noise in [0, 1]: a random ``cells`` grid bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
    y0 = np.minimum(ys.astype(int), cells - 1)
    x0 = np.minimum(xs.astype(int), cells - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _background(rng, h, w):
    """A low-saturation cloudy texture, distinct from the saturated objects."""
    grey = rng.uniform(70, 170)
    tint = rng.uniform(-15, 15, size=3)
    noise = _value_noise(rng, h, w, int(rng.integers(2, 7))) - 0.5
    return grey + tint + 60 * noise[..., None]


def _shape_mask(shape, dy, dx, r):
    """Pixels of ``shape`` with radius ``r``; all lie within ``|dy|, |dx| <=
    r``."""
    ay, ax = np.abs(dy), np.abs(dx)
    if shape == 'disc':
        return dy * dy + dx * dx <= r * r
    if shape == 'square':
        return np.maximum(ay, ax) <= 0.8 * r
    if shape == 'triangle':
        return (dy >= -r) & (dy <= 0.7 * r) & (ax <= 0.6 * (dy + r))
    if shape == 'diamond':
        return ay + ax <= r
    return ((ay <= 0.3 * r) & (ax <= r)) | ((ax <= 0.3 * r) & (ay <= r))


def _texture(texture, ly, lx, period):
    """Two-tone pattern (True = light tone) in object coordinates."""
    half = period / 2
    if texture == 'hstripes':
        return np.floor(ly / half) % 2 == 0
    if texture == 'vstripes':
        return np.floor(lx / half) % 2 == 0
    if texture == 'checker':
        return (np.floor(ly / half) + np.floor(lx / half)) % 2 == 0
    cy, cx = ly % period - half, lx % period - half
    return cy * cy + cx * cx > (period / 3.2)**2


def _centre(rng, cls, split, layout, h, w, r):
    """Object centre ``(cy, cx)`` as the layout prescribes."""
    pairs = dict(POSITION_PAIRS)
    if layout == 'position-coded' and (cls in pairs or
                                       cls in pairs.values()):
        cx = rng.uniform(0, w - 1)
        if cls in pairs:  # top half: rows cy - r .. cy + r all < h / 2
            return rng.uniform(r, h / 2 - r - 1), cx
        return rng.uniform(h / 2 + r, h - 1 - r), cx
    if layout == 'border-shift' and split == 'train':
        return rng.uniform(0.3 * h, 0.7 * h), rng.uniform(0.3 * w, 0.7 * w)
    if layout == 'border-shift':  # val: within 12% of a random side
        side = int(rng.integers(4))
        depth = rng.uniform(0, 0.12) * (h if side < 2 else w)
        along = rng.uniform(0, (w if side < 2 else h) - 1)
        return [(depth, along), (h - 1 - depth, along),
                (along, depth), (along, w - 1 - depth)][side]
    return rng.uniform(0, h - 1), rng.uniform(0, w - 1)


def _ignore_band(label, half_width):
    """Pixels whose ``(2 * half_width + 1)``-square window sees two labels."""
    h, w = label.shape
    win = 2 * half_width + 1
    padded = np.pad(label, half_width, mode='edge')
    # Separable max / min filters: first along rows, then along columns.
    rows = [padded[i:i + h] for i in range(win)]
    hi, lo = np.maximum.reduce(rows), np.minimum.reduce(rows)
    hi = np.maximum.reduce([hi[:, j:j + w] for j in range(win)])
    lo = np.minimum.reduce([lo[:, j:j + w] for j in range(win)])
    return hi != lo


def render_sample(layout: str, split: str, index: int, seed: int,
                  img_size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one image (H, W, 3 uint8 RGB) and its mask (H, W uint8).

    Each sample has its own random stream seeded by ``(seed, split, index)``,
    so sample ``i`` does not depend on how many others are generated.
    """
    h, w = img_size
    rng = np.random.default_rng([seed, LAYOUTS.index(layout),
                                 ('train', 'val').index(split), index])
    image = _background(rng, h, w)
    label = np.zeros((h, w), np.uint8)
    short = min(h, w)
    period = max(4, round(short / 16))
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.integers(1, len(CLASSES)))
        shape, texture, rgb = class_look(cls, layout)
        r = max(2.0, rng.uniform(0.08, 0.2) * short)
        cy, cx = _centre(rng, cls, split, layout, h, w, r)
        phase = rng.uniform(0, period, size=2)
        gain = rng.uniform(0.9, 1.1)
        y0, y1 = max(0, int(cy - r)), min(h, int(cy + r) + 2)
        x0, x1 = max(0, int(cx - r)), min(w, int(cx + r) + 2)
        dy, dx = ys[y0:y1] - cy, xs[:, x0:x1] - cx
        mask = _shape_mask(shape, dy, dx, r)
        light = np.broadcast_to(
            _texture(texture, dy + r + phase[0], dx + r + phase[1], period),
            mask.shape)
        colour = np.where(light[..., None], rgb, 0.45 * np.asarray(rgb))
        image[y0:y1, x0:x1][mask] = gain * colour[mask]
        label[y0:y1, x0:x1][mask] = cls
    image += rng.normal(0, 6, size=image.shape)
    band = _ignore_band(label, max(1, round(short / 160)))
    label[band] = IGNORE_INDEX
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label


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
                           progress: bool = True) -> str:
    """Write a synthetic VOC2012-format tree to ``data_root``.

    The tree is ``JPEGImages/*.jpg``, ``SegmentationClass/*.png``,
    ``ImageSets/Segmentation/{train,val}.txt`` and ``possec_synthetic.json``
    (the arguments). The same arguments give the same bytes. Writing is
    atomic: the tree is built in a hidden sibling folder and renamed onto
    ``data_root`` last, so an interrupted run leaves no partial dataset;
    hidden folders left by killed runs are removed at the next start.

    Args:
        data_root (str): Output folder. An existing tree written by this
            function is replaced; any other non-empty folder is refused.
        layout (str): ``'uniform'``, ``'position-coded'`` or
            ``'border-shift'`` (see the module docstring). Default: 'uniform'.
        num_train (int): Training images. Default: 300.
        num_val (int): Validation images. Default: 100.
        img_size (int | tuple[int, int]): Image size, ``(h, w)`` if a pair;
            at least 16. Default: 128.
        seed (int): Random seed. Default: 0.
        progress (bool): Print progress lines (every 10%) on stderr.
            Default: True.

    Returns:
        str: ``data_root``.
    """
    meta = generation_meta(layout, num_train, num_val, img_size, seed)
    if (osp.isdir(data_root) and os.listdir(data_root)
            and read_generation_meta(data_root) is None):
        raise ValueError(f'data root {data_root} exists and was not written '
                         f'by generate_synthetic_voc; refusing to replace '
                         f'it: choose an empty or new folder')
    parent = osp.dirname(osp.abspath(data_root))
    for stale in glob.glob(
            osp.join(parent, f'.{osp.basename(osp.abspath(data_root))}.*.tmp')):
        shutil.rmtree(stale, ignore_errors=True)
    palette = [v for rgb in voc_palette() for v in rgb]
    splits = [('train', num_train), ('val', num_val)]
    total, done = num_train + num_val, 0
    if progress:
        print(f'generating {total} synthetic VOC images ({layout}) in '
              f'{data_root}', file=sys.stderr)
    with atomic_path(data_root, is_dir=True) as tmp:
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
                                             meta['img_size'])
                _write_sample(tmp, name, image, label, palette)
                done += 1
                if progress and (done * 10 // total > (done - 1) * 10 // total
                                 or done == total):
                    print(f'  {done}/{total}', file=sys.stderr)
            with open(osp.join(tmp, 'ImageSets', 'Segmentation',
                               f'{split}.txt'), 'w') as f:
                f.write(''.join(f'{n}\n' for n in names))
        with open(osp.join(tmp, META_FILE), 'w') as f:
            json.dump(meta, f, indent=2)
            f.write('\n')
    return data_root
