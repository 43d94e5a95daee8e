"""Declared columns: what each stage kind reads and adds, checked along the plan when the config loads.

A stage declares `reads()` (columns it needs, with Arrow types; `optional` ones are signals it uses
when present) and `adds()` (columns it writes). Walking the stages in order from ingest's schema (plus
`html` for web inputs), `plan_problems` finds a config that can never work before anything runs:
`stages.mix: needs column n_tokens, which no earlier stage adds: add a tokenize stage before it`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipeline.schema import DOC_FIELDS

if TYPE_CHECKING:
    from pipeline.config import InputConfig, PipelineConfig, StageConfig

HTML_INPUT_FORMATS = ("warc", "html")  # ingest keeps the page's HTML (pipeline/warc.py) for `extract`
# The stage kind that adds a signal other stages read (named when the column is missing from a plan).
MADE_BY = {"n_tokens": "tokenize", "token_ids": "tokenize", "lang": "langid", "lang_score": "langid",
           "domain": "domain_classifier", "quality_score": "quality_classifier",
           "quality_bucket": "quality_classifier", "dup_cluster": "near_dedup",
           "math_score": "math_detect", "is_math": "math_detect", "math_formulas": "extract"}


@dataclass(frozen=True)
class Column:
    """One column a stage reads or adds. `type` None = any type; `optional`: used only when present;
    `made_by`: the stage kind that adds it, named in the error when it is missing (default: `MADE_BY`);
    `setting`: the setting that needs it, when one does (`recipes.wiki_rephrase.select`)."""

    name: str
    type: pa.DataType | None = None
    optional: bool = False
    made_by: str | None = None
    setting: str | None = None


def _family(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list of {_family(t.value_type)}"
    return str(t)


def compatible(want: pa.DataType | None, got: pa.DataType) -> bool:
    """Same kind of values (any integer width is an integer): what the stage's code can read."""
    return want is None or _family(want) == _family(got)


def ingest_schema(inputs: Sequence[InputConfig]) -> pa.Schema:
    fields = list(DOC_FIELDS)
    if any(i.format in HTML_INPUT_FORMATS for i in inputs):
        fields.append(pa.field("html", pa.string()))
    return pa.schema(fields)


def missing_problem(key: str, column: Column) -> str:
    made_by = column.made_by or MADE_BY.get(column.name)
    hint = f": add a {made_by} stage before it" if made_by else ""
    where = f"{key}.{column.setting}" if column.setting else key
    return f"{where}: needs column {column.name}, which no earlier stage adds{hint}"


def read_problems(key: str, reads: Iterable[Column], schema: pa.Schema) -> list[str]:
    """Problems of one stage's reads against the columns its input has."""
    problems = []
    for col in reads:
        index = schema.get_field_index(col.name)
        if index < 0:
            if not col.optional:
                problems.append(missing_problem(key, col))
            continue
        got = schema.field(index).type
        if not pa.types.is_null(got) and not compatible(col.type, got):
            problems.append(f"{key}: needs column {col.name} as {_family(col.type)} "
                            f"but its input has it as {_family(got)}")
    return problems


def with_added(schema: pa.Schema, adds: Iterable[Column]) -> pa.Schema:
    """The schema after a stage: its input's columns, an added column replacing one of the same name."""
    for col in adds:
        field = pa.field(col.name, col.type if col.type is not None else pa.null())
        index = schema.get_field_index(col.name)
        schema = schema.set(index, field) if index >= 0 else schema.append(field)
    return schema


def plan_problems(pipeline: PipelineConfig, stages: Sequence[StageConfig], keys: Sequence[str],
                  make_stage: Callable[[StageConfig, PipelineConfig], Any]) -> list[str]:
    """Walk the stages in order (each from its `input:` or the one before) and name every stage that
    needs a column its input cannot have, or has with another kind of value."""
    from pipeline.errors import ConfigError

    schemas: dict[str, pa.Schema] = {"ingest": ingest_schema(pipeline.inputs)}
    previous = "ingest"
    problems: list[str] = []
    for stage_cfg, key in zip(stages, keys, strict=True):
        schema = schemas.get(stage_cfg.input or previous, schemas[previous])
        stage = make_stage(stage_cfg, pipeline)
        try:
            problems += read_problems(key, stage.reads(), schema)
            problems += stage.input_problems(key, schema)
            schemas[stage_cfg.name] = with_added(schema, stage.adds())
        except ConfigError as exc:
            problems += exc.problems
            schemas[stage_cfg.name] = schema
        except ValueError as exc:  # e.g. a recipe file that does not parse
            problems.append(f"{key}: {exc}")
            schemas[stage_cfg.name] = schema
        previous = stage_cfg.name
    return problems
