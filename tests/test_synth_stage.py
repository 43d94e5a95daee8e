"""The synth stage with a scripted engine (no vLLM): pass-through, provenance, counts, failed rows, the
cache, caps, determinism across partitionings, config errors. Runs the pipeline in-process (fast)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_synth_support import require

from synth.engines import GenRequest, GenResult
from tests.conftest import pipeline_config

pytest_plugins = ["test_synth_support"]


class ScriptedEngine:
    """Answers like a cooperative model, except: 1 in 9 prompts is 'too long' (a failed generation) and
    1 in 9 outputs hits the token cap (dropped as truncated). Output depends on prompt and seed only."""

    model_id = "scripted"

    def __init__(self) -> None:
        self.fail_every = 9
        self.crash_on_call: int | None = None
        self.calls: list[int] = []
        self.last_stats: dict[str, Any] = {}

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.calls.append(len(requests))
        if self.crash_on_call == len(self.calls):
            raise KeyboardInterrupt("killed")
        out = []
        for r in requests:
            h = int(hashlib.sha256(f"{r.prompt}{r.params.seed}".encode()).hexdigest(), 16)
            if self.fail_every and h % self.fail_every == 0:
                out.append(GenResult.failure(r.id, "prompt too long: 9999 tokens, max_model_len is 256", 9999))
                continue
            words = r.prompt.split("Passage:")[-1].split()[:40]
            if "Question:" in r.prompt:
                text = "Sure, here are questions:\n" + "\n".join(
                    f"Question: What about {w} {h % 97}?\nAnswer: It is {w}, as the text says." for w in words[:6])
            else:
                text = "Here is a rewritten version:\n**" + " ".join(words) + f"** (variant {h % 1000})."
            finish = "length" if h % 9 == 1 and self.fail_every else "stop"
            out.append(GenResult(r.id, "ok", text, len(r.prompt) // 4, len(text) // 4, finish))
        self.last_stats = {"requests": len(requests), "seconds": 0.01}
        return out

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _in_workdir(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workdir)  # input paths in the config are relative, as in a project directory


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedEngine]:
    import stages.synth

    engine = ScriptedEngine()
    monkeypatch.setattr(stages.synth, "ENGINE_OVERRIDE", engine)
    yield engine


RECIPES = [
    {"recipe": "wiki_rephrase", "select": "source in ['a', 'b']", "max_input_tokens": 330, "min_output_tokens": 5},
    {"recipe": "diverse_qa", "select": "source == 'd'", "max_input_tokens": 600, "min_output_tokens": 5},
]


def synth_pipeline(tiny_model_dir: Path, following: bool = False, **synth: Any) -> dict[str, Any]:
    """normalize -> synth (-> exact_dedup when the following stage matters: it costs seconds)."""
    cfg = pipeline_config()
    stage = {"name": "synth", "engine": "vllm", "model": str(tiny_model_dir), "trust_remote_code": True,
             "recipes": RECIPES, "chunk_size": 16, **synth}
    cfg["stages"] = [{"name": "normalize"}, stage, *([{"name": "exact_dedup"}] if following else [])]
    return cfg


def run(workdir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from pipeline.config import validate
    from pipeline.runner import Runner

    cfg = {**cfg, "output": str(workdir / cfg["output"])}
    Runner(validate(cfg)).run()
    return json.loads((workdir / cfg["output"] / "synth" / "_manifest.json").read_text())


def synthetic(out: Path, stage: str = "synth") -> pa.Table:
    parts = sorted((out / stage / "data").glob("part-*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    return table.filter(pa.compute.is_valid(table.column("parent_id"))).sort_by("id")


def test_stage_passes_input_through_and_adds_documents_with_provenance(
    workdir: Path, tiny_model_dir: Path, scripted: ScriptedEngine
) -> None:
    require("transformers")
    m = run(workdir, synth_pipeline(tiny_model_dir, following=True))
    out = workdir / "out"
    c, s = m["counts"], m["stats"]
    normalized = json.loads((out / "normalize" / "_manifest.json").read_text())["counts"]["kept"]
    assert c["in"] == normalized and c["removed"] == 0 and c["kept"] == c["in"] + c["added"]
    docs = synthetic(out)
    assert c["added"] == docs.num_rows == s["synthetic_docs"] > 10
    # one schema for every partition of the stage, synthetic ones included
    schemas = {pq.read_schema(p).remove_metadata() for p in (out / "synth" / "data").glob("*.parquet")}
    assert len(schemas) == 1
    assert any(p.name.startswith("part-synth-") for p in (out / "synth" / "data").glob("*.parquet"))
    rows = docs.to_pylist()
    parents = {r["id"]: r for r in pq.read_table(out / "normalize" / "data").to_pylist()}
    for r in rows:
        assert r["id"].startswith("synth-") and r["parent_id"] in parents
        assert r["source"] == f"synth/{r['recipe']}" and r["model"].startswith("tiny-moe@")
        assert r["synth_prompt_tokens"] > 0 and r["synth_completion_tokens"] > 0 and r["url"] is None
        meta = json.loads(r["meta"])
        assert meta["parent_id"] == r["parent_id"] and meta["recipe"] == r["recipe"]
        assert not r["text"].startswith("Here is") and "**" not in r["text"]
        if r["recipe"] == "diverse_qa":  # QA pairs appended to the source chunk
            assert "\nQuestion: " in r["text"] and "Sure, here are" not in r["text"]
            assert r["text"].split("\n")[0] in parents[r["parent_id"]]["text"]
            assert parents[r["parent_id"]]["source"] == "d"
        else:
            assert parents[r["parent_id"]]["source"] in ("a", "b")
            assert meta["chunk"] == -1  # rewrites of a document's chunks joined into one document
    assert {r["recipe"] for r in rows} == {"wiki_rephrase", "diverse_qa"}
    # the pass-through part is unchanged, with null provenance
    first = sorted((out / "normalize" / "data").glob("part-*.parquet"))[0]
    before = pq.read_table(first)
    passthrough = pq.read_table(out / "synth" / "data" / first.name)
    assert passthrough.select(before.column_names).equals(before)
    assert passthrough.column("parent_id").null_count == passthrough.num_rows
    # failures: a row each, with cause; generation failures are not documents
    failed = pa.concat_tables([pq.read_table(p) for p in (out / "synth" / "failed").glob("*.parquet")]).to_pylist()
    gen = [f for f in failed if f["stage"] == "generation"]
    assert len(gen) == s["failed"] > 0 and s["failures_by_cause"] == {"prompt_too_long": len(gen)}
    assert all(f["request_id"] and f["parent_id"] in parents and "prompt too long" in f["reason"] for f in gen)
    assert s["dropped_by_cause"].get("truncated", 0) > 0
    assert s["prompts"] == s["generated"] + s["failed"] + s["cache_hits"] and s["cache_hits"] == 0
    assert s["generated_tokens"] > 0 and s["tokens_per_s"] > 0
    assert set(s["per_recipe"]) == {"wiki_rephrase", "diverse_qa"}
    assert sum(r["docs"] for r in s["per_recipe"].values()) == docs.num_rows
    assert max(scripted.calls) <= 16  # chunk_size requests per engine call
    # the following stage sees them (and dedups them like any document)
    after = pa.concat_tables([pq.read_table(p) for p in (out / "exact_dedup" / "data").glob("*.parquet")])
    assert set(docs.column("id").to_pylist()) <= set(after.column("id").to_pylist())


def test_rerun_is_served_from_the_cache_without_an_engine(
    workdir: Path, tiny_model_dir: Path, scripted: ScriptedEngine
) -> None:
    require("transformers")
    first = run(workdir, synth_pipeline(tiny_model_dir))
    before = synthetic(workdir / "out")
    calls = len(scripted.calls)
    second = run(workdir, synth_pipeline(tiny_model_dir, chunk_size=7))  # a changed setting reruns the stage
    s = second["stats"]
    failed_before = first["stats"]["failed"]
    # failed generations are not cached: they are retried (and fail again), nothing else is generated
    assert s["generated"] == 0 and s["generated_tokens"] == 0 and s["failed"] == failed_before
    assert s["cache_hits"] == first["stats"]["prompts"] - failed_before
    assert synthetic(workdir / "out").equals(before)
    assert len(scripted.calls) > calls and s["engine_loaded"]  # only the failed rows went to the engine
    # with nothing left to generate, the engine is not even created
    scripted.fail_every = 0
    cfg = synth_pipeline(tiny_model_dir)
    cfg["output"] = "out2"
    assert run(workdir, cfg)["stats"]["failed"] == 0
    calls = len(scripted.calls)
    third = run(workdir, {**cfg, "stages": synth_pipeline(tiny_model_dir, chunk_size=3)["stages"]})
    assert third["stats"]["engine_loaded"] is False and len(scripted.calls) == calls
    assert third["stats"]["cache_hits"] == third["stats"]["prompts"] > 0


def test_output_does_not_depend_on_partitioning_and_caps_are_deterministic(
    workdir: Path, tiny_model_dir: Path, scripted: ScriptedEngine
) -> None:
    require("transformers")
    run(workdir, synth_pipeline(tiny_model_dir))
    a = synthetic(workdir / "out").select(["id", "text", "parent_id"])
    cfg = synth_pipeline(tiny_model_dir, cache="other.sqlite")
    cfg.update(partition_rows=50, output="out2")
    run(workdir, cfg)
    b = synthetic(workdir / "out2").select(["id", "text", "parent_id"])
    assert a.equals(b)
    capped = synth_pipeline(tiny_model_dir, max_docs_per_recipe=3)
    capped["output"] = "out3"
    m = run(workdir, capped)
    assert {k: v["selected"] for k, v in m["stats"]["per_recipe"].items()} == {"wiki_rephrase": 3, "diverse_qa": 3}
    capped["output"] = "out4"
    capped["partition_rows"] = 7
    run(workdir, capped)
    assert synthetic(workdir / "out3").column("id").equals(synthetic(workdir / "out4").column("id"))


def test_config_errors_name_the_problem(workdir: Path, tiny_model_dir: Path) -> None:
    from pipeline.config import ConfigError, validate

    bad = synth_pipeline(tiny_model_dir, recipes=["wiki_rephrase"])  # needs quality_bucket
    with pytest.raises(ConfigError) as e:
        run(workdir, bad)
    assert "quality_bucket" in str(e.value) and "recipes.wiki_rephrase.select" in str(e.value)
    for synth, message in [
        ({"recipes": ["nope"]}, "stages.synth.recipes: unknown recipe 'nope'"),
        ({"recipes": [{"recipe": "distill", "select": "__import__('os')"}]}, "Call"),
        ({"engine": "http"}, "base_urls"),
        ({"recipes": []}, "stages.synth.recipes"),
        ({"tensor_parallel_size": 0}, "stages.synth.tensor_parallel_size"),
    ]:
        with pytest.raises(ConfigError) as e:
            validate(synth_pipeline(tiny_model_dir, **synth))
        assert message in str(e.value), str(e.value)


def test_a_mostly_failing_engine_fails_the_stage_and_a_rerun_retries(
    workdir: Path, tiny_model_dir: Path, scripted: ScriptedEngine
) -> None:
    require("transformers")
    from pipeline.errors import StageFailed

    scripted.fail_every = 1  # every request fails, like a dead server
    with pytest.raises(StageFailed, match="more than max_failed_fraction=0.5"):
        run(workdir, synth_pipeline(tiny_model_dir))
    assert not (workdir / "out" / "synth" / "_manifest.json").exists()
    scripted.fail_every = 0
    s = run(workdir, synth_pipeline(tiny_model_dir))["stats"]
    assert s["failed"] == 0 and s["cache_hits"] == 0 and s["generated"] == s["prompts"] > 0


def test_prompt_tokenizer_matches_transformers_without_importing_it(tiny_model_dir: Path) -> None:
    """Counts and chat formatting come from tokenizer.json + Jinja (fast); they must equal what
    transformers (and so vLLM) computes."""
    transformers = require("transformers")
    from synth.tokenizer import PromptTokenizer

    tok = PromptTokenizer(str(tiny_model_dir))
    assert tok.kind == "tokenizers" and tok.chat
    hf = transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir), trust_remote_code=True)
    texts = ["The harbor and the forest.", "北京是中国的首都。", "", "line one\n\nline two  "]
    assert tok.count(texts) == [len(ids) for ids in hf(texts, add_special_tokens=True)["input_ids"]]
    for system in (None, "Be brief."):
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": "Hi"}]
        assert tok.format("Hi", system) == hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    raw = PromptTokenizer(str(tiny_model_dir), prompt_format="raw")
    assert raw.format("Hi", "Sys") == "Sys\n\nHi"
    approx = PromptTokenizer("served-model-name")
    assert approx.kind == "approximate" and approx.count(["abcdef"]) == [2] and not approx.chat


def test_waves_bound_memory_and_a_crash_resumes_at_the_unfinished_wave(
    workdir: Path, tiny_model_dir: Path, scripted: ScriptedEngine
) -> None:
    require("transformers")
    scripted.fail_every = 0
    cfg = synth_pipeline(tiny_model_dir, wave_requests=40, chunk_size=8, cache="c1.sqlite")
    whole = run(workdir, {**cfg, "output": "whole"})["stats"]
    assert len(list((workdir / "whole" / "synth" / "_synth").glob("wave-*.json"))) >= 3
    scripted.calls.clear()
    scripted.crash_on_call = 12  # dies in a later wave, after earlier waves were written
    cfg2 = synth_pipeline(tiny_model_dir, wave_requests=40, chunk_size=8, cache="c2.sqlite")
    with pytest.raises(KeyboardInterrupt):
        run(workdir, cfg2)
    finished = len(list((workdir / "out" / "synth" / "_synth").glob("wave-*.json")))
    assert finished >= 1
    scripted.crash_on_call = None
    calls_before = len(scripted.calls)
    resumed = run(workdir, cfg2)["stats"]
    assert resumed["prompts"] == whole["prompts"] and resumed["synthetic_docs"] == whole["synthetic_docs"]
    # only the unfinished requests went to the engine; the rest came from wave markers and the cache
    assert resumed["generated"] == sum(scripted.calls[calls_before:]) < whole["generated"]
    assert resumed["generated"] + resumed["cache_hits"] == whole["generated"]
    assert synthetic(workdir / "out").select(["id", "text"]).equals(synthetic(workdir / "whole").select(["id", "text"]))


def test_fresh_rerun_keeps_the_response_cache(workdir: Path, tiny_model_dir: Path, scripted: ScriptedEngine) -> None:
    from pipeline.config import validate
    from pipeline.runner import Runner

    require("transformers")
    scripted.fail_every = 0
    first = run(workdir, synth_pipeline(tiny_model_dir))["stats"]
    Runner(validate({**synth_pipeline(tiny_model_dir), "output": str(workdir / "out")})).run(fresh=True)
    again = json.loads((workdir / "out" / "synth" / "_manifest.json").read_text())["stats"]
    assert again["generated"] == 0 and again["cache_hits"] == first["prompts"] and not again["engine_loaded"]


def test_recipes_with_one_input_budget_cut_a_document_into_the_same_chunks(
    workdir: Path, tiny_model_dir: Path, scripted: ScriptedEngine
) -> None:
    """Their prompts then share each chunk as a prefix (vLLM's prefix cache), although the two
    instructions differ in length (which alone would move every long document's chunk boundaries)."""
    require("transformers")
    sent: list[GenRequest] = []
    generate = scripted.generate
    scripted.generate = lambda reqs: sent.extend(reqs) or generate(reqs)  # type: ignore[method-assign]
    scripted.fail_every = 0
    recipes = [{"recipe": name, "select": "source == 'd'", "max_input_tokens": 330, "min_output_tokens": 1}
               for name in ("distill", "knowledge_list")]
    run(workdir, synth_pipeline(tiny_model_dir, recipes=recipes))
    starts = {"distill": "\n\nCondense the passage above", "knowledge_list": "\n\nRead the passage above"}
    chunks: dict[str, set[tuple[str, str]]] = {name: set() for name in starts}
    for r in sent:
        recipe, parent, index = r.id.split(":")
        body = r.prompt.split("Passage:\n", 1)[1]
        chunks[recipe].add((f"{parent}:{index}", body[: body.index(starts[recipe])]))
    assert chunks["distill"] == chunks["knowledge_list"]
    assert sum(key.endswith(":1") for key, _ in chunks["distill"]) > 0  # documents cut into several chunks


def test_fidelity_checks_drop_outputs_and_count_them_per_recipe_and_cause(
    workdir: Path, tiny_model_dir: Path, scripted: ScriptedEngine
) -> None:
    """The scripted engine echoes the first words of its passage: with a copy ceiling of 0.5 the rewrite
    recipe's outputs are copies (synth/fidelity.py; real models: tests/test_synth_fidelity.py)."""
    require("transformers")
    require("onnxruntime")
    m = run(workdir, synth_pipeline(tiny_model_dir, fidelity={"wiki_rephrase": {"max_similarity": 0.5,
                                                                                "language": False}}))
    s = m["stats"]
    by = s["dropped_by_recipe_cause"]
    assert by.get("wiki_rephrase:copy", 0) > 0 and not any(k.startswith("diverse_qa:") and k.endswith(":copy")
                                                           for k in by)
    assert s["dropped_by_cause"]["copy"] == by["wiki_rephrase:copy"]
    failed = pa.concat_tables([pq.read_table(p) for p in (workdir / "out" / "synth" / "failed").glob("*.parquet")])
    copies = [f for f in failed.to_pylist() if f["cause"] == "copy"]
    assert len(copies) == by["wiki_rephrase:copy"] and all(f["recipe"] == "wiki_rephrase" for f in copies)
    assert all("cosine to the source" in f["reason"] for f in copies)
