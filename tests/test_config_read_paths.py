"""Issue 14 items 4-6 in the config layer: read paths resolved on the driver (absolute, checked, hashes
unchanged), `--set` keys that contain dots, and no config <-> registry import cycle."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import ConfigError, ReadPath, load_config, read_path_fields, validate
from tests.conftest import REPO, build_tokenizer, pipeline_config, write_config


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a mixture-weights file and a recipe file, both addressed relatively."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "weights.json").write_text(json.dumps({"web": 1.0, "code": 2.0}))
    (tmp_path / "conf" / "mine.yaml").write_text("name: mine\nprompt: 'Rewrite: {{ text }}'\n")
    build_tokenizer(tmp_path / "conf")  # mix needs a tokenize stage before it
    (tmp_path / "conf" / "quality.bin").write_bytes(b"")  # only checked to exist: distill selects on its buckets
    monkeypatch.chdir(tmp_path)
    return tmp_path


# mix reads n_tokens (tokenize) and its `by` column: a valid chain, so the config layer gets to the paths
TOKENS = {"name": "tokens", "kind": "tokenize", "tokenizer": "conf/tokenizer.json"}


def mix_stage(weights: str = "conf/weights.json") -> dict[str, Any]:
    return {"name": "mix", "by": "source", "weights_file": weights}


def mix_config(weights: str = "conf/weights.json", **top: Any) -> dict[str, Any]:
    return pipeline_config(output="out", stages=[TOKENS, mix_stage(weights)], **top)


def test_read_paths_become_absolute_and_dumps_keep_the_spelling(project: Path) -> None:
    cfg = validate(mix_config())
    assert cfg.stage("mix").weights_file == str(project / "conf" / "weights.json")
    assert cfg.model_dump(mode="json")["stages"][1]["weights_file"] == "conf/weights.json"
    resolved = cfg.stage("mix").model_dump(mode="json", context={"resolved_paths": True})
    assert resolved["weights_file"] == str(project / "conf" / "weights.json")
    copy = cfg.model_copy(deep=True)
    assert copy.stage("mix").weights_file == cfg.stage("mix").weights_file
    assert copy.model_dump(mode="json") == cfg.model_dump(mode="json")
    import pickle  # what a process pool or Spark ships to its workers

    shipped = pickle.loads(pickle.dumps(cfg))
    assert shipped.stage("mix").weights_file == str(project / "conf" / "weights.json")
    assert shipped.model_dump(mode="json") == cfg.model_dump(mode="json")


def test_stage_hashes_do_not_depend_on_the_working_directory(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.runner import make_plan

    (project / "corpus").mkdir()
    (project / "corpus" / "a.jsonl").write_text('{"text": "hello"}\n')
    data = pipeline_config(output="out", inputs=[{"name": "a", "path": "corpus/a.jsonl"}],
                           stages=[TOKENS, mix_stage()])
    other = project / "elsewhere"  # the same relative layout under another directory
    (other / "conf").mkdir(parents=True)
    (other / "corpus").mkdir()
    for name in ("weights.json", "tokenizer.json", "tokenizer_config.json"):
        (other / "conf" / name).write_text((project / "conf" / name).read_text())
    (other / "corpus" / "a.jsonl").write_text('{"text": "hello"}\n')
    for corpus in (project, other):  # ingest's fingerprint has the input's mtime: make both the same
        os.utime(corpus / "corpus" / "a.jsonl", ns=(1_700_000_000 * 10**9,) * 2)
    first = make_plan(validate(data)).stages[-1].hash
    monkeypatch.chdir(other)
    cfg = validate(data)
    assert cfg.stage("mix").weights_file == str(other / "conf" / "weights.json")
    plan = make_plan(cfg)
    assert plan.stages[-1].hash == first
    (other / "conf" / "weights.json").write_text(json.dumps({"web": 3.0, "code": 2.0}))  # the content counts
    assert make_plan(validate(data)).stages[-1].hash != first


def test_a_missing_read_path_is_a_config_error_naming_its_key(project: Path) -> None:
    data = mix_config("conf/nope.json")
    data["stages"].append({"name": "tok", "kind": "tokenize", "tokenizer": "/nowhere/tokenizer"})
    data["stages"].append({"name": "synth", "model": "org/hub-model", "recipes": ["distill", "conf/mine.yaml"]})
    # distill selects on quality buckets
    quality = {"name": "quality", "kind": "quality_classifier", "model": "conf/quality.bin", "buckets": 20}
    with pytest.raises(ConfigError) as err:
        validate(data)
    assert err.value.problems == [
        f"stages.mix.weights_file: file not found: conf/nope.json (resolved against the current directory: "
        f"{project / 'conf' / 'nope.json'})",
        "stages.tok.tokenizer: file not found: /nowhere/tokenizer"]
    # a hub id passes as is (synth `model` is a ModelRef), a recipe file becomes absolute, a built-in name stays
    synth = validate(pipeline_config(output="out", stages=[quality, data["stages"][3]])).stage("synth")
    assert synth.model == "org/hub-model"
    assert synth.recipes == ["distill", str(project / "conf" / "mine.yaml")]
    with pytest.raises(ConfigError, match=r"stages\.synth\.model: file not found: \./ckpt"):
        validate(pipeline_config(output="out", stages=[quality, {**data["stages"][3], "model": "./ckpt"}]))


def test_read_path_marker_is_generic() -> None:
    """New stages get resolution by marking a field; these are the marked ones today."""
    from stages.registry import STAGE_MODULES, stage_config_model

    marked = {kind: sorted(read_path_fields(stage_config_model(kind))) for kind in STAGE_MODULES}
    assert marked["quality_classifier"] == ["model"]
    assert marked["domain_classifier"] == ["model"]
    assert marked["langid"] == ["model_path"]
    assert marked["tokenize"] == ["tokenizer"]
    assert marked["shard"] == ["tokenizer"]
    assert marked["mix"] == ["weights_file"]
    assert marked["synth"] == ["model", "recipes", "tokenizer"]
    assert read_path_fields(stage_config_model("synth"))["model"] == ReadPath(optional=True)


def test_set_keys_that_contain_dots(project: Path) -> None:
    path = write_config(project / "p.yaml", mix_config())
    cfg = load_config(path, ['spark.conf["spark.executor.memory"]=2g', "spark.conf['spark.executor.cores']=2",
                             'spark.conf["spark.sql.shuffle.partitions"]=8', "spark.master=local[2]"])
    assert cfg.spark.conf == {"spark.executor.memory": "2g", "spark.executor.cores": "2",
                              "spark.sql.shuffle.partitions": "8"}
    assert cfg.spark.master == "local[2]"
    with pytest.raises(ConfigError, match=r"--set stages\[one\]\.x: bad index \[one\]"):
        load_config(path, ["stages[one].x=1"])
    with pytest.raises(ConfigError, match=r"--set spark\.\.conf: cannot read the key at '\.\.conf'"):
        load_config(path, ["spark..conf=1"])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):  # the quote never closes: no `=` outside it
        load_config(path, ['spark.conf["unclosed]=1'])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(path, ["workers"])
    with pytest.raises(ConfigError, match=r"no stage named 'mx' \(did you mean mix\?\)"):
        load_config(path, ["stages.mx.budget_tokens=1"])


def test_scientific_notation_in_numeric_fields_only(project: Path) -> None:
    path = write_config(project / "p.yaml", mix_config(name="1e5"))
    cfg = load_config(path, ["stages.mix.budget_tokens=1e6", "partition_rows=2E3"])
    assert cfg.stage("mix").budget_tokens == 1_000_000 and isinstance(cfg.stage("mix").budget_tokens, int)
    assert cfg.partition_rows == 2000
    assert cfg.name == "1e5"  # a string field keeps the string


def test_config_does_not_import_the_stage_modules() -> None:
    """The registry is a table of module names: importing it (or the config) loads no stage module, and the
    registry does not import the config at run time."""
    code = ("import sys, pipeline.config; import stages.registry as r; "
            "print(sorted(m for m in sys.modules if m.startswith('stages.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    assert out.strip() == "['stages.registry']"
    source = (REPO / "stages" / "registry.py").read_text()
    assert "\nfrom pipeline.config import" not in source and "\nimport pipeline" not in source
