#!/usr/bin/env bash
# `make demo`: the embedded demo end to end on generated data (CPU, about 15 minutes on 2 cores).
#   1. generate the demo data (CUB/ILSVRC/VOC/COCO layouts)         -> data/demo
#   2. pretrain a ResNet-18 (WSOL form) twice: baseline and CutMix   -> work_dirs/demo/cls_<method>
#  2b. each checkpoint's own error and calibration (test_cls)       -> work_dirs/demo/test_cls_<method>
#   3. WSOL evaluation with CAM figures, for both checkpoints         -> work_dirs/demo/wsol_<method>
#  3b. robustness (FGSM, occlusion, in-between) on the ImageNet layout -> work_dirs/demo/rob_<method>
#  3c. corruptions: a small ImageNet-C-layout copy, corruption_eval  -> data/demo/ImageNet-C, work_dirs/demo/corr_<method>
#   4. a short VOC Faster R-CNN fine-tune and test, 3 seeds for both -> work_dirs/demo/det_<method>/seed_<s>
#   5. a short NIC captioning fine-tune and test, for both            -> work_dirs/demo/cap_<method>
#  5b. OOD detection: CIFAR-layout demo + OOD folders, a shallow PyramidNet per method, ood_eval
#                                                                    -> data/demo_cifar, work_dirs/demo/ood_<method>
#  5c. the PyramidNets' test_cls and a CIFAR-100-C-layout copy     -> work_dirs/demo/cifar_{test_cls,corr}_<method>
#   6. the report linking them                                        -> work_dirs/demo/report
# Training stages write their full output to work_dirs/demo/logs/<stage>.log and show progress and results.
# Each stage is skipped when its result already exists (rerun after an interruption continues);
# DEMO_FORCE=1 redoes everything. DEMO_SEED, DEMO_DATA, DEMO_WORK and DEMO_METHODS change the defaults.
# Every stage runs under the CPU pin (scripts/pinned.sh: AVX2 kernels, 2 threads, no GPU), so that the numbers are
# the README's on any x86-64 machine with AVX2; a stage whose record was made unpinned is redone.
# DEMO_UNPINNED=1 runs unpinned (faster on some machines; numbers then depend on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${DEMO_UNPINNED:-0}" != 1 ] && [ "${CUTMIX_PINNED:-}" != 1 ]; then
    exec bash scripts/pinned.sh bash "$PWD/scripts/demo.sh" "$@"
fi
PY=.venv/bin/python
SEED=${DEMO_SEED:-0}
DATA=${DEMO_DATA:-data/demo}
WORK=${DEMO_WORK:-work_dirs/demo}
METHODS=${DEMO_METHODS:-"baseline cutmix"}
FORCE=${DEMO_FORCE:-0}
[ "$FORCE" = 1 ] && rm -rf "$WORK"
mkdir -p "$WORK"
T0=$(date +%s)
$PY -c 'import json; from cutmix_transfer.pinning import pin_state; print("CPU pin:", json.dumps(pin_state()))'
TIMES="$WORK/stage_times.tsv"
: > "$TIMES"

