"""Checkpoints that torch's safe loader reads and that say where they came
from."""
import logging
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ...runtime.checkpoint import from_plain_checkpoint, to_plain_checkpoint


@HOOKS.register_module()
class CheckpointProvenanceHook(Hook):
    """Write every checkpoint in types ``torch.load``'s default
    (``weights_only=True``) reads, with the run's provenance; compare a
    loaded checkpoint's model settings with the run's model.

    Before a save, the checkpoint's ``meta['possec']`` gets
    :func:`~possec.runtime.provenance.provenance_record` (model settings,
    config file, overrides, possec's version) and its ``meta`` and
    ``message_hub`` are written in plain types
    (:func:`~possec.runtime.checkpoint.to_plain_checkpoint`), so that mmseg's
    ``init_model`` reads the file with no allowlist. After a load (before
    the Runner resumes the message hub) the plain parts become
    ``HistoryBuffer`` objects and numpy values again, and each model setting
    that differs from the checkpoint's logs one warning line; the list is
    kept in :attr:`differences` (None when the checkpoint records no
    settings). possec's entry points add this hook to every Runner.

    Args:
        cfg_options (dict, optional): The run's ``--cfg-options``, recorded
            as its overrides. Default: None.
    """

    priority = 'VERY_LOW'  # last: other hooks may add to the checkpoint

    def __init__(self, cfg_options: Optional[dict] = None) -> None:
        self.cfg_options = cfg_options
        self.differences: Optional[List[dict]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # possec.apis imports the engine's hooks: import it when used
        from ...runtime.provenance import provenance_record
        checkpoint.setdefault('meta', {})['possec'] = provenance_record(
            runner.cfg, self.cfg_options)
        to_plain_checkpoint(checkpoint)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        from ...runtime.provenance import (checkpoint_model_settings,
                                        difference_lines, model_differences)
        from_plain_checkpoint(checkpoint)
        recorded = checkpoint_model_settings(checkpoint)
        if recorded is None:
            self.differences = None
            return
        self.differences = model_differences(recorded,
                                             runner.cfg.get('model'))
        source = runner.cfg.get('load_from') or 'the checkpoint'
        for line in difference_lines(self.differences, str(source)):
            print_log(line, logger='current', level=logging.WARNING)
