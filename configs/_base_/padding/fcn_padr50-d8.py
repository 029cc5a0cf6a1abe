# mmseg's FCN R-50-D8 on possec's padding-aware ResNetV1c. Switch the border
# rule of every backbone conv and of the stem's max-pool with one key:
# model.backbone.padding_mode = 'zeros' | 'reflect' | 'replicate' |
# 'circular' | 'partial' | 'none' (e.g. --cfg-options
# model.backbone.padding_mode=reflect). State dicts equal ResNetV1c's, so the
# standard ImageNet checkpoint loads in every mode. The heads keep their own
# zero padding.
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
custom_imports = dict(imports=['possec'], allow_failed_imports=False)
model = dict(backbone=dict(type='PadResNetV1c', padding_mode='zeros'))
