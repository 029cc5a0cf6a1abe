# Position removal by erasure (possec's PositionEraser on every backbone
# output, a backbone option of PadResNet / PadResNetV1c / PadResNetV1d): the
# per-pixel running mean of each output channel over the training data is
# replaced by its average over the pixels, so that no linear readout of the
# backbone's outputs predicts position better than a constant.
# PositionEraserHook recomputes the statistics for the final weights after
# the last training iteration (before the checkpoint and the validation of
# that iteration); without it the lagging training-time averages leave a
# per-pixel offset that a fresh probe reads. 'mean+scale' also equalises
# the per-pixel spread.
# The guarantee is for linear readouts only (the position study's probe is
# one convolution): a nonlinear readout still reads position
# (docs/removal.md, "Removal by erasure").
#
# This piece defines two variables; a leaf config merges them:
#   _base_ = ['<model base>.py', '<path>/_base_/position/position_eraser.py']
#   model = dict(backbone={{_base_.position_eraser}})
#   custom_hooks = {{_base_.position_eraser_hooks}}
# or, from the command line, e.g.
#   --cfg-options model.backbone.erase_position=mean \
#       "custom_hooks=[dict(type='PositionEraserHook')]"
# (the backbone must be a possec PadResNet*; mmseg's ResNet has no such
# option).
position_eraser = dict(erase_position='mean')
position_eraser_hooks = [dict(type='PositionEraserHook')]
