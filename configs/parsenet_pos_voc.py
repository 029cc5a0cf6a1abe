# possec's headline model: ParseNet (global context) with a PosENet position
# head as an auxiliary task, on ResNet-50-D8 with zero padding, trained on
# Pascal VOC 2012 + SBD (voc12aug) at 512x512 with mmseg's 20k VOC schedule.
#   python tools/train.py configs/parsenet_pos_voc.py
# The documented short name of its model-zoo twin, named in mmseg's scheme;
# the backbone starts from the standard ImageNet checkpoint
# open-mmlab://resnet50_v1c (from mmseg's model base); the position study's
# variants are in configs/zoo/.
_base_ = './zoo/parsenet-pos_r50-d8-zeros_4xb4-20k_voc12aug-512x512.py'
