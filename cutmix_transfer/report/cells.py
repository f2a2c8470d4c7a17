"""The report's cell identity: which result records are one cell of the report (tools/report.py).

A cell is (checkpoint row, column, data identity, protocol identity): `data_key` says which images a record
measured, results.protocol_identity under which protocol (both 'unrecorded' for records written before they
existed), `cell_key` joins them. Records of one cell are reruns (the newest is shown); records of different cells
are never merged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..results import UNRECORDED, protocol_identity


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
