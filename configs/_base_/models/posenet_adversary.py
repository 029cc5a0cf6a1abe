# PosENet head as an adversary: the gradient into the backbone is reversed,
# so the head learns to read position while the backbone is pushed to remove
# it. Used like posenet_aux.py.
_base_ = './posenet_aux.py'
posenet_head = dict(grad_scale=-1.0)
