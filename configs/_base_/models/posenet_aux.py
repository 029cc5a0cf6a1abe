# PosENet position head (possec's PosENetHead) as an auxiliary task beside the
# model's own auxiliary head, for a ResNet-D8 backbone (ResNet-50/101 stages:
# 256, 512, 1024, 2048 channels). grad_scale=1.0: the backbone is encouraged
# to encode absolute position. See posenet_probe.py (measure only) and
# posenet_adversary.py (gradient reversal, which adds position rather than
# removing it).
#
# Usage, in a leaf config whose other base already defines the model:
#   _base_ = ['./<model>_<dataset>.py', '<path>/_base_/models/posenet_aux.py']
#   model = dict(auxiliary_head=[{{_base_.model.auxiliary_head}},
#                                {{_base_.posenet_head}}])
# so that model.auxiliary_head becomes [FCNHead, PosENetHead], the FCN head
# exactly as the model's config left it (num_classes included).
#
# This piece defines a variable, not `model`, and no `custom_imports`:
# mmengine refuses a key that two sibling bases both define, possec's model
# bases already carry custom_imports, and a list auxiliary_head in a base
# would break the dict overrides that dataset configs apply to it
# (auxiliary_head=dict(num_classes=21)). A leaf over a pure mmseg model adds
# custom_imports = dict(imports=['possec'], allow_failed_imports=False).
posenet_head = dict(
    type='PosENetHead',
    in_channels=[256, 512, 1024, 2048],
    in_index=[0, 1, 2, 3],
    channels=64,
    patterns=['H', 'V', 'G', 'HS', 'VS'],
    grid_size=28,
    num_convs=1,
    kernel_size=3,
    conv_padding=0,
    grad_scale=1.0,
    loss_weight=1.0,
    align_corners=False)
