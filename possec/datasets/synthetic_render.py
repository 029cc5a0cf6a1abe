"""Drawing of the synthetic samples: textured shapes on textured backgrounds.

See :mod:`possec.datasets.synthetic` for the layouts and the files written,
and :mod:`.synthetic_layouts` for the class rules. With ``periodic`` the
background's value noise wraps (row 0 joins row H-1, column 0 joins column
W-1) and objects near an edge continue on the other side instead of being
cut, their labels and the ignore band with them.
"""
from typing import Optional, Tuple, Union

import numpy as np

from .synthetic_layouts import (CLASSES, IGNORE_INDEX, LAYOUTS,
                                POSITION_PAIRS, PRIOR_LAYOUTS, SHAPES,
                                SHORTCUT_LAYOUTS, SHORTCUT_PAIRS,
                                SHORTCUT_TILT, TEXTURES, centre, class_look,
                                layout_args, split_prior, stripe_tilt,
                                top_half)

__all__ = [
    'CLASSES', 'IGNORE_INDEX', 'LAYOUTS', 'POSITION_PAIRS', 'SHAPES',
    'SHORTCUT_LAYOUTS', 'SHORTCUT_PAIRS', 'SHORTCUT_TILT', 'TEXTURES',
    'class_look', 'stripe_tilt', 'render_sample'
]

#: The second stream of a sample of the prior layouts (a tag outside the
#: layout indices): per object, the draw that decides its half and the
#: direction of its tilt, so that neither dose moves anything else.
_DOSE_STREAM = 1000


