# ParseNet R-50-D8 on the padding-aware ResNetV1c with auxiliary heads
# [FCNHead, PosENetHead(grad_scale=+1)]: the backbone is encouraged to encode
# absolute position. 21 classes (VOC).
_base_ = ['../padding/parsenet_padr50-d8.py', './posenet_aux.py']
model = dict(
    decode_head=dict(num_classes=21),
    auxiliary_head=[
        dict({{_base_.model.auxiliary_head}}, num_classes=21),
        {{_base_.posenet_head}},
    ])
