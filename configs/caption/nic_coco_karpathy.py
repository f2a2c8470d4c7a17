# NIC (Show and Tell) fine-tuned on MS-COCO, Karpathy split, as the CutMix paper's captioning transfer (Table 8:
# ResNet-50 encoder, BLEU-1..4 / METEOR / CIDEr). The CutMix paper gives no training details beyond "NIC with a
# ResNet-50 encoder"; the settings below are, by source:
#   Show and Tell (Vinyals et al., CVPR 2015 / TPAMI 2016): image embedding fed as the LSTM's first input, LSTM 512,
#     word embeddings 512, dropout, vocabulary of words seen >= 5 times, beam search (beam 3 in im2txt's
#     run_inference default), uniform(-0.08, 0.08) init, gradient clipping at norm 5 (im2txt);
#   Karpathy & Fei-Fei's preprocessing / neuraltalk2 / ruotianluo's self-critical.pytorch 'fc' (NIC) model: captions
#     cut to 16 words, 5 captions per image per batch (seq_per_img 5), Adam lr 5e-4, decay x0.8 every 3 epochs,
#     encoder (CNN) fine-tuning lr 1e-5, 224 px crops, dropout 0.5, 30 epochs.
# Encoder lr = 5e-4 * 0.02 = 1e-5 via paramwise_cfg.custom_keys['encoder']; --freeze-encoder trains the decoder only.
_base_ = ['../cls/_base_/datasets/loaders.py', '../cls/_base_/default_runtime.py']

custom_imports = dict(imports=['cutmix_transfer.captioning'], allow_failed_imports=False)

data_root = 'data/coco'  # annotations/, train2014/, val2014/, dataset_coco.json (Karpathy's split)
image_size = 224
max_len = 16  # words per caption (Karpathy's prepro); longer captions are cut
vocab_min_count = 5  # Show and Tell: words that occur at least 5 times in the training captions
max_epochs = 30
beam_size = 3

model = dict(
    type='NICCaptioner',
    vocab=None,  # tools/train_caption.py fills vocab from <work_dir>/vocab.json
    arch='resnet50',
    backbone_checkpoint=None,  # --backbone CKPT (its arch wins over this one)
    embed_dim=512,
    hidden_dim=512,
    dropout=0.5,
    freeze_encoder=False,
    norm_eval=True,
    max_len=max_len,
    beam_size=beam_size,
    length_norm=False,
)

val_dataloader = dict(
    batch_size=64,
    num_workers=4,
    dataset=dict(
        type='CocoCaptions', root=data_root, split='val', source='karpathy', image_size=image_size, max_len=max_len
    ),
)
# the validation set on the Karpathy train split, with a resize before the random crop and 5 captions per image
train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    dataset=dict(val_dataloader['dataset'], split='train', resize=256, captions_per_image=5),
)
# the validation loader on the Karpathy test split, without persistent workers (one pass)
test_dataloader = dict(
    _base_.val_dataloader,
    batch_size=64,
    num_workers=4,
    persistent_workers=False,
    dataset=dict(val_dataloader['dataset'], split='test'),
)
# Validation during training: BLEU, ROUGE-L, CIDEr-D with the PTB tokenizer (tools/test_caption.py adds METEOR).
val_evaluator = dict(type='CaptionMetric', scorers=['bleu', 'rouge', 'cider'])
test_evaluator = val_evaluator

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=3)
val_cfg = dict()
test_cfg = dict()

optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.0),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(custom_keys={'encoder': dict(lr_mult=0.02)}),
)
param_scheduler = [dict(type='StepLR', by_epoch=True, step_size=3, gamma=0.8)]

# runtime: configs/cls/_base_/default_runtime.py, keeping the 3 best checkpoints by CIDEr-D
default_hooks = dict(checkpoint=dict(max_keep_ckpts=3, save_best='CIDEr', rule='greater'))
