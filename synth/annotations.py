"""LLM annotations as training labels (the FineWeb-Edu recipe): documents a model scored with an
``annotate`` recipe become positive (score >= min_score) and negative examples for the fastText quality
classifier (``curate train quality --from-annotations RUN_OR_FILE --min-score 3``).

A run directory is searched for ``*/annotations/*.parquet`` (every synth stage's); a file may be one such
Parquet file or JSONL with ``text`` and ``score`` fields. Rows without a score (never written by the stage,
but possible in a hand-made file) are skipped and counted, never taken as 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

POSITIVE = "hq"
NEGATIVE = "negative"


def annotation_rows(source: str | Path, recipe: str | None = None) -> list[dict[str, Any]]:
    """Rows (id, recipe, score, text) from a run directory, an annotations Parquet file or a JSONL file."""
    import pyarrow.parquet as pq

    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*/annotations/*.parquet")) or sorted(path.glob("annotations/*.parquet"))
        if not files:
            raise FileNotFoundError(f"{path}: no */annotations/*.parquet (run a synth stage with an annotate recipe)")
        rows = [r for f in files for r in pq.read_table(f, columns=["id", "recipe", "score", "text"]).to_pylist()]
    elif path.suffix == ".parquet":
        rows = pq.read_table(path).to_pylist()
    else:
        rows = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as e:
                        raise ValueError(f"{path}:{n}: not JSON ({e})") from None
    if recipe is not None:
        rows = [r for r in rows if r.get("recipe") == recipe]
    return rows


def annotation_examples(source: str | Path, min_score: float, recipe: str | None = None
                        ) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(text, label) pairs and counts: positives, negatives, skipped (no score or no text)."""
    examples: list[tuple[str, str]] = []
    counts = {"positive": 0, "negative": 0, "skipped": 0}
    for r in annotation_rows(source, recipe):
        score, text = r.get("score"), r.get("text")
        if score is None or not isinstance(text, str) or not text.strip():
            counts["skipped"] += 1
            continue
        positive = float(score) >= min_score
        examples.append((text, POSITIVE if positive else NEGATIVE))
        counts["positive" if positive else "negative"] += 1
    return examples, counts
