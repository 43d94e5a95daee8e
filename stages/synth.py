"""`synth`: pass the documents through and add synthetic ones made from a selection of them.

Each recipe (``synth/recipes/*.yaml`` or a user file) selects source documents by their signals
(``quality_bucket <= 11``), cuts them into token-budgeted chunks, prompts the model and cleans the output.
How the work is spread, and why:

* Passing through: every input partition is rewritten unchanged plus null provenance columns (``parent_id``,
  ``recipe``, ``model``, ``synth_prompt_tokens``, ``synth_completion_tokens``), so all partitions of the
  stage share one schema. Synthetic documents go to extra partitions ``data/part-synth-<wave>-<k>``;
  counts are in = N, added = S, kept = N + S.
* Generating: ONE engine is fed the whole selection across all partitions (not per partition), through the
  response cache in large chunks, so vLLM's batches stay full. Prompts are built and looked up in the cache
  before any engine exists: a rerun whose responses are all cached never loads the model. Very large
  selections are processed in waves of ``wave_requests`` (bounded memory, resumable per wave).
* Determinism: every request's seed derives from (seed, parent id, chunk, recipe), the ``max_docs_per_recipe``
  cap keeps the smallest hash(seed, id), and synthetic ids are hash(parent id, recipe, chunk); so outputs do
  not depend on batching, partitioning or workers.
* Failures: a request the engine cannot serve is a row in ``failed/part-*.parquet`` (request id, parent id,
  recipe, cause, reason) as is an output that clean-up rejects (truncated, empty, too short, no QA pairs);
  neither becomes a document, both are counted in the manifest. Failed generations are not cached, so a
  rerun retries them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from pipeline import storage
from pipeline.config import ModelRef, ReadPath, StageConfig
from pipeline.errors import StageFailed
from pipeline.paths import stage_write_path
from pipeline.storage import arrow
from stages.base import Column, GlobalStage, Part, PartitionOutput, StageContext
from synth.demo_model import read_model_info
from synth.filter_expr import FilterError
from synth.lazy_engine import LazyEngine, ServerUnavailable, prefix_cache_stats, speculative_stats
from synth.outputs import (
    ANNOTATION_SCHEMA,
    FAILED_SCHEMA,
    PROVENANCE,
    output_schema,
    synth_id,
    synthetic_partitions,
    with_provenance,
    write_side,
)
from synth.recipes import Recipe, RecipeError, is_recipe_path, load_recipes
from synth.selection import TEMPLATE_COLUMNS, Work, chunk_budgets, select, waves
from synth.waves import Totals, WaveOutput, collect, failure_cause, requests_of, wave_figures

log = logging.getLogger("curate.synth")

class SynthConfig(StageConfig):
    """Settings of the synth stage; engine settings pass straight through to the engine."""

    write_paths: ClassVar[tuple[str, ...]] = ("cache",)

    engine: Literal["vllm", "http"] = "vllm"
    model: ModelRef | None = None  # checkpoint dir or hub id (vllm); served model name (http, else discovered)
    model_id: str | None = None  # provenance/cache identity; default: name@fingerprint of a local checkpoint
    tokenizer: ModelRef | None = None  # for chunking and chat templates; default: the model
    prompt_format: Literal["auto", "chat", "raw"] = "auto"  # auto: the tokenizer's chat template if it has one
    recipes: Annotated[list[str | dict[str, Any]], ReadPath(only_if=is_recipe_path, key="recipe")] = Field(min_length=1)
    repetition_penalty: float | None = Field(default=None, gt=0.0)  # overrides every recipe's (small models: 1.2)
    # vllm engine
    dtype: str = "auto"
    max_model_len: int | None = Field(default=None, ge=16)
    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=16)
    tensor_parallel_size: int = Field(default=1, ge=1)
    data_parallel_size: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = Field(default=0.9, gt=0.0, le=1.0)
    speculative_config: dict[str, Any] | None = None
    trust_remote_code: bool = False
    kv_cache_gb: float | None = Field(default=None, gt=0.0)
    enforce_eager: bool | None = None  # None: eager on CPU, CUDA graphs on GPUs
    # CPU build: cores kept from the compute threads (null: vLLM's binding, which keeps one per rank for
    # its scheduler; that core idles in offline batches, half the machine on 2 cores)
    cpu_reserved_cores: int | None = Field(default=0, ge=0)
    # http engine
    base_urls: list[str] = Field(default_factory=list)
    api_key_env: str | None = None
    concurrency: int = Field(default=16, ge=1)
    timeout: float = Field(default=600.0, gt=0.0)  # one HTTP attempt
    # connection errors, timeouts, 429 and 5xx are retried with capped exponential backoff for up to
    # retry_max_s per request and of server outage (long enough for a server restart); then the run stops
    # and a rerun resumes from the response cache
    retry_max_s: float = Field(default=600.0, ge=0.0)
    retry_backoff_s: float = Field(default=0.5, ge=0.0)  # first delay, doubled on each retry ...
    retry_backoff_max_s: float = Field(default=30.0, ge=0.0)  # ... up to this (jittered)
    # the run
    seed: int | None = None  # default: the pipeline's seed
    chunk_size: int = Field(default=2048, ge=1)  # requests per engine call = per cache commit
    wave_requests: int = Field(default=200_000, ge=1)  # requests built and held in memory at once
    max_docs_per_recipe: int | None = Field(default=None, ge=0)  # demo speed: a deterministic sample
    cache: str | None = None  # response cache file, relative to OUT; default _cache/synth.sqlite
    inherit: list[str] = Field(default_factory=lambda: ["lang"])  # parent columns copied to synthetic docs
    max_failed_fraction: float = Field(default=0.5, ge=0.0, le=1.0)  # more failed generations fail the stage

    @field_validator("recipes")
    @classmethod
    def _recipes_load(cls, value: list[str | dict[str, Any]]) -> list[str | dict[str, Any]]:
        try:
            load_recipes(value)
        except RecipeError as e:
            raise ValueError(str(e)) from None
        return value

    @model_validator(mode="after")
    def _engine_settings(self) -> SynthConfig:
        if self.engine == "vllm" and not self.model:
            raise ValueError("engine vllm needs model: a checkpoint directory or hub id")
        if self.engine == "http" and not self.base_urls:
            raise ValueError("engine http needs base_urls: one or more OpenAI-compatible servers")
        return self

    def engine_kwargs(self, seed: int, model_id: str | None) -> dict[str, Any]:
        """Keyword arguments of the chosen engine's constructor."""
        if self.engine == "http":
            return {"base_urls": self.base_urls, "model": self.model, "api_key_env": self.api_key_env,
                    "concurrency": self.concurrency, "timeout_s": self.timeout, "retry_max_s": self.retry_max_s,
                    "backoff_s": self.retry_backoff_s, "backoff_max_s": self.retry_backoff_max_s,
                    "model_id": model_id}
        return {"model": self.model, "tokenizer": self.tokenizer, "dtype": self.dtype,
                "max_model_len": self.max_model_len, "max_num_seqs": self.max_num_seqs,
                "max_num_batched_tokens": self.max_num_batched_tokens,
                "tensor_parallel_size": self.tensor_parallel_size, "data_parallel_size": self.data_parallel_size,
                "gpu_memory_utilization": self.gpu_memory_utilization,
                "speculative_config": self.speculative_config, "trust_remote_code": self.trust_remote_code,
                "kv_cache_gb": self.kv_cache_gb, "enforce_eager": self.enforce_eager, "seed": seed,
                "cpu_reserved_cores": self.cpu_reserved_cores,
                "model_id": model_id}  # fmt: skip



