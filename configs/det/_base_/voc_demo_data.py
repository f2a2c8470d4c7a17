# The generated demo VOC data (data/demo/VOCdevkit from tools/make_demo_data.py: 128-192 px scenes with 1-3
# objects, VOC07+12 trainval, VOC07 test, real VOC class names): the training-set template both demo detectors
# (configs/voc_faster_rcnn_demo.py, configs/voc_ssd300_demo.py) fill with their pipelines and put on the
# VOC2007 + VOC2012 trainval lists of their detector's recipe. It is the only key here: mmengine takes each key
# from one base only, and the detector configs the demos inherit own `data_root` and the dataloaders.
# The demo's objects are 26-67 px: mmdet's bbox_min_size=32 would mark many of them ignored, hence min_size=16.
voc_train = dict(
    type='VOCDataset', data_root='data/demo/VOCdevkit/', filter_cfg=dict(filter_empty_gt=True, min_size=16)
)
