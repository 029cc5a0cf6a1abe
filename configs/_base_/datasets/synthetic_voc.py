# Synthetic VOC-format data (possec.datasets), generated on first use under
# $POSSEC_DATA_ROOT (tools: --data-root), by default ~/.cache/possec/data.
# Images are already crop-sized, so the pipeline keeps absolute position
# intact: no random resize or crop, only a horizontal flip (the layouts code
# position vertically and by distance to the border, both flip-invariant).
# SyntheticVOCDataset is registered by possec: the model base (or the leaf)
# must carry custom_imports = dict(imports=['possec'], ...). It is not set
# here because mmengine refuses a key defined by two sibling bases.
dataset_type = 'SyntheticVOCDataset'
layout = 'uniform'
data_root = '{{$POSSEC_DATA_ROOT:~/.cache/possec/data}}/synthetic/uniform'
crop_size = (128, 128)
generate = dict(
    layout=layout, num_train=400, num_val=50, img_size=128, seed=0)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='TestTimeAug',
        transforms=[[
            dict(type='RandomFlip', prob=0., direction='horizontal'),
            dict(type='RandomFlip', prob=1., direction='horizontal')
        ], [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/train.txt',
        generate=generate,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='JPEGImages', seg_map_path='SegmentationClass'),
        ann_file='ImageSets/Segmentation/val.txt',
        generate=generate,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
