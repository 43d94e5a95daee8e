"""Notebook access to a finished (or running) pipeline output: `pipeline.open_run(OUT)`.

Reads lazily: only the requested columns and rows are pulled from Parquet, so a notebook on a
large run stays responsive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as pads

from pipeline.io import read_json_or_none


class RunView:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: no such run output directory")
        self.run_info: dict[str, Any] = read_json_or_none(self.path / "_run.json") or {}

    def stage_names(self) -> list[str]:
        plan = self.run_info.get("plan") or []
        names = [row["stage"] for row in plan]
        return names or sorted(p.parent.name for p in self.path.glob("*/_manifest.json"))

    def manifest(self, stage: str) -> dict[str, Any] | None:
        return read_json_or_none(self.path / stage / "_manifest.json")

    def stats(self) -> pd.DataFrame:
        """One row per stage: state and the manifest counts."""
        rows = []
        for name in self.stage_names():
            m = self.manifest(name)
            c = (m or {}).get("counts", {})
            state = "done" if m else ("partial" if (self.path / name).exists() else "pending")
            rows.append({"stage": name, "kind": (m or {}).get("kind", ""), "state": state,
                         "in": c.get("in"), "added": c.get("added"), "kept": c.get("kept"),
                         "removed": c.get("removed"), "tokens": (m or {}).get("tokens"),
                         "seconds": (m or {}).get("seconds"), "by_reason": c.get("by_reason", {})})
        return pd.DataFrame(rows)

    def _read(self, directory: Path, columns: list[str] | None, limit: int | None) -> pd.DataFrame:
        files = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
        if not files:
            return pd.DataFrame(columns=columns or [])
        dataset = pads.dataset([str(f) for f in files], format="parquet")
        if limit is not None:
            table = dataset.head(limit, columns=columns)
        else:
            table = dataset.to_table(columns=columns)
        return table.to_pandas()

    def docs(self, stage: str, columns: list[str] | None = None, limit: int | None = None) -> pd.DataFrame:
        """Documents kept after `stage` (for the shard stage: the text shards, in shard order)."""
        if not (self.path / stage / "data").is_dir() and (self.path / "shards" / "text").is_dir():
            return self._read(self.path / "shards" / "text", columns, limit)
        return self._read(self.path / stage / "data", columns, limit)

    def removed(self, stage: str, columns: list[str] | None = None, limit: int | None = None,
                reason: str | None = None) -> pd.DataFrame:
        """Documents `stage` removed, with their `reason` (optionally only those starting with `reason`)."""
        frame = self._read(self.path / stage / "removed", columns, None if reason else limit)
        if reason and not frame.empty:
            frame = frame[frame["reason"].str.startswith(reason)]
            frame = frame.head(limit) if limit is not None else frame
        return frame.reset_index(drop=True)

    def quarantine(self, limit: int | None = None) -> pd.DataFrame:
        return self._read(self.path / "quarantine", None, limit)

    def __repr__(self) -> str:
        return f"RunView({str(self.path)!r}, stages={self.stage_names()})"
