# PosENet head as an adversary: the gradient into the backbone is reversed
# (grad_scale=-1), so the head learns to read position while the backbone is
# pushed to make the readout wrong. This does not remove position: it was
# measured to add it (PosENetHead's docstring; docs/position_study.md). The
# pieces that remove position are in ../position/. Used like posenet_aux.py.
_base_ = './posenet_aux.py'
posenet_head = dict(grad_scale=-1.0)
