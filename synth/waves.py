"""One wave of the synth stage: its requests, and what their results become (documents, failures, figures).

A wave is built, generated through the response cache, cleaned and written as a unit; the stage keeps
each finished wave's figures (`StageContext.step`), so a resumed run reuses finished waves and counts
their generations as cache hits (this run generated none of them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synth.chunking import Chunk
from synth.engines import GenRequest, GenResult, Sampling
from synth.outputs import JOINED, annotation, document, failure
from synth.postprocess import Drop, PostContext, run_steps
from synth.recipes import Recipe
from synth.selection import TEMPLATE_COLUMNS, Work

COUNTERS = ("prompts", "cache_hits", "generated", "failed", "generated_tokens", "dropped", "synthetic_docs",
            "annotated")
BY_CAUSE = ("failures_by_cause", "dropped_by_cause", "dropped_by_recipe_cause")
Check = Callable[[str, str, str], str]  # (recipe, output, source chunk) -> output, or Drop (synth/fidelity.py)


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


def requests_of(works: list[Work], tok: Any, repetition_penalty: float | None) -> tuple[list[GenRequest], list[str]]:
    """Every chunk's request (and its recipe name), in work order; sets each work's first request index."""
    requests: list[GenRequest] = []
    recipe_of: list[str] = []
    for w in works:
        w.first = len(requests)
        spec = w.recipe.spec
        for c, s in zip(w.chunks, w.seeds, strict=True):
            prompt = w.recipe.prompt(tok, text=c.text, chunk_index=c.index, n_chunks=len(w.chunks),
                                     **{k: w.row.get(k) for k in TEMPLATE_COLUMNS})  # fmt: skip
            params = Sampling(temperature=spec.temperature, top_p=spec.top_p, max_tokens=spec.max_output_tokens,
                              seed=s, stop=tuple(spec.stop), repetition_penalty=repetition_penalty or
                              spec.repetition_penalty, regex=spec.regex)  # fmt: skip
            requests.append(GenRequest(f"{w.recipe.name}:{w.parent_id}:{c.index}", prompt, params))
            recipe_of.append(w.recipe.name)
    return requests, recipe_of


def clean(recipe: Recipe, res: GenResult, chunk: Chunk, seed: int, tok: Any, per_chunk: bool) -> str:
    """The recipe's post-processing of one output; `Drop` when it is rejected (truncated, too short...)."""
    spec = recipe.spec
    if spec.drop_truncated and res.finish_reason == "length":
        raise Drop("truncated", f"hit max_output_tokens={spec.max_output_tokens}")
    text = run_steps(recipe.output(res.text), recipe.steps, PostContext(chunk.text, chunk.tokens, seed))
    if per_chunk and spec.min_output_tokens:
        n = tok.count([text])[0]
        if n < spec.min_output_tokens:
            raise Drop("too_short", f"{n} tokens < min_output_tokens={spec.min_output_tokens}")
    return text


@dataclass
class WaveOutput:
    """What a wave's results became."""

    model: str | None
    docs: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    recipes: dict[str, RecipeStats] = field(default_factory=dict)


def _outputs_of(w: Work, results: list[GenResult], fresh: list[bool], requests: list[GenRequest], tok: Any,
                out: WaveOutput, rs: RecipeStats, check: Check | None = None) -> list[tuple[Chunk, GenResult, str]]:
    """One work item's cleaned outputs, chunk by chunk; failures and rejections become `failed` rows."""
    kept = []
    for j, c in enumerate(w.chunks):
        i = w.first + j
        res = results[i]
        rs.prompts += 1
        if fresh[i]:
            rs.generated += res.ok
            rs.generated_tokens += res.completion_tokens if res.ok else 0
        else:
            rs.cache_hits += 1
        if not res.ok:
            rs.failed += 1
            out.failed.append(failure(requests[i].id, w, c.index, "generation", failure_cause(res.error),
                                      res.error or "", res))
            continue
        try:
            text = clean(w.recipe, res, c, w.seeds[j], tok, per_chunk=not w.recipe.spec.join_chunks)
            kept.append((c, res, check(w.recipe.name, text, c.text) if check else text))
        except Drop as d:
            rs.dropped += 1
            out.failed.append(failure(requests[i].id, w, c.index, "postprocess", d.cause, str(d), res))
    return kept


