# possec's ParseNet R-50-D8 on the padding-aware ResNetV1c: padding x global
# context. Switch with model.backbone.padding_mode (see fcn_padr50-d8.py).
_base_ = '../models/parsenet_r50-d8.py'
model = dict(backbone=dict(type='PadResNetV1c', padding_mode='zeros'))
