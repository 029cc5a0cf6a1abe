"""Position confusion head: remove absolute position from the backbone."""
from typing import Dict, Optional, Sequence

import torch
from mmseg.registry import MODELS
from mmseg.utils import OptConfigType, SampleList
from torch import Tensor, nn
from torch.func import functional_call

from ...position.metrics import position_metrics
from ..layers.resize import bilinear_resize
from .posenet_head import PosENetHead

#: What the backbone is trained to make the readout output (``confusion``).
CONFUSIONS = ('corr', 'mean', 'ridge', 'decorr', 'hsic')
#: The confusions that read the features themselves, not the readout.
FEATURE_CONFUSIONS = ('ridge', 'decorr', 'hsic')


class _Readout(nn.Module):
    """The head's readout layers under the head's own attribute names, so
    that ``functional_call`` can run them with other parameter tensors."""

    def __init__(self, head: PosENetHead):
        super().__init__()
        self.convs = head.convs
        self.dropout = head.dropout
        self.conv_seg = head.conv_seg
        self.out_norm = head.out_norm

    def forward(self, x: Tensor) -> Tensor:
        x = self.convs(x)
        if self.dropout is not None:
            x = self.dropout(x)
        x = self.conv_seg(x)
        return x if self.out_norm is None else self.out_norm(x)


def squared_correlation(pred: Tensor, target: Tensor,
                        eps: float = 1e-8) -> Tensor:
    """Mean over images and channels of the squared Pearson correlation,
    over pixels, between ``pred`` (N, C, h, w) and ``target`` (N or 1, C,
    h, w). A constant prediction has correlation 0."""
    p = pred.flatten(2)
    t = target.expand_as(pred).flatten(2)
    p = p - p.mean(-1, keepdim=True)
    t = t - t.mean(-1, keepdim=True)
    cov = (p * t).sum(-1)
    var = (p * p).sum(-1) * (t * t).sum(-1)
    return (cov * cov / (var + eps)).mean()


def crossfit_ridge_pred(grid: Tensor, target: Tensor,
                        ridge: float = 1e-3) -> Tensor:
    """Position maps predicted from each image's features by a per-pixel
    linear readout fitted, in closed form, on the *other* half of the
    batch.

    The images are split into two halves; on each, ridge regression of the
    target maps on the features (one row per pixel, centred, penalty
    ``ridge`` x the mean squared feature norm per channel) is solved with
    ``torch.linalg.solve`` and applied to the other half. The solution is
    differentiable, so a loss on the prediction trains the features
    against the best linear readout of this batch, not a stale one.

    Args:
        grid (Tensor): Features (N, C, h, w), N >= 2.
        target (Tensor): Maps (1 or N, P, h, w).
        ridge (float): Relative ridge penalty. Default: 1e-3.

    Returns:
        Tensor: Predictions (N', P, h, w) for the N' = 2 * (N // 2) images
        used (an odd last image is dropped).
    """
    n, c, h, w = grid.shape
    if n < 2:
        raise ValueError(f"confusion='ridge' needs a batch of 2 or more "
                         f'images (it fits on one half, predicts the other); '
                         f'got {n}')
    half = n // 2
    x = grid[:2 * half].permute(0, 2, 3, 1).reshape(2, half * h * w, c)
    y = target.expand(2 * half, -1, -1, -1)
    y = y.permute(0, 2, 3, 1).reshape(2, half * h * w, -1)
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    eye = torch.eye(c, dtype=x.dtype, device=x.device)
    preds = []
    for fit, use in ((0, 1), (1, 0)):
        xf = x[fit]
        lam = ridge * xf.pow(2).sum() / c + 1e-6
        weight = torch.linalg.solve(xf.t() @ xf + lam * eye, xf.t() @ y[fit])
        preds.append((x[use] @ weight).view(half, h, w, -1))
    return torch.cat([preds[1], preds[0]]).permute(0, 3, 1, 2)


def channel_correlation(grid: Tensor, target: Tensor,
                        eps: float = 1e-12) -> Tensor:
    """Mean over feature channels and patterns of the squared Pearson
    correlation between a channel and a target map, over all the batch's
    pixels.

    Zero cross-covariance between the features and the maps is the
    condition under which no linear readout of the features does better
    than a constant (linear guardedness, `LEACE: Perfect linear concept
    erasure in closed form <https://arxiv.org/abs/2306.03819>`_, Belrose
    et al., NeurIPS 2023): any readout ``sum_c w_c f_c`` has covariance
    ``sum_c w_c cov(f_c, t)`` with a map ``t``. Needs no fitted readout.

    Args:
        grid (Tensor): Features (N, C, h, w).
        target (Tensor): Maps (1 or N, P, h, w).
        eps (float): Added to the product of the variances (a constant
            channel has correlation 0). Default: 1e-12.

    Returns:
        Tensor: The mean squared correlation (a scalar in [0, 1]).
    """
    n, c = grid.shape[:2]
    x = grid.transpose(0, 1).reshape(c, -1)
    y = target.expand(n, -1, -1, -1).transpose(0, 1).reshape(
        target.shape[1], -1)
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    cov = x @ y.t() / x.shape[1]
    var = x.pow(2).mean(1)[:, None] * y.pow(2).mean(1)[None, :]
    return (cov.pow(2) / (var + eps)).mean()


