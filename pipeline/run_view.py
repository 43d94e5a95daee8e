"""Notebook access to a finished (or running) pipeline output: `pipeline.open_run(OUT)`.

Reads lazily: only the requested columns and rows are pulled from Parquet, so a notebook on a
large run stays responsive. Names are strict: an unknown stage or column is a KeyError listing the
valid ones (a typo must not quietly return some other stage's documents).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import storage
from pipeline.io import read_json_or_none

# pandas and pyarrow.dataset (which imports pandas: ~0.6 s) are imported by the methods that read documents or
# build frames; `curate status` needs neither
if TYPE_CHECKING:
    import pandas as pd

STATS_COLUMNS = ("stage", "kind", "state", "in", "added", "kept", "removed", "quarantined", "tokens", "seconds",
                 "by_reason")
FINAL = "shards"  # docs("shards") / docs(): the final text shards, in shard order


class NotARun(FileNotFoundError):
    """A path that is not the output directory of a run."""


def check_run_dir(path: str | Path) -> Any:
    """The storage location of a run's output directory (or an incremental root); NotARun otherwise."""
    out = storage.location(path)
    if not out.is_dir():
        raise NotARun(f"{path}: no such run output directory")
    if not any((out / marker).exists() for marker in ("_run.json", "generations.json", "ingest/_manifest.json")):
        raise NotARun(f"{path}: not a ling-curate run output (no _run.json); give the `output:` directory of a "
                      "run, e.g. curate status out/demo")
    return out


def _unknown(what: str, name: str, choices: list[str]) -> KeyError:
    import difflib

    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return KeyError(f"no {what} {name!r}{hint} (available: {', '.join(choices) or 'none'})")


