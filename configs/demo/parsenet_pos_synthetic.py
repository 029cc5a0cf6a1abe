# The demo: possec's headline model family (ParseNet + PosENet position head)
# shrunk to R-18-D8 at 128x128, trained for 160 iterations on the synthetic
# `uniform` layout, which is generated under data/synthetic/ on first use.
#   python tools/train.py configs/demo/parsenet_pos_synthetic.py   (make demo)
_base_ = [
    '../_base_/models/parsenet-pos_padr18-d8_demo.py',
    '../_base_/datasets/synthetic_voc.py',
    'mmseg::_base_/default_runtime.py',
    '../_base_/schedules/schedule_demo.py',
]
