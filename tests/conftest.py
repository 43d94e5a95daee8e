"""Shared fixtures: a small corpus in every input format (with planted problems) and CLI helpers."""

from __future__ import annotations

import copy
import gzip
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.demo.corpus import demo_inputs
from tests.spark_util import spark_demo, spark_local_run, spark_models, start_spark  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[1]
WORDS = ("river stone garden window market silver orange planet engine harbor forest letter "
         "winter summer bridge castle meadow thunder signal pocket lantern mirror candle island "
         "theory method number pattern record history science travel season village").split()


def sentence(rng: random.Random, n: int = 12) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def document(rng: random.Random) -> str:
    return "\n\n".join(" ".join(sentence(rng) for _ in range(3)) for _ in range(3))


def build_corpus(root: Path, n: int = 240, seed: int = 7) -> dict[str, Any]:
    """Writes inputs in five formats; returns what was planted (ids of dups, malformed lines)."""
    rng = random.Random(seed)
    texts = [document(rng) for _ in range(n)]
    # planted exact duplicates (differ only in case and spacing)
    for i in range(0, n, 20):
        texts[i + 1] = "  " + texts[i].upper().replace(" ", "   ") + " "
    chunks = [texts[i::5] for i in range(5)]
    (root / "jsonl").mkdir(parents=True)
    lines = [json.dumps({"text": t, "url": f"https://example.org/a/{i}"}) for i, t in enumerate(chunks[0])]
    lines += ['{"text": "broken', json.dumps({"text": 42}), json.dumps({"other": "x"}), json.dumps({"text": " \n "})]
    (root / "jsonl" / "a.jsonl").write_bytes(("\n".join(lines) + "\n").encode() + b'{"text": "caf\xe9"}\n')
    (root / "gz").mkdir()
    with gzip.open(root / "gz" / "b.jsonl.gz", "wt", encoding="utf-8") as fh:
        for i, t in enumerate(chunks[1]):
            fh.write(json.dumps({"id": f"gz-{i}", "text": t}) + "\n")
    import zstandard

    (root / "zst").mkdir()
    payload = "".join(json.dumps({"doc_id": f"z-{i}", "body": t}) + "\n" for i, t in enumerate(chunks[2]))
    (root / "zst" / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(payload.encode()))
    (root / "pq").mkdir()
    pq.write_table(pa.table({"id": [f"pq-{i}" for i in range(len(chunks[3]))], "text": chunks[3]}),
                   root / "pq" / "d.parquet")
    import datasets

    datasets.Dataset.from_dict({"id": [f"hf-{i}" for i in range(len(chunks[4]))], "text": chunks[4]}
                               ).save_to_disk(str(root / "hf"))
    return {"docs": n, "malformed": 5, "texts": texts}


INPUTS = [
    {"name": "a", "path": "corpus/jsonl/*.jsonl", "format": "jsonl", "url_field": "url"},
    {"name": "b", "path": "corpus/gz/*.jsonl.gz", "format": "jsonl.gz", "id_field": "id"},
    {"name": "c", "path": "corpus/zst/*.jsonl.zst", "format": "jsonl.zst", "id_field": "doc_id",
     "text_field": "body"},
    {"name": "d", "path": "corpus/pq/*.parquet", "format": "parquet", "id_field": "id"},
    {"name": "e", "path": "corpus/hf", "format": "hf", "id_field": "id"},
]


def pipeline_config(**overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "test", "output": "out", "workers": 1, "seed": 3, "partition_rows": 16, "inputs": copy.deepcopy(INPUTS),
        "stages": [{"name": "normalize"}, {"name": "exact_dedup"},
                   {"name": "shard", "formats": ["parquet", "jsonl.zst"], "max_shard_bytes": 20000}],
    }
    cfg.update(overrides)
    return cfg


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus_src")
    build_corpus(root / "corpus")
    return root


