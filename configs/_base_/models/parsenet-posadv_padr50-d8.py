# As parsenet-pos_padr50-d8.py, but the position head is an adversary
# (grad_scale=-1, gradient reversal): the backbone is pushed to remove
# absolute position while the head keeps trying to read it.
_base_ = ['../padding/parsenet_padr50-d8.py', './posenet_adversary.py']
model = dict(
    decode_head=dict(num_classes=21),
    auxiliary_head=[
        dict({{_base_.model.auxiliary_head}}, num_classes=21),
        {{_base_.posenet_head}},
    ])
