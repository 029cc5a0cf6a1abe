# pos_confusion.py for ResNet-18/34 stages (64, 128, 256, 512 channels).
_base_ = ['./pos_confusion.py']
posenet_head = dict(in_channels=[64, 128, 256, 512])
