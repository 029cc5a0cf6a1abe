# posenet_aux.py for ResNet-18/34 stages (64, 128, 256, 512 channels).
_base_ = ['./posenet_aux.py']
posenet_head = dict(in_channels=[64, 128, 256, 512])
