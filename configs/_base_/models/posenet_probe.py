# PosENet head as a probe: the features are detached, so the head measures
# the position information the backbone carries (logged as pos_spc_<P>) and
# changes nothing. Used like posenet_aux.py.
_base_ = './posenet_aux.py'
posenet_head = dict(grad_scale=0.0)
