"""The layouts of the synthetic data: classes, looks and where objects lie.

See :mod:`possec.datasets.synthetic` for what each layout asks. This module
holds the class rules and the checking of a layout's arguments (the doses
``prior``, ``val_prior`` and ``tilt``, and ``periodic``);
:mod:`.synthetic_render` draws the samples.
"""
import colorsys
from typing import Optional, Tuple, Union

import numpy as np

from possec.errors import UserError

#: Layout names; new ones are appended, since a layout's index seeds its
#: random streams (appending keeps the bytes of the older layouts).
LAYOUTS = ('uniform', 'position-coded', 'border-shift', 'shortcut',
           'shortcut-swap', 'position-prior', 'prior-shift')
SHAPES = ('disc', 'square', 'triangle', 'diamond', 'cross')
TEXTURES = ('hstripes', 'vstripes', 'checker', 'dots')
#: Class names: ``background`` then ``{shape}-{texture}``; class
#: ``1 + 4 * shape_index + texture_index``.
CLASSES = ('background', ) + tuple(f'{s}-{t}' for s in SHAPES
                                   for t in TEXTURES)
#: ``(a, b)`` class pairs of the ``position-coded`` layout: ``b`` looks like
#: ``a``; ``a`` lies in the top half, ``b`` in the bottom half.
POSITION_PAIRS = tuple((1 + 4 * s, 2 + 4 * s) for s in range(len(SHAPES)))
#: ``(a, b)`` class pairs of the ``shortcut`` and prior layouts: the same
#: pairs as :data:`POSITION_PAIRS`, so the study's "pairs mIoU" covers them.
SHORTCUT_PAIRS = POSITION_PAIRS
#: The appearance cue of the ``shortcut`` and prior layouts by default:
#: ``a`` has horizontal stripes, ``b`` stripes tilted by this many degrees,
#: clockwise or anticlockwise at random per object (so a horizontal flip,
#: the training augmentation, keeps each class's look); shape and colour
#: are shared. Smaller is subtler; 0 makes the pair pixel-identical.
SHORTCUT_TILT = 20.0
SHORTCUT_LAYOUTS = ('shortcut', 'shortcut-swap')
#: The dose layouts: the half of each pair class is drawn with a prior.
PRIOR_LAYOUTS = ('position-prior', 'prior-shift')
#: Layouts whose pairs carry the tilt cue (``tilt`` is theirs).
CUE_LAYOUTS = SHORTCUT_LAYOUTS + PRIOR_LAYOUTS
#: What ``periodic`` makes tileable: nothing, the background only, the
#: objects (and labels) only, or both.
PERIODIC = ('none', 'background', 'objects', 'both')
IGNORE_INDEX = 255


class SyntheticDataError(UserError, ValueError):
    """Bad arguments for the synthetic data (a ``ValueError``; tools print
    it as one line)."""


def class_look(cls: int, layout: str) -> Tuple[str, str, tuple]:
    """``(shape, texture, rgb)`` that class ``cls`` (1..20) is drawn with
    (the cue layouts tilt the stripes, see :func:`stripe_tilt`)."""
    if layout == 'position-coded' or layout in CUE_LAYOUTS:
        cls = {b: a for a, b in POSITION_PAIRS}.get(cls, cls)
    shape, texture = divmod(cls - 1, len(TEXTURES))
    # Hue steps of 9/20 of a turn: consecutive classes get far-apart hues.
    hue = ((cls - 1) * 9 % 20) / 20
    rgb = tuple(255 * v for v in colorsys.hsv_to_rgb(hue, 0.8, 0.9))
    return SHAPES[shape], TEXTURES[texture], rgb


def stripe_tilt(cls: int, layout: str,
                tilt: Optional[float] = None) -> float:
    """How far (degrees) the stripes of class ``cls`` are tilted from
    horizontal: ``tilt`` for ``b`` of each :data:`SHORTCUT_PAIRS` pair in
    the cue layouts (the renderer draws the direction at random per
    object), 0 otherwise.

    Args:
        cls (int): Class id, 1..20.
        layout (str): Layout name.
        tilt (float, optional): The cue's strength in degrees. Default:
            None (:data:`SHORTCUT_TILT`).
    """
    if layout not in CUE_LAYOUTS:
        return 0.0
    if cls in {b for _, b in SHORTCUT_PAIRS}:
        return SHORTCUT_TILT if tilt is None else float(tilt)
    return 0.0


def resolve_periodic(periodic: Union[bool, str]) -> str:
    """``periodic`` as one of :data:`PERIODIC` (True is ``'both'``, False
    ``'none'``)."""
    if periodic is True or periodic is False:
        return 'both' if periodic else 'none'
    if periodic not in PERIODIC:
        raise SyntheticDataError(
            f'periodic must be a bool or one of '
            f'{", ".join(map(repr, PERIODIC))}, got {periodic!r}')
    return periodic


