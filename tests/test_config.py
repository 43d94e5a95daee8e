"""Config validation: one line per problem naming the key path; overrides; CLI exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import ConfigError, apply_override, load_config, parse_override, validate
from tests.conftest import curate, pipeline_config, write_config


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate(data)
    return err.value.problems


def test_valid_config_resolves_stage_kinds_and_defaults() -> None:
    cfg = validate(pipeline_config())
    assert [s.kind for s in cfg.stages] == ["normalize", "exact_dedup", "shard"]
    assert cfg.stage("normalize").unicode_form == "NFC"
    assert cfg.stage("shard").formats == ["parquet", "jsonl.zst"]


def test_unknown_keys_and_bad_values_name_the_key_path() -> None:
    data = pipeline_config(workers=0, colour="blue")
    data["stages"] = [{"name": "normalize", "max_newlines": "many"}, {"name": "exact_dedup", "bogus": 1},
                      {"name": "shard", "formats": ["csv"]}, {"name": "nonesuch"}]
    data["inputs"] = [{"name": "x", "path": "a", "format": "xml"}]
    lines = problems(data)
    joined = "\n".join(lines)
    assert "workers: Input should be greater than or equal to 1" in joined
    assert "colour: unknown key" in joined
    assert "inputs[0].format:" in joined
    assert any(line.startswith("stages.normalize.max_newlines:") and line.endswith("(got 'many')") for line in lines)
    assert "stages.exact_dedup.bogus: unknown key" in joined
    assert any(line.startswith("stages.shard.formats[0]:") for line in lines)
    assert "stages.nonesuch.kind: unknown stage kind 'nonesuch'; valid kinds: code_filter, decontaminate, " in joined
    assert len(lines) == 7


def test_duplicate_names_and_bad_input_reference() -> None:
    data = pipeline_config()
    data["stages"] = [{"name": "normalize"}, {"name": "normalize"}, {"name": "shard", "input": "later"}]
    lines = problems(data)
    assert "stages[1].name: duplicate stage name 'normalize'" in lines
    assert "stages.shard.input: 'later' is not an earlier stage" in lines


def test_overrides_by_index_and_by_stage_name() -> None:
    data = pipeline_config()
    apply_override(data, *parse_override("stages[1].url=true"))
    apply_override(data, *parse_override("stages.shard.max_shard_bytes=4096"))
    apply_override(data, *parse_override("workers=3"))
    cfg = validate(data)
    assert cfg.stage("exact_dedup").url is True
    assert cfg.stage("shard").max_shard_bytes == 4096
    assert cfg.workers == 3
    with pytest.raises(ConfigError, match="no stage named 'nope'"):
        apply_override(data, *parse_override("stages.nope.x=1"))


def test_load_config_reports_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_cli_invalid_config_exits_2_with_key_path(workdir: Path) -> None:
    write_config(workdir / "pipeline.yaml", pipeline_config(workers=-1))
    proc = curate("run", cwd=workdir)
    assert proc.returncode == 2
    assert "curate: workers:" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = curate("validate", "--set", "stages[0].unicode_form=NFX", cwd=workdir)
    assert proc.returncode == 2 and "stages.normalize.unicode_form:" in proc.stderr


def test_cli_unmatched_input_exits_2(workdir: Path) -> None:
    cfg = pipeline_config()
    cfg["inputs"][0]["path"] = "corpus/nothing/*.jsonl"
    write_config(workdir / "pipeline.yaml", cfg)
    proc = curate("run", cwd=workdir)
    assert proc.returncode == 2
    assert "inputs[0].path: no files match 'corpus/nothing/*.jsonl'" in proc.stderr
    assert not (workdir / "out").exists()


def test_validate_prints_plan_and_touches_nothing(workdir: Path) -> None:
    proc = curate("validate", cwd=workdir, check=True)
    assert "# plan" in proc.stdout
    assert "- exact_dedup" in proc.stdout and "input=normalize" in proc.stdout
    assert not (workdir / "out").exists()
