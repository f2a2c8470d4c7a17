#!/usr/bin/env python
"""Repeat one training command over seeds, each run in <work_dir>/seed_<s>/ (replicates for the report).

    python tools/seed_runs.py --seeds 0 1 2 --work-dir work_dirs/frcnn_cutmix -- \\
        python tools/train_det.py configs/voc_faster_rcnn_cutmix.py --backbone cutmix.pth --resume
    TOOL=tools/train_det.py python tools/seed_runs.py --seeds 0 1 2 --work-dir work_dirs/frcnn_cutmix -- \\
        tools/dist_train.sh configs/voc_faster_rcnn_cutmix.py 8 --backbone cutmix.pth --resume

The tool appends `--work-dir <work_dir>/seed_<s> --seed <s>` to the command; the runs go one after another. With
the trainer's --resume, rerunning the same line after an interruption finishes what is left (a finished run only
redoes its last step). tools/report.py groups the runs' records as replicates of one cell.
"""

from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import main_guard, parse_tool_args
from cutmix_transfer.seed_runs import plan_seed_runs, run_seeds


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="training seeds, e.g. 0 1 2")
    p.add_argument("--work-dir", required=True, help="parent folder; each seed trains in <work-dir>/seed_<s>")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the training command (without --seed/--work-dir)")
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    run_seeds(plan_seed_runs(command, args.seeds, args.work_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
