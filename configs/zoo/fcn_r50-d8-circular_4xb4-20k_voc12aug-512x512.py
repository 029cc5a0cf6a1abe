# Model zoo: FCN baseline (no global context, no position head),
# with 'circular' padding in the backbone; everything else as in its
# zero-padding sibling.
_base_ = './fcn_r50-d8-zeros_4xb4-20k_voc12aug-512x512.py'
model = dict(backbone=dict(padding_mode='circular'))
