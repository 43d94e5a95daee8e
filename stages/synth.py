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

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from pipeline import storage
from pipeline.config import ConfigError, ModelRef, ReadPath, StageConfig
from pipeline.errors import StageFailed
from pipeline.io import read_json_or_none, write_json, write_parquet
from pipeline.partitions import merge_counts, part_done, partition_name, write_split
from pipeline.paths import stage_write_path
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import GlobalStage, StageContext
from synth.chunking import Chunk, chunk_text
from synth.demo_model import read_model_info
from synth.engine_output import engine_output
from synth.engines import GenRequest, GenResult, Sampling
from synth.fidelity import FidelityChecker, FidelityConfig
from synth.filter_expr import FilterError
from synth.postprocess import Drop, PostContext, run_steps
from synth.recipes import Recipe, RecipeError, is_recipe_path, load_recipes

log = logging.getLogger("curate.synth")

PROVENANCE: list[pa.Field] = [
    pa.field("parent_id", pa.string()),
    pa.field("recipe", pa.string()),
    pa.field("model", pa.string()),
    pa.field("synth_prompt_tokens", pa.int32()),
    pa.field("synth_completion_tokens", pa.int32()),
]
FAILED_SCHEMA = pa.schema([
    pa.field("request_id", pa.string()),
    pa.field("parent_id", pa.string()),
    pa.field("recipe", pa.string()),
    pa.field("chunk", pa.int32()),
    pa.field("stage", pa.string()),  # "generation" (the engine failed) or "postprocess" (output rejected)
    pa.field("cause", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("finish_reason", pa.string()),
    pa.field("prompt_tokens", pa.int32()),
    pa.field("completion_tokens", pa.int32()),
    pa.field("text", pa.string()),  # the rejected output, for inspection
])  # fmt: skip
# annotate recipes: one row per scored document (OUT/<stage>/annotations/part-<wave>.parquet)
ANNOTATION_SCHEMA = pa.schema([
    pa.field("id", pa.string()),
    pa.field("recipe", pa.string()),
    pa.field("score", pa.int32()),
    pa.field("model", pa.string()),
    pa.field("text", pa.string()),  # the document that was scored (what a classifier trains on)
    pa.field("output", pa.string()),  # the model's answer, justification included
])  # fmt: skip
TEMPLATE_COLUMNS = ("lang", "source", "url")
JOINED = -1  # chunk number of a document made of all its chunks' outputs


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
    # output checks against the source chunk, per recipe name ("*": every recipe): synth/fidelity.py
    fidelity: dict[str, FidelityConfig] = Field(default_factory=dict)

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


class ServerUnavailable(RuntimeError):
    """The engine's servers stayed unreachable longer than ``retry_max_s``: not a row's fault, so the run
    stops (a rerun resumes from the cache) instead of recording every row as failed."""


def executor_engine_factory(ctx: StageContext) -> Callable[..., Any]:
    """Engines made where the executor runs generation (Spark: http requests from its tasks), else here."""

    def factory(kind: str, **kwargs: Any) -> Any:
        from synth.engines import make_engine

        remote = ctx.executor.generation_engine(kind, label=ctx.stage.name, **kwargs)
        return remote if remote is not None else make_engine(kind, **kwargs)

    return factory


class LazyEngine:
    """The configured engine, loaded only when a request misses the cache.

    When a batch comes back with rows that failed because the servers were unavailable (cause
    ``unavailable``), the batch is still returned (so the cache commits what it finished) and the next
    call, or `raise_if_unavailable`, raises `ServerUnavailable`.
    """

    def __init__(self, cfg: SynthConfig, seed: int, model_id: str | None,
                 factory: Callable[..., Any] | None = None, log_path: Path | None = None) -> None:
        self.cfg, self.seed = cfg, seed
        self.log_path = log_path  # engine output (vLLM, torch, Triton; child processes too) goes here
        self._model_id = model_id
        self._factory = factory  # (kind, **engine kwargs) -> engine; default synth.engines.make_engine
        self._engine: Any = None
        self._closed: Any = None  # the engine after close (its placement and totals are still reported)
        self.was_loaded = False
        self.load_seconds = 0.0
        self.generate_seconds = 0.0
        self.retries = 0
        self.spec: dict[str, int] = {}  # speculative decoding: drafts, draft_tokens, accepted_tokens (summed)
        self.prefix: dict[str, int] = {}  # prefix cache: queried_tokens, hit_tokens (summed; vllm engine)
        self.unavailable: str | None = None  # the error of a row that failed for want of a server

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    @property
    def placement(self) -> dict[str, Any]:
        """Where generation ran (`generated_on`) and, for requests sent from executor tasks, their totals."""
        engine = self._engine or self._closed
        if engine is None:
            return {}
        return {"generated_on": getattr(engine, "generated_on", "driver"), **getattr(engine, "totals", {})}

    def _get(self) -> Any:
        if self._engine is None:
            t0 = time.perf_counter()
            if ENGINE_OVERRIDE is not None:
                self._engine = ENGINE_OVERRIDE
            else:
                from synth.engines import make_engine

                log.info("loading %s engine for %s", self.cfg.engine, self.cfg.model or self.cfg.base_urls)
                from synth.engine_http import ServerUnavailableError

                factory = self._factory or make_engine
                # _model_id, not model_id: for an http server without a configured name, the engine finds it
                try:
                    with engine_output(self.log_path):
                        self._engine = factory(self.cfg.engine, **self.cfg.engine_kwargs(self.seed, self._model_id))
                except ServerUnavailableError as e:  # an http server's model name could not be read
                    raise ServerUnavailable(str(e)) from None
            self.load_seconds = time.perf_counter() - t0
            self.was_loaded = True
        return self._engine

    @property
    def model_id(self) -> str:
        if self._model_id is None:  # an http server's model name, read from the server
            self._model_id = str(self._get().model_id)
        return self._model_id

    @property
    def last_stats(self) -> dict[str, Any]:
        return getattr(self._engine, "last_stats", {}) if self._engine is not None else {}

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.raise_if_unavailable()
        engine = self._get()
        t0 = time.perf_counter()
        try:
            with engine_output(self.log_path if engine is not ENGINE_OVERRIDE else None):
                results = engine.generate(requests)
        finally:
            self.generate_seconds += time.perf_counter() - t0
        last = getattr(engine, "last_stats", None) or {}
        self.retries += int(last.get("retries") or 0)
        for key, n in (last.get("speculative") or {}).items():
            self.spec[key] = self.spec.get(key, 0) + int(n)
        for key, n in (last.get("prefix_cache") or {}).items():
            self.prefix[key] = self.prefix.get(key, 0) + int(n)
        down = [r for r in results if not r.ok and failure_cause(r.error) == "unavailable"]
        if down:
            self.unavailable = f"{len(down)} of {len(results)} requests not served: {down[0].error}"
        return results

    def raise_if_unavailable(self) -> None:
        if self.unavailable is not None:
            raise ServerUnavailable(f"{self.unavailable}; finished responses are cached: rerun to resume")

    def close(self) -> None:
        if self._engine is not None and self._engine is not ENGINE_OVERRIDE:
            with engine_output(self.log_path):
                self._engine.close()
        self._closed = self._engine or self._closed
        self._engine = None


# -- helpers ----------------------------------------------------------------------------------------------


def cache_file(configured: str | None, output_dir: Path) -> Path:
    """Where the response cache lives: SQLite needs a local disk, so a run writing to a remote store
    keeps it under CURATE_CACHE_DIR (default ~/.cache/ling-curate), one file per output URI."""
    where = storage.location(configured) if configured else output_dir / "_cache" / "synth.sqlite"
    if storage.is_local(where):
        return where
    root = Path(os.environ.get("CURATE_CACHE_DIR") or Path.home() / ".cache" / "ling-curate")
    return root / "synth" / f"{hashlib.sha256(str(where).encode()).hexdigest()[:16]}.sqlite"


def speculative_stats(spec_config: dict[str, Any] | None, counts: dict[str, int]) -> dict[str, Any] | None:
    """The manifest's ``speculative`` entry: vLLM's draft/accept counts over this run's generations and the
    acceptance rate (accepted / drafted tokens; None when nothing was drafted, e.g. all cached)."""
    if not spec_config:
        return None
    drafts, drafted, accepted = (int(counts.get(k, 0)) for k in ("drafts", "draft_tokens", "accepted_tokens"))
    return {
        "method": spec_config.get("method"),
        "num_speculative_tokens": spec_config.get("num_speculative_tokens"),
        "drafts": drafts,
        "draft_tokens": drafted,
        "accepted_tokens": accepted,
        "acceptance_rate": round(accepted / drafted, 4) if drafted else None,
        # tokens per target-model step for a drafted request: 1 verified + the accepted drafts
        "mean_acceptance_length": round(1 + accepted / drafts, 3) if drafts else None,
    }


def prefix_cache_stats(counts: dict[str, int]) -> dict[str, Any] | None:
    """The manifest's ``prefix_cache`` entry: prompt tokens vLLM looked up in its prefix cache and found
    there over this run's generations (None when the engine reports none: http, or nothing generated)."""
    queried, hits = int(counts.get("queried_tokens", 0)), int(counts.get("hit_tokens", 0))
    if not queried:
        return None
    return {"queried_tokens": queried, "hit_tokens": hits, "hit_rate": round(hits / queried, 4)}


def request_seed(seed: int, parent_id: str, chunk: int, recipe: str) -> int:
    """A 31-bit sampling seed per request: the same output whatever the batch it lands in."""
    digest = hashlib.sha256(f"{seed}\0{parent_id}\0{chunk}\0{recipe}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def synth_id(parent_id: str, recipe: str, chunk: int) -> str:
    digest = hashlib.sha256(f"{parent_id}\0{recipe}\0{chunk}".encode()).hexdigest()
    return f"synth-{digest[:24]}"


def failure_cause(error: str | None) -> str:
    """A short cause for a failed generation's error text (the manifest counts these)."""
    e = (error or "").lower()
    if "prompt too long" in e or "maximum context length" in e or "longer than the maximum" in e:
        return "prompt_too_long"
    if "empty prompt" in e:
        return "empty_prompt"
    if e.startswith("server unavailable"):
        return "unavailable"
    if "engine died" in e or "replica died" in e:
        return "engine_dead"
    if "gave up after" in e:
        return "unreachable"
    if e.startswith("http 4"):
        return "http_" + e[5:8]
    if "finished with" in e:
        return "aborted"
    return "error"


def output_schema(schema: pa.Schema) -> pa.Schema:
    """The stage's schema: the input's plus the provenance columns it lacks."""
    for f in PROVENANCE:
        if f.name not in schema.names:
            schema = schema.append(f)
    return schema


def with_provenance(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` (an input partition) with null provenance columns, in ``schema``'s column order."""
    for f in schema:
        if f.name not in table.column_names:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(schema.names)


def _passthrough(task: tuple[str, Path, Path, pa.Schema]) -> None:
    stage_hash, in_path, stage_dir, schema = task
    table = with_provenance(pq.read_table(arrow(in_path)), schema)
    table = table.append_column(REASON, pa.nulls(table.num_rows, pa.string()))
    write_split(table, stage_dir, partition_name(in_path), stage_hash, {})


@dataclass
class Work:
    """One (source document, recipe): its chunks and the requests made from them."""

    recipe: Recipe
    parent_id: str
    row: dict[str, Any]
    chunks: list[Chunk]
    seeds: list[int] = field(default_factory=list)
    first: int = 0  # index of its first request in the wave


@dataclass
class RecipeStats:
    selected: int = 0
    docs_with_chunks: int = 0
    prompts: int = 0
    cache_hits: int = 0
    generated: int = 0
    failed: int = 0
    dropped: int = 0
    docs: int = 0
    generated_tokens: int = 0
    annotated: int = 0  # annotate recipes: scores parsed (parse failures are `dropped`, cause no_score)


# -- the stage --------------------------------------------------------------------------------------------


class Stage(GlobalStage):
    Config = SynthConfig
    config: SynthConfig
    progress_unit: ClassVar[str] = "prompts"  # what the (done, total) of ctx.stats["progress"] counts

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
    def run(self, ctx: StageContext) -> dict[str, Any]:
        cfg = self.config
        stage_hash = ctx.stats["stage_hash"]
        progress = ctx.stats.get("progress")
        seed = cfg.seed if cfg.seed is not None else ctx.pipeline.seed
        recipes = self._recipes()
        in_schema = pq.read_schema(arrow(ctx.inputs[0])) if ctx.inputs else None
        if in_schema is not None:
            self._check_columns(recipes, in_schema, ctx.stage.name)
        schema = output_schema(in_schema) if in_schema is not None else None

        todo = [p for p in ctx.inputs if part_done(ctx.stage_dir, partition_name(p), stage_hash) is None]
        ctx.executor.map(_passthrough, [(stage_hash, p, ctx.stage_dir, schema) for p in todo])

        stats: dict[str, Any] = {"prompts": 0, "cache_hits": 0, "generated": 0, "failed": 0,
                                 "generated_tokens": 0, "failures_by_cause": {}, "dropped": 0,
                                 "dropped_by_cause": {}, "dropped_by_recipe_cause": {}, "synthetic_docs": 0,
                                 "annotated": 0}  # fmt: skip
        per_recipe = {r.name: RecipeStats() for r in recipes}
        synth_parts: list[str] = []
        engine = LazyEngine(cfg, seed, self._model_identity(), executor_engine_factory(ctx),
                            log_path=ctx.stage_dir / "engine.log"
                            if cfg.engine == "vllm" and storage.is_local(ctx.stage_dir) else None)
        cache = None
        tok = None
        t_start = time.perf_counter()
        try:
            selection = self._select(ctx.inputs, recipes, seed) if schema is not None else {}
            for r in recipes:
                per_recipe[r.name].selected = sum(len(rows) for rows in selection.get(r.name, {}).values())
            if any(per_recipe[r.name].selected for r in recipes):
                from synth.cache import ResponseCache
                from synth.tokenizer import PromptTokenizer

                tok = PromptTokenizer(cfg.tokenizer or cfg.model, trust_remote_code=cfg.trust_remote_code,
                                      prompt_format=cfg.prompt_format)  # fmt: skip
                where = stage_write_path(ctx.pipeline, cfg, "cache")
                cache = ResponseCache(cache_file(where, ctx.output_dir))
                budgets = self._budgets(recipes, tok)
                for wave, works in enumerate(self._waves(ctx.inputs, recipes, selection, tok, budgets, seed)):
                    synth_parts += self._wave(ctx, wave, works, engine, cache, tok, schema, stats, per_recipe,
                                              stage_hash, progress)  # fmt: skip
        finally:
            engine.close()
            if cache is not None:
                cache.close()
        self._remove_stale(ctx.stage_dir, synth_parts)
        names = [partition_name(p) for p in ctx.inputs] + synth_parts
        counts = merge_counts(part_done(ctx.stage_dir, n, stage_hash) or {} for n in names)
        gen_s = engine.generate_seconds
        stats["tokens_per_s"] = round(stats["generated_tokens"] / gen_s, 2) if gen_s > 0 else 0.0
        stats["generation_seconds"] = round(gen_s, 3)
        stats["load_seconds"] = round(engine.load_seconds, 3)
        stats["engine_loaded"] = engine.was_loaded
        stats["engine_retries"] = engine.retries
        stats["speculative"] = speculative_stats(cfg.speculative_config, engine.spec) if cfg.engine == "vllm" else None
        if stats["speculative"] and stats["speculative"]["draft_tokens"]:
            sp = stats["speculative"]
            log.info("synth: speculative decoding (%s) accepted %d of %d draft tokens (rate %.3f)",
                     sp["method"], sp["accepted_tokens"], sp["draft_tokens"], sp["acceptance_rate"])
        stats["prefix_cache"] = prefix_cache_stats(engine.prefix)
        stats.update(engine.placement or {"generated_on": "driver"})
        stats["synth_seconds"] = round(time.perf_counter() - t_start, 3)  # selection to written outputs
        stats["per_recipe"] = {k: vars(v) for k, v in per_recipe.items()}
        stats["engine"] = cfg.engine
        stats["model"] = engine._model_id or self._model_identity()
        stats["model_info"] = read_model_info(cfg.model) if cfg.engine == "vllm" else None
        stats["tokenizer"] = tok.kind if tok is not None else None
        stats["prompt_format"] = ("chat" if tok.chat else "raw") if tok is not None else None
        counts.update(stats)
        return counts

    def _check_columns(self, recipes: list[Recipe], schema: pa.Schema, stage_name: str) -> None:
        problems = []
        for r in recipes:
            if r.select is not None:
                try:
                    r.select.check(schema, f"stages.{stage_name}.recipes.{r.name}.select")
                except FilterError as e:
                    problems.append(str(e))
        if problems:
            raise ConfigError(problems)

    def _select(self, inputs: Sequence[Path], recipes: list[Recipe], seed: int) -> dict[str, dict[int, np.ndarray]]:
        """recipe -> partition index -> selected row numbers (after the deterministic cap)."""
        from stages.shard import shuffle_keys

        cols = list(dict.fromkeys(["id", *(c for r in recipes if r.select for c in r.select.columns)]))
        picked: dict[str, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {r.name: [] for r in recipes}
        for part, path in enumerate(inputs):
            table = pq.read_table(arrow(path), columns=cols)
            ids = table.column("id")
            capped = self.config.max_docs_per_recipe is not None
            keys = shuffle_keys(ids, seed) if capped else np.zeros(table.num_rows, np.uint64)
            id_values = np.asarray(ids.to_pylist(), dtype=object) if capped else np.zeros(table.num_rows, object)
            for r in recipes:
                mask = r.select.mask(table) if r.select is not None else np.ones(table.num_rows, dtype=bool)
                rows = np.flatnonzero(mask)
                if len(rows):
                    picked[r.name].append((part, rows, keys[rows], id_values[rows]))
        cap = self.config.max_docs_per_recipe
        out: dict[str, dict[int, np.ndarray]] = {}
        for name, chunks in picked.items():
            if not chunks:
                out[name] = {}
                continue
            parts = np.concatenate([np.full(len(rows), p) for p, rows, _, _ in chunks])
            rows = np.concatenate([rows for _, rows, _, _ in chunks])
            if cap is not None and len(rows) > cap:
                keys = np.concatenate([k for _, _, k, _ in chunks])
                ids = np.concatenate([i for _, _, _, i in chunks])
                order = np.lexsort((ids, keys))[:cap]  # smallest hash(seed, id), ties by id
                keep = np.zeros(len(rows), dtype=bool)
                keep[order] = True
                parts, rows = parts[keep], rows[keep]
            out[name] = {int(p): np.sort(rows[parts == p]) for p in np.unique(parts)}
        return out

    def _budgets(self, recipes: list[Recipe], tok: Any) -> dict[str, int]:
        """Tokens left for the chunk in each recipe's input budget after the prompt around it.

        Recipes with the same ``max_input_tokens`` get the smallest of their budgets, so they cut a
        document into the same chunks and their prompts share each chunk as a prefix in vLLM's prefix
        cache (the templates put the document first); otherwise a few tokens of instruction length would
        move the chunk boundaries of every long document."""
        budgets = {}
        for r in recipes:
            overhead = tok.count([r.prompt(tok, text="")])[0]
            budget = r.spec.max_input_tokens - overhead
            if budget < max(1, r.spec.min_input_tokens):
                raise ConfigError([f"stages.{self.config.name}.recipes.{r.name}.max_input_tokens: the prompt alone "
                                   f"takes {overhead} of {r.spec.max_input_tokens} tokens, leaving less than "
                                   f"min_input_tokens={r.spec.min_input_tokens} for the text"])
            budgets[r.name] = budget
        shared: dict[int, int] = {}
        for r in recipes:
            shared[r.spec.max_input_tokens] = min(shared.get(r.spec.max_input_tokens, budgets[r.name]),
                                                  budgets[r.name])
        # a recipe whose min_input_tokens the shared budget cannot hold keeps its own
        return {r.name: shared[r.spec.max_input_tokens] if shared[r.spec.max_input_tokens] >= r.spec.min_input_tokens
                else budgets[r.name] for r in recipes}

    def _waves(self, inputs: Sequence[Path], recipes: list[Recipe], selection: dict[str, dict[int, np.ndarray]],
               tok: Any, budgets: dict[str, int], seed: int) -> Any:
        """Work items in (partition, recipe, row) order, cut into waves of about ``wave_requests`` requests."""
        cfg = self.config
        wave: list[Work] = []
        n_requests = 0
        for part, path in enumerate(inputs):
            wanted = {r.name: selection.get(r.name, {}).get(part) for r in recipes}
            if not any(v is not None and len(v) for v in wanted.values()):
                continue
            names = pq.read_schema(arrow(path)).names
            cols = list(dict.fromkeys(["id", "text", *(c for c in (*TEMPLATE_COLUMNS, *cfg.inherit) if c in names)]))
            table = pq.read_table(arrow(path), columns=cols)
            for r in recipes:
                rows = wanted[r.name]
                if rows is None or not len(rows):
                    continue
                sub = table.take(pa.array(rows)).to_pylist()
                for row in sub:
                    chunks = chunk_text(row["text"] or "", budgets[r.name], tok.count, r.spec.min_input_tokens)
                    if r.spec.kind == "annotate":
                        chunks = chunks[:1]  # a document is scored on its opening (FineWeb-Edu), once
                    if not chunks:
                        continue
                    pid = str(row["id"])
                    work = Work(r, pid, row, chunks, [request_seed(seed, pid, c.index, r.name) for c in chunks])
                    wave.append(work)
                    n_requests += len(chunks)
                    if n_requests >= cfg.wave_requests:
                        yield wave
                        wave, n_requests = [], 0
        if wave:
            yield wave

    def _wave(self, ctx: StageContext, wave: int, works: list[Work], engine: LazyEngine, cache: Any, tok: Any,
              schema: pa.Schema, stats: dict[str, Any], per_recipe: dict[str, RecipeStats], stage_hash: str,
              progress: Callable[[int, int], None] | None) -> list[str]:
        """Generate, clean and write one wave; a finished wave (marker with this stage hash) is reused."""
        marker_path = ctx.stage_dir / "_synth" / f"wave-{wave:04d}.json"
        marker = read_json_or_none(marker_path)
        if marker and marker.get("config_hash") == stage_hash:
            _add_stats(stats, per_recipe, marker["stats"], marker["per_recipe"], reused=True)
            return list(marker["parts"])
        requests: list[GenRequest] = []
        recipe_of: list[str] = []
        for w in works:
            w.first = len(requests)
            spec = w.recipe.spec
            for c, s in zip(w.chunks, w.seeds, strict=True):
                prompt = w.recipe.prompt(tok, text=c.text, chunk_index=c.index, n_chunks=len(w.chunks),
                                         **{k: w.row.get(k) for k in TEMPLATE_COLUMNS})  # fmt: skip
                params = Sampling(temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_output_tokens,
                                  seed=s, stop=tuple(spec.stop),
                                  repetition_penalty=self.config.repetition_penalty or spec.repetition_penalty,
                                  regex=spec.regex)  # fmt: skip
                requests.append(GenRequest(f"{w.recipe.name}:{w.parent_id}:{c.index}", prompt, params))
                recipe_of.append(w.recipe.name)
        from synth.cache import generate_cached

        try:
            run = generate_cached(engine, requests, cache, recipe_of, chunk_size=self.config.chunk_size,
                                  model=engine._model_id, progress=progress)  # fmt: skip
            engine.raise_if_unavailable()
        except ServerUnavailable as e:
            raise StageFailed(ctx.stage.name, e) from None
        model = engine.model_id  # known without loading unless an http server had to be asked
        wave_stats: dict[str, Any] = {"prompts": len(requests), "cache_hits": run.hits, "generated": 0,
                                      "failed": 0, "generated_tokens": 0, "failures_by_cause": {}, "dropped": 0,
                                      "dropped_by_cause": {}, "synthetic_docs": 0, "annotated": 0}  # fmt: skip
        wave_recipes = {r: RecipeStats() for r in per_recipe}
        fresh = run.fresh
        fidelity = FidelityChecker(self.config.fidelity)
        docs: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for w in works:
            rs = wave_recipes[w.recipe.name]
            rs.docs_with_chunks += 1
            outputs: list[tuple[Chunk, GenResult, str]] = []
            for j, c in enumerate(w.chunks):
                i = w.first + j
                res = run.results[i]
                rs.prompts += 1
                if fresh[i]:
                    rs.generated += res.ok
                    if res.ok:
                        rs.generated_tokens += res.completion_tokens
                else:
                    rs.cache_hits += 1
                if not res.ok:
                    rs.failed += 1
                    failed.append(_failure(requests[i].id, w, c.index, "generation", failure_cause(res.error),
                                           res.error or "", res))  # fmt: skip
                    continue
                try:
                    text = self._clean(w.recipe, res, c, w.seeds[j], tok, per_chunk=not w.recipe.spec.join_chunks)
                    text = fidelity.check(w.recipe.name, text, c.text)
                except Drop as d:
                    rs.dropped += 1
                    failed.append(_failure(requests[i].id, w, c.index, "postprocess", d.cause, str(d), res))
                    continue
                outputs.append((c, res, text))
            if w.recipe.spec.kind == "annotate":
                annotations += [{"id": w.parent_id, "recipe": w.recipe.name, "score": int(text), "model": model,
                                 "text": w.row.get("text"), "output": res.text} for _, res, text in outputs]
                rs.annotated += len(outputs)
                continue
            docs += self._documents(w, outputs, model, tok, failed, rs)
        for rs in wave_recipes.values():
            wave_stats["generated"] += rs.generated
            wave_stats["generated_tokens"] += rs.generated_tokens
            wave_stats["failed"] += rs.failed
            wave_stats["dropped"] += rs.dropped
            wave_stats["synthetic_docs"] += rs.docs
        for f in failed:
            key = "failures_by_cause" if f["stage"] == "generation" else "dropped_by_cause"
            wave_stats[key][f["cause"]] = wave_stats[key].get(f["cause"], 0) + 1
            if f["stage"] != "generation":  # per recipe and cause, e.g. "wiki_rephrase:wrong_language"
                by = wave_stats.setdefault("dropped_by_recipe_cause", {})
                by[f"{f['recipe']}:{f['cause']}"] = by.get(f"{f['recipe']}:{f['cause']}", 0) + 1
        if requests and wave_stats["failed"] > self.config.max_failed_fraction * len(requests):
            first = next(f for f in failed if f["stage"] == "generation")
            raise StageFailed(ctx.stage.name, RuntimeError(
                f"{wave_stats['failed']} of {len(requests)} generations failed ({wave_stats['failures_by_cause']}; "
                f"more than max_failed_fraction={self.config.max_failed_fraction}); first: {first['reason'][:300]}"))
        wave_stats["annotated"] = sum(rs.annotated for rs in wave_recipes.values())
        _write_side(ctx.stage_dir / "annotations" / f"part-{wave:04d}.parquet", annotations, ANNOTATION_SCHEMA)
        parts = self._write(ctx.stage_dir, wave, docs, failed, schema, stage_hash)
        recipe_stats = {k: vars(v) for k, v in wave_recipes.items()}
        write_json({"config_hash": stage_hash, "parts": parts, "stats": wave_stats, "per_recipe": recipe_stats},
                   marker_path)
        _add_stats(stats, per_recipe, wave_stats, recipe_stats)
        return parts

    def _clean(self, recipe: Recipe, res: GenResult, chunk: Chunk, seed: int, tok: Any, per_chunk: bool) -> str:
        spec = recipe.spec
        if spec.drop_truncated and res.finish_reason == "length":
            raise Drop("truncated", f"hit max_output_tokens={spec.max_output_tokens}")
        text = run_steps(recipe.output(res.text), recipe.steps, PostContext(chunk.text, chunk.tokens, seed))
        if per_chunk and spec.min_output_tokens:
            n = tok.count([text])[0]
            if n < spec.min_output_tokens:
                raise Drop("too_short", f"{n} tokens < min_output_tokens={spec.min_output_tokens}")
        return text

    def _documents(self, w: Work, outputs: list[tuple[Chunk, GenResult, str]], model: str | None, tok: Any,
                   failed: list[dict[str, Any]], rs: RecipeStats) -> list[dict[str, Any]]:
        """Synthetic documents of one work item: one per chunk, or one joined (``join_chunks``)."""
        spec = w.recipe.spec
        append = spec.output == "append_to_source"
        pieces = [(c, res, f"{c.text}\n\n{text}" if append else text) for c, res, text in outputs]
        if spec.join_chunks and pieces:
            text = "\n\n".join(p for _, _, p in pieces)
            n = tok.count([text])[0]
            if spec.min_output_tokens and n < spec.min_output_tokens:
                rs.dropped += 1
                failed.append(_failure(f"{w.recipe.name}:{w.parent_id}:joined", w, JOINED, "postprocess",
                                       "too_short", f"{n} tokens < min_output_tokens={spec.min_output_tokens}",
                                       None, text))  # fmt: skip
                return []
            groups = [(JOINED, [res for _, res, _ in pieces], text, [c.index for c, _, _ in pieces])]
        else:
            groups = [(c.index, [res], p, [c.index]) for c, res, p in pieces]
        docs = []
        for chunk, results, text, chunk_ids in groups:
            meta = {"parent_id": w.parent_id, "recipe": w.recipe.name, "chunk": chunk, "chunks": chunk_ids,
                    "model": model, "finish_reason": [r.finish_reason for r in results]}
            doc = {k: w.row.get(k) for k in self.config.inherit if k in w.row}
            doc.update({"id": synth_id(w.parent_id, w.recipe.name, chunk), "text": text,
                        "source": f"synth/{w.recipe.name}", "url": None,
                        "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True), "domain": w.recipe.domain,
                        "parent_id": w.parent_id, "recipe": w.recipe.name, "model": model,
                        "synth_prompt_tokens": sum(r.prompt_tokens for r in results),
                        "synth_completion_tokens": sum(r.completion_tokens for r in results)})  # fmt: skip
            docs.append(doc)
        rs.docs += len(docs)
        return docs

    def _write(self, stage_dir: Path, wave: int, docs: list[dict[str, Any]], failed: list[dict[str, Any]],
               schema: pa.Schema, stage_hash: str) -> list[str]:
        """Synthetic documents as ``data/part-synth-<wave>-<k>`` (sorted by id), failures as ``failed/``."""
        failed_path = stage_dir / "failed" / f"part-{wave:04d}.parquet"
        if failed:
            write_parquet(pa.Table.from_pylist(failed, schema=FAILED_SCHEMA), failed_path)
        else:
            failed_path.unlink(missing_ok=True)
        docs.sort(key=lambda d: d["id"])
        rows_per_part = max(1, self._partition_rows)
        parts = []
        for k in range(0, len(docs), rows_per_part):
            name = f"part-synth-{wave:04d}-{k // rows_per_part:04d}"
            rows = [{c: d.get(c) for c in schema.names} for d in docs[k : k + rows_per_part]]
            table = pa.Table.from_pylist(rows, schema=schema)
            table = table.append_column(REASON, pa.nulls(table.num_rows, pa.string()))
            write_split(table, stage_dir, name, stage_hash, {}, added=table.num_rows)
            parts.append(name)
        return parts

    @property
    def _partition_rows(self) -> int:
        return int(self.pipeline.partition_rows)

    def _remove_stale(self, stage_dir: Path, parts: list[str]) -> None:
        """Synthetic partitions of an earlier attempt that this run did not write (never expected, but a
        stale file would silently join the output)."""
        keep = set(parts)
        for sub in ("data", "_parts"):
            for f in (stage_dir / sub).glob("part-synth-*"):
                if f.name.split(".")[0] not in keep:
                    f.unlink(missing_ok=True)


def _write_side(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    """A wave's side table (annotations), sorted by (id, recipe); no rows, no file."""
    if rows:
        rows.sort(key=lambda r: (r["id"], r["recipe"]))
        write_parquet(pa.Table.from_pylist(rows, schema=schema), path)
    else:
        path.unlink(missing_ok=True)


def _failure(request_id: str, w: Work, chunk: int, stage: str, cause: str, reason: str, res: GenResult | None,
             text: str | None = None) -> dict[str, Any]:
    return {"request_id": request_id, "parent_id": w.parent_id, "recipe": w.recipe.name, "chunk": chunk,
            "stage": stage, "cause": cause, "reason": reason,
            "finish_reason": res.finish_reason if res is not None else None,
            "prompt_tokens": res.prompt_tokens if res is not None else None,
            "completion_tokens": res.completion_tokens if res is not None else None,
            "text": text if text is not None else (res.text or None) if res is not None else None}


def _add_stats(stats: dict[str, Any], per_recipe: dict[str, RecipeStats], wave: dict[str, Any],
               wave_recipes: dict[str, dict[str, int]], reused: bool = False) -> None:
    """Add one wave's figures; a wave finished by an earlier attempt counts its generations as cache
    hits (this run generated none of them)."""
    wave = _as_reused(wave) if reused else wave
    for k, v in wave.items():
        if isinstance(v, dict):
            for cause, n in v.items():
                stats[k][cause] = stats[k].get(cause, 0) + n
        else:
            stats[k] = stats.get(k, 0) + v
    for name, values in wave_recipes.items():
        values = _as_reused(values) if reused else values
        rs = per_recipe.setdefault(name, RecipeStats())
        for k, v in values.items():
            if k != "selected":
                setattr(rs, k, getattr(rs, k) + v)


def _as_reused(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    out["cache_hits"] = out.get("cache_hits", 0) + out.get("generated", 0)
    out["generated"] = 0
    out["generated_tokens"] = 0
    return out
