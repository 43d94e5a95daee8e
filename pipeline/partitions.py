"""Partition bookkeeping the runner owns for every stage kind (used through `pipeline/stage_context.py`):
the kept/removed split of one partition, its completion marker, and the counts merged into the manifest.

A partition is finished when its marker (`_parts/<name>.json`) carries the stage hash; the marker is
written last, after the partition's data files, so a killed run redoes exactly the unfinished ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.io import read_json_or_none, write_json, write_parquet
from pipeline.schema import REASON, reason_key


def partition_name(path: str | Path) -> str:
    """`.../part-00003.parquet` -> `part-00003` (a local path, a URI or a remote path object)."""
    return str(path).rsplit("/", 1)[-1].removesuffix(".parquet")


def split_by_reason(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Kept rows (reason null, column dropped) and removed rows (with reason)."""
    reason = table.column(REASON)
    removed_mask = pc.is_valid(reason)
    kept = table.filter(pc.invert(removed_mask)).drop_columns([REASON])
    return kept, table.filter(removed_mask)


def count_split(kept: pa.Table, removed: pa.Table) -> dict[str, Any]:
    by_reason: dict[str, int] = {}
    if removed.num_rows:
        for reason in removed.column(REASON).to_pylist():
            key = reason_key(reason)
            by_reason[key] = by_reason.get(key, 0) + 1
    return {
        "in": kept.num_rows + removed.num_rows,
        "kept": kept.num_rows,
        "removed": removed.num_rows,
        "added": 0,
        "by_reason": by_reason,
        "chars_kept": int(pc.sum(pc.utf8_length(kept.column("text"))).as_py() or 0) if kept.num_rows else 0,
        **({"tokens_kept": int(pc.sum(kept.column("n_tokens")).as_py() or 0)} if "n_tokens" in kept.column_names
           else {}),
    }


def write_split(table: pa.Table, stage_dir: Path, name: str, stage_hash: str, extra: dict[str, Any],
                added: int = 0) -> dict:
    """Write kept/removed files for one partition, then its completion marker (last, atomically).
    `added` says how many kept rows are new (not in the stage's input), e.g. repeated or synthetic."""
    kept, removed = split_by_reason(table)
    write_parquet(kept, stage_dir / "data" / f"{name}.parquet")
    removed_path = stage_dir / "removed" / f"{name}.parquet"
    if removed.num_rows:
        write_parquet(removed, removed_path)
    else:
        removed_path.unlink(missing_ok=True)
    counts = count_split(kept, removed)
    counts["in"] -= added
    counts["added"] = added
    counts.update(extra)
    write_json({"config_hash": stage_hash, "counts": counts}, stage_dir / "_parts" / f"{name}.json")
    return counts


def part_done(stage_dir: Path, name: str, stage_hash: str) -> dict | None:
    marker = read_json_or_none(stage_dir / "_parts" / f"{name}.json")
    if marker and marker.get("config_hash") == stage_hash and (stage_dir / "data" / f"{name}.parquet").exists():
        return marker["counts"]
    return None


def merge_counts(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"in": 0, "kept": 0, "removed": 0, "added": 0, "by_reason": {}}
    for counts in parts:
        for key, value in counts.items():
            if key == "by_reason":
                for reason, n in value.items():
                    total["by_reason"][reason] = total["by_reason"].get(reason, 0) + n
            elif isinstance(value, int | float):
                total[key] = total.get(key, 0) + value
    total["by_reason"] = dict(sorted(total["by_reason"].items()))
    return total
