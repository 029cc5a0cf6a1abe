"""Reading placement and content out of pooled vectors with a linear
classifier, and the permutation control.

The read-out is multinomial logistic regression (softmax regression) with
an L2 penalty on standardised features, fitted by L-BFGS in float64 on the
canvases of some crops and tested on the canvases of the other crops
(:func:`decode`): the content at test time is unseen, so the classifier
cannot recognise a crop it learned where it was.

The permutation control follows the PermuteNet of `Islam et al.
<https://arxiv.org/abs/2108.07884>`_: the channels of every pooled vector
are shuffled by a fresh random permutation, in fitting and in testing, so
that a read-out can use only what survives the loss of channel identity.
A linear classifier cannot undo a random permutation, so the vectors are
then put in a canonical order (sorted, :func:`order_free`; a vector and
any permutation of it sort alike): the classifier sees exactly the
order-free content of the vector (the distribution of its values). If
position is coded by *which* channels respond it collapses to chance; a
content read-out of the same vectors is the control, showing what the
order-free vector still carries. A fixed classifier tested on permuted
channels is no test: it loses every code, content included.
"""
from typing import Optional

import torch
from scipy import stats
from torch import Tensor

from possec.errors import UserError


def order_free(values: Tensor, seed: Optional[int] = 0) -> Tensor:
    """Shuffle the channels of every row by its own random permutation,
    then sort them: what a read-out can use without channel identity.

    The shuffle does not change the result (sorting forgets it); it is
    done so that the function is literally "permuted channels".

    Args:
        values (Tensor): ``(N, C)``.
        seed (int, optional): Seed of the permutations. Default: 0.
    """
    gen = torch.Generator().manual_seed(seed or 0)
    perm = torch.argsort(torch.rand(values.shape, generator=gen), dim=1)
    return torch.gather(values, 1, perm).sort(dim=1).values


class SoftmaxRegression:
    """Multinomial logistic regression with an L2 penalty.

    Minimises the mean cross-entropy plus ``l2 / 2 * ||W||^2`` over
    standardised features (train mean and standard deviation) with
    ``torch.optim.LBFGS`` (strong Wolfe line search) in float64.

    Args:
        l2 (float): Penalty on the weights (not the biases). Default: 1e-2.
        max_iter (int): L-BFGS iterations. Default: 200.
    """

    def __init__(self, l2: float = 1e-2, max_iter: int = 200) -> None:
        self.l2 = l2
        self.max_iter = max_iter

    def fit(self, x: Tensor, y: Tensor) -> 'SoftmaxRegression':
        """Fit on features ``(N, C)`` and integer labels ``(N,)``."""
        x = x.double()
        self.classes = torch.unique(y)
        if len(self.classes) < 2:
            raise UserError('a read-out needs at least two classes in its '
                            'training set')
        target = torch.searchsorted(self.classes, y)
        self.mean = x.mean(0)
        self.std = x.std(0).clamp_min(1e-12)
        z = (x - self.mean) / self.std
        weight = torch.zeros(x.shape[1], len(self.classes),
                             dtype=torch.float64, requires_grad=True)
        bias = torch.zeros(len(self.classes), dtype=torch.float64,
                           requires_grad=True)
        optim = torch.optim.LBFGS([weight, bias], max_iter=self.max_iter,
                                  line_search_fn='strong_wolfe')

        def closure():
            optim.zero_grad()
            loss = torch.nn.functional.cross_entropy(z @ weight + bias,
                                                     target)
            loss = loss + 0.5 * self.l2 * (weight**2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optim.step(closure)
        self.weight, self.bias = weight.detach(), bias.detach()
        return self

    def predict(self, x: Tensor) -> Tensor:
        """Labels of features ``(N, C)``."""
        z = (x.double() - self.mean) / self.std
        return self.classes[(z @ self.weight + self.bias).argmax(1)]


def accuracy(pred: Tensor, target: Tensor, chance: float) -> dict:
    """Accuracy with its Wilson 95% interval and the one-sided binomial
    test against ``chance``."""
    hits, num = int((pred == target).sum()), len(target)
    test = stats.binomtest(hits, num, chance, alternative='greater')
    # the interval is two-sided (a one-sided test's interval ends at 1)
    ci = stats.binomtest(hits, num).proportion_ci(0.95, method='wilson')
    return dict(acc=hits / num, ci=[ci.low, ci.high], chance=chance,
                p=test.pvalue, n=num)


def decode(values: Tensor, target: Tensor, train: Tensor,
           num_classes: Optional[int] = None, l2: float = 1e-2,
           permuted: bool = False, seed: int = 0) -> dict:
    """Fit a linear read-out of ``target`` on the ``train`` rows and test
    it on the others.

    Args:
        values (Tensor): Pooled vectors ``(N, C)``.
        target (Tensor): Integer labels ``(N,)``.
        train (Tensor): Boolean ``(N,)``: the rows to fit on.
        num_classes (int, optional): For the chance level ``1 /
            num_classes``. Default: None (the number of distinct labels).
        l2 (float): See :class:`SoftmaxRegression`. Default: 1e-2.
        permuted (bool): Shuffle every vector's channels first
            (:func:`order_free`). Default: False.
        seed (int): Seed of the permutations. Default: 0.

    Returns:
        dict: :func:`accuracy` of the held-out rows.
    """
    if not bool(train.any()) or bool(train.all()):
        raise UserError('the read-out needs rows to fit on and rows to test '
                        'on')
    if permuted:
        values = order_free(values, seed)
    num_classes = num_classes or len(torch.unique(target))
    model = SoftmaxRegression(l2).fit(values[train], target[train])
    return accuracy(model.predict(values[~train]), target[~train],
                    1. / num_classes)


def decode_all(values: Tensor, cell: Tensor, source: Tensor, crop: Tensor,
               grid: int, l2: float = 1e-2, seed: int = 0) -> dict:
    """Placement and content read-outs of one set of pooled vectors, plain
    and with permuted channels; fitted on the first half of every source's
    crops, tested on the rest.

    Returns:
        dict: ``position``, ``position_permuted``, ``content`` and
        ``content_permuted``, each an :func:`accuracy`.
    """
    num_crops = int(crop.max()) + 1
    train = crop < max(1, num_crops // 2)
    out = {}
    for name, target, num in (('position', cell, grid * grid),
                              ('content', source, int(source.max()) + 1)):
        out[name] = decode(values, target, train, num, l2)
        out[f'{name}_permuted'] = decode(values, target, train, num, l2,
                                         permuted=True, seed=seed)
    return out

