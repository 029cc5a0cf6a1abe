# FCN on possec's VGG16 at output stride 8 (pool4 removed, conv5 dilated by
# 2), with the padding switch model.backbone.padding_mode (see
# fcn_padr50-d8.py). The decode head reads relu5_3, the auxiliary head
# relu4_3. ImageNet weights: torchvision's vgg16 layout (features.N.*), e.g.
# model.pretrained='torchvision://vgg16' where torchvision is installed, or a
# local file; its classifier.* keys are reported as unexpected and ignored.
_base_ = 'mmseg::_base_/models/fcn_r50-d8.py'
custom_imports = dict(imports=['possec'], allow_failed_imports=False)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='PadVGG',
        depth=16,
        with_bn=False,
        strides=(1, 2, 2, 2, 1),
        dilations=(1, 1, 1, 1, 2),
        out_indices=(0, 1, 2, 3, 4),
        padding_mode='zeros'),
    decode_head=dict(in_channels=512, in_index=4, channels=512),
    auxiliary_head=dict(in_channels=512, in_index=3, channels=256))
