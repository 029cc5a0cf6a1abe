# Model zoo: ParseNet + PosENet position head (grad_scale +1),
# with 'none' padding in the backbone; everything else as in its
# zero-padding sibling.
_base_ = './parsenet-pos_r50-d8-zeros_4xb4-20k_voc12aug-512x512.py'
model = dict(backbone=dict(padding_mode='none'))
