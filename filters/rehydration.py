"""Rehydration: upsample a deduplicated document by the size of the duplicate cluster it stands for.

FineWeb-2 found that keeping one copy per duplicate cluster and then repeating it by a weight that
depends on how many copies the web had (a few copies: a sign of quality; thousands: boilerplate and
spam) beats both full deduplication and no deduplication. The weight table maps cluster size to
copies; sizes between two entries interpolate linearly, sizes past the last entry take its weight.
The default table is FineWeb-2's (`rehydration_fineweb2.json`, source named there).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

DEFAULT_TABLE = Path(__file__).with_name("rehydration_fineweb2.json")


@functools.cache
def default_table() -> dict[int, float]:
    data = json.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))
    return {int(k): float(v) for k, v in data["weights"].items()}


def check_table(table: dict[int, float]) -> dict[int, float]:
    """A weight table as given in a config: sizes >= 1, weights >= 0, at least one entry."""
    if not table:
        raise ValueError("the rehydration table is empty")
    for size, weight in table.items():
        if int(size) < 1 or float(weight) < 0:
            raise ValueError(f"{size}: {weight}: cluster sizes must be >= 1 and weights >= 0")
    return {int(k): float(v) for k, v in sorted(table.items(), key=lambda kv: int(kv[0]))}


def copies(cluster_sizes: np.ndarray, table: dict[int, float]) -> np.ndarray:
    """Copies per document (integers, from the interpolated weight rounded half up) for cluster sizes
    (`dup_count`; null/0 read as 1). Integers, so a document is repeated whole and token counts stay
    exact sums (the same on every executor)."""
    sizes = np.maximum(np.asarray(cluster_sizes, dtype=np.float64), 1.0)
    xs = np.array(sorted(table), dtype=np.float64)
    ys = np.array([table[int(x)] for x in xs], dtype=np.float64)
    return np.floor(np.interp(sizes, xs, ys) + 0.5).astype(np.int64)
