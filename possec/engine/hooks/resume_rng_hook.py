"""A resumed run draws the random numbers the uninterrupted run would
have drawn."""
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from .validation_rng_hook import rng_states, set_rng_states

#: The checkpoint key of the saved states.
KEY = 'rng_states'


class _RestoreAfter:
    """An iterator that sets ``states`` once ``skip`` items were drawn
    from it (before the next one is)."""

    def __init__(self, iterator, skip: int, states: dict):
        self._iterator, self._left, self._states = iterator, skip, states

    def __iter__(self):
        return self

    def __next__(self):
        if self._left == 0 and self._states is not None:
            set_rng_states(self._states)
            self._states = None
        self._left -= 1
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class ResumeRNGHook(Hook):
    """Save the global random states with every checkpoint, and set them
    again when a run resumes from it, at the point of the training where
    they were saved.

    mmengine resumes weights, optimizer, schedulers, iteration and message
    hub, but not the random generators: the resumed run seeds them again
    (or keeps the states its start left), then replays the data loader
    past the batches already trained (``IterBasedTrainLoop``), which
    draws every one of their augmentations again. Its dropout masks and
    augmentations from there on are then others than an uninterrupted
    run's. This hook stores the states (:func:`.validation_rng_hook.
    rng_states`: torch, CUDA, numpy, Python, in plain types) in the
    checkpoint under :data:`KEY`, and on resume sets them after the
    replay, just before the first new batch is drawn: with a
    deterministic data pipeline and kernels the resumed run then trains
    what the uninterrupted one trains (``tests/test_resume_rng.py`` and
    ``tests/test_study_extend.py`` compare the weights).

    The states are those when the checkpoint was written (after the
    iteration's ``after_train_iter`` hooks of higher priority); a
    validation at that iteration leaves them as they were only with
    :class:`.ValidationRNGHook`. A ``load_from`` without resume starts a
    new training and sets nothing. Iteration-based loops only. In a
    distributed run nothing is set: the checkpoint holds rank 0's states
    only, and setting them on every rank would give all ranks the same
    dropout masks.
    """
    priority = 'LOWEST'

    def __init__(self) -> None:
        self._states = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[KEY] = rng_states()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._states = checkpoint.get(KEY)

    def before_train(self, runner) -> None:
        states, self._states = self._states, None
        loop = runner.train_loop
        if states is None or runner.iter == 0 or get_world_size() > 1 or \
                not hasattr(loop, 'dataloader_iterator'):
            return
        # IterBasedTrainLoop.run replays runner.iter batches next
        loop.dataloader_iterator = _RestoreAfter(loop.dataloader_iterator,
                                                 runner.iter, states)