class RunView:
    def __init__(self, path: str | Path):
        self.path = check_run_dir(path)
        self.run_info: dict[str, Any] = read_json_or_none(self.path / "_run.json") or {}

    def stage_names(self) -> list[str]:
        plan = self.run_info.get("plan") or []
        names = [row["stage"] for row in plan]
        return names or sorted(p.parent.name for p in self.path.glob("*/_manifest.json"))

    def manifest(self, stage: str) -> dict[str, Any] | None:
        return read_json_or_none(self.path / stage / "_manifest.json")

    def stage_kinds(self) -> dict[str, str]:
        """Stage name -> kind, from the run's plan (or the manifests)."""
        kinds = {row["stage"]: row.get("kind", "") for row in self.run_info.get("plan") or []}
        return kinds or {name: (self.manifest(name) or {}).get("kind", "") for name in self.stage_names()}

    def stage(self, name: str) -> str:
        """The stage called `name`, or the only stage of kind `name`; KeyError listing the stages otherwise."""
        names = self.stage_names()
        if name in names:
            return name
        of_kind = [n for n, k in self.stage_kinds().items() if k == name]
        if len(of_kind) == 1:
            return of_kind[0]
        if len(of_kind) > 1:
            raise KeyError(f"{len(of_kind)} stages of kind {name!r}: {', '.join(of_kind)}; give one of these names")
        raise _unknown("stage", name, names + ([FINAL] if FINAL not in names else []))

    def stage_rows(self) -> list[dict[str, Any]]:
        """One dict per stage: state and the manifest counts (`quarantined`: records ingest could not read)."""
        rows = []
        for name in self.stage_names():
            m = self.manifest(name)
            c = (m or {}).get("counts", {})
            state = "done" if m else ("partial" if (self.path / name).exists() else "pending")
            by_reason = c.get("by_reason", {})
            quarantined = sum(v for k, v in by_reason.items() if k.startswith("quarantine:")) if m else None
            rows.append({"stage": name, "kind": (m or {}).get("kind", ""), "state": state,
                         "in": c.get("in"), "added": c.get("added"), "kept": c.get("kept"),
                         "removed": c.get("removed"), "quarantined": quarantined, "tokens": (m or {}).get("tokens"),
                         "seconds": (m or {}).get("seconds"), "by_reason": by_reason})
        return rows

    def stats(self) -> pd.DataFrame:
        """`stage_rows()` as a frame."""
        import pandas as pd

        return pd.DataFrame(self.stage_rows(), columns=list(STATS_COLUMNS))

    def _files(self, directory: Path) -> list[Path]:
        return sorted(directory.glob("*.parquet")) if directory.is_dir() else []

    def _dataset(self, files: list[Path]) -> Any:
        filesystem, paths = storage.arrow_files(files)
        import pyarrow.dataset as pads

        return pads.dataset(paths, format="parquet", filesystem=filesystem)

    def _read(self, directory: Path, columns: list[str] | None, limit: int | None,
              schema_from: Path | None = None, what: str = "") -> pd.DataFrame:
        """Rows of the Parquet files in `directory`; with none there, an empty frame with the columns of
        `schema_from`'s files (a stage's kept documents) so that `frame["reason"]` still works."""
        import pandas as pd

        files = self._files(directory)
        if not files:
            names = self._columns(schema_from) if schema_from is not None else []
            if columns is not None:
                self._check_columns(columns, names or list(columns), what)
            return pd.DataFrame(columns=columns if columns is not None else names)
        dataset = self._dataset(files)
        if columns is not None:
            self._check_columns(columns, dataset.schema.names, what)
        table = dataset.head(limit, columns=columns) if limit is not None else dataset.to_table(columns=columns)
        return table.to_pandas()

    def _columns(self, directory: Path) -> list[str]:
        files = self._files(directory)
        names = list(self._dataset(files[:1]).schema.names) if files else []
        return names + ["reason"] if names and "reason" not in names else names

    @staticmethod
    def _check_columns(columns: list[str], available: list[str], what: str) -> None:
        missing = [c for c in columns if c not in available]
        if missing:
            raise KeyError(f"no column {', '.join(map(repr, missing))} in {what or 'these documents'} "
                           f"(available: {', '.join(available)})")

    def _final_dir(self) -> Path:
        final = self.path / "shards" / "text" / "parquet"
        if not final.is_dir():
            raise KeyError(f"no final shards in {self.path} yet: the shard stage has not finished "
                           f"(stages: {', '.join(self.stage_names())})")
        return final

    def docs(self, stage: str | None = None, columns: list[str] | None = None, limit: int | None = None
             ) -> pd.DataFrame:
        """Documents kept after `stage` (a name, or a kind when one stage has it). `docs()` or `docs("shards")`
        (or the shard stage) gives the final text shards, in shard order."""
        if stage is None or (stage == FINAL and FINAL not in self.stage_names()):
            return self._read(self._final_dir(), columns, limit, what="the final shards")
        name = self.stage(stage)
        if self.stage_kinds().get(name) == "shard":
            return self._read(self._final_dir(), columns, limit, what="the final shards")
        return self._read(self.path / name / "data", columns, limit, what=f"stage {name!r}")

    def removed(self, stage: str, columns: list[str] | None = None, limit: int | None = None,
                reason: str | None = None) -> pd.DataFrame:
        """Documents `stage` removed, with their `reason` (optionally only those starting with `reason`).
        With no removals: an empty frame with the stage's columns."""
        name = self.stage(stage)
        frame = self._read(self.path / name / "removed", columns, None if reason else limit,
                           schema_from=self.path / name / "data", what=f"stage {name!r} (removed)")
        if reason and not frame.empty:
            frame = frame[frame["reason"].str.startswith(reason)]
            frame = frame.head(limit) if limit is not None else frame
        return frame.reset_index(drop=True)

    def removed_examples(self, stage: str, reasons: list[str], columns: list[str], limit: int
                         ) -> dict[str, pd.DataFrame]:
        """Up to `limit` removed documents per reason (rows whose `reason` starts with it), in one scan of
        the stage's removed files that stops once every reason has its examples (the report's examples:
        one `removed(reason=...)` per reason read every removed text once per reason)."""
        import numpy as np
        import pandas as pd
        import pyarrow as pa
        import pyarrow.compute as pc

        name = self.stage(stage)
        files = self._files(self.path / name / "removed")
        found: dict[str, list[pd.DataFrame]] = {r: [] for r in reasons}
        missing = {r: limit for r in reasons}
        cols = list(dict.fromkeys([*columns, "reason"]))
        for batch in self._dataset(files).to_batches(columns=cols) if files and reasons else []:
            why = pc.fill_null(batch.column("reason"), "")
            for reason in [r for r, n in missing.items() if n > 0]:
                # only the rows taken become pandas (not every removed text of the batch)
                rows = np.flatnonzero(pc.starts_with(why, reason).to_numpy(zero_copy_only=False))[:missing[reason]]
                if len(rows):
                    found[reason].append(batch.take(pa.array(rows)).to_pandas()[columns])
                    missing[reason] -= len(rows)
            if not any(n > 0 for n in missing.values()):
                break
        return {r: (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns))
                for r, parts in found.items()}

    def quarantine(self, limit: int | None = None) -> pd.DataFrame:
        """Records ingest could not read: source, file, line, field, error, raw."""
        return self._read(self.path / "quarantine", None, limit)

    # -- tracing one document -----------------------------------------------------------------
    def _find(self, directory: Path, doc_id: str) -> pd.DataFrame:
        import pandas as pd

        files = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
        if not files:
            return pd.DataFrame()
        filesystem, paths = storage.arrow_files(files)
        import pyarrow.dataset as pads

        dataset = pads.dataset(paths, format="parquet", filesystem=filesystem)
        return dataset.to_table(filter=pads.field("id") == doc_id).to_pandas()

    def explain(self, doc_id: str) -> pd.DataFrame:
        """The path of one document through the stages: per stage the decision, reason and signals."""
        import pandas as pd

        rows: list[dict[str, Any]] = []
        for name in self.stage_names():
            kept = self._find(self.path / name / "data", doc_id)
            removed = self._find(self.path / name / "removed", doc_id)
            if kept.empty and removed.empty:
                if name == self.stage_names()[-1] and (self.path / "shards" / "text" / "parquet").is_dir():
                    kept = self._find(self.path / "shards" / "text" / "parquet", doc_id)
                if kept.empty:
                    continue
            frame = removed if kept.empty else kept
            row = frame.iloc[0]
            signals = {k: _plain(v) for k, v in row.items()
                       if k not in ("id", "text", "meta", "reason", "token_ids", "source", "url")}
            rows.append({"stage": name, "decision": "removed" if kept.empty else "kept",
                         "reason": row.get("reason") if kept.empty else None,
                         "copies": len(frame), "signals": signals})
            if kept.empty:
                break
        if not rows:
            quarantined = self._find(self.path / "quarantine", doc_id)
            for _, q in quarantined.iterrows():
                rows.append({"stage": "ingest", "decision": "quarantined", "reason": q["error"], "copies": 0,
                             "signals": {"file": q["file"], "line": q["line"], "field": q["field"]}})
        return pd.DataFrame(rows, columns=["stage", "decision", "reason", "copies", "signals"])

    # -- reading side by side -----------------------------------------------------------------
    def sample(self, stage: str, reason: str | None = None, n: int = 5, seed: int = 0,
               chars: int = 400) -> pd.DataFrame:
        """`n` removed documents (optionally of one reason) beside `n` kept ones, for reading."""
        import pandas as pd

        stage = self.stage(stage)
        removed = self.removed(stage, columns=None, reason=reason)
        kept = self.docs(stage, columns=["id", "text"], limit=max(n * 20, 100))
        pick_r = removed.sample(min(n, len(removed)), random_state=seed) if len(removed) else removed
        pick_k = kept.sample(min(n, len(kept)), random_state=seed) if len(kept) else kept
        rows = [{"side": "removed", "id": r["id"], "reason": r["reason"], "text": str(r["text"])[:chars]}
                for _, r in pick_r.iterrows()]
        rows += [{"side": "kept", "id": r["id"], "reason": None, "text": str(r["text"])[:chars]}
                 for _, r in pick_k.iterrows()]
        return pd.DataFrame(rows, columns=["side", "id", "reason", "text"])

    # -- plots ----------------------------------------------------------------------------------
    def plot_funnel(self) -> Any:
        """Documents (and tokens where known) kept after each stage."""
        import matplotlib.pyplot as plt

        stats = self.stats()
        stats = stats[stats["state"] == "done"]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.bar(stats["stage"], stats["kept"], color="#4c72b0", label="kept")
        ax.bar(stats["stage"], stats["removed"], bottom=stats["kept"], color="#dd8452", label="removed")
        ax.set_xlabel("stage")
        ax.set_ylabel("documents")
        ax.set_title("Documents per stage")
        ax.legend()
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        return fig

    def score_frame(self, column: str, by: str | None = None) -> tuple[pd.DataFrame, str | None]:
        """Values of a signal column over kept and removed documents of the stage that made it."""
        import pandas as pd

        for name in self.stage_names():
            data = self.path / name / "data"
            files = sorted(data.glob("*.parquet"))
            if files and column in self._dataset(files).schema.names:
                cols = [column] + ([by] if by and by != "decision" else [])
                kept = self._read(data, cols, None).assign(decision="kept")
                removed_dir = self.path / name / "removed"
                removed = self._read(removed_dir, cols, None).assign(decision="removed") \
                    if any(removed_dir.glob("*.parquet")) else kept.iloc[0:0]
                return pd.concat([kept, removed], ignore_index=True), name
        return pd.DataFrame(columns=[column]), None

    def stage_settings(self, stage: str) -> dict[str, Any]:
        """The stage's settings as the run used them (from `_run.json`)."""
        for row in (self.run_info.get("config") or {}).get("stages") or []:
            if isinstance(row, dict) and row.get("name") == stage:
                return row
        return {}

    def thresholds(self, column: str, stage: str | None) -> list[tuple[str, float]]:
        """Cut-offs that apply to a signal column: `(setting, value)` pairs such as ("min_mean_word_length", 3.0).

        Found by name in the stage's settings: for `gopher_mean_word_length` the keys `min_mean_word_length`
        and `max_mean_word_length` of the `gopher*` filter groups, for `lang_score` the langid stage's
        `min_score`; the quality stage's effective threshold (keep_top included) comes from its manifest."""
        if stage is None:
            return []
        settings = self.stage_settings(stage)
        family, _, stat = column.partition("_")
        stats = {stat, stat.removesuffix("_count") + "s"} if stat.endswith("_count") else {stat}
        groups = [settings] + [v for k, v in settings.items() if isinstance(v, dict) and k.startswith(family)]
        found: list[tuple[str, float]] = []
        for group in groups:
            for key, value in group.items():
                if (key.startswith(("min_", "max_")) and key[4:] in stats and isinstance(value, int | float)
                        and not isinstance(value, bool)):
                    found.append((key, float(value)))
        effective = ((self.manifest(stage) or {}).get("stats") or {}).get("threshold")
        if column == "quality_score" and isinstance(effective, int | float):
            found = [("threshold", float(effective))]
        return sorted(set(found))

    def score_histogram(self, column: str = "quality_score", by: str | None = None, bins: int = 40
                        ) -> tuple[Any, list[tuple[str, Any]], list[tuple[str, float]], str | None]:
        """(bin edges, (group, counts) per group of `by` on those shared bins, (label, value) per threshold
        that cuts the column, the stage that made it): what `plot_scores` and the report draw."""
        import numpy as np
        import pandas as pd

        frame, stage = self.score_frame(column, by)
        if frame.empty:
            return np.linspace(0.0, 1.0, bins + 1), [], [], stage
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        finite = values[np.isfinite(values)]
        edges = np.histogram_bin_edges(finite, bins=bins) if len(finite) else np.linspace(0.0, 1.0, bins + 1)
        groups = frame.assign(_v=values).groupby(by) if by else [(None, frame.assign(_v=values))]
        out = []
        for label, group in groups:
            v = group["_v"].to_numpy()
            counts, _ = np.histogram(v[np.isfinite(v)], bins=edges)
            out.append((str(label) if label is not None else column, counts))
        marks = [(f"threshold {key}={value:.3g}" if key != "threshold" else f"threshold {value:.3g}", value)
                 for key, value in self.thresholds(column, stage)]
        return edges, out, marks, stage

    def plot_scores(self, column: str = "quality_score", by: str | None = None, bins: int = 40) -> Any:
        """Histogram of a score column (split by `by`, the groups on shared bins), with every threshold
        that cuts it marked."""
        import matplotlib.pyplot as plt

        edges, groups, marks, stage = self.score_histogram(column, by, bins)
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.set_xlabel(column)
        ax.set_ylabel("documents")
        if not groups:
            ax.set_title(f"{column}: no data")
            return fig
        colors = {"kept": "#4c72b0", "removed": "#dd8452"}
        for label, counts in groups:
            # one filled step artist per group (ax.hist draws a patch per bin: most of a figure's cost)
            ax.stairs(counts, edges, fill=True, alpha=0.6, label=label, color=colors.get(label))
        for label, value in marks:
            ax.axvline(value, color="red", linestyle="--", label=label)
        ax.set_title(f"{column} ({stage})")
        ax.legend(fontsize=8, loc="upper right")
        fig.subplots_adjust(left=0.1, right=0.98, bottom=0.16, top=0.9)  # fixed margins: tight_layout costs more
        return fig

    def __repr__(self) -> str:
        return f"RunView({str(self.path)!r}, stages={self.stage_names()})"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays -> plain Python, for readable `explain` output."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
