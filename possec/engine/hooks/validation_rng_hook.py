"""A validation leaves the training's random number generators as it found
them."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class ValidationRNGHook(Hook):
    """Save the global random states before each validation and restore them
    after it, so that when and how often a run validates does not change its
    training.

    Without it it does: every pass over a ``torch.utils.data.DataLoader``
    starts by drawing its base seed from torch's global generator (unless the
    loader has a generator of its own), so each validation advances that
    generator by one draw, and every later dropout mask of the training is
    another. Two runs that differ only in their validation iterations then
    leave the same trajectory at the first validation and train with other
    dropout masks from there (``docs/position_study.md``, how much a cell's
    number moves between runs).

    Saved and restored: torch's CPU generator, every CUDA device's generator
    when CUDA is initialised, numpy's global generator and Python's
    ``random``. Priority ``LOWEST``: the states are restored after every
    other hook's ``after_val``.
    """
    priority = 'LOWEST'

    def __init__(self) -> None:
        self._saved = None

    def before_val(self, runner) -> None:
        self._saved = rng_states()

    def after_val(self, runner) -> None:
        if self._saved is None:
            return
        set_rng_states(self._saved)
        self._saved = None


def rng_states() -> dict:
    """The global random states a training draws from: torch's CPU
    generator, every CUDA device's when CUDA is initialised (else None),
    numpy's global generator and Python's ``random``, in plain types
    (tensors, ints, floats, lists), so that a checkpoint holding them
    loads with ``torch.load(weights_only=True)``."""
    cuda = None
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = torch.cuda.get_rng_state_all()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    return dict(torch=torch.get_rng_state(), cuda=cuda,
                numpy=dict(kind=str(kind), keys=[int(k) for k in keys],
                           pos=int(pos), has_gauss=int(has_gauss),
                           cached=float(cached)),
                python=dict(version=version, internal=list(internal),
                            gauss_next=gauss_next))


def set_rng_states(states: dict) -> None:
    """Set the states :func:`rng_states` returned (CUDA's only when both
    sides have them)."""
    torch.set_rng_state(states['torch'])
    if states.get('cuda') is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])
    n = states['numpy']
    np.random.set_state((n['kind'], np.asarray(n['keys'], dtype=np.uint32),
                         n['pos'], n['has_gauss'], n['cached']))
    p = states['python']
    random.setstate((p['version'], tuple(p['internal']), p['gauss_next']))
