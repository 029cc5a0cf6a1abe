# The CPU demo FCN R-18-D8 on the padding-aware ResNetV1c; switch with
# model.backbone.padding_mode (see fcn_padr50-d8.py). With 'none' the
# features shrink by the formula in possec.models.backbones.padding_resnet:
# R-18-D8 (contract_dilation) needs inputs of 311 pixels or more.
_base_ = '../models/fcn_r18-d8_demo.py'
model = dict(backbone=dict(type='PadResNetV1c', padding_mode='zeros'))
