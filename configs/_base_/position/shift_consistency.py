# Position removal by translation consistency (possec's
# ShiftConsistencyEncoderDecoder; AugShift-style, Islam et al., ICCV 2021):
# each step the backbone also runs on a crop of the batch, `shift` pixels
# smaller per axis at a random corner, and loss_shift asks its features to
# equal the image's on the shared pixels. `shift` must be a multiple of the
# backbone's output strides (8 for a ResNet-D8) and the input size a
# multiple of the stride. The position study's removal variant (zeros/shift);
# what it removes and what it costs: docs/removal.md, "Removal by
# training".
#
# This piece defines the variable `shift_consistency` (a sibling model base
# defines `model`); a leaf config merges it into the base's model (the
# whole value of `model`: mmengine substitutes it as one value, so other
# model changes go into another leaf level):
#   _base_ = ['<model base>.py', '<path>/_base_/position/shift_consistency.py']
#   model = {{_base_.shift_consistency}}
# or, from the command line, e.g.
#   --cfg-options model.type=ShiftConsistencyEncoderDecoder model.shift=16
shift_consistency = dict(
    type='ShiftConsistencyEncoderDecoder',
    shift=16,
    shift_weight=1.0,
    shift_levels=[0, 1, 2, 3])
