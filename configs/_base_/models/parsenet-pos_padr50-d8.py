# ParseNet R-50-D8 (padding-aware, 21 classes) with auxiliary heads
# [FCNHead, PosENetHead(grad_scale=+1)]: the backbone is encouraged to encode
# absolute position.
_base_ = ['./parsenet_padr50-d8_voc.py', './posenet_aux.py']
model = dict(auxiliary_head=[
    {{_base_.model.auxiliary_head}},
    {{_base_.posenet_head}},
])
