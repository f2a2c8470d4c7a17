#!/usr/bin/env python
"""Put each checkpoint's classification, localization, detection and captioning numbers in one row.

    python tools/report.py work_dirs/ [more dirs...] --out work_dirs/report [--paper]

Writes report.md, report.csv and report.png; with robustness records (tools/robustness_eval.py) also the FGSM
column and robustness_<dataset>.png, the CutMix paper's Figure 5 panels with every checkpoint's curves overlaid.
--paper adds the paper's ResNet-50 rows (Tables 3, 5, 6 and 11).
"""
from __future__ import annotations

import argparse
import sys

from cutmix_transfer.cli import main_guard, parse_tool_args
from cutmix_transfer.report import write_report


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("result_dirs", nargs="+", help="folders searched recursively for results.json records")
    p.add_argument("--out", default="work_dirs/report", help="where report.md, report.csv, report.png go")
    p.add_argument("--paper", action="store_true", help="add the CutMix paper's ResNet-50 numbers as reference rows")
    return p


@main_guard
def main(argv: list[str] | None = None) -> int:
    args = parse_tool_args(build_parser(), argv)
    paths = write_report(args.result_dirs, args.out, paper=args.paper)
    print(paths["markdown"].read_text())
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
