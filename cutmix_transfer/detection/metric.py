"""mmdet's VOCMetric, plus the per-class AP it computes but does not return (the report wants both)."""

from __future__ import annotations

import logging

from mmdet.evaluation.functional import eval_map
from mmdet.evaluation.metrics import VOCMetric
from mmdet.registry import METRICS

logger = logging.getLogger(__name__)


@METRICS.register_module()
class VOCMetricPerClass(VOCMetric):
    """VOCMetric whose results also hold `AP_<class>` (fraction in [0, 1]) for every class with ground truth.

    The mAP is mmdet's own (`super().compute_metrics`): VOC07 11-point by default (`eval_mode='11points'`, as
    the CutMix paper), 'area' for the VOC2012 style; boxes x0y0x1y1 in pixels with VOC's legacy +1 widths.
    Per-class AP is read from the same `eval_map` call's per-class results at the first IoU threshold.
    """

    def process(self, data_batch: dict, data_samples) -> None:
        """VOCMetric's per-image (ground truth, detections), each ground truth also naming its `img_id`."""
        super().process(data_batch, data_samples)
        for (ann, _), sample in zip(self.results[-len(data_samples) :], data_samples):
            ann["img_id"] = str(sample.get("img_id"))

    def compute_metrics(self, results: list) -> dict:
        self.per_image_results = list(results)  # all ranks' (gt, dets) per image: evaluate.py writes them out
        eval_results = super().compute_metrics(results)
        if self.metric != "mAP":
            return eval_results
        gts, preds = zip(*results)
        dataset_type = self.dataset_meta.get("dataset_type")
        dataset = "voc" if dataset_type in ("VOC2007", "VOC2012") else self.dataset_meta["classes"]
        _, per_class = eval_map(
            preds,
            gts,
            scale_ranges=self.scale_ranges,
            iou_thr=self.iou_thrs[0],
            dataset=dataset,
            logger="silent",
            eval_mode=self.eval_mode,
            use_legacy_coordinate=True,
        )
        for name, res in zip(self.dataset_meta["classes"], per_class):
            if res["num_gts"] > 0:
                eval_results[f"AP_{name}"] = float(res["ap"])
        return eval_results