def _value_noise(rng, h, w, cells, wrap=False):
    """Smooth noise in [0, 1]: a random ``cells`` grid bilinearly upsampled;
    with ``wrap`` the grid is a torus (``cells`` x ``cells`` values, the
    last cell interpolating back to the first), so the noise tiles."""
    grid = rng.random((cells + 1, cells + 1))
    if wrap:
        grid = grid[:cells, :cells]
        ys, xs = np.arange(h) * cells / h, np.arange(w) * cells / w
        y0, x0 = ys.astype(int), xs.astype(int)
        y1, x1 = (y0 + 1) % cells, (x0 + 1) % cells
    else:
        ys, xs = np.linspace(0, cells, h), np.linspace(0, cells, w)
        y0 = np.minimum(ys.astype(int), cells - 1)
        x0 = np.minimum(xs.astype(int), cells - 1)
        y1, x1 = y0 + 1, x0 + 1
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x1] * fx
    bottom = grid[y1][:, x0] * (1 - fx) + grid[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def _background(rng, h, w, wrap=False):
    """A low-saturation cloudy texture, distinct from the saturated objects
    (tileable with ``wrap``)."""
    grey = rng.uniform(70, 170)
    tint = rng.uniform(-15, 15, size=3)
    noise = _value_noise(rng, h, w, int(rng.integers(2, 7)), wrap) - 0.5
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


def _ignore_band(label, half_width, wrap=False):
    """Pixels whose ``(2 * half_width + 1)``-square window sees two labels
    (the window wraps around the image with ``wrap``)."""
    h, w = label.shape
    win = 2 * half_width + 1
    padded = np.pad(label, half_width, mode='wrap' if wrap else 'edge')
    # Separable max / min filters: first along rows, then along columns.
    rows = [padded[i:i + h] for i in range(win)]
    hi, lo = np.maximum.reduce(rows), np.minimum.reduce(rows)
    hi = np.maximum.reduce([hi[:, j:j + w] for j in range(win)])
    lo = np.minimum.reduce([lo[:, j:j + w] for j in range(win)])
    return hi != lo


def _span(c, r, n, wrap):
    """Indices of the rows (or columns) an object of centre ``c`` and
    radius ``r`` may cover: clipped to ``0 .. n - 1``, or with ``wrap``
    running past the edges (the caller takes them modulo ``n``)."""
    if wrap:
        return np.arange(int(np.floor(c - r)), int(np.floor(c + r)) + 2)
    return np.arange(max(0, int(c - r)), min(n, int(c + r) + 2))


def render_sample(layout: str, split: str, index: int, seed: int,
                  img_size: Tuple[int, int],
                  tilt: Optional[float] = None,
                  prior: Optional[float] = None,
                  val_prior: Optional[float] = None,
                  periodic: Union[bool, str] = False
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one image (H, W, 3 uint8 RGB) and its mask (H, W uint8).

    Each sample has its own random stream seeded by ``(seed, layout, split,
    index)``, so sample ``i`` does not depend on how many others are
    generated. The prior layouts draw from the stream of
    ``position-coded`` and take each object's half and tilt direction
    from a second stream, so their doses (``prior``, ``val_prior``,
    ``tilt``) change nothing but what they name, and ``prior=1, tilt=0``
    draws the samples of ``position-coded``. ``periodic`` changes no
    draw either: the same objects, wrapped instead of cut.

    Args:
        layout (str): One of :data:`LAYOUTS`.
        split (str): ``'train'`` or ``'val'``.
        index (int): Sample index within the split.
        seed (int): Data seed.
        img_size (tuple[int, int]): ``(h, w)``.
        tilt (float, optional): Stripe tilt of the cue layouts in degrees.
            Default: None (:data:`SHORTCUT_TILT`).
        prior (float, optional): The prior layouts' probability that a
            pair's ``a`` lies in the top half (``b`` in the bottom half).
            Default: None.
        val_prior (float, optional): ``prior-shift``'s prior in validation.
            Default: None (``1 - prior``).
        periodic (bool | str): ``'background'``, ``'objects'``, ``'both'``
            (True) or ``'none'`` (False). Default: False.
    """
    args = layout_args(layout, tilt, prior, val_prior, periodic)
    mode = args.get('periodic', 'none')
    wrap_bg, wrap_obj = mode in ('background', 'both'), mode in ('objects',
                                                                  'both')
    p = split_prior(layout, split, args)
    h, w = img_size
    split_index = ('train', 'val').index(split)
    stream = ('position-coded' if layout in PRIOR_LAYOUTS else layout)
    rng = np.random.default_rng([seed, LAYOUTS.index(stream), split_index,
                                 index])
    doses = np.random.default_rng([seed, _DOSE_STREAM, split_index, index])
    image = _background(rng, h, w, wrap_bg)
    label = np.zeros((h, w), np.uint8)
    short = min(h, w)
    period = max(4, round(short / 16))
    for _ in range(int(rng.integers(1, 5))):
        draw, turn = doses.random(2)
        cls = int(rng.integers(1, len(CLASSES)))
        shape, texture, rgb = class_look(cls, layout)
        r = max(2.0, rng.uniform(0.08, 0.2) * short)
        top = top_half(rng, cls, split, layout, p, draw)
        cy, cx = centre(rng, top, split, layout, h, w, r)
        phase = rng.uniform(0, period, size=2)
        gain = rng.uniform(0.9, 1.1)
        rows, cols = _span(cy, r, h, wrap_obj), _span(cx, r, w, wrap_obj)
        dy, dx = (rows - cy)[:, None], (cols - cx)[None, :]
        mask = _shape_mask(shape, dy, dx, r)
        ly, lx = dy + r + phase[0], dx + r + phase[1]
        angle = np.deg2rad(stripe_tilt(cls, layout, args.get('tilt')))
        if angle:  # texture coordinates rotated by +-angle
            if layout in PRIOR_LAYOUTS:
                angle *= 1 if turn < 0.5 else -1
            else:
                angle *= rng.choice((-1, 1))
            ly, lx = (ly * np.cos(angle) + lx * np.sin(angle),
                      lx * np.cos(angle) - ly * np.sin(angle))
        light = np.broadcast_to(_texture(texture, ly, lx, period),
                                mask.shape)
        colour = np.where(light[..., None], rgb, 0.45 * np.asarray(rgb))
        where = np.ix_(rows % h, cols % w)
        patch, lpatch = image[where], label[where]
        patch[mask] = gain * colour[mask]
        lpatch[mask] = cls
        image[where], label[where] = patch, lpatch
    image += rng.normal(0, 6, size=image.shape)
    band = _ignore_band(label, max(1, round(short / 160)), wrap_obj)
    label[band] = IGNORE_INDEX
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), label
