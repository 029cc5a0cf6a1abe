# ParseNet R-50-D8 on the padding-aware ResNetV1c with VOC's 21 classes in
# both heads; the base the position-head variants list their heads from.
_base_ = ['../padding/parsenet_padr50-d8.py']
model = dict(
    decode_head=dict(num_classes=21), auxiliary_head=dict(num_classes=21))
