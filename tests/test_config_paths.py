"""Write paths in the config (dedup `index`, synth `cache`) stay inside the output directory unless a
directory is listed in `allow_write_outside_output`; read paths (inputs, models) are not restricted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import ConfigError, load_config, validate
from pipeline.paths import resolve_write_path, stage_write_path, write_path_problem
from tests.conftest import curate, pipeline_config, write_config


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `output: out/demo` and relative allow-listed dirs are relative to here


def config(*stages: dict[str, Any], **top: Any) -> dict[str, Any]:
    return pipeline_config(output="out/demo", stages=[{"name": "normalize"}, *stages], **top)


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate(data)
    return err.value.problems


def test_relative_write_paths_resolve_under_the_output_directory(tmp_path: Path) -> None:
    cfg = validate(config({"name": "exact_dedup", "index": "idx/exact"},
                          {"name": "near_dedup", "index": "sub/../near"}))  # `..` that stays inside is fine
    out = os.path.realpath(tmp_path / "out" / "demo")
    assert stage_write_path(cfg, cfg.stages[1], "index") == os.path.join(out, "idx", "exact")
    assert stage_write_path(cfg, cfg.stages[2], "index") == os.path.join(out, "near")
    assert cfg.stages[1].index == "idx/exact"  # the config keeps what the user wrote
    unset = validate(config({"name": "exact_dedup"}))
    assert stage_write_path(unset, unset.stages[1], "index") is None


def test_dotdot_escape_is_rejected_naming_the_key() -> None:
    lines = problems(config({"name": "exact_dedup"}, {"name": "near_dedup", "index": "../x"}))
    assert lines == ["stages.near_dedup.index: must stay inside output directory out/demo (got ../x)"]


def test_absolute_path_outside_is_rejected_and_inside_is_accepted(tmp_path: Path) -> None:
    lines = problems(config({"name": "exact_dedup", "index": "/var/tmp/idx"}))
    assert lines == ["stages.exact_dedup.index: must stay inside output directory out/demo (got /var/tmp/idx)"]
    validate(config({"name": "exact_dedup", "index": str(tmp_path / "out" / "demo" / "idx")}))


def test_the_output_directory_itself_is_not_a_write_path() -> None:
    lines = problems(config({"name": "exact_dedup", "index": "."}))
    assert lines == ["stages.exact_dedup.index: must be a path inside output directory out/demo, not the directory "
                     "itself (got .)"]


def test_symlink_pointing_outside_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "out" / "demo").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "out" / "demo" / "link")
    lines = problems(config({"name": "exact_dedup", "index": "link/idx"}))
    target = os.path.realpath(tmp_path / "elsewhere" / "idx")
    assert lines == [f"stages.exact_dedup.index: must stay inside output directory out/demo (got link/idx, "
                     f"which resolves to {target})"]
    # a symlink created after validation is caught when the stage resolves the path at run time
    cfg = validate(config({"name": "exact_dedup", "index": "later/idx"}))
    os.symlink(tmp_path / "elsewhere", tmp_path / "out" / "demo" / "later")
    with pytest.raises(ConfigError, match=r"stages\.exact_dedup\.index: must stay inside"):
        stage_write_path(cfg, cfg.stages[1], "index")


def test_synth_cache_is_a_write_path() -> None:
    # selecting on an ingest column: the built-in selection needs a quality_classifier stage before synth
    recipe = {"recipe": "wiki_rephrase", "select": "source == 'web'"}
    synth = {"name": "synth", "model": "some/model", "recipes": [recipe]}
    assert validate(config({**synth, "cache": "cache/synth.sqlite"})).stages[1].cache == "cache/synth.sqlite"
    lines = problems(config({**synth, "cache": "/tmp/synth.sqlite"}))
    assert lines == ["stages.synth.cache: must stay inside output directory out/demo (got /tmp/synth.sqlite)"]


def test_every_problem_is_reported_with_other_config_errors() -> None:
    lines = problems(config({"name": "exact_dedup", "index": "../a", "bogus": 1},
                            {"name": "near_dedup", "index": "../b"}, workers=0))
    assert len(lines) == 3
    assert lines[0].startswith("workers:") and lines[1] == "stages.exact_dedup.bogus: unknown key"
    assert lines[2] == "stages.near_dedup.index: must stay inside output directory out/demo (got ../b)"


def test_read_paths_are_not_restricted(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    for name in ("lid.176.bin", "quality.bin"):
        (tmp_path / "models" / name).write_bytes(b"x")
    validate(config({"name": "langid", "model_path": str(tmp_path / "models" / "lid.176.bin")},
                    {"name": "quality_classifier", "model": "out/../models/quality.bin", "threshold": 0.5}))


def test_opt_in_allows_listed_directories_only(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    allow = {"allow_write_outside_output": ["shared"]}  # relative to the working directory, like `output`
    cfg = validate(config({"name": "exact_dedup", "index": str(shared / "exact")},
                          {"name": "near_dedup", "index": "../../shared/near"}, **allow))
    assert stage_write_path(cfg, cfg.stages[1], "index") == os.path.join(os.path.realpath(shared), "exact")
    assert stage_write_path(cfg, cfg.stages[2], "index") == os.path.join(os.path.realpath(shared), "near")
    validate(config({"name": "exact_dedup", "index": str(shared)}, **allow))  # the listed directory itself
    lines = problems(config({"name": "exact_dedup", "index": str(tmp_path / "sharedx")}, **allow))
    assert lines == [f"stages.exact_dedup.index: must stay inside output directory out/demo "
                     f"(got {tmp_path / 'sharedx'})"]
    assert problems(config(allow_write_outside_output=["/"])) == [
        "allow_write_outside_output: '/' is a root directory: list the directories to write into"]


def test_override_cannot_escape(tmp_path: Path) -> None:
    path = write_config(tmp_path / "p.yaml", config({"name": "exact_dedup", "index": "idx"}))
    with pytest.raises(ConfigError, match=r"stages\.exact_dedup\.index: must stay inside output directory elsewhere"):
        load_config(path, ["output=elsewhere", "stages.exact_dedup.index=../out/demo/idx"])
    assert load_config(path, ["output=elsewhere"]).stages[1].index == "idx"  # follows the new output


def test_uri_outputs_follow_the_same_rule_on_the_uri_path() -> None:
    out = "s3://bucket/runs/demo"
    assert write_path_problem(out, "idx") is None
    assert write_path_problem(out, "s3a://bucket/runs/demo/idx") is None  # Hadoop's name for the same bucket
    assert write_path_problem(out, "../other") == f"must stay inside output directory {out} (got ../other)"
    assert write_path_problem(out, "s3://other/runs/demo/idx") is not None
    assert write_path_problem(out, "/tmp/idx") is not None  # a local path is not inside a bucket
    assert write_path_problem(out, "s3://bucket/shared/idx", ["s3://bucket/shared"]) is None
    assert resolve_write_path(out, "a/../idx", [], "k") == "s3://bucket/runs/demo/idx"
    with pytest.raises(ConfigError, match="k: must stay inside"):
        resolve_write_path(out, "a/../../idx", [], "k")


def test_incremental_generations_share_write_paths_under_the_root(tmp_path: Path) -> None:
    from pipeline.incremental import generation_config

    cfg = validate(config({"name": "exact_dedup"}, {"name": "near_dedup", "index": "shared/near"}))
    gen = generation_config(cfg, Path(cfg.output) / "gen-00001")
    root = os.path.realpath(tmp_path / "out" / "demo")
    assert gen.stages[1].index == os.path.join(root, "_state", "exact_dedup_index")  # the default state index
    assert gen.stages[2].index == os.path.join(root, "shared", "near")  # relative to the root, not the generation
    assert stage_write_path(gen, gen.stages[2], "index") == os.path.join(root, "shared", "near")
    assert cfg.stages[1].index is None and cfg.stages[2].index == "shared/near"  # the root config is unchanged


def test_cli_validate_and_run_exit_2(tmp_path: Path) -> None:
    write_config(tmp_path / "pipeline.yaml", config({"name": "exact_dedup", "index": "../../escaped"}))
    for command in ("validate", "run"):
        proc = curate(command, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == ("curate: stages.exact_dedup.index: must stay inside output directory out/demo "
                                       "(got ../../escaped)")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped").exists()
