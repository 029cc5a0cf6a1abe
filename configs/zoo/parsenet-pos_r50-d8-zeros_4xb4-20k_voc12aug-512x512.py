# Model zoo: ParseNet + PosENet position head (grad_scale +1: encourage position).
# R-50-D8 with zero padding, Pascal VOC 2012 + SBD, 512x512, 20k iterations.
_base_ = [
    '../_base_/models/parsenet-pos_padr50-d8.py',
    'mmseg::_base_/datasets/pascal_voc12_aug.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
crop_size = (512, 512)
model = dict(data_preprocessor=dict(size=crop_size))
