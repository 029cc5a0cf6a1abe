# Model zoo: ParseNet (global context), no position head, with none padding in the backbone.
_base_ = ['./parsenet_r50-d8-zeros_4xb4-20k_voc12aug-512x512.py']
model = dict(backbone=dict(padding_mode='none'))
