"""The report's cell identity: which result records are one cell of the report (tools/report.py).

A cell is (checkpoint row, column, data identity, protocol identity): `data_key` says which images a record
measured, results.protocol_identity under which protocol (both 'unrecorded' for records written before they
existed), `cell_key` joins them; records of different cells are never merged. Within a cell (`replicate_runs`),
records that differ only in the training seed (results.TRAIN_SEED, not part of the protocol identity) are
replicates, runs of one cell; two records of the same seed, or records without a seed (written before the key
existed), are reruns: the newest is shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..results import TRAIN_SEED, UNRECORDED, protocol_identity


def row_sha256(rec: dict[str, Any]) -> str:
    """The checkpoint whose row a record belongs to: a WSOL run on saved maps that carry their source checkpoint
    (this project's cams.npz) joins that checkpoint's row; any other record its own checkpoint's."""
    source = rec.get("source_checkpoint")
    if isinstance(source, dict) and source.get("sha256"):
        return str(source["sha256"])
    return str(rec["checkpoint"]["sha256"])


def data_key(rec: dict[str, Any]) -> tuple[str, str, str, str]:
    """(dataset, split, root, image-list digest): which data a record measured. Records written before the
    `data` block existed get an 'unrecorded' digest (their own value, never equal to a recorded one) and the root
    their tool wrote as `data_root`, if any."""
    d = rec.get("data")
    if not isinstance(d, dict):
        return (str(rec.get("dataset")), str(rec.get("split")), str(rec.get("data_root") or UNRECORDED), UNRECORDED)
    return (
        str(d.get("dataset", rec.get("dataset"))),
        str(d.get("split", rec.get("split"))),
        str(d.get("root")),
        str(d.get("images_sha256")),
    )


def data_label(key: tuple[str, str, str, str], num_images: Any) -> str:
    """A data identity as the report's legend names it."""
    dataset, split, root, digest = key
    if digest == UNRECORDED:
        where = "" if root == UNRECORDED else f", {root}"
        return f"{dataset} {split}{where}, which images not recorded (the record predates the data identity)"
    return f"{dataset} {split}, {root}, {num_images} images (list sha256 {digest[:12]})"


def created(pr: tuple[Path, dict[str, Any]]) -> str:
    """A (path, record) pair's creation time, the order in which reruns of a cell are told apart."""
    return str(pr[1].get("created", ""))


CellKey = tuple[tuple[str, str, str, str], str]  # (data_key, protocol identity)
METHOD_ORDER = ("baseline", "mixup", "cutout", "cutmix")  # the report's row order (then other labels)


def cell_key(rec: dict[str, Any]) -> CellKey:
    """What, besides the checkpoint and the column, makes a report cell: the data identity and the protocol
    identity (results.protocol_identity; 'unrecorded' for records before the protocol block)."""
    return data_key(rec), protocol_identity(rec)


def newest_per_cell(records: list[tuple[Path, dict[str, Any]]], kind: str) -> list[tuple[Path, dict[str, Any]]]:
    """The newest record of `kind` per (checkpoint row, detector, data identity, protocol identity), oldest first."""
    newest: dict[tuple[Any, ...], tuple[Path, dict[str, Any]]] = {}
    for p, rec in sorted(records, key=created):
        if rec.get("kind") == kind:
            newest[(row_sha256(rec), str(rec.get("detector")), cell_key(rec))] = (p, rec)
    return sorted(newest.values(), key=created)


def protocol_fields(identity: str) -> dict[str, Any]:
    """A protocol identity's fields ({} for 'unrecorded')."""
    return {} if identity == UNRECORDED else json.loads(identity)


def protocol_label(identity: str, others: list[str]) -> str:
    """A protocol by the fields in which it differs from the recorded `others` shown beside it (all its fields if
    none differs, or if the others are all 'unrecorded')."""
    if identity == UNRECORDED:
        return "unrecorded (the record predates the protocol block, record_version < 2)"
    mine = protocol_fields(identity)
    theirs = [protocol_fields(o) for o in others if o not in (identity, UNRECORDED)]
    keys = sorted(k for k in mine if any(o.get(k, "<absent>") != mine[k] for o in theirs)) or sorted(mine)
    return ", ".join(f"{k}={json.dumps(mine[k])}" for k in keys)


Pair = tuple[Path, dict[str, Any]]


def replicate_runs(cands: list[Pair]) -> tuple[list[Pair], list[tuple[str, list[Pair]]]]:
    """One cell's records, newest first -> (its runs, its reruns).

    Runs: the newest record of each training seed, in seed order (replicates); when no record has a seed, the
    newest record alone (as before seeds were recorded). Reruns: (what they rerun, [shown record, not shown ...])
    for each seed recorded more than once, and for the records without a seed beside other records (all of them
    not shown when seeded runs exist)."""
    seeded = [pr for pr in cands if pr[1].get(TRAIN_SEED) is not None]
    unseeded = [pr for pr in cands if pr[1].get(TRAIN_SEED) is None]
    by_seed: dict[Any, list[Pair]] = {}
    for pr in seeded:
        by_seed.setdefault(pr[1][TRAIN_SEED], []).append(pr)
    reruns = [(f"train_seed {s}", prs) for s, prs in by_seed.items() if len(prs) > 1]
    if not seeded:
        return cands[:1], ([("no train_seed", cands)] if len(cands) > 1 else [])
    if unseeded:  # older records beside seeded runs: shown are the seeded runs
        reruns.append(("no train_seed, beside runs that record one", [by_seed[min(by_seed, key=str)][0], *unseeded]))
    runs = [by_seed[s][0] for s in sorted(by_seed, key=lambda s: (str(type(s)), s))]
    return runs, reruns
