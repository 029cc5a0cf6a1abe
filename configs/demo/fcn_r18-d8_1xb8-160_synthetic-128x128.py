# FCN baseline of the demo family: R-18-D8 on synthetic data, CPU minutes.
_base_ = [
    '../_base_/models/fcn_r18-d8_demo.py',
    '../_base_/datasets/synthetic_voc.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_demo.py',
]
model = dict(
    decode_head=dict(num_classes=21), auxiliary_head=dict(num_classes=21))
