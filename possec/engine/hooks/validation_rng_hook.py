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
        cuda = None
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            cuda = torch.cuda.get_rng_state_all()
        self._saved = (torch.get_rng_state(), cuda, np.random.get_state(),
                       random.getstate())

    def after_val(self, runner) -> None:
        if self._saved is None:
            return
        cpu, cuda, numpy_state, python_state = self._saved
        self._saved = None
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        np.random.set_state(numpy_state)
        random.setstate(python_state)
