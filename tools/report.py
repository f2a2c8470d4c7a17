#!/usr/bin/env python
"""Put each checkpoint's classification, localization, detection and captioning numbers in one row.

    python tools/report.py work_dirs/ [more dirs...] --out work_dirs/report [--paper]

Writes report.md, report.csv and report.png; with robustness records (tools/robustness_eval.py) also the FGSM
column and robustness_<dataset>.png, the CutMix paper's Figure 5 panels with every checkpoint's curves overlaid.
--paper adds the paper's ResNet-50 rows (Tables 3, 5, 6 and 11).

A cell is (checkpoint, column, data, protocol): one checkpoint evaluated on different data gets separate columns
('<title> [data k]', legend under the table). Records of one cell that differ only in the training seed
(`train_seed`) are replicates: the cell shows the mean over runs ± the SD across seeds (n=R), the figure every run
as a dot. A rerun (the same seed twice, or records without a seed) shows the newest record and names every file
under the table (--strict: an error). Numbers with per-image results get a 95% interval: one run, over the test
images only (the cell says so); several runs, over the images and the runs. Each pair of checkpoints on the same
images gets a paired difference with an exact or permutation test and Holm's adjusted p over all of them
(docs/report_statistics.md).
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import call_with_options, main_guard, parse_tool_args
from cutmix_transfer.report.bootstrap import DEFAULT_RESAMPLES
from cutmix_transfer.report.table import write_report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("result_dirs", nargs="+", help="folders searched recursively for results.json records")
    p.add_argument("--out", default="work_dirs/report", help="where report.md, report.csv, report.png go")
    p.add_argument("--paper", action="store_true", help="add the CutMix paper's ResNet-50 numbers as reference rows")
    p.add_argument(
        "--strict",
        action="store_true",
        help="two records of the same cell (same checkpoint, task, data, protocol and training seed, or no seed: a "
        "rerun) is an error, not a note under the table; different seeds are replicates, never an error",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_RESAMPLES,
        metavar="N",
        help="resamples of the evaluated images for each 95%% interval and paired difference "
        "(default %(default)s; 0 = no intervals and no paired tests)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples and permutations (default 0)")
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    paths = call_with_options(write_report, args, out_dir=args.out)
    print(paths["markdown"].read_text())
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
