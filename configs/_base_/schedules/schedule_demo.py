# A short CPU schedule for the demo family: 160 iterations of batch 8, then
# one validation. The demo models start from random weights, where AdamW
# converges much faster than mmseg's SGD recipe for pretrained backbones.
# The demo's time and mIoU: docs/measurements.md, "`make demo`".
optimizer = dict(type='AdamW', lr=0.002, betas=(0.9, 0.999),
                 weight_decay=0.01)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-5,
        power=0.9,
        begin=0,
        end=160,
        by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=160, val_interval=160)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=160, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
# A fixed seed fixes the data order and the initialisation; the numbers
# still depend on the machine and OMP_NUM_THREADS (docs/measurements.md,
# "`make demo`").
randomness = dict(seed=0)
