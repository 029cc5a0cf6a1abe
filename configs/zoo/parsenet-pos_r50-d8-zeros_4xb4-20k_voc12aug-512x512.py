# Model zoo: ParseNet + PosENet position head (grad_scale +1: encourage
# absolute position) beside mmseg's FCN auxiliary head; R-50-D8 with zero
# padding, Pascal VOC 2012 + SBD (voc12aug), 512x512, 20k iterations of 4x4
# images. configs/parsenet_pos_voc.py (the headline model) is its
# documented alias.
_base_ = [
    '../_base_/models/parsenet_r50-d8.py',
    '../_base_/models/posenet_aux.py',
    'mmseg::_base_/datasets/pascal_voc12_aug.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
crop_size = (512, 512)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=21),
    auxiliary_head=[
        dict(_base_.model.auxiliary_head, num_classes=21),
        _base_.posenet_head,
    ])
