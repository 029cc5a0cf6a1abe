"""Hooks used by the end-to-end tests (also inside torchrun workers)."""
import copy
import os.path as osp

import torch
from mmengine.hooks import Hook
from mmseg.registry import HOOKS


@HOOKS.register_module()
class RecordStartHook(Hook):
    """Save the iteration counter and optimizer state seen at train start,
    and the iterations this run executed."""

    def before_train(self, runner):
        self.start = dict(iter=runner.iter,
                          optimizer=copy.deepcopy(
                              runner.optim_wrapper.state_dict()),
                          iters_run=[])

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.start['iters_run'].append(runner.iter)

    def after_train(self, runner):
        torch.save(self.start, osp.join(runner.work_dir, 'start_state.pt'))


@HOOKS.register_module()
class DumpRankHook(Hook):
    """Each rank saves its losses and final parameters (BN running stats
    are per-rank buffers under BN, as DDP leaves them, and are not saved)."""

    def before_train(self, runner):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append(float(outputs['loss']))

    def after_train(self, runner):
        model = runner.model.module if hasattr(runner.model, 'module') \
            else runner.model
        state = {k: v.detach().clone() for k, v in model.named_parameters()}
        torch.save(dict(losses=self.losses, state=state),
                   osp.join(runner.work_dir, f'rank{runner.rank}.pt'))
