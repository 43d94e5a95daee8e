"""Stage kinds by name. Modules are imported lazily so `curate validate` stays fast."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for types: the config schema imports this table, not the other way round
    from pipeline.config import StageConfig

STAGE_MODULES: dict[str, str] = {
    "normalize": "stages.normalize",
    "exact_dedup": "stages.exact_dedup",
    "near_dedup": "stages.near_dedup",
    "langid": "stages.langid",
    "heuristics": "stages.heuristics",
    "pii": "stages.pii",
    "shard": "stages.shard",
    "quality_classifier": "stages.quality_classifier",
    "domain_classifier": "stages.domain_classifier",
    "tokenize": "stages.tokenize",
    "mix": "stages.mix",
    "synth": "stages.synth",
    "extract": "stages.extract",
    "url_filter": "stages.url_filter",
    "decontaminate": "stages.decontaminate",
    "paragraph_dedup": "stages.paragraph_dedup",
    "embed": "stages.embed",
    "semantic_dedup": "stages.semantic_dedup",
    "code_filter": "stages.code_filter",
    "secrets": "stages.secrets",
    "math_detect": "stages.math_detect",
}


def stage_module(kind: str):  # returns a module
    name = STAGE_MODULES.get(kind)
    return importlib.import_module(name) if name else None


def stage_config_model(kind: str) -> type[StageConfig] | None:
    module = stage_module(kind)
    return module.Stage.Config if module else None


def make_stage(config, pipeline):
    module = stage_module(config.kind)
    if module is None:
        raise KeyError(f"unknown stage kind {config.kind!r}")
    return module.Stage(config, pipeline)


# Worker-side stage cache: `setup()` (model loading) runs once per worker process, not per task.
_STAGE_CACHE: dict[str, Any] = {}


def cached_stage(config: Any, pipeline: Any, stage_hash: str) -> Any:
    """The set-up stage for `stage_hash` in this process (one stage at a time: the previous one's models go)."""
    stage = _STAGE_CACHE.get(stage_hash)
    if stage is None:
        stage = make_stage(config, pipeline)
        stage.setup()
        _STAGE_CACHE.clear()
        _STAGE_CACHE[stage_hash] = stage
    return stage
