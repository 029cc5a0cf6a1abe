"""How much absolute position each channel of a pooled vector carries.

The score is the partial eta squared of the placement in a two-way
analysis of variance of each channel's pooled response over the crossed
canvases of :mod:`.canvas` (every content at every cell, once):

    z[u, p] = m + a[u] + b[p] + e[u, p]

with ``u`` the content (background, source image, crop) and ``p`` the
placement cell. ``SS_P = U * sum_p (b_p - m)^2`` is the placement's sum of
squares, ``SS_E`` the residual's (the interaction of content and
placement: the part of the response neither explains alone), and

    eta2_p = SS_P / (SS_P + SS_E)
    F = (SS_P / (P - 1)) / (SS_E / ((U - 1)(P - 1)))

Why this score: it is the share of the channel's variance, once the
content's own effect is removed, that the placement explains; it is free
of the channel's scale (a channel with large activations does not rank
first for being large), it reads vertical and horizontal position alike,
and its F has a known null distribution, so "a position channel" can be
stated as a test (Bonferroni over the channels).

`Islam et al. <https://arxiv.org/abs/2108.07884>`_ rank channels instead
by the mean absolute difference of the pooled response between an image
and its left-right mirror (their public ``position_attack`` code), which
is :func:`flip_score` here: it is in the channel's own units, reads only
horizontal position, and counts a channel that responds to mirrored
content (a face looking left) as a position channel.

A channel is "region-specific" when one cell carries most of its
placement effect: ``concentration = max_p (b_p - m)^2 / sum_p (b_p -
m)^2`` (between ``1/P`` for an even spread and ``(P - 1)/P`` for a
response in one cell only) is at least :data:`REGION_CONCENTRATION`; the
other position channels carry "overall" position (a gradient, an edge).
"""
from typing import Optional

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from possec.errors import UserError

#: Share of a channel's placement sum of squares that one cell must carry
#: for the channel to count as region-specific (more than half).
REGION_CONCENTRATION = 0.5


def _table(values: Tensor, content: Tensor, cell: Tensor):
    """``values`` (N, C) as a ``(U, P, C)`` float64 array, checking that
    every content appears at every cell exactly once."""
    if values.ndim != 2 or not len(values) == len(content) == len(cell):
        raise UserError(f'expected pooled values (N, C) with N content and '
                        f'N cell labels, got {tuple(values.shape)}, '
                        f'{len(content)} and {len(cell)}')
    content = torch.unique(content, return_inverse=True)[1]
    cell = torch.unique(cell, return_inverse=True)[1]
    num_u, num_p = int(content.max()) + 1, int(cell.max()) + 1
    count = torch.zeros(num_u, num_p, dtype=torch.long)
    count.index_put_((content, cell), torch.ones_like(cell), accumulate=True)
    if num_u < 2 or num_p < 2 or not bool((count == 1).all()):
        raise UserError('the placement score needs every content at every '
                        'cell exactly once (a crossed canvas set, see '
                        'make_canvases), with at least 2 of each')
    table = np.zeros((num_u, num_p, values.shape[1]))
    table[content.numpy(), cell.numpy()] = values.double().numpy()
    return table


def placement_anova(values: Tensor, content: Tensor, cell: Tensor) -> dict:
    """Two-way ANOVA (content x placement, one canvas per pair) per channel.

    Args:
        values (Tensor): Pooled responses ``(N, C)``.
        content (Tensor): Content label of each row ``(N,)``.
        cell (Tensor): Placement cell of each row ``(N,)``.

    Returns:
        dict: Arrays of length ``C``: ``eta2`` (partial eta squared of the
        placement; 0 for a channel without variation), ``F``, ``p`` (the
        F test's p value; 1 without variation), ``ss_placement``,
        ``ss_residual``, and ``effects`` ``(P, C)``, the placement effects
        ``b_p - m``; ``df`` the two degrees of freedom.
    """
    table = _table(values, content, cell)
    num_u, num_p = table.shape[:2]
    grand = table.mean((0, 1))
    effects = table.mean(0) - grand
    content_eff = table.mean(1) - grand
    resid = table - grand - effects[None] - content_eff[:, None]
    ss_p = num_u * (effects**2).sum(0)
    ss_e = (resid**2).sum((0, 1))
    df_p, df_e = num_p - 1, (num_u - 1) * (num_p - 1)
    total = ss_p + ss_e
    # a constant channel: what is left is rounding error of the means
    flat = total <= 1e-20 * np.maximum((table**2).sum((0, 1)), 1e-300)
    with np.errstate(divide='ignore', invalid='ignore'):
        eta2 = np.where(flat, 0., ss_p / np.where(flat, 1., total))
        f_value = np.where(flat, np.nan, (ss_p / df_p) / (ss_e / df_e))
    p_value = np.where(flat, 1., stats.f.sf(f_value, df_p, df_e))
    p_value = np.where(np.isnan(p_value), 0., p_value)  # SS_E = 0 < SS_P
    return dict(eta2=eta2, F=f_value, p=p_value, ss_placement=ss_p,
                ss_residual=ss_e, effects=effects, df=(df_p, df_e))


