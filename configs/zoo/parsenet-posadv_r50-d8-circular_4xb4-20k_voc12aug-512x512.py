# Model zoo: ParseNet + PosENet position adversary (grad_scale -1: remove position), with circular padding in the backbone.
_base_ = ['./parsenet-posadv_r50-d8-zeros_4xb4-20k_voc12aug-512x512.py']
model = dict(backbone=dict(padding_mode='circular'))
