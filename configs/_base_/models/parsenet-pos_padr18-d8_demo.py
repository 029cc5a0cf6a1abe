# The headline model family shrunk for a CPU: ParseNet on the padding-aware
# R-18-D8 (plain BN, random init) with auxiliary heads
# [FCNHead, PosENetHead(grad_scale=+1)].
_base_ = ['../padding/fcn_padr18-d8_demo.py', './posenet_aux_r18.py']
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='ParseNetHead',
        in_channels=512,
        in_index=3,
        channels=None,
        use_global=True,
        fusion='early',
        init_scales=10.0,
        dropout_ratio=0.1,
        num_classes=21,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=[
        {{_base_.model.auxiliary_head}},
        {{_base_.posenet_head}},
    ])