stage() { STAGE="$1"; STAGE_T0=$(date +%s); printf '\n==== [%s, +%ds] %s\n' "$(date +%T)" $(( STAGE_T0 - T0 )) "$1"; }
done_stage() { local dt=$(( $(date +%s) - STAGE_T0 )); printf '==== %s: %ds -> %s\n' "$STAGE" "$dt" "$1"; printf '%s\t%s\n' "$STAGE" "$dt" >> "$TIMES"; }
# A training command's full output (mmengine's environment dump, config, hook table, every log line) goes to its log
# file; the terminal gets the log's path, the training progress lines and any error. Tools run alone keep
# mmengine's usual output.
LOGS="$WORK/logs"
mkdir -p "$LOGS"
quiet() {   # quiet LOGNAME CMD...: run CMD, full output to $LOGS/LOGNAME.log; show progress, errors and the result
    local log="$LOGS/$1.log" rc=0; shift
    printf '  (full log: %s)\n' "$log"
    "$@" 2>&1 | tee "$log" | { grep --line-buffered -E 'Epoch\((train|val)\)|^error:|^trained:|test mAP|BLEU-4 ' || true; } || rc=$?
    if [ "$rc" != 0 ]; then
        printf 'FAILED (exit %s): %s\nlast lines of %s:\n' "$rc" "$*" "$log" >&2
        tail -n 25 "$log" >&2
        return "$rc"
    fi
}
# background LOGNAME CMD...: start CMD now, its output to $LOGS/LOGNAME.log; join_background waits for every one
# started, shows each log in start order and fails with the tail of the first that failed. For short tools whose
# time is mostly the start-up (importing torch and torchvision: ~6 s on one core), run side by side on the 2 cores.
BG_PIDS=()
BG_LOGS=()
background() { local log="$LOGS/$1.log"; shift; "$@" > "$log" 2>&1 & BG_PIDS+=("$!"); BG_LOGS+=("$log"); }
join_background() {
    local i rc=0 st
    for i in "${!BG_PIDS[@]}"; do
        if wait "${BG_PIDS[$i]}"; then cat "${BG_LOGS[$i]}"; else
            st=$?; [ "$rc" = 0 ] && rc=$st
            printf 'FAILED (exit %s), last lines of %s:\n' "$st" "${BG_LOGS[$i]}" >&2
            tail -n 25 "${BG_LOGS[$i]}" >&2
        fi
    done
    BG_PIDS=()
    BG_LOGS=()
    return "$rc"
}
# a stage's record exists, and was made under the pin unless DEMO_UNPINNED=1 (results.json: machine.pinned)
have() { [ "$FORCE" != 1 ] && [ -f "$1" ] && { [ "${DEMO_UNPINNED:-0}" = 1 ] || grep -q '"pinned": true' "$1"; }; }

stage "1/6 demo data"
# 96 CUB train images per class (DEMO_NOTES used 300; 16 test and 16 ImageNet-layout val images per class follow),
# 48+48 VOC trainval and 60 test images: sized for the 17-minute budget on 2 cores with three detection seeds per
# backbone
$PY tools/make_demo_data.py --out "$DATA" --seed "$SEED" --per-class 96 --voc-trainval 48 --voc-test 60
done_stage "$DATA"

for m in $METHODS; do
    stage "2/6 pretrain ResNet-18 with '$m' on $DATA/CUB_200_2011"
    if ! have "$WORK/cls_$m/results.json"; then
        quiet "pretrain_$m" $PY tools/train_cls.py "configs/cls/demo_$m.py" --work-dir "$WORK/cls_$m" --seed "$SEED" --resume \
            --cfg-options "train_dataloader.dataset.root=$DATA/CUB_200_2011" "val_dataloader.dataset.root=$DATA/CUB_200_2011"
    fi
    done_stage "$WORK/cls_$m"
done

ckpt() { cat "$WORK/cls_$1/last_checkpoint"; }

stage "2b/6 both checkpoints' own numbers, side by side: top-1/top-5 error, NLL, ECE, reliability (tools/test_cls.py, CUB test)"
for m in $METHODS; do
    have "$WORK/test_cls_$m/results.json" || background "test_cls_$m" $PY tools/test_cls.py --backbone "$(ckpt "$m")" \
        --dataset cub --data-root "$DATA/CUB_200_2011" --image-size 96 --out "$WORK/test_cls_$m" --workers 0 --no-progress
done
join_background
done_stage "$WORK/test_cls_<method>"

for m in $METHODS; do
    stage "3/6 WSOL evaluation of the '$m' checkpoint (CAM, MaxBoxAcc, MaxBoxAccV2, PxAP, figures)"
    if ! have "$WORK/wsol_$m/results.json"; then
        $PY tools/wsol_eval.py --backbone "$(ckpt "$m")" --dataset cub --data-root "$DATA/CUB_200_2011" \
            --out "$WORK/wsol_$m" --vis 8 --save-cams --seed "$SEED" --image-size 96
    fi
    done_stage "$WORK/wsol_$m"
done

# A small grid (48 images, 8 hole sizes, 64 pairs) sized for <= 60 s for both checkpoints on 2 cores; the tool's
# defaults are the full grid (every image, 15 hole sizes, 11 Mixup ratios, 15 CutMix sides, 50,000 pairs).
for m in $METHODS; do
    stage "3b/6 robustness of the '$m' checkpoint on $DATA/ILSVRC (FGSM 8/255, occlusion, in-between; demo grid)"
    if ! have "$WORK/rob_$m/results.json"; then
        $PY tools/robustness_eval.py --backbone "$(ckpt "$m")" --dataset imagenet --data-root "$DATA/ILSVRC" \
            --image-size 96 --out "$WORK/rob_$m" --seed "$SEED" --workers 1 --eps 8 \
            --max-images 48 --hole-sizes 0 32 64 96 128 160 192 224 --pairs 64 \
            --mixup-ratios 0 0.25 0.5 0.75 1 --cutmix-sides 0 71 112 158 194 224
    fi
    done_stage "$WORK/rob_$m"
