"""Declared columns: every stage kind says what it reads and adds, and a plan that can never work is a
config error naming the stage and the column (exit 2 from `curate validate`), before anything runs."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.columns import Column, ingest_schema, read_problems, with_added
from pipeline.config import ConfigError, validate
from stages.registry import STAGE_MODULES, make_stage
from tests.conftest import build_tokenizer, curate, pipeline_config, write_config

MIX = {"name": "mix", "weights": {"web": 1.0}, "by": "source"}


def problems(stages: list[dict]) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate(pipeline_config(stages=stages))
    return err.value.problems


def test_mix_without_tokenize_names_the_stage_and_the_column() -> None:
    assert problems([{"name": "normalize"}, MIX]) == [
        "stages.mix: needs column n_tokens, which no earlier stage adds: add a tokenize stage before it"]


def test_mix_by_domain_without_a_domain_classifier() -> None:
    found = problems([{"name": "normalize"}, {**MIX, "by": "domain"}])
    assert "stages.mix: needs column domain, which no earlier stage adds: add a domain_classifier stage before it" \
        in found


def test_a_stage_reading_an_earlier_stage_sees_only_that_stage_s_columns() -> None:
    """`input:` reads another stage's output: the columns are those of that branch, not the last stage's."""
    stages = [{"name": "normalize"}, {"name": "langid"},
              {"name": "heur", "kind": "heuristics", "input": "normalize"}]
    validate(pipeline_config(stages=stages))  # `lang` is optional for heuristics: no problem either way
    schema = with_added(ingest_schema([]), [Column("lang", pa.string())])
    assert read_problems("stages.x", [Column("lang", pa.int64())], schema) == [
        "stages.x: needs column lang as integer but its input has it as string"]


def test_synth_selection_columns_are_checked_at_load() -> None:
    synth = {"name": "synth", "engine": "http", "model": "m", "base_urls": ["http://127.0.0.1:9"]}
    found = problems([{"name": "normalize"}, {**synth, "recipes": ["wiki_rephrase"]}])  # quality_bucket <= 11
    assert found == ["stages.synth.recipes.wiki_rephrase.select: needs column quality_bucket, which no earlier stage "
                     "adds: add a quality_classifier stage before it"]
    recipe = {"recipe": "wiki_rephrase", "select": "source > 3"}
    found = problems([{"name": "normalize"}, {**synth, "recipes": [recipe]}])
    assert len(found) == 1 and found[0].startswith("stages.synth.recipes.wiki_rephrase.select: 'source > 3' does not "
                                                   "fit the column types"), found
    validate(pipeline_config(stages=[{"name": "normalize"},
                                     {**synth, "recipes": [{"recipe": "wiki_rephrase", "select": "source == 'web'"}]}]))


def test_a_valid_chain_passes_and_every_kind_declares_typed_additions(tmp_path: Path) -> None:
    tokenizer = str(build_tokenizer(tmp_path))
    cfg = validate(pipeline_config(stages=[
        {"name": "extract"}, {"name": "normalize"}, {"name": "langid"}, {"name": "heuristics"}, {"name": "pii"},
        {"name": "domain", "kind": "domain_classifier", "rules": [{"source": "web", "domain": "web"}]},
        {"name": "exact_dedup", "url": True}, {"name": "near_dedup", "survivor": ["quality_score desc", "id"]},
        {"name": "paragraph_dedup"}, {"name": "tokenize", "tokenizer": tokenizer},
        {"name": "mix", "weights": {"web": 1.0}}, {"name": "url_filter"},
        {"name": "shard", "formats": ["parquet"]}]))
    assert [s.name for s in cfg.stages][-1] == "shard"
    for stage_cfg in cfg.stages:
        stage = make_stage(stage_cfg, cfg)
        assert all(c.type is not None for c in stage.adds()), stage_cfg.kind
    assert set(STAGE_MODULES) >= {s.kind for s in cfg.stages}


def test_cli_validate_exits_2_naming_stage_and_column(workdir: Path) -> None:
    write_config(workdir / "pipeline.yaml", pipeline_config(stages=[{"name": "normalize"}, MIX]))
    proc = curate("validate", cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert ("curate: stages.mix: needs column n_tokens, which no earlier stage adds: add a tokenize stage before it"
            in proc.stderr)
    assert "Traceback" not in proc.stderr
    write_config(workdir / "pipeline.yaml", pipeline_config())
    assert curate("validate", cwd=workdir).returncode == 0
