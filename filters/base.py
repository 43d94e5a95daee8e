"""What every heuristic filter module offers, and small helpers they share.

A filter module (`filters/gopher_quality.py`, ...) is data plus one pure function:

* `NAME`: the reason prefix (`gopher_quality:mean_word_length`);
* `Settings`: a strict pydantic model whose fields are the thresholds, defaults = the published ones;
* `SIGNALS`: column name -> Arrow type of every statistic it computes (stable even for empty batches);
* `RULES`: rule names in the fixed order used to pick *the* reason (the first failing one);
* `measure(batch, settings) -> Measurement`: statistics and per-rule failures for a `TextBatch`;
* optionally `PRECHECKS`: functions measuring the first rules only (each more than the one before),
  so `signals: decisive` measures the rest only for the documents that pass them.

Filters never remove anything themselves: the `heuristics` stage turns failures into reasons (or,
with `tag_only`, keeps only the signals), so the same code serves tagging and filtering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, create_model

from pipeline.config import Strict


class FilterSettings(Strict):
    """Base of every filter's settings (unknown keys are errors)."""


@dataclass
class Measurement:
    """One filter's output for a batch: per-document statistics and rule failures."""

    signals: dict[str, np.ndarray]  # column -> one value per document
    fails: dict[str, np.ndarray]  # rule -> bool per document, in RULES order
    texts: pa.Array | None = None  # rewritten texts, when the filter changes text (c4 rewrite)
    extra: dict[str, Any] = field(default_factory=dict)


def first_failure(fails: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Object array: the first failing rule's name per document (dict order), None where all pass."""
    out = np.full(n, None, dtype=object)
    for rule, mask in reversed(list(fails.items())):
        out = np.where(mask, rule, out)
    return out


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, 0 where den is 0 (an empty document has no lines to be bad)."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def above(values: np.ndarray, limit: float | None) -> np.ndarray:
    """values > limit; a None limit disables the rule."""
    return np.zeros(len(values), bool) if limit is None else values > limit


def below(values: np.ndarray, limit: float | None) -> np.ndarray:
    """values < limit; a None limit disables the rule."""
    return np.zeros(len(values), bool) if limit is None else values < limit


_PARTIALS: dict[type[BaseModel], type[BaseModel]] = {}


def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """The same fields, all optional and unset by default: a per-language override of `model`.

    Validation errors keep their key paths (`lang_overrides.zh.c4.min_sentences`) and unknown keys
    still fail, which a plain dict would not give.
    """
    if model not in _PARTIALS:
        fields: dict[str, Any] = {name: (info.annotation | None, None) for name, info in model.model_fields.items()}
        _PARTIALS[model] = create_model(f"{model.__name__}Override", __base__=Strict, **fields)
    return _PARTIALS[model]


def merged(settings: BaseModel, *overrides: BaseModel | dict[str, Any] | None) -> BaseModel:
    """`settings` with the keys set in each override applied in turn (validated again)."""
    data = settings.model_dump()
    for override in overrides:
        if override is None:
            continue
        data.update(override if isinstance(override, dict) else override.model_dump(exclude_unset=True))
    return type(settings).model_validate(data)