@pytest.fixture
def workdir(tmp_path: Path, corpus_dir: Path) -> Path:
    """A fresh working directory with the corpus linked in and a pipeline.yaml."""
    os.symlink(corpus_dir / "corpus", tmp_path / "corpus")
    write_config(tmp_path / "pipeline.yaml", pipeline_config())
    return tmp_path


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    """One finished `curate run` of `pipeline_config()` on the corpus (its directory; the run in out/),
    for the tests that read a finished run or compare shards with one. Never changed by a test."""
    root = tmp_path_factory.mktemp("default_run")
    (root / "corpus").symlink_to(corpus_dir / "corpus")
    write_config(root / "pipeline.yaml", pipeline_config())
    curate("run", cwd=root, check=True)
    return root


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def curate(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = False,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"curate {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


SHARED_DATA = REPO.parent / "shared" / "data"
# Real sets a test reads that an issue note proposes for ../shared/data but that are not there yet. Until one
# lands, its absence is a skip that prints why even under CI=true (any other missing set fails there);
# remove the entry when the set is added.
PENDING_SETS = {
    "code-repos": "issue 28 note, session 9: ten real repositories and bigcode's recorded decisions",
}


def require_shared_data(name: str) -> Path:
    """`../shared/data/<name>`: a missing set fails under CI=true (unless still pending), else a printed skip."""
    path = SHARED_DATA / name
    if path.exists():
        return path
    if os.environ.get("CI") == "true" and name not in PENDING_SETS:
        pytest.fail(f"{path} is missing (real data set the acceptance test needs)")
    why = f"{path} is missing" + (f" (pending: {PENDING_SETS[name]})" if name in PENDING_SETS else "")
    print(f"skip: {why}")
    pytest.skip(why)


def require_embedding_model() -> None:
    """ONNX Runtime and the all-MiniLM-L6-v2 wheel's model, or a printed skip (under CI=true: the error)."""
    try:
        import onnxruntime  # noqa: F401

        from filters.embedding import default_model_zip

        default_model_zip()
    except (ImportError, FileNotFoundError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"embedding model unavailable: {exc}")


def build_tokenizer(out: Path) -> Path:
    """A tiny byte-level BPE tokenizer (vocab 400, EOD `<|endoftext|>`) trained on WORDS, saved in `out`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([" ".join(WORDS)] * 20, trainer)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    return out


GOOD = ("research explains how the committee analysed evidence and described the method carefully because "
        "historians compared sources and documented results with clear reasoning about causes").split()
BAD = ("buy cheap deal click now free offer best price discount sale win bonus hot limited subscribe "
       "amazing top viral casino coupon").split()


def quality_doc(rng: random.Random, words: list[str], n: int = 60) -> str:
    return " ".join(rng.choice(words) for _ in range(n)) + "."


def write_quality_examples(path: Path, n: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(n):
            label = "hq" if i % 2 == 0 else "lq"
            fh.write(json.dumps({"text": quality_doc(rng, GOOD if label == "hq" else BAD), "q": label,
                                 "topic": ["news", "code", "math"][i % 3]}) + "\n")


@pytest.fixture(scope="session")
def quality_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fastText quality model (labels hq/lq) trained by `curate train` once per session, with unigrams:
    19 KB instead of the 800 MB of hash buckets that the default word bigrams allocate, which every run
    using the model would hash (stage fingerprint) and load in each worker. The default recipe is
    trained (and its recorded parameters checked) by test_classifiers' positive/negative test."""
    root = tmp_path_factory.mktemp("qmodel")
    write_quality_examples(root / "train.jsonl", 400, seed=1)
    out = root / "quality.bin"
    proc = curate("train", "quality", "--input", str(root / "train.jsonl"), "--label-field", "q",
                  "--word-ngrams", "1", "--output", str(out), cwd=root, check=True)
    assert "held-out: precision" in proc.stdout
    return out


def shard_digests(out: Path) -> dict[str, str]:
    manifest = json.loads((out / "shards" / "manifest.json").read_text())
    return {s["file"]: s["sha256"] for s in manifest["shards"]}


DEMO_INPUTS = demo_inputs("demo")  # the demo corpus as `demo_root` lays it out


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo corpus (1,500 documents) with its labelled training sets, built once per session.
    Its inputs are `DEMO_INPUTS`, relative to the returned directory."""
    from pipeline.demo.corpus import write_demo_corpus
    from pipeline.demo.labels import write_training_sets

    root = tmp_path_factory.mktemp("demo_root")
    write_demo_corpus(root / "demo", n_docs=1500, seed=0)
    write_training_sets(root / "demo" / "labels", n=1200, seed=0)
    return root


@pytest.fixture(scope="session")
def demo_quality_model(demo_root: Path) -> Path:
    """The demo's quality model as `make run` trains it (the default recipe, word bigrams) on `demo_root`'s
    labelled set, once per session: test_demo_classifiers scores with it, test_notebook's run filters with it."""
    labels = demo_root / "demo" / "labels"
    out = demo_root / "models" / "quality.bin"
    curate("train", "quality", "--input", str(labels / "quality.jsonl"), "--label-field", "label",
           "--output", str(out), cwd=demo_root, check=True)
    return out


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's synth model (SmolLM2-135M-Instruct as a float32 checkpoint) converted ONCE per session by
    the README's own command, `curate demo-model .cache/demo-model` (~40 s, 25 CPU-s), for the two tests that
    generate with it (test_doc_commands' demo run, test_synth_demo_model); the checkout's own when `make
    run` converted it already (the same files)."""
    built = REPO / ".cache" / "demo-model"
    if (built / "config.json").is_file() and (built / "ling_curate_model.json").is_file():
        return built
    root = tmp_path_factory.mktemp("demo_model")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    curate("demo-model", ".cache/demo-model", cwd=root, env=env, check=True, timeout=900)
    return root / ".cache" / "demo-model"


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """One local[2] SparkSession for the whole test session (a JVM start costs ~30 s); stopped at the end
    if we started it."""
    session, owned = start_spark()
    yield session
    if owned:
        session.stop()


@pytest.fixture(scope="module")
def spark(request: pytest.FixtureRequest, spark_session: Any) -> Any:
    """The shared SparkSession, with the requesting test module's functions pickled by value (Spark's
    workers cannot import test modules)."""
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(request.module)
    return spark_session


# Test tiers: `make test` runs everything; `make test-fast` (the edit loop, under 3 minutes on two cores)
# leaves out tests that start a JVM (Spark), load vLLM, or take minutes. A module is listed once, here;
# single tests of an otherwise fast module (module.py::name, with its parameters) in HEAVY_TESTS.
HEAVY_MODULES: dict[str, set[str]] = {
    "spark": {"test_spark", "test_spark_synth", "test_spark_cluster", "test_remote_storage", "test_decon_spark",
              "test_web_spark", "test_near_dedup_spark", "test_ingest_split_spark"},
    "vllm": {"test_synth_e2e", "test_synth_engines", "test_synth_server_restart", "test_synth_stage",
             "test_synth_tiny_model", "test_spark_synth", "test_synth_demo_model", "test_synth_mtp"},
    # end to end on the 1,500-document demo corpus (the notebook API keeps fast tests in test_first_hour
    # and test_report; the classifiers in test_classifiers)
    "slow": {"test_faults_every_stage", "test_faults", "test_remote_storage", "test_incremental", "test_decon_faults",
             "test_heuristics_datatrove", "test_web_pipeline", "test_notebook", "test_demo_classifiers",
             "test_embedding_head"},  # embeds 600 documents and trains fastText beside the head
}
HEAVY_TESTS: dict[str, set[str]] = {
    # the fast tier keeps kill point 2 (and test_runner's 1-vs-2-workers shards)
    "slow": {*(f"test_runner.py::test_sigkill_anywhere_then_resume_gives_identical_shards[{k}]"
               for k in (9, 67, 160)),
             # whole `curate run`s of 3-8 s each whose mechanics a faster fast-tier test also covers
             # (make test-fast stays under 3 minutes on 2 cores; all of them run in `make test`)
             "test_classifiers.py::test_domain_rules_take_precedence",
             "test_classifiers.py::test_scoring_uses_the_preprocessing_training_recorded",
             "test_mix_shards.py::test_megatron_shards_match_text_shards_and_targets",
             "test_mix_shards.py::test_unreachable_budget_reports_shortfall_and_caps_epochs",
             "test_runner.py::test_fresh_starts_over",
             "test_runner.py::test_second_concurrent_run_exits_3",
             "test_primitives.py::test_aggregate_folds_in_tasks_and_gives_the_same_result_for_any_slot_count[16]",
             "test_first_hour.py::test_quarantine_line_and_status_column",
             "test_near_dedup_clusters.py::test_planted_chain_star_and_append_give_the_expected_clusters",
             "test_code_demo.py::test_demo_repos_through_code_filter_and_secrets",
             "test_stage_heuristics.py::test_curate_run_with_langid_and_heuristics",
             "test_mix_shards.py::test_shards_identical_for_1_and_2_workers_and_loadable",
             "test_classifiers.py::test_keep_top_same_for_workers_and_partitioning",
             # accuracy on the 2,000-document demo corpus (dedup keeps test_near_dedup_unit, the survivor and
             # index tests, exact dedup in test_runner)
             "test_near_dedup.py::test_planted_near_duplicates_found_with_high_precision",
             "test_near_dedup.py::test_same_result_for_any_workers_and_partitioning",
             # in-file splits: four split sizes and two kill points (the fast tier keeps kill point 9,
             # which compares a split run with whole-file reading too)
             "test_ingest_split.py::test_splits_give_the_bytes_of_whole_file_reading",
             *(f"test_ingest_split.py::test_killed_split_ingest_resumes_to_the_same_bytes[{k}]" for k in (2, 9, 17)),
             # the 1,500-document demo run (decontamination keeps its unit and small-run tests)
             *(f"test_decontaminate.py::{name}" for name in (
                 "test_planted_contamination_is_removed_and_nothing_else",
                 "test_boilerplate_goes_and_single_sentences_stay", "test_no_eval_item_text_reaches_the_shards",
                 "test_any_worker_count_gives_the_same_bytes", "test_mask_action")),
             "test_demo_wordlists.py::test_built_wheel_ships_the_data_files",
             # two pipeline runs embedding 200 real documents (the pure k-means/pair tests stay fast)
             *(f"test_semantic_dedup.py::{name}" for name in (
                 "test_planted_paraphrases_found_and_articles_kept",
                 "test_same_result_for_any_workers_and_partitioning",
                 "test_semdedup_params_shows_counts_and_examples")),
             # signals decisive vs all on a 500-document demo corpus and 300 edge cases (the article test stays fast)
             *(f"test_heuristics_signals.py::test_same_decisions_on_demo_and_edge_cases[{c}]"
               for c in ("datatrove", "paper")),
             # the commands shown in README and docs/ run as subprocesses (the list check stays fast)
             *(f"test_doc_commands.py::{name}" for name in (
                 "test_the_quick_start_on_your_own_data", "test_the_training_commands", "test_help_demo_data_and_java",
                 "test_the_demo_commands")),
             # four `curate run`s each (the index store's unit of meaning: key name and parameters)
             "test_dedup_index.py::test_switching_the_key_kind_starts_its_own_store_and_other_settings_are_a_config_error",
             "test_dedup_index.py::test_a_rerun_of_the_same_output_replaces_its_own_generation"},
    "vllm": {"test_doc_commands.py::test_the_demo_commands"},  # the demo run generates with vLLM
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    modules = {}
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        modules[module] = item.module
        for marker, names in HEAVY_MODULES.items():
            if module in names:
                item.add_marker(getattr(pytest.mark, marker))
        for marker, tests in HEAVY_TESTS.items():
            if f"{module}.py::{item.name}" in tests:
                item.add_marker(getattr(pytest.mark, marker))
    # a renamed test would otherwise drop silently into the fast tier
    stale = [t for tests in HEAVY_TESTS.values() for t in sorted(tests) if t.split(".py::")[0] in modules
             and not hasattr(modules[t.split(".py::")[0]], t.split("::")[1].split("[")[0])]
    if stale:
        raise pytest.UsageError(f"HEAVY_TESTS names tests that do not exist: {stale}")
