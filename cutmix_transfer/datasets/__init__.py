"""Dataset readers for the real on-disk layouts, and the generator of demo data in those layouts.

One reader per layout: `load_cub` (raw CUB_200_2011), `load_imagenet_val` (Kaggle ILSVRC val, XML or CSV),
`load_wsol_metadata` / `write_wsol_metadata` (clovaai/wsolevaluation's metadata). Each returns WSOLSamples.
`coco_captions` reads COCO captions, `text.tokenize` is the one caption tokenizer, and the `demo` package writes
the demo data in all these layouts. The classification readers (`classification`: ImageFolder, CIFAR python pickles,
CUB; registered in mmengine's DATASETS as 'ImageFolderCls', 'CIFARCls', 'CUBCls') and the image transform presets
(`transforms.build_transform`) are shared by the pretraining package and every evaluator; they are imported from
their modules (not re-exported here, so that importing this package stays free of mmengine).
"""

from .common import WSOLSample, image_size_wh
from .cub import load_cub, load_cub_classes
from .demo import VOC_CLASSES, demo_class_mapping, demo_class_names, demo_synsets, demo_voc_class_names, make_demo_data
from .imagenet import load_imagenet_val, load_synsets, parse_pascal_xml
from .wsol_metadata import load_wsol_metadata, write_wsol_metadata

__all__ = [
    "WSOLSample",
    "image_size_wh",
    "load_cub",
    "load_cub_classes",
    "load_imagenet_val",
    "load_synsets",
    "parse_pascal_xml",
    "load_wsol_metadata",
    "write_wsol_metadata",
    "make_demo_data",
    "demo_class_names",
    "demo_class_mapping",
    "demo_synsets",
    "demo_voc_class_names",
    "VOC_CLASSES",
]