def normalized_hsic(x: Tensor, y: Tensor, sigma_y: float = 0.3) -> Tensor:
    """Normalised HSIC between paired samples ``x`` (M, C) and ``y``
    (M, P) with Gaussian kernels (`Measuring Statistical Dependence with
    Hilbert-Schmidt Norms <https://doi.org/10.1007/11564089_7>`_, Gretton
    et al., ALT 2005): ``tr(Kc Lc) / sqrt(tr(Kc Kc) tr(Lc Lc))`` with
    ``Kc = H K H`` the centred kernel matrices. It is 0 when ``x`` and
    ``y`` are independent (for characteristic kernels, only then), so no
    readout, linear or not, can then recover ``y`` from ``x``.

    ``x``'s kernel is ``exp(-d^2 / median(d^2))`` over its pairwise
    distances ``d`` (the median taken without gradient, so that rescaling
    the features does not change the value); ``y``'s is
    ``exp(-d^2 / (2 sigma_y^2))``.

    Args:
        x (Tensor): Samples (M, C), e.g. feature vectors of pixels.
        y (Tensor): Samples (M, P), e.g. the position maps at the pixels.
        sigma_y (float): Bandwidth of ``y``'s kernel. Default: 0.3.

    Returns:
        Tensor: The normalised HSIC (a scalar in [0, 1]).
    """
    m = x.shape[0]
    centre = torch.eye(m, dtype=x.dtype, device=x.device) - 1.0 / m
    dx = torch.cdist(x, x).pow(2)
    with torch.no_grad():
        bandwidth = dx[~torch.eye(m, dtype=torch.bool,
                                  device=x.device)].median().clamp_min(1e-12)
    k = centre @ torch.exp(-dx / bandwidth) @ centre
    lk = centre @ torch.exp(-torch.cdist(y, y).pow(2) /
                            (2 * sigma_y**2)) @ centre
    return (k * lk).sum() / ((k * k).sum() * (lk * lk).sum()).sqrt().clamp_min(
        1e-12)