done

# Corruption robustness in small: an ImageNet-C-layout copy of the 160 demo val images at 96 px, with the closest
# published parameter set (Tiny-ImageNet-C's, 64 px; ImageNet-C's are for 224 px), 4 of the 15 corruptions at
# severities 1-5 (tools/make_corruptions.py), then tools/corruption_eval.py on a seeded 32 of them (each in the clean
# set and all 20 corruption x severity sets): a partial mCE over those 4. The four corruption evaluations (these two
# and the CIFAR-100-C pair in 5c) are sized for 60 s in all.
DEMO_C="$DATA/ImageNet-C"
DEMO_CORRUPTIONS="gaussian_noise defocus_blur contrast jpeg_compression"
stage "3c/6 corruptions: ImageNet-C layout of $DATA/ILSVRC at 96 px ($DEMO_CORRUPTIONS; 5 severities)"
if [ "$FORCE" = 1 ] || [ ! -f "$DEMO_C/corruptions_manifest.json" ]; then
    rm -rf "$DEMO_C"
    $PY tools/make_corruptions.py --layout imagenet-c --data-root "$DATA/ILSVRC" --out "$DEMO_C" --param-set tinyimagenet \
        --image-size 96 --corruptions $DEMO_CORRUPTIONS --seed "$SEED" --no-progress
fi
done_stage "$DEMO_C"
stage "3c/6 corruption_eval of both checkpoints on $DEMO_C (32 images x 21 sets each)"
for m in $METHODS; do
    if ! have "$WORK/corr_$m/results.json"; then
        $PY tools/corruption_eval.py --backbone "$(ckpt "$m")" --dataset imagenet --corruption-root "$DEMO_C" \
            --data-root "$DATA/ILSVRC" --image-size 96 --max-images 32 --out "$WORK/corr_$m" --workers 0 --no-progress
    fi
done
done_stage "$WORK/corr_<method>"

# Detection fine-tuning varies with the training seed as much as the effects it is asked about: DET_SEEDS fine-tunes
# per backbone (tools/seed_runs.py, <work>/det_<method>/seed_<s>/), each tested in the same process (train_det
# --test: <work>/det_<method>/seed_<s>/test/, the record tools/test_det.py writes); the report shows their mean, SD
# across seeds and an interval that covers both the test images and the seeds (docs/report_statistics.md).
DET_SEEDS=${DEMO_DET_SEEDS:-"0 1 2"}
for m in $METHODS; do
    stage "4/6 VOC detection: Faster R-CNN fine-tuned from the '$m' backbone, seeds $DET_SEEDS"
    todo=""
    for s in $DET_SEEDS; do have "$WORK/det_$m/seed_$s/test/results.json" || todo="$todo $s"; done
    if [ -n "$todo" ]; then
        # shellcheck disable=SC2086  # one seed per word
        quiet "det_$m" $PY tools/seed_runs.py --seeds $todo --work-dir "$WORK/det_$m" -- \
            $PY tools/train_det.py configs/voc_faster_rcnn_demo.py --backbone "$(ckpt "$m")" --test \
            --data-root "$DATA/VOCdevkit" --resume --cfg-options val_cfg=None val_dataloader=None val_evaluator=None
    fi
    done_stage "$WORK/det_$m"
done

for m in $METHODS; do
    stage "5/6 COCO captioning: NIC fine-tuned from the '$m' backbone"
    if ! have "$WORK/cap_$m/test/results.json"; then
        quiet "caption_$m" $PY tools/train_caption.py configs/caption/nic_demo.py --backbone "$(ckpt "$m")" --work-dir "$WORK/cap_$m" \
            --data-root "$DATA/coco" --seed "$SEED" --resume
        $PY tools/test_caption.py configs/caption/nic_demo.py "$(cat "$WORK/cap_$m/last_checkpoint")" \
            --data-root "$DATA/coco" --out "$WORK/cap_$m/test"
    fi
    done_stage "$WORK/cap_$m/test"
done