def concentration(effects: np.ndarray) -> np.ndarray:
    """Share of each channel's placement sum of squares in its strongest
    cell: ``max_p e_p^2 / sum_p e_p^2`` of the ``(P, C)`` effects (0 for a
    channel without placement effect)."""
    energy = (effects**2).sum(0)
    with np.errstate(divide='ignore', invalid='ignore'):
        return np.where(energy > 0, (effects**2).max(0) /
                        np.where(energy > 0, energy, 1.), 0.)


def region_contrast(anova: dict) -> np.ndarray:
    """``(P, C)``: how far each channel's pooled response rises when the
    content lies in each cell, in units of its residual standard
    deviation (``(b_p - m) / sqrt(SS_E / df_E)``)."""
    df_e = anova['df'][1]
    sd = np.sqrt(anova['ss_residual'] / df_e)
    with np.errstate(divide='ignore', invalid='ignore'):
        out = anova['effects'] / np.where(sd > 0, sd, np.inf)
    return np.nan_to_num(out)


def flip_score(values: Tensor, flipped: Tensor) -> np.ndarray:
    """The ranking of Islam et al.: the mean absolute difference of each
    channel's pooled response between an image and its left-right mirror.

    Args:
        values (Tensor): Pooled responses ``(N, C)``.
        flipped (Tensor): The same for the mirrored images.
    """
    if values.shape != flipped.shape:
        raise UserError(f'pooled responses {tuple(values.shape)} and their '
                        f'mirrors {tuple(flipped.shape)} differ in shape')
    return (values.double() - flipped.double()).abs().mean(0).numpy()


def channel_table(values: Tensor, content: Tensor, cell: Tensor,
                  flipped: Optional[Tensor] = None, alpha: float = 0.05,
                  region_share: float = REGION_CONCENTRATION) -> dict:
    """Score, test and classify every channel of one pooled vector.

    Args:
        values (Tensor): Pooled responses ``(N, C)`` of crossed canvases.
        content (Tensor): Content label of each canvas.
        cell (Tensor): Placement cell of each canvas.
        flipped (Tensor, optional): Pooled responses of the mirrored
            canvases, for :func:`flip_score`. Default: None.
        alpha (float): Family-wise level of the per-channel F tests
            (Bonferroni over the channels). Default: 0.05.
        region_share (float): :data:`REGION_CONCENTRATION`.

    Returns:
        dict: ``anova`` (see :func:`placement_anova`), ``order`` (channels
        by decreasing ``eta2``), ``position`` (boolean: the F test rejects
        at ``alpha / C``), ``concentration``, ``peak`` (cell of the largest
        effect), ``kind`` per channel (``'region'``, ``'overall'`` or
        ``'none'``), ``contrast`` ``(P, C)`` and ``flip`` (or None).
    """
    anova = placement_anova(values, content, cell)
    num = values.shape[1]
    position = anova['p'] < alpha / num
    conc = concentration(anova['effects'])
    peak = np.abs(anova['effects']).argmax(0)
    kind = np.where(~position, 'none',
                    np.where(conc >= region_share, 'region', 'overall'))
    order = np.argsort(-anova['eta2'], kind='stable')
    return dict(anova=anova, order=order, position=position,
                concentration=conc, peak=peak, kind=kind,
                contrast=region_contrast(anova),
                flip=None if flipped is None else flip_score(values, flipped))