def _documents(w: Work, outputs: list[tuple[Chunk, GenResult, str]], tok: Any, inherit: list[str],
               out: WaveOutput, rs: RecipeStats) -> None:
    """Synthetic documents of one work item: one per chunk, or one joined (``join_chunks``)."""
    spec = w.recipe.spec
    pieces = [(c, res, f"{c.text}\n\n{text}" if spec.output == "append_to_source" else text)
              for c, res, text in outputs]
    if spec.join_chunks and pieces:
        text = "\n\n".join(p for _, _, p in pieces)
        n = tok.count([text])[0]
        if spec.min_output_tokens and n < spec.min_output_tokens:
            rs.dropped += 1
            out.failed.append(failure(f"{w.recipe.name}:{w.parent_id}:joined", w, JOINED, "postprocess", "too_short",
                                      f"{n} tokens < min_output_tokens={spec.min_output_tokens}", None, text))
            return
        groups = [(JOINED, [c.index for c, _, _ in pieces], [res for _, res, _ in pieces], text)]
    else:
        groups = [(c.index, [c.index], [res], p) for c, res, p in pieces]
    for chunk, chunk_ids, results, text in groups:
        out.docs.append(document(w, chunk, chunk_ids, results, text, out.model, inherit))
    rs.docs += len(groups)


def collect(works: list[Work], results: list[GenResult], fresh: list[bool], requests: list[GenRequest],
            model: str | None, tok: Any, inherit: list[str], recipe_names: list[str], check: Check | None = None
            ) -> WaveOutput:
    """Turn a wave's results into documents, annotations and failure rows, counted per recipe."""
    out = WaveOutput(model, recipes={r: RecipeStats() for r in recipe_names})
    for w in works:
        rs = out.recipes[w.recipe.name]
        rs.docs_with_chunks += 1
        outputs = _outputs_of(w, results, fresh, requests, tok, out, rs, check)
        if w.recipe.spec.kind == "annotate":
            out.annotations += [annotation(w, res, text, model) for _, res, text in outputs]
            rs.annotated += len(outputs)
        else:
            _documents(w, outputs, tok, inherit, out, rs)
    return out


def wave_figures(out: WaveOutput, n_requests: int, hits: int) -> dict[str, Any]:
    """The wave's manifest figures: counters summed over recipes, failures and rejections by cause."""
    figures: dict[str, Any] = {k: 0 for k in COUNTERS} | {k: {} for k in BY_CAUSE}
    figures.update(prompts=n_requests, cache_hits=hits)
    for rs in out.recipes.values():
        for key, attr in (("generated", "generated"), ("generated_tokens", "generated_tokens"),
                          ("failed", "failed"), ("dropped", "dropped"), ("synthetic_docs", "docs"),
                          ("annotated", "annotated")):
            figures[key] += getattr(rs, attr)
    for f in out.failed:
        by = figures["failures_by_cause" if f["stage"] == "generation" else "dropped_by_cause"]
        by[f["cause"]] = by.get(f["cause"], 0) + 1
        if f["stage"] != "generation":  # per recipe and cause, e.g. "wiki_rephrase:wrong_language"
            key = f"{f['recipe']}:{f['cause']}"
            figures["dropped_by_recipe_cause"][key] = figures["dropped_by_recipe_cause"].get(key, 0) + 1
    return figures


@dataclass
class Totals:
    """The stage's figures summed over its waves (finished earlier or now)."""

    stats: dict[str, Any]
    per_recipe: dict[str, RecipeStats]

    @classmethod
    def of(cls, recipes: list[Recipe]) -> Totals:
        return cls({k: 0 for k in COUNTERS} | {k: {} for k in BY_CAUSE}, {r.name: RecipeStats() for r in recipes})

    def add(self, wave: dict[str, Any], recipes: dict[str, dict[str, int]], reused: bool) -> None:
        """Add one wave's figures; a wave an earlier attempt finished counts its generations as cache hits."""
        wave = _as_reused(wave) if reused else wave
        for k, v in wave.items():
            if isinstance(v, dict):
                for cause, n in v.items():
                    self.stats[k][cause] = self.stats[k].get(cause, 0) + n
            else:
                self.stats[k] = self.stats.get(k, 0) + v
        for name, values in recipes.items():
            values = _as_reused(values) if reused else values
            rs = self.per_recipe.setdefault(name, RecipeStats())
            for k, v in values.items():
                if k != "selected":
                    setattr(rs, k, getattr(rs, k) + v)


def _as_reused(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    out["cache_hits"] = out.get("cache_hits", 0) + out.get("generated", 0)
    out["generated"] = 0
    out["generated_tokens"] = 0
    return out
