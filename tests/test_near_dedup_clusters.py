"""No removal by chain: a document leaves `near_dedup` only as a verified duplicate of the survivor
it is removed for (exact Jaccard, or containment for an append-style copy); the rest of its
component stays or forms its own clusters, the same for any worker count and partitioning.
(The Spark executor's run of the same shapes is in test_near_dedup_spark.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.near_dup_shapes import (
    Words,
    chain,
    outcome,
    planted_shapes,
    reference_clusters,
    shingles,
    similarity,
    write_inputs,
)

# 20 bands of 5 rows: pairs at Jaccard 0.8 become candidates with probability 0.9997, so what is
# decided depends on verification and the survivor rule, not on LSH luck
LSH = {"num_perm": 100, "bands": 20, "rows": 5}


def run_stage(root: Path, texts: dict[str, str], workers: int = 1, partition_rows: int = 7,
              executor: str = "local", **stage: Any) -> dict[str, dict[str, Any]]:
    from pipeline.config import validate
    from pipeline.runner import Runner

    out = root / f"out-{executor}-{workers}-{partition_rows}"
    cfg: dict[str, Any] = {"name": "nd", "output": str(out), "workers": workers, "seed": 5,
                           "partition_rows": partition_rows, "executor": executor,
                           "inputs": write_inputs(root / "in", texts),
                           "stages": [{"name": "near_dedup", "threshold": 0.8, **LSH, **stage}]}
    if executor == "spark":
        from tests.spark_util import TEST_CONF

        cfg["spark"] = {"master": "local[2]", "conf": TEST_CONF}
    Runner(validate(cfg)).run()
    return outcome(out)


def expected(texts: dict[str, str], measure: str = "jaccard") -> dict[str, dict[str, Any]]:
    """What the documented rule gives, from the plain-Python reference."""
    removed = reference_clusters(texts, 0.8, measure)
    sizes: dict[str, int] = {}
    for s in removed.values():
        sizes[s] = sizes.get(s, 1) + 1
    return {k: {"dup_of": removed.get(k), "dup_cluster": removed.get(k) or (k if k in sizes else None),
                "dup_count": None if k in removed else sizes.get(k, 1),
                "reason": f"near_dup:of={removed[k]}" if k in removed else None} for k in texts}


def test_chain_of_30_keeps_every_document_not_verified_against_its_survivor(tmp_path: Path) -> None:
    """The issue's case: each document 3 words (of 400) away from the previous one, plus 20
    unrelated ones. Components chain all 30 together (29 removals before); now every removed
    document has Jaccard >= 0.8 with the document named in its dup_of, and no two kept ones do."""
    words = Words(11)
    texts = chain(words, "c", 30, 400, 3, spaced=False)
    texts.update({f"u{i:02d}": " ".join(words.take(400)) for i in range(20)})
    sets = {k: shingles(v) for k, v in texts.items()}
    assert similarity(sets["c00"], sets["c01"], "jaccard", False) > 0.9
    assert similarity(sets["c00"], sets["c29"], "jaccard", False) < 0.3
    got = run_stage(tmp_path, texts)  # default survivor rule: length desc, then id
    removed = {k: r["dup_of"] for k, r in got.items() if r["reason"]}
    assert removed and all(got[k]["reason"] == f"near_dup:of={s}" for k, s in removed.items())
    for k, s in removed.items():
        assert got[s]["reason"] is None  # removed for a kept survivor ...
        assert similarity(sets[k], sets[s], "jaccard", True) >= 0.8  # ... it was verified against
    kept = sorted(k for k, r in got.items() if not r["reason"])
    for i, a in enumerate(kept):
        for b in kept[i + 1:]:
            assert similarity(sets[a], sets[b], "jaccard", False) < 0.8, (a, b)
    assert all(not got[f"u{i:02d}"]["reason"] and got[f"u{i:02d}"]["dup_cluster"] is None for i in range(20))
    assert len(removed) < 29 and sum(k.startswith("c") for k in kept) >= 5
    assert got == expected(texts)
    stats = json.loads((tmp_path / "out-local-1-7" / "near_dedup" / "_manifest.json").read_text())["stats"]
    assert stats["components"] == 1 and stats["rounds"] >= 2
    assert stats["members_not_verified_against_first_survivor"] > 0 and stats["open_after_last_round"] == 0


def test_planted_chain_star_and_append_give_the_expected_clusters(tmp_path: Path) -> None:
    texts = planted_shapes()
    want = {  # survivor rule length desc, id asc: every chain/star document has the same length
        "c01": "c00", "c02": "c00", "c04": "c03", "c05": "c03", "c07": "c06", "c08": "c06",
        **{f"s{i}": "s0" for i in range(1, 7)},
    }
    one = run_stage(tmp_path, texts, workers=1, partition_rows=5)
    assert {k: r["dup_of"] for k, r in one.items() if r["dup_of"]} == want
    assert {k: r["dup_count"] for k, r in one.items() if (r["dup_count"] or 1) > 1} == {
        "c00": 3, "c03": 3, "c06": 3, "s0": 7}
    assert one["c09"]["dup_cluster"] is None and one["a0"]["reason"] is None and one["a1"]["reason"] is None
    assert one == expected(texts)
    two = run_stage(tmp_path, texts, workers=2, partition_rows=3)
    assert two == one


def test_append_style_duplicate_needs_containment(tmp_path: Path) -> None:
    """a1 repeats a0 and adds half as much again (Jaccard 0.66, containment 1.0): with
    `similarity: containment` a0 leaves as a duplicate of the longer a1, never the other way round."""
    texts = planted_shapes()
    got = run_stage(tmp_path, texts, similarity="containment", num_perm=100, bands=25, rows=4)
    assert got["a0"]["reason"] == "near_dup:of=a1" and got["a1"]["dup_count"] == 2
    assert {k: r["dup_of"] for k, r in got.items() if k.startswith("c") and r["dup_of"]} == {
        "c01": "c00", "c02": "c00", "c03": "c00", "c05": "c04", "c06": "c04", "c07": "c04", "c09": "c08"}
    assert got == expected(texts, "containment")


@pytest.mark.parametrize("verify", [True, False])
def test_one_round_cap_keeps_what_it_could_not_verify(tmp_path: Path, verify: bool) -> None:
    """`max_rounds: 1` is the canonical-document rule alone; without `verify` members are checked
    against their survivor by the signatures' estimate."""
    texts = planted_shapes()
    got = run_stage(tmp_path, texts, max_rounds=1, verify=verify)
    assert {k: r["dup_of"] for k, r in got.items() if k.startswith("c") and r["dup_of"]} == {
        "c01": "c00", "c02": "c00"}
    assert all(got[f"s{i}"]["dup_of"] == "s0" for i in range(1, 7))