# The paper's Table 12 in small, on data of its own (DEMO_CIFAR_DATA, default data/demo_cifar: 1,000 training
# and 200 test images in CIFAR-100's python layout, 10 classes, and three OOD folders of 200 images): a shallow
# PyramidNet (depth 20, alpha 24) per method with a config (baseline, cutmix), then the max-softmax detector
# against the folders and 300 uniform + 300 Gaussian noise images. Sized for about 3 minutes on 2 cores.
CIFAR_DATA=${DEMO_CIFAR_DATA:-data/demo_cifar}
stage "5b/6 OOD demo data (CIFAR-100 layout + OOD folders) -> $CIFAR_DATA"
$PY tools/make_demo_data.py --out "$CIFAR_DATA" --seed "$SEED" --layouts cifar100 ood
done_stage "$CIFAR_DATA"
for m in $METHODS; do
    cfg="configs/cls/demo_cifar_pyramidnet_$m.py"
    [ -f "$cfg" ] || { printf 'no %s: OOD stage skips %s\n' "$cfg" "$m"; continue; }
    stage "5b/6 OOD detection: shallow PyramidNet with '$m' on $CIFAR_DATA, then ood_eval (msp)"
    if ! have "$WORK/ood_$m/results.json"; then
        quiet "pretrain_cifar_$m" $PY tools/train_cls.py "$cfg" --work-dir "$WORK/cifar_cls_$m" --seed "$SEED" --resume \
            --cfg-options "train_dataloader.dataset.root=$CIFAR_DATA" "val_dataloader.dataset.root=$CIFAR_DATA"
        $PY tools/ood_eval.py --backbone "$(cat "$WORK/cifar_cls_$m/last_checkpoint")" --in-dataset cifar100 \
            --data-root "$CIFAR_DATA" --ood "$CIFAR_DATA"/ood/* uniform gaussian --noise-count 300 \
            --out "$WORK/ood_$m" --seed "$SEED" --no-progress
    fi
    done_stage "$WORK/ood_$m"
done

stage "5c/6 the PyramidNets' own numbers, side by side (tools/test_cls.py, CIFAR-100 test)"
for m in $METHODS; do
    [ -f "$WORK/cifar_cls_$m/last_checkpoint" ] || continue
    have "$WORK/cifar_test_cls_$m/results.json" || background "cifar_test_cls_$m" $PY tools/test_cls.py \
        --backbone "$(cat "$WORK/cifar_cls_$m/last_checkpoint")" --dataset cifar100 --data-root "$CIFAR_DATA" \
        --out "$WORK/cifar_test_cls_$m" --workers 0 --no-progress
done
join_background
done_stage "$WORK/cifar_test_cls_<method>"
DEMO_CIFAR_C="$CIFAR_DATA/CIFAR-100-C"
stage "5c/6 a CIFAR-100-C copy of the CIFAR test set ($DEMO_CORRUPTIONS, CIFAR-C's parameters)"
if [ "$FORCE" = 1 ] || [ ! -f "$DEMO_CIFAR_C/corruptions_manifest.json" ]; then
    rm -rf "$DEMO_CIFAR_C"
    $PY tools/make_corruptions.py --layout cifar-c --data-root "$CIFAR_DATA" --out "$DEMO_CIFAR_C" \
        --corruptions $DEMO_CORRUPTIONS --seed "$SEED" --no-progress
fi
done_stage "$DEMO_CIFAR_C"
stage "5c/6 corruption_eval of both PyramidNets on $DEMO_CIFAR_C (a seeded 100 of its 200 images x 21 sets each)"
for m in $METHODS; do
    [ -f "$WORK/cifar_cls_$m/last_checkpoint" ] || continue
    have "$WORK/cifar_corr_$m/results.json" || $PY tools/corruption_eval.py --backbone "$(cat "$WORK/cifar_cls_$m/last_checkpoint")" \
        --dataset cifar100 --corruption-root "$DEMO_CIFAR_C" --data-root "$CIFAR_DATA" --out "$WORK/cifar_corr_$m" \
        --max-images 100 --workers 0 --no-progress
done
done_stage "$WORK/cifar_corr_<method>"

stage "6/6 report"
$PY tools/report.py "$WORK" --out "$WORK/report" --paper
done_stage "$WORK/report"
printf '\nmake demo finished in %ds. Stage times: %s\n' $(( $(date +%s) - T0 )) "$TIMES"
printf 'Report: %s/report/report.md and report.png; CAM figures: %s/wsol_<method>/\n' "$WORK" "$WORK"
