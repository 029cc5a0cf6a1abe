"""Exact position-eraser statistics for the final weights."""
import copy
import itertools
from typing import Optional

from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ...models.layers.position_eraser import (calibrate_erasers,
                                              position_erasers)


@HOOKS.register_module()
class PositionEraserHook(Hook):
    """Recompute every :class:`~possec.models.layers.PositionEraser`'s
    statistics for the final weights.

    During training an eraser keeps a moving average of the per-pixel
    feature means, which lags behind the moving weights; the per-pixel
    offset it leaves is itself a position code. Like a precise-BN hook, this
    hook averages the statistics afresh on the training data, with the model
    in eval mode, after the last iteration (and every ``interval``) and
    before that iteration's checkpoint and validation. The averaging is
    :func:`~possec.models.layers.position_eraser.calibrate_erasers`; with
    several processes the statistics are then averaged over them. Why two
    passes: ``docs/removal.md`` § Removal by erasure.

    The loader is a fresh one built from ``train_dataloader`` (without
    persistent workers), so the training loader's iterator is not touched.

    Args:
        passes (int): Passes over the training set. Default: 2.
        num_batches (int, optional): Batches to average, instead of
            ``passes``. Default: None.
        interval (int, optional): Also recompute every this many
            iterations; None for the end of training only. Default: None.
        begin (int): Recompute every ``interval`` iterations from this
            iteration on (the count of iterations done). Default: 0.
    """
    # before CheckpointHook (VERY_LOW) at the same iteration
    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 passes: int = 2,
                 num_batches: Optional[int] = None,
                 interval: Optional[int] = None,
                 begin: int = 0):
        if not (isinstance(passes, int) and passes > 0):
            raise ValueError(f'passes must be a positive int, got '
                             f'{passes!r}')
        for name, value in (('num_batches', num_batches),
                            ('interval', interval)):
            if value is not None and not (isinstance(value, int)
                                          and value > 0):
                raise ValueError(f'{name} must be a positive int or None, '
                                 f'got {value!r}')
        if not (isinstance(begin, int) and begin >= 0):
            raise ValueError(f'begin must be an int >= 0, got {begin!r}')
        self.begin = begin
        self.passes = passes
        self.num_batches = num_batches
        self.interval = interval

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if self.is_last_train_iter(runner) or (
                self.interval and runner.iter + 1 >= self.begin
                and self.every_n_train_iters(runner, self.interval)):
            self.calibrate(runner)

    def calibrate(self, runner) -> int:
        """Recompute the statistics now; returns the batches averaged."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        erasers = position_erasers(model)
        if not erasers:
            runner.logger.warning('PositionEraserHook: the model has no '
                                  'PositionEraser; nothing to calibrate')
            return 0
        cfg = copy.deepcopy(runner.cfg.train_dataloader)
        cfg['persistent_workers'] = False
        loader = runner.build_dataloader(cfg, seed=runner.seed)
        total = self.num_batches or self.passes * len(loader)

        def batches():  # the InfiniteSampler goes on; others start again
            while True:
                for data in loader:
                    yield data

        def forward(data):
            inputs = model.data_preprocessor(data, True)['inputs']
            return model.extract_feat(inputs)

        count = calibrate_erasers(model, itertools.islice(batches(), total),
                                  forward)
        for eraser in erasers:
            all_reduce(eraser.running_mean, op='mean')
            all_reduce(eraser.running_sqr, op='mean')
        runner.logger.info(f'PositionEraserHook: statistics of '
                           f'{len(erasers)} erasers '
                           f'recomputed on {count} batches at iteration '
                           f'{runner.iter + 1}')
        return count
