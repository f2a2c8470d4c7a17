# The OOD demo's classifier: a shallow CIFAR PyramidNet (depth 20, basic blocks, alpha 24; 0.1M parameters, the
# paper's PyramidNet-200 block design and widening rule at a size that trains on 2 CPU cores in about a minute),
# 10 demo classes. augment mode 'none' is the baseline; beta and prob as CutMix-PyTorch's CIFAR recipe.
custom_imports = dict(imports=['cutmix_transfer.classification'], allow_failed_imports=False)

model = dict(
    type='CAMClassifier',
    arch='pyramidnet20_a24_basic',
    num_classes=10,
    data_preprocessor=dict(type='MixAugmentPreprocessor', augment=dict(mode='none', beta=1.0, prob=0.5)),
)
