# The demo (`make demo`): the documented short name of
# parsenet-pos_r18-d8_1xb8-160_synthetic-128x128.py, possec's headline model
# family shrunk to R-18-D8 at 128x128 and trained for 160 iterations on the
# synthetic `uniform` layout, generated on first use under
# $POSSEC_DATA_ROOT/synthetic/ (default ~/.cache/possec/data).
#   python tools/train.py configs/demo/parsenet_pos_synthetic.py
_base_ = './parsenet-pos_r18-d8_1xb8-160_synthetic-128x128.py'
