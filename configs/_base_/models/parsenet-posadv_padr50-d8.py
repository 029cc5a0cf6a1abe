# As parsenet-pos_padr50-d8.py, but the position head is an adversary
# (grad_scale=-1, gradient reversal): the backbone is pushed to remove
# absolute position while the head keeps trying to read it.
_base_ = ['./parsenet_padr50-d8_voc.py', './posenet_adversary.py']
model = dict(auxiliary_head=[
    {{_base_.model.auxiliary_head}},
    {{_base_.posenet_head}},
])
