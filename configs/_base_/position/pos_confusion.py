# Position removal by confusion (possec's PosConfusionHead; Tzeng et al.,
# ICCV 2015): a PosENet readout learns the true position maps on detached
# features, while the backbone is trained to make position unreadable:
# confusion='ridge' penalises the correlation with the true maps of the
# best per-pixel linear readout of each batch (fitted in closed form on the
# other half of the batch; needs batches of 2 or more images). What it
# removes and what it costs: docs/removal.md, "Removal by training".
# For a ResNet-D8 backbone (ResNet-50/101 stages: 256, 512, 1024, 2048
# channels); see pos_confusion_r18.py for ResNet-18/34.
#
# Used like ../models/posenet_aux.py (this piece defines the variable
# `posenet_head`, not `model`):
#   _base_ = ['<model base>.py', '<path>/_base_/position/pos_confusion.py']
#   model = dict(auxiliary_head=[{{_base_.model.auxiliary_head}},
#                                {{_base_.posenet_head}}])
# The losses loss_pos (readout) and loss_confusion (backbone) are both
# summed into the total; pos_spc_<P> logs what the readout still reads.
posenet_head = dict(
    type='PosConfusionHead',
    in_channels=[256, 512, 1024, 2048],
    in_index=[0, 1, 2, 3],
    channels=64,
    patterns=['H', 'V', 'G'],
    grid_size=28,
    num_convs=1,
    kernel_size=3,
    conv_padding=0,
    loss_type='bce',
    loss_weight=1.0,
    confusion='ridge',
    confusion_weight=1.0,
    align_corners=False)
