"""The executor contract and the global decisions built on its mergeable summaries.

Global stages compute their corpus-wide decisions (keep_top thresholds, bucket cuts, the mix's partial
epochs, near-dup components) from per-partition summaries instead of per-document arrays on the
driver; these tests check them against the straightforward in-memory computation, bit for bit.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.executors.local import LocalExecutor
from tests.conftest import REPO


def write_parts(tmp_path: Path, tables: list[pa.Table], prefix: str = "p") -> list[Path]:
    paths = []
    for i, t in enumerate(tables):
        paths.append(tmp_path / f"{prefix}-{i:03d}.parquet")
        pq.write_table(t, paths[-1])
    return paths


@pytest.mark.parametrize("trial", range(12))
def test_score_histograms_give_the_in_memory_threshold_and_cuts(tmp_path: Path, trial: int) -> None:
    from stages.quality_classifier import Wanted, bucket_boundaries, histogram_scores, keep_top_threshold

    rng = np.random.default_rng(trial)
    tables, scores, weights = [], [], []
    for _ in range(int(rng.integers(1, 5))):
        n = int(rng.integers(0, 400))
        s = rng.random(n).astype(np.float32)
        if trial % 3 == 0:
            s = (np.round(s * 20) / 20).astype(np.float32)  # many ties
        if trial % 4 == 1:
            s = (s - 0.5).astype(np.float32)  # negative scores order correctly too
        w = rng.integers(0, 50, n) if trial % 5 else np.zeros(n, np.int64)  # all-zero weights
        tables.append(pa.table({"quality_score": pa.array(s, pa.float32()), "n_tokens": pa.array(w, pa.int64()),
                                "text": ["x"] * n}))
        scores.append(s)
        weights.append(w)
    paths = write_parts(tmp_path, tables)
    s, w = np.concatenate(scores), np.concatenate(weights).astype(np.float64)
    ex = LocalExecutor(1)
    if len(s) == 0:
        assert histogram_scores(ex, paths, [Wanted(rank=0)], False)[0] == []
        return
    for fraction in (0.001, 0.1, 0.5, 1.0):
        want = Wanted(rank=len(s) - max(1, math.ceil(fraction * len(s))))
        got, mean, n = histogram_scores(ex, paths, [want], False)
        assert got == [keep_top_threshold(s, fraction)] and n == len(s)
        assert mean == pytest.approx(float(s.astype(np.float64).mean()))
    buckets = int(rng.integers(2, 40))
    got, _, _ = histogram_scores(ex, paths, [Wanted(share=i / buckets) for i in range(1, buckets)], True)
    assert got == bucket_boundaries(s, w, buckets)


def in_memory_partial(domains: np.ndarray, keys: np.ndarray, tokens: np.ndarray, rests: dict[str, float]
                      ) -> dict[str, tuple[int, int]]:
    """Per domain: documents taken in key order while the tokens before each are below the rest."""
    out = {}
    for d, rest in rests.items():
        if rest <= 0:
            continue
        mask = domains == d
        order = np.argsort(keys[mask], kind="stable")
        t = tokens[mask][order]
        before = np.cumsum(t) - t
        n = int(np.sum(before < rest))
        out[d] = (n, int(t[:n].sum()))
    return out


@pytest.mark.parametrize("trial", range(6))
def test_mix_partial_epochs_match_the_in_memory_cut(tmp_path: Path, trial: int) -> None:
    from stages.mix import _domain_keys, partial_epochs

    rng = np.random.default_rng(100 + trial)
    tables = []
    for p in range(int(rng.integers(1, 6))):
        n = int(rng.integers(0, 300))
        doms = rng.choice(["web", "wiki", "code", None], size=n)  # type: ignore[arg-type]
        tables.append(pa.table({"id": [f"d{p}-{i}" for i in range(n)], "domain": pa.array(list(doms), pa.string()),
                                "n_tokens": pa.array(rng.integers(0, 30, n), pa.int64())}))
    paths = write_parts(tmp_path, tables)
    keyed = pa.concat_tables([_domain_keys(p, "domain", 3) for p in paths])
    domains = keyed.column("domain").to_numpy(zero_copy_only=False)
    keys, tokens = keyed.column("key").to_numpy(), keyed.column("n_tokens").to_numpy()
    totals = {d: int(tokens[domains == d].sum()) for d in set(domains.tolist())}
    rests = {d: float(rng.uniform(0, 1.2) * t) for d, t in totals.items()}  # some beyond the domain's tokens
    rests["wiki"] = 0.0
    got = partial_epochs(LocalExecutor(1), paths, "domain", 3, rests)
    want = in_memory_partial(domains, keys, tokens, rests)
    assert {d: (n, taken) for d, (n, _, taken) in got.items()} == want
    for d, (n, last, _) in got.items():  # the cut key selects exactly the documents taken
        if n:
            assert int(np.sum(keys[domains == d] <= last)) == n


def test_local_components_label_every_edge_node_with_its_smallest(tmp_path: Path) -> None:
    from filters.lsh_graph import UnionFind

    rng = np.random.default_rng(5)
    n = 5000
    u, v = rng.integers(0, n, 1500), rng.integers(0, n, 1500)
    keep = rng.random(1500) < 0.8
    halves = [slice(0, 700), slice(700, 1500)]
    files = [str(p) for p in write_parts(tmp_path, [pa.table({"u": u[h], "v": v[h], "keep": keep[h]}) for h in halves])]
    labels = LocalExecutor(1).components(files, tmp_path / "cc", "keep")
    got = pa.concat_tables([pq.read_table(f) for f in labels])
    nodes = got.column("node").to_numpy()
    assert np.all(np.diff(nodes) > 0)  # sorted, each node once
    uf = UnionFind(n)
    uf.union(u[keep], v[keep])
    touched = np.unique(np.concatenate([u[keep], v[keep]]))
    assert nodes.tolist() == touched.tolist()
    assert got.column("root").to_numpy().tolist() == uf.roots()[touched].tolist()


def test_distinct_sketches_merge_to_the_distinct_count() -> None:
    from filters.distinct import hosts, merged_count, sketch

    urls = [f"https://site{i % 900}.example/page/{i}" for i in range(20_000)]
    parts = [sketch(pa.array(urls[i::3] + [None])) for i in range(3)]
    assert merged_count(parts) == pytest.approx(20_000, rel=0.03)
    assert merged_count([sketch(hosts(pa.array(urls)))]) == pytest.approx(900, rel=0.03)
    assert hosts(pa.array(["https://A.example:8080/x", "not a url", None])) == ["a.example", None, None]
    assert sketch(pa.array([None, None], pa.string())) is None  # no URLs: nothing to sketch
    assert merged_count([None, *parts]) == merged_count(parts) and merged_count([None]) == 0


def test_stages_filters_and_synth_never_import_an_executor() -> None:
    """The contract: stages are plans over `pipeline.primitives`; executors know nothing of stages."""
    modules = [p for room in ("stages", "filters", "synth") for p in (REPO / room).rglob("*.py")]
    offenders = [str(p.relative_to(REPO)) for p in modules if "pipeline.executors" in p.read_text(encoding="utf-8")]
    assert offenders == []
    executors = REPO / "pipeline" / "executors"
    for p in executors.glob("*.py"):
        text = p.read_text(encoding="utf-8")
        # spark_progress.py reads the status tracker of classic sessions only (a no-op under Connect)
        if p.name != "spark_progress.py":
            assert not re.search(r"\.rdd\b|sparkContext|SparkContext", text), f"{p.name}: RDD/SparkContext API"
        assert not re.search(r"^from stages|^import stages", text, re.M), f"{p.name} imports a stage module"


def test_arrow_keys_hash_as_pandas_hashes_their_python_objects() -> None:
    """`siphash64` without a Python list (hash buckets of exact_dedup's digests, ids, urls and integer
    keys) gives what pandas gives for the same values as Python objects, so buckets, and the outputs
    built from them, stay as they were."""
    import pandas as pd

    from pipeline.executors.local import bucket_of
    from pipeline.hashing import siphash64

    rng = np.random.default_rng(0)
    u64 = rng.integers(0, 2**64, 5000, dtype=np.uint64)
    cases = [pa.array(u64), pa.array([0, 2**63, 2**64 - 1, None], pa.uint64()),
             pa.array(rng.integers(-2**63, 2**63 - 1, 500)), pa.array([-1, 0, 7, None], pa.int32()),
             pa.chunked_array([pa.array(u64[:3]), pa.array(u64[3:9])]), pa.array([], pa.uint64()),
             pa.array(["a", None, "café", ""]), pa.array(["x"], pa.large_string()), pa.array([b"\xff\x00", None]),
             pa.array([bytes(range(16)), None, b"\x00" * 16], pa.binary(16))]  # exact_dedup's text digests
    for keys in cases:
        objects = np.asarray(keys.to_pylist(), dtype=object)
        for key in ("0123456789123456", "00000000deadbeef"):
            expected = pd.util.hash_array(objects, hash_key=key, categorize=False) if len(objects) else []
            assert np.array_equal(siphash64(keys, key), expected), keys.type
    buckets = bucket_of(pa.array(u64), 13, "hash")
    assert buckets.dtype == np.uint64 and set(buckets.tolist()) == set(range(13))


class _CountingExecutor(LocalExecutor):
    """The local executor inline, recording how many results each map hands back to the driver."""

    def __init__(self, slots: int):
        super().__init__(1)
        self.slots, self.returned = slots, []

    @property  # type: ignore[override]
    def workers(self) -> int:
        return self.slots

    @workers.setter
    def workers(self, value: int) -> None:
        pass

    def map(self, fn, items, progress=None):  # type: ignore[no-untyped-def]
        out = super().map(fn, items, progress)
        self.returned.append(len(out))
        return out


def _square_hist(x: int) -> tuple[tuple[int, ...], list[int]]:
    return tuple(int(v == x % 7) for v in range(7)), [x * x]


def _merge_hist(a: tuple[tuple[int, ...], list[int]], b: tuple[tuple[int, ...], list[int]]
                ) -> tuple[tuple[int, ...], list[int]]:
    return tuple(p + q for p, q in zip(a[0], b[0], strict=True)), a[1] + b[1]


@pytest.mark.parametrize("slots", [1, 2, 3, 16])
def test_aggregate_folds_in_tasks_and_gives_the_same_result_for_any_slot_count(slots: int) -> None:
    from pipeline.primitives import FOLDS_PER_WORKER, aggregate

    items = list(range(1000))
    ex = _CountingExecutor(slots)
    got = aggregate(ex, _square_hist, items, _merge_hist, ((0,) * 7, []))
    assert got == (tuple(sum(1 for x in items if x % 7 == v) for v in range(7)), [x * x for x in items])
    assert ex.returned == [min(len(items), FOLDS_PER_WORKER * slots)]  # a few partials reach the driver, not 1000


def _fails_on_13(x: int) -> tuple[tuple[int, ...], list[int]]:
    if x == 13:
        raise ValueError("bad partition")
    return _square_hist(x)


def test_aggregate_names_the_item_that_failed() -> None:
    from pipeline.errors import StageFailed
    from pipeline.primitives import aggregate

    with pytest.raises(StageFailed, match=r"^13: ValueError: bad partition"):
        aggregate(_CountingExecutor(2), _fails_on_13, list(range(40)), _merge_hist, ((0,) * 7, []))
