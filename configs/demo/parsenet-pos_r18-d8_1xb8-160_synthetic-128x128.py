# The headline model family shrunk for a CPU: ParseNet (the head of
# ../_base_/models/parsenet_r50-d8.py) on the padding-aware R-18-D8 with
# plain BN and random init, auxiliary heads [FCNHead, PosENetHead
# (grad_scale=+1)], 128x128, 160 iterations of batch 8 on the synthetic
# `uniform` layout (generated on first use under $POSSEC_DATA_ROOT/synthetic/,
# by default ~/.cache/possec/data).
# configs/demo/parsenet_pos_synthetic.py is its documented alias (make demo).
_base_ = [
    '../_base_/models/parsenet_r50-d8.py',
    '../_base_/models/posenet_aux_r18.py',
    '../_base_/datasets/synthetic_voc.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_demo.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    decode_head=dict(in_channels=512, num_classes=21, norm_cfg=norm_cfg),
    auxiliary_head=[
        dict(
            _base_.model.auxiliary_head,
            in_channels=256,
            channels=64,
            num_classes=21,
            norm_cfg=norm_cfg),
        _base_.posenet_head,
    ])
