"""Token counting, domain mixing to a budget, and Megatron shards read back by megatron-core."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from stages.mix import MixConfig, domain_weights, plan_targets
from tests.conftest import build_tokenizer, curate, pipeline_config, write_config

DOMAIN_RULES = [{"source": "a", "domain": "web"}, {"source": "b", "domain": "web"}, {"source": "c", "domain": "forum"},
                {"source": "d", "domain": "wiki"}, {"source": "e", "domain": "math"}]


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tokenizer(tmp_path_factory.mktemp("tok"))


def mix_config(tokenizer: Path, **mix: object) -> dict:
    cfg = pipeline_config()
    cfg["stages"] = [{"name": "normalize"}, {"name": "exact_dedup"},
                     {"name": "domain", "kind": "domain_classifier", "rules": DOMAIN_RULES},
                     {"name": "tokenize", "tokenizer": str(tokenizer)},
                     {"name": "mix", **mix},
                     {"name": "shard", "formats": ["parquet", "megatron"], "tokenizer": str(tokenizer),
                      "max_shard_bytes": 30000}]
    return cfg


def test_water_filling_and_weightings() -> None:
    avail = {"a": 100, "b": 1000, "c": 10}
    caps = {d: 4 * t for d, t in avail.items()}
    targets = plan_targets(avail, {"a": 0.5, "b": 0.3, "c": 0.2}, 1000, caps)
    # c is capped at 4 epochs; a (600 of 960 by weight) is then capped too; b takes the rest
    assert targets == {"a": 400, "b": pytest.approx(560), "c": 40}
    assert sum(plan_targets(avail, {"a": 1.0, "b": 0, "c": 0}, 10_000, caps).values()) == 400  # unreachable
    natural = domain_weights(MixConfig(name="m", kind="mix"), avail)
    assert natural["b"] == pytest.approx(1000 / 1110)
    flat = domain_weights(MixConfig(name="m", kind="mix", weighting="temperature", temperature=1e9), avail)
    assert flat["a"] == pytest.approx(1 / 3, rel=1e-6)
    unimax = domain_weights(MixConfig(name="m", kind="mix", weighting="unimax"), avail)
    assert list(unimax.values()) == pytest.approx([1 / 3] * 3)


def test_megatron_shards_match_text_shards_and_targets(workdir: Path, tokenizer_dir: Path) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from pipeline.tokenizer import load_tokenizer

    weights = {"web": 0.4, "forum": 0.3, "wiki": 0.2, "math": 0.1}
    write_config(workdir / "pipeline.yaml", mix_config(tokenizer_dir, weights=weights, budget_tokens=30000))
    curate("run", cwd=workdir, check=True)
    out = workdir / "out"
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    mix = json.loads((out / "mix" / "_manifest.json").read_text())
    c = mix["counts"]
    assert c["in"] + c["added"] == c["kept"] + c["removed"]
    tok = load_tokenizer(tokenizer_dir)
    texts = [s for s in manifest["shards"] if s["format"] == "parquet"]
    megas = [s for s in manifest["shards"] if s["format"] == "megatron"]
    assert len(texts) == len(megas) >= 2
    seen_tokens = 0
    for text_entry, mega_entry in zip(texts, megas, strict=True):
        rows = pq.read_table(out / "shards" / text_entry["file"]).to_pylist()
        ds = IndexedDataset(str(out / "shards" / mega_entry["file"]).removesuffix(".bin"))
        assert len(ds) == len(rows) == mega_entry["docs"]
        for i, row in enumerate(rows):
            expected = tok.tokenizer.encode(row["text"], add_special_tokens=False).ids + [tok.eod_id]
            assert ds[i].tolist() == expected
            assert row["n_tokens"] == len(expected)
            seen_tokens += len(expected)
        assert "token_ids" not in rows[0]
    assert seen_tokens == manifest["tokens"]
    for d, rep in mix["stats"]["domains"].items():
        biggest = max(pq.read_table(out / "tokenize" / "data").filter(
            pq.read_table(out / "tokenize" / "data").column("domain").to_numpy(zero_copy_only=False) == d
        ).column("n_tokens").to_pylist())
        assert 0 <= rep["realized_tokens"] - rep["target_tokens"] < biggest + 1
        assert rep["epochs"] <= 4.0
        assert manifest["domains"][d]["tokens"] == rep["realized_tokens"]
    assert mix["stats"]["shortfall"] is None
    assert sum(r["target_tokens"] for r in mix["stats"]["domains"].values()) == pytest.approx(30000)


def test_unreachable_budget_reports_shortfall_and_caps_epochs(workdir: Path, tokenizer_dir: Path) -> None:
    write_config(workdir / "pipeline.yaml", mix_config(tokenizer_dir, weighting="unimax", budget_tokens=10**7,
                                                       max_epochs=2))
    curate("run", cwd=workdir, check=True)
    mix = json.loads((workdir / "out" / "mix" / "_manifest.json").read_text())
    assert "not reachable" in mix["stats"]["shortfall"]
    for rep in mix["stats"]["domains"].values():
        assert rep["epochs"] == 2.0 and rep["note"] == "capped at max_epochs=2.0"
    epochs = pq.read_table(workdir / "out" / "mix" / "data").column("epoch").to_pylist()
    assert set(epochs) == {0, 1}
    assert mix["counts"]["added"] == epochs.count(1)


def test_shards_identical_for_1_and_2_workers_and_loadable(workdir: Path, tokenizer_dir: Path) -> None:
    import datasets

    write_config(workdir / "pipeline.yaml", mix_config(tokenizer_dir, weighting="temperature", temperature=2.0,
                                                       budget_tokens=20000))
    curate("run", "--output", "o1", "--workers", "1", cwd=workdir, check=True)
    curate("run", "--output", "o2", "--workers", "2", "--set", "partition_rows=29", cwd=workdir, check=True)
    for sub in ("text", "megatron"):
        files1 = sorted(p for p in (workdir / "o1" / "shards" / sub).rglob("*") if p.is_file())
        files2 = sorted(p for p in (workdir / "o2" / "shards" / sub).rglob("*") if p.is_file())
        assert files1
        assert [f.name for f in files1] == [f.name for f in files2]
        for f1, f2 in zip(files1, files2, strict=True):
            assert f1.read_bytes() == f2.read_bytes(), f1.name
    files = sorted(str(p) for p in (workdir / "o1" / "shards" / "text" / "parquet").glob("*.parquet"))
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    manifest = json.loads((workdir / "o1" / "shards" / "manifest.json").read_text())
    assert len(ds) == manifest["docs"]
    card = (workdir / "o1" / "shards" / "README.md").read_text()
    assert "config hash" in card and "| web |" in card


def test_idx_layout_is_megatron_v1(tmp_path: Path) -> None:
    from pipeline.megatron import write_indexed_dataset

    write_indexed_dataset(tmp_path / "x", np.array([5, 6, 7, 8, 9]), np.array([2, 3]), np.uint16)
    idx = (tmp_path / "x.idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00" and len(idx) == 42 + 20 * 2
    assert idx[17] == 8  # uint16
    assert (tmp_path / "x.bin").read_bytes() == np.array([5, 6, 7, 8, 9], dtype="<u2").tobytes()
