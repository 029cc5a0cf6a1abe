# mmseg's FCN R-18-D8 sized for a CPU: plain BN, no pretrained weights,
# 128x128 inputs. Like mmseg's model bases it keeps num_classes=19; the leaf
# config sets its dataset's number of classes.
_base_ = ['mmseg::_base_/models/fcn_r50-d8.py']
custom_imports = dict(imports=['possec'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=(128, 128)),
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=512, channels=128, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=64, norm_cfg=norm_cfg))
