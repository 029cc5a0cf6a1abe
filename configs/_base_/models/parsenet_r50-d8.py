# ParseNet on ResNet-50-D8 (https://arxiv.org/abs/1506.04579): mmseg's FCN
# model with the decode head replaced by possec's ParseNetHead in its paper
# form (L2-normalised conv5 features plus the L2-normalised, unpooled global
# average, early fusion, a 1x1 classifier and no projection conv). mmseg's FCN
# auxiliary head on stage 3 is kept. The backbone is possec's padding-aware
# ResNetV1c: with padding_mode='zeros' it computes what ResNetV1c computes
# and has the same state dict (ImageNet checkpoints load unchanged); switch
# the border rule with model.backbone.padding_mode = 'zeros' | 'reflect' |
# 'replicate' | 'circular' | 'partial' | 'none' | 'full' (also:
# coord_conv='stem' | 'all', erase_position='mean' | 'mean+scale').
# Like mmseg's model bases it keeps their num_classes=19; the leaf config
# sets its dataset's number of classes.
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
custom_imports = dict(imports=['possec'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(type='PadResNetV1c', padding_mode='zeros'),
    decode_head=dict(
        _delete_=True,
        type='ParseNetHead',
        in_channels=2048,
        in_index=3,
        channels=None,
        use_global=True,
        fusion='early',
        init_scales=10.0,
        dropout_ratio=0.1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
