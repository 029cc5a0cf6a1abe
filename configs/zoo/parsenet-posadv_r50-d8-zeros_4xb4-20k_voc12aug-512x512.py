# Model zoo: ParseNet + PosENet position adversary (grad_scale -1, gradient
# reversal) beside mmseg's FCN auxiliary head; R-50-D8 with zero padding,
# Pascal VOC 2012 + SBD (voc12aug), 512x512, 20k iterations of 4x4 images.
_base_ = [
    '../_base_/models/parsenet_r50-d8.py',
    '../_base_/models/posenet_adversary.py',
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
