# mmseg's PSPNet R-50-D8 on possec's padding-aware ResNetV1c; switch with
# model.backbone.padding_mode (see fcn_padr50-d8.py).
_base_ = 'mmseg::_base_/models/pspnet_r50-d8.py'
custom_imports = dict(imports=['possec'], allow_failed_imports=False)
model = dict(backbone=dict(type='PadResNetV1c', padding_mode='zeros'))