@pytest.mark.parametrize(("rule", "survivor"), [(["newest"], "s3"), ([{"source_priority": ["b", "a"]}, "id"], "s4"),
                                                (["quality", "length", "id"], "s0")])
def test_survivor_policies(tmp_path: Path, rule: list[Any], survivor: str) -> None:
    """`newest` by the records' `date` field (kept in meta by ingest), `source_priority` by input name."""
    from pipeline.config import validate
    from pipeline.runner import Runner
    from tests.near_dup_shapes import star

    texts = star(Words(3), "s", 7, 400, 2)
    dates = {"s0": "2023-01-05", "s1": "2023-06-01T10:00:00Z", "s2": None, "s3": "2024-02-29T23:59:00+00:00",
             "s4": "2024-02-29", "s5": "not a date", "s6": "2022-12-31"}
    for name, ids in (("a", ["s0", "s1", "s2", "s3"]), ("b", ["s4", "s5", "s6"])):
        (tmp_path / f"{name}.jsonl").write_text("".join(
            json.dumps({"id": k, "text": texts[k], **({"date": dates[k]} if dates[k] else {})}) + "\n" for k in ids))
    inputs = [{"name": n, "path": str(tmp_path / f"{n}.jsonl"), "format": "jsonl", "id_field": "id"} for n in "ab"]
    cfg = {"name": "nd", "output": str(tmp_path / "out"), "workers": 1, "seed": 5, "partition_rows": 3,
           "inputs": inputs, "stages": [{"name": "near_dedup", **LSH, "survivor": rule}]}
    Runner(validate(cfg)).run()
    got = outcome(tmp_path / "out")
    assert got[survivor]["reason"] is None and got[survivor]["dup_count"] == 7
    assert all(got[k]["dup_of"] == survivor for k in texts if k != survivor)


def test_survivor_rule_errors_name_the_item() -> None:
    from pipeline.config import ConfigError, validate

    with pytest.raises(ConfigError) as err:
        validate({"name": "x", "output": "o", "inputs": [{"name": "d", "path": "d.jsonl"}],
                  "stages": [{"name": "near_dedup", "survivor": ["quality", {"source_prio": ["a"]}]}]})
    assert "stages.near_dedup.survivor" in str(err.value) and "source_priority" in str(err.value)
