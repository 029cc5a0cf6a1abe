"""ValidationRNGHook: when a run validates does not change its training."""
import random

import numpy as np
import torch

from possec.apis import train
from possec.engine.hooks import ValidationRNGHook

from .conftest import DEMO_FCN, tiny_overrides


def _draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(),
            [random.random() for _ in range(3)])


def test_hook_restores_every_generator_it_saved():
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    expected = _draws()  # what the training would draw next
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    hook = ValidationRNGHook()
    hook.before_val(None)
    _draws()  # the validation draws from all three
    hook.after_val(None)
    assert _draws() == expected


def _train_weights(tiny_voc, work_dir, val_interval):
    opts = tiny_overrides(tiny_voc, str(work_dir), max_iters=6,
                          interval=val_interval, input_size=(64, 64))
    opts['default_hooks.checkpoint.interval'] = 100  # no checkpoints
    opts['log_level'] = 'WARNING'
    runner = train(DEMO_FCN, cfg_options=opts, summary=False)
    assert sum(isinstance(h, ValidationRNGHook) for h in runner.hooks) == 1
    model = getattr(runner.model, 'module', runner.model)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_validations_do_not_change_the_training(tiny_voc, tmp_path,
                                                monkeypatch):
    """possec.apis.train adds the hook to every run."""
    # the reference validates only after its last iteration, so nothing
    # it trains comes after a validation
    ref = _train_weights(tiny_voc, tmp_path / 'end', 6)
    kept = _train_weights(tiny_voc, tmp_path / 'hook', 2)
    # the same run with the hook's save and restore switched off
    monkeypatch.setattr(ValidationRNGHook, 'before_val',
                        lambda self, runner: None)
    moved = _train_weights(tiny_voc, tmp_path / 'plain', 2)
    assert ref.keys() == kept.keys() == moved.keys()
    # with the hook, validating at iterations 2 and 4 trains bit for bit
    # the same weights as not validating there
    for key in ref:
        assert torch.equal(ref[key], kept[key]), key
    # without it the same validations change the weights (each pass over
    # the validation loader draws a seed from torch's generator, and the
    # head's dropout draws from it too): what the hook is for
    assert any(not torch.equal(ref[k], moved[k]) for k in ref)