# -- engine: created on first use -------------------------------------------------------------------------

# Tests and benchmarks may hand the stage an engine they already loaded (one per process); never set in runs.
ENGINE_OVERRIDE: Any = None


def executor_engine_factory(ctx: StageContext) -> Callable[..., Any]:
    """Engines made where the executor runs generation (Spark: http requests from its tasks), else here."""

    def factory(kind: str, **kwargs: Any) -> Any:
        from synth.engine_kinds import make_engine

        remote = ctx.executor.generation_engine(kind, label=ctx.stage.name, **kwargs)
        return remote if remote is not None else make_engine(kind, **kwargs)

    return factory


def cache_file(configured: str | None, output_dir: Path) -> Path:
    """Where the response cache lives: SQLite needs a local disk, so a run writing to a remote store
    keeps it under CURATE_CACHE_DIR (default ~/.cache/ling-curate), one file per output URI."""
    where = storage.location(configured) if configured else output_dir / "_cache" / "synth.sqlite"
    if storage.is_local(where):
        return where
    root = Path(os.environ.get("CURATE_CACHE_DIR") or Path.home() / ".cache" / "ling-curate")
    return root / "synth" / f"{hashlib.sha256(str(where).encode()).hexdigest()[:16]}.sqlite"



class Stage(GlobalStage):
    Config = SynthConfig
    config: SynthConfig
    progress_unit: ClassVar[str] = "prompts"  # what the (done, total) of ctx.progress counts

    def reads(self) -> tuple[Column, ...]:
        """`id` and `text`, every column a recipe's selection names, and those copied when present."""
        selected = {c: f"recipes.{r.name}.select" for r in reversed(self._recipes()) if r.select
                    for c in r.select.columns}  # a column several recipes need: named by the first
        optional = dict.fromkeys(c for c in (*TEMPLATE_COLUMNS, *self.config.inherit) if c not in selected)
        return (Column("id", pa.string()), Column("text", pa.string()),
                *(Column(c, setting=where) for c, where in selected.items()),
                *(Column(c, optional=True) for c in optional))

    def adds(self) -> tuple[Column, ...]:
        return tuple(Column(f.name, f.type) for f in PROVENANCE)

    def input_problems(self, key: str, schema: pa.Schema) -> list[str]:
        """A selection whose columns exist but whose comparisons cannot apply to their types."""
        problems = []
        for r in self._recipes():
            if r.select is not None and all(c in schema.names for c in r.select.columns):
                try:
                    r.select.check(schema, f"{key}.recipes.{r.name}.select")
                except FilterError as e:
                    problems.append(str(e))
        return problems

    def _recipes(self) -> list[Recipe]:
        return load_recipes(self.config.recipes)

    def fingerprint(self) -> dict[str, Any]:
        """Recipe contents (files may change under the same name) and the checkpoint's identity."""
        out: dict[str, Any] = {"recipes": {r.name: r.fingerprint() for r in self._recipes()}}
        if self.config.engine == "vllm" and self.config.model:
            out["model"] = self._model_identity()
        return out

    def _model_identity(self) -> str | None:
        if self.config.model_id:
            return self.config.model_id
        if self.config.engine == "vllm" and self.config.model:
            from synth.cache import model_identity

            return model_identity(self.config.model)
        return self.config.model  # http: the served name (None: asked from the server when needed)

    # -- run ------------------------------------------------------------------------------------------
    # -- run ------------------------------------------------------------------------------------------
    def run(self, ctx: StageContext) -> dict[str, Any]:
        cfg = self.config
        seed = cfg.seed if cfg.seed is not None else ctx.pipeline.seed
        recipes = self._recipes()
        schema = output_schema(pq.read_schema(arrow(ctx.inputs[0]))) if ctx.inputs else None
        if schema is not None:
            ctx.write_partitions(functools.partial(_passthrough, schema),
                                 progress=ctx.phase("pass through", "partitions"))
        totals = Totals.of(recipes)
        log_path = ctx.stage_dir / "engine.log" if cfg.engine == "vllm" and storage.is_local(ctx.stage_dir) else None
        engine = LazyEngine(cfg, seed, self._model_identity(), executor_engine_factory(ctx), log_path,
                            override=ENGINE_OVERRIDE)
        t_start = time.perf_counter()
        try:
            tok = self._generate(ctx, recipes, schema, seed, engine, totals) if schema is not None else None
        finally:
            engine.close()
        return {**totals.stats, **self._engine_figures(engine, totals), "synth_seconds": round(
            time.perf_counter() - t_start, 3), "per_recipe": {k: vars(v) for k, v in totals.per_recipe.items()},
            **self._model_figures(engine, tok)}

    def _generate(self, ctx: StageContext, recipes: list[Recipe], schema: pa.Schema, seed: int, engine: LazyEngine,
                  totals: Totals) -> Any:
        """Select, then generate and write wave by wave (a wave finished earlier is reused); the tokenizer."""
        cfg = self.config
        selection = select(ctx.inputs, recipes, seed, cfg.max_docs_per_recipe)
        for r in recipes:
            totals.per_recipe[r.name].selected = sum(len(rows) for rows in selection.get(r.name, {}).values())
        if not any(totals.per_recipe[r.name].selected for r in recipes):
            return None
        from synth.cache import ResponseCache
        from synth.tokenizer import PromptTokenizer

        tok = PromptTokenizer(cfg.tokenizer or cfg.model, trust_remote_code=cfg.trust_remote_code,
                              prompt_format=cfg.prompt_format)  # fmt: skip
        cache = ResponseCache(cache_file(stage_write_path(ctx.pipeline, cfg, "cache"), ctx.output_dir))
        try:
            budgets = chunk_budgets(recipes, tok, cfg.name)
            for i, works in enumerate(waves(ctx.inputs, recipes, selection, tok, budgets, seed, cfg.wave_requests,
                                            cfg.inherit)):
                done, reused = ctx.step(f"_synth/wave-{i:04d}", functools.partial(
                    self._wave, ctx, i, works, engine, cache, tok, schema))
                totals.add(done["stats"], done["per_recipe"], reused)
        finally:
            cache.close()
        return tok

    def _wave(self, ctx: StageContext, wave: int, works: list[Work], engine: LazyEngine, cache: Any, tok: Any,
              schema: pa.Schema) -> dict[str, Any]:
        """Generate, clean and write one wave; returns its figures (kept by the runner per wave)."""
        from synth.cache import generate_cached

        requests, recipe_of = requests_of(works, tok, self.config.repetition_penalty)
        try:
            run = generate_cached(engine, requests, cache, recipe_of, chunk_size=self.config.chunk_size,
                                  model=engine._model_id, progress=ctx.progress)  # fmt: skip
            engine.raise_if_unavailable()
        except ServerUnavailable as e:
            raise StageFailed(ctx.stage.name, e) from None
        out = collect(works, run.results, run.fresh, requests, engine.model_id, tok, self.config.inherit,
                      [r.name for r in self._recipes()])
        figures = wave_figures(out, len(requests), run.hits)
        self._check_failures(ctx, figures, out, len(requests))
        write_side(ctx.stage_dir / "annotations" / f"part-{wave:04d}.parquet", out.annotations, ANNOTATION_SCHEMA,
                   ("id", "recipe"))
        write_side(ctx.stage_dir / "failed" / f"part-{wave:04d}.parquet", out.failed, FAILED_SCHEMA, ())
        parts = []
        for name, table in synthetic_partitions(out.docs, schema, wave, int(self.pipeline.partition_rows)):
            ctx.add_partition(name, table)
            parts.append(name)
        return {"parts": parts, "stats": figures, "per_recipe": {k: vars(v) for k, v in out.recipes.items()}}

    def _check_failures(self, ctx: StageContext, figures: dict[str, Any], out: WaveOutput, n_requests: int) -> None:
        """More failed generations than `max_failed_fraction` stop the stage (a broken model or server)."""
        limit = self.config.max_failed_fraction
        if n_requests and figures["failed"] > limit * n_requests:
            first = next(f for f in out.failed if f["stage"] == "generation")
            raise StageFailed(ctx.stage.name, RuntimeError(
                f"{figures['failed']} of {n_requests} generations failed ({figures['failures_by_cause']}; "
                f"more than max_failed_fraction={limit}); first: {first['reason'][:300]}"))

    def _engine_figures(self, engine: LazyEngine, totals: Totals) -> dict[str, Any]:
        """Throughput, load time, retries, speculative decoding and prefix cache, where generation ran."""
        cfg = self.config
        gen_s = engine.generate_seconds
        figures: dict[str, Any] = {
            "tokens_per_s": round(totals.stats["generated_tokens"] / gen_s, 2) if gen_s > 0 else 0.0,
            "generation_seconds": round(gen_s, 3), "load_seconds": round(engine.load_seconds, 3),
            "engine_loaded": engine.was_loaded, "engine_retries": engine.retries,
            "speculative": speculative_stats(cfg.speculative_config, engine.spec) if cfg.engine == "vllm" else None,
            "prefix_cache": prefix_cache_stats(engine.prefix), **engine.placement}
        sp = figures["speculative"]
        if sp and sp["draft_tokens"]:
            log.info("synth: speculative decoding (%s) accepted %d of %d draft tokens (rate %.3f)",
                     sp["method"], sp["accepted_tokens"], sp["draft_tokens"], sp["acceptance_rate"])
        return figures

    def _model_figures(self, engine: LazyEngine, tok: Any) -> dict[str, Any]:
        cfg = self.config
        return {"engine": cfg.engine, "model": engine._model_id or self._model_identity(),
                "model_info": read_model_info(cfg.model) if cfg.engine == "vllm" else None,
                "tokenizer": tok.kind if tok is not None else None,
                "prompt_format": ("chat" if tok.chat else "raw") if tok is not None else None}


def _passthrough(schema: pa.Schema, part: Part) -> PartitionOutput:
    return PartitionOutput(with_provenance(pq.read_table(arrow(part.path)), schema))


__all__ = ["ENGINE_OVERRIDE", "LazyEngine", "ServerUnavailable", "Stage", "SynthConfig", "failure_cause",
           "prefix_cache_stats", "speculative_stats", "synth_id"]