@MODELS.register_module()
class PosConfusionHead(PosENetHead):
    """PosENet readout in a confusion game: the backbone is trained to make
    the readout's maps uninformative.

    Gradient reversal (``PosENetHead(grad_scale=-1)``) trains the backbone
    to make the readout *wrong*, and was measured to add position instead
    (an inverted map is as informative as the map). This head follows the
    domain-confusion loss of `Simultaneous Deep Transfer Across Domains and
    Tasks <https://arxiv.org/abs/1510.02192>`_ (Tzeng et al., ICCV 2015)
    instead: two losses with disjoint gradients,

    - ``loss_pos``: the readout (the :class:`PosENetHead` layers) learns the
      true maps on *detached* features, so it keeps being the best reader
      of position it can be;
    - ``loss_confusion``: the readout, with *detached* parameters, is run
      on the features again, and the backbone is trained to make its output
      uninformative: ``'corr'`` penalises the squared Pearson correlation,
      per image and pattern, between the readout's map and the true map
      (its minimum, 0, is reached by any map unrelated to position, whatever
      its scale); ``'mean'`` is the binary cross-entropy of the map against
      the constant map of the true map's mean (Tzeng's uniform target);
      ``'ridge'`` replaces the readout, for this loss only, by the best
      per-pixel linear readout of the batch, fitted in closed form on one
      half of the images and applied to the other
      (:func:`crossfit_ridge_pred`), and penalises the squared correlation
      of its maps, so the backbone cannot escape by moving position to
      where the (lagging) trained readout does not look.
    - ``'decorr'`` needs no readout at all: it penalises the squared
      correlation of every feature channel of the grid with every map over
      the batch's pixels (:func:`channel_correlation`); at zero, no linear
      readout of the features beats a constant (LEACE's condition).
    - ``'hsic'`` penalises the dependence, not only the correlation,
      between the grid's pixel feature vectors and the maps' values at
      those pixels: the normalised HSIC (:func:`normalized_hsic`) over
      ``hsic_pixels`` pixels drawn from the batch each step.

    So the readout's parameters receive only ``loss_pos`` and the backbone
    only ``loss_confusion`` (``tests/test_removal.py`` checks it). A norm
    layer of the readout in training mode sees the features twice per step
    (its running statistics are updated twice, with the same values).
    ``grad_scale`` is ignored (the readout always reads detached features).

    ``'corr'`` alone leaves position readable: the readout is re-fitted
    within a few steps and the backbone only moves position away from the
    current readout, as adversarial removal is known to leave information
    that a fresh classifier recovers. What each confusion was measured to
    remove, and what it cost in mIoU: ``docs/removal.md``, "Removal
    by training".

    Args:
        confusion (str): ``'corr'``, ``'mean'``, ``'ridge'``, ``'decorr'``
            or ``'hsic'``. Default: 'corr'.
        confusion_weight (float): Weight of ``loss_confusion``. Default: 1.0.
        ridge (float): Relative ridge penalty of ``confusion='ridge'``.
            Default: 1e-3.
        hsic_pixels (int): Pixels drawn per step for ``confusion='hsic'``.
            Default: 512.
        **kwargs: Arguments of :class:`PosENetHead`.
    """

    def __init__(self,
                 confusion: str = 'corr',
                 confusion_weight: float = 1.0,
                 ridge: float = 1e-3,
                 hsic_pixels: int = 512,
                 **kwargs):
        if confusion not in CONFUSIONS:
            raise ValueError(f'unknown confusion {confusion!r}; expected one '
                             f'of {", ".join(map(repr, CONFUSIONS))}')
        if not confusion_weight >= 0:
            raise ValueError(f'confusion_weight must be >= 0, got '
                             f'{confusion_weight!r}')
        kwargs['grad_scale'] = 0.0  # what _to_grid would do; kept for repr
        super().__init__(**kwargs)
        self.confusion = confusion
        self.confusion_weight = float(confusion_weight)
        self.ridge = float(ridge)
        if not (isinstance(hsic_pixels, int) and hsic_pixels >= 4):
            raise ValueError(f'hsic_pixels must be an int >= 4, got '
                             f'{hsic_pixels!r}')
        self.hsic_pixels = hsic_pixels

    def _grid(self, inputs: Sequence[Tensor]) -> Tensor:
        """The selected levels on the grid, concatenated, with gradient."""
        feats = []
        for x in self._transform_inputs(inputs):
            if tuple(x.shape[-2:]) != tuple(self.grid_size):
                x = bilinear_resize(x, self.grid_size, self.align_corners)
            feats.append(x)
        return feats[0] if len(feats) == 1 else torch.cat(feats, dim=1)

    def confusion_loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """``confusion``'s loss of the readout's logits (not weighted)."""
        if self.confusion == 'corr':
            return squared_correlation(logits.sigmoid(), target)
        if self.confusion in FEATURE_CONFUSIONS:
            raise ValueError(f'confusion={self.confusion!r} reads features, '
                             f'not logits')
        mean = target.mean((-2, -1), keepdim=True).expand_as(logits)
        return nn.functional.binary_cross_entropy_with_logits(logits, mean)

    def feature_confusion(self, grid: Tensor) -> Tensor:
        """``confusion``'s loss (not weighted) of one of
        :data:`FEATURE_CONFUSIONS`, read from the grid of features itself
        against the position maps at the grid's size."""
        target = self.targets(grid[:1, :len(self.patterns)])
        if self.confusion == 'ridge':  # the best 1x1 readout of the batch
            return squared_correlation(
                crossfit_ridge_pred(grid, target, self.ridge), target)
        if self.confusion == 'decorr':  # every channel, no readout
            return channel_correlation(grid, target)
        # 'hsic': dependence between drawn pixels' features and maps
        n, c = grid.shape[:2]
        x = grid.permute(0, 2, 3, 1).reshape(-1, c)
        y = target.expand(n, -1, -1, -1).permute(0, 2, 3, 1)
        y = y.reshape(x.shape[0], -1)
        pick = torch.randperm(x.shape[0], device=x.device)[:self.hsic_pixels]
        return normalized_hsic(x[pick], y[pick].to(x.dtype))

    def loss(self,
             inputs: Sequence[Tensor],
             batch_data_samples: Optional[SampleList] = None,
             train_cfg: OptConfigType = None) -> Dict[str, Tensor]:
        """``loss_pos`` (readout, detached features), ``loss_confusion``
        (backbone, detached readout) and the readout's ``pos_spc_<P>`` /
        ``pos_mae_<P>``."""
        grid = self._grid(inputs)
        readout = _Readout(self)
        logits = readout(grid.detach())
        target = self.targets(logits)
        if self.confusion in FEATURE_CONFUSIONS:
            confusion = self.feature_confusion(grid)
        else:
            frozen = {
                name: p.detach()
                for name, p in readout.named_parameters()
            }
            conf_logits = functional_call(readout, frozen, (grid, ))
            confusion = self.confusion_loss(conf_logits, target)
        pred = logits.detach().sigmoid()
        losses = dict(
            loss_pos=self.map_loss(logits, target) * self.loss_weight,
            loss_confusion=confusion * self.confusion_weight)
        metrics = position_metrics(pred, target, self.patterns)
        losses.update({f'pos_{k}': v.float() for k, v in metrics.items()})
        return losses
