"""Synthetic outputs checked against their sources: language, meaning, and not a copy.

A small model's rephrasing can come back fluent, unique and wrong: an English essay for a Chinese
forum page, a text about something else, the source verbatim, or the answer wrapped in lines about
itself ("Here is a rewritten version of the passage:", "Translated Passage: ..."). Heuristic filters
and near-dup keep such outputs, so the synth stage checks each cleaned output against the chunk it
was made from, per recipe (`fidelity:` in the synth stage, keyed by recipe name, `"*"` for all):

1. meta lines (`synth/data/meta_lines.txt`) are stripped;
2. `wrong_language`: the output's lid.176 language differs from the source's (or from the recipe's
   `target_language`, for translation recipes); only confident labels count (`min_lang_score`);
3. `unrelated`: the cosine of the output's and the source's sentence embeddings is below
   `min_similarity`;
4. `copy`: for rewriting recipes, the cosine is at or above `max_similarity` (or the normalized texts are
   equal): the model echoed its input.

A failed check raises `Drop(cause)`, which the stage records like any clean-up rejection (removed
row with recipe and cause, counts per recipe and cause in the manifest).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from synth.postprocess import Drop

META_FILE = Path(__file__).with_name("data") / "meta_lines.txt"
_LEAD = re.compile(r"^[\s>*#_\"'`-]+")


class FidelityConfig(BaseModel):
    """Checks for one recipe's outputs (all optional; the defaults suit rewriting recipes)."""

    model_config = ConfigDict(extra="forbid")

    strip_meta: bool = True
    language: bool = True  # output language must be the source's (or target_language)
    target_language: str | None = None  # translation recipes: the language outputs must be in
    min_lang_score: float = Field(default=0.5, ge=0.0, le=1.0)  # lid.176 confidence for a language to count
    min_similarity: float | None = Field(default=0.3, ge=-1.0, le=1.0)  # below: unrelated to the source
    max_similarity: float | None = Field(default=None, ge=-1.0, le=1.0)  # at/above: a copy (rewriting recipes)
    embedding_model: str | None = None  # default: all-MiniLM-L6-v2 from its wheel
    max_tokens: int = Field(default=128, ge=8, le=512)


@cache
def meta_rules() -> tuple[tuple[str, re.Pattern[str]], ...]:
    rules = []
    for line in META_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        action, pattern = line.split(" ", 1)
        if action not in ("drop", "cut"):
            raise ValueError(f"{META_FILE}: unknown action {action!r}")
        rules.append((action, re.compile(pattern.strip(), re.IGNORECASE)))
    return tuple(rules)


def strip_meta(text: str) -> str:
    """Meta lines at the start or end removed, meta labels at line starts cut."""
    rules = meta_rules()
    lines = text.split("\n")

    def is_meta(line: str) -> bool:
        bare = _LEAD.sub("", line).strip()
        return any(a == "drop" and p.fullmatch(bare) for a, p in rules)

    while lines and (not lines[0].strip() or is_meta(lines[0])):
        lines.pop(0)
    while lines and (not lines[-1].strip() or is_meta(lines[-1])):
        lines.pop()
    out = []
    for line in lines:
        bare = _LEAD.sub("", line)
        for action, pattern in rules:
            if action == "cut":
                m = pattern.match(bare)
                if m:
                    line = bare[m.end():]
                    break
        out.append(line)
    return "\n".join(out).strip()


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


class FidelityChecker:
    """Per-recipe checks; the language and embedding models load on first use, once."""

    def __init__(self, settings: dict[str, FidelityConfig]):
        self.settings = settings
        self._lid: Any = None
        self._embedders: dict[tuple[str | None, int], Any] = {}

    def for_recipe(self, recipe: str) -> FidelityConfig | None:
        return self.settings.get(recipe) or self.settings.get("*")

    def _language(self, text: str) -> tuple[str | None, float]:
        import pyarrow as pa

        from filters.langid import default_model_path, load_model, predict, prepare

        if self._lid is None:
            self._lid = load_model(default_model_path())
        langs, scores = predict(self._lid, prepare(pa.array([text], pa.string()), 2000))
        return langs[0], float(scores[0])

    def _similarity(self, cfg: FidelityConfig, a: str, b: str) -> float:
        from filters.embedding import Embedder

        key = (cfg.embedding_model, cfg.max_tokens)
        if key not in self._embedders:
            self._embedders[key] = Embedder(cfg.embedding_model, max_tokens=cfg.max_tokens)
        v = self._embedders[key].encode([a, b])
        return float(v[0] @ v[1])

    def check(self, recipe: str, output: str, source: str) -> str:
        """The output, meta lines stripped; raises Drop(wrong_language | unrelated | copy)."""
        cfg = self.for_recipe(recipe)
        if cfg is None:
            return output
        if cfg.strip_meta:
            output = strip_meta(output)
            if not output:
                raise Drop("empty", "nothing left after meta lines were stripped")
        if cfg.language:
            out_lang, out_score = self._language(output)
            want, src_score = (cfg.target_language, 1.0) if cfg.target_language else self._language(source)
            if (out_lang and want and out_lang != want and out_score >= cfg.min_lang_score
                    and src_score >= cfg.min_lang_score):
                raise Drop("wrong_language", f"output is {out_lang} ({out_score:.2f}), source {want}")
        if cfg.max_similarity is not None and _normalized(output) == _normalized(source):
            raise Drop("copy", "the output repeats its source")
        if cfg.min_similarity is not None or cfg.max_similarity is not None:
            sim = self._similarity(cfg, output, source)
            if cfg.min_similarity is not None and sim < cfg.min_similarity:
                raise Drop("unrelated", f"cosine to the source {sim:.3f} < min_similarity {cfg.min_similarity}")
            if cfg.max_similarity is not None and sim >= cfg.max_similarity:
                raise Drop("copy", f"cosine to the source {sim:.3f} >= max_similarity {cfg.max_similarity}")
        return output
