# What every classification model base shares: the project's CAMClassifier (registered by
# cutmix_transfer.classification) behind the MixAugmentPreprocessor with augment mode 'none', the paper's baseline.
# Each model base adds its arch, classes and options and, for the mixing variants, the family's beta and prob; a
# method config then sets only the mode.
custom_imports = dict(imports=['cutmix_transfer.classification'], allow_failed_imports=False)

model = dict(type='CAMClassifier', data_preprocessor=dict(type='MixAugmentPreprocessor', augment=dict(mode='none')))