def _number(name, value, lo, hi, what):
    if (isinstance(value, bool) or not isinstance(value, (int, float,
                                                          np.floating,
                                                          np.integer))
            or not lo <= value <= hi):
        raise SyntheticDataError(f'{name} must be a number in [{lo}, {hi}] '
                                 f'({what}), got {value!r}')
    return float(value)


def _unset(layout, name, value, owners):
    if value is not None:
        raise SyntheticDataError(
            f'{name} belongs to the layouts {", ".join(owners)}; layout '
            f'{layout!r} has none: leave {name} unset')


def layout_args(layout: str,
                tilt: Optional[float] = None,
                prior: Optional[float] = None,
                val_prior: Optional[float] = None,
                periodic: Union[bool, str] = False) -> dict:
    """Check a layout's own arguments and return them in canonical form:
    ``tilt`` for the cue layouts, ``prior`` for the prior layouts,
    ``val_prior`` for ``prior-shift`` (default ``1 - prior``) and
    ``periodic`` unless ``'none'``; nothing else, so the records of
    the older layouts keep their keys."""
    if layout not in LAYOUTS:
        raise SyntheticDataError(f'unknown layout {layout!r}; expected one '
                                 f'of {", ".join(map(repr, LAYOUTS))}')
    out = {}
    if layout in CUE_LAYOUTS:
        out['tilt'] = _number(
            'tilt', SHORTCUT_TILT if tilt is None else tilt, 0, 90,
            'degrees between the stripes of b and the horizontal stripes of '
            'a; 0 makes the pair identical')
    else:
        _unset(layout, 'tilt', tilt, CUE_LAYOUTS)
    if layout in PRIOR_LAYOUTS:
        if prior is None:
            raise SyntheticDataError(
                f'layout {layout!r} needs prior: the probability that a '
                f'pair\'s first class lies in the top half, e.g. 0.75')
        out['prior'] = _number('prior', prior, 0, 1, 'a probability')
    else:
        _unset(layout, 'prior', prior, PRIOR_LAYOUTS)
    if layout == 'prior-shift':
        out['val_prior'] = (1 - out['prior'] if val_prior is None else
                            _number('val_prior', val_prior, 0, 1,
                                    'a probability'))
    else:
        _unset(layout, 'val_prior', val_prior, ('prior-shift', ))
    mode = resolve_periodic(periodic)
    if mode != 'none':
        out['periodic'] = mode
    return out


def split_prior(layout: str, split: str, args: dict) -> Optional[float]:
    """The probability that a pair's ``a`` lies in the top half (and ``b``
    in the bottom half) in ``split`` of a prior layout; None otherwise."""
    if layout == 'prior-shift' and split == 'val':
        return args['val_prior']
    return args.get('prior') if layout in PRIOR_LAYOUTS else None


def top_half(rng: np.random.Generator, cls: int, split: str, layout: str,
             prior: Optional[float] = None,
             draw: float = 0.0) -> Optional[bool]:
    """Whether a pair class goes wholly into the top half (True), the
    bottom half (False), or anywhere (None; not a pair class here).

    Args:
        rng (np.random.Generator): The sample's stream (``shortcut``'s
            validation coin flip).
        cls (int): Class id.
        split (str): ``'train'`` or ``'val'``.
        layout (str): Layout name.
        prior (float, optional): A prior layout's probability of ``a`` in
            the top half (:func:`split_prior`).
        draw (float): The object's uniform draw in [0, 1) that decides a
            prior layout's half: ``a`` is on top when ``draw < prior``,
            ``b`` when ``draw >= prior``. Default: 0.
    """
    pairs = dict(POSITION_PAIRS)
    if cls not in pairs and cls not in pairs.values():
        return None
    if layout in PRIOR_LAYOUTS:
        return (draw < prior) == (cls in pairs)
    if layout == 'position-coded' or (layout in SHORTCUT_LAYOUTS
                                      and split == 'train'):
        return cls in pairs
    if layout == 'shortcut':  # val: the half is a coin flip
        return bool(rng.integers(2))
    if layout == 'shortcut-swap':  # val: a at the bottom, b at the top
        return cls not in pairs
    return None


def centre(rng: np.random.Generator, top: Optional[bool], split: str,
           layout: str, h: int, w: int, r: float) -> Tuple[float, float]:
    """Object centre ``(cy, cx)`` as the layout prescribes, for an object
    of radius ``r`` whose half is ``top`` (:func:`top_half`)."""
    if top is not None:
        cx = rng.uniform(0, w - 1)
        if top:  # top half: rows cy - r .. cy + r all < h / 2
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
