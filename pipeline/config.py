"""Pipeline configuration: `pipeline.yaml` parsed into pydantic models.

Each stage kind registers its own settings model (see `stages/registry.py`); the top-level model
only knows the common shape. Validation problems are reported one line per problem, naming the key
path (`stages[3].threshold: ...`), because users fix configs by reading those lines.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator

InputFormat = Literal["jsonl", "jsonl.gz", "jsonl.zst", "parquet", "hf", "warc", "wet", "html"]


class ConfigError(Exception):
    """Invalid configuration; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def local_path(value: str) -> str:
    """`file:///data/x` -> `/data/x`: the runner and workers address local or shared-mount paths."""
    return value[len("file://"):] if value.startswith("file://") else value


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class InputConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str
    format: InputFormat = "jsonl"
    text_field: str = "text"
    id_field: str | None = None
    url_field: str | None = None
    split: str | None = None  # for `hf` inputs loaded with load_dataset / DatasetDict

    @field_validator("path")
    @classmethod
    def _file_uri(cls, value: str) -> str:
        return local_path(value)


class StageConfig(Strict):
    """Settings every stage has. Stage kinds subclass this with their own fields."""

    # fields naming a place the stage writes to: relative to OUT and kept inside it (pipeline/paths.py)
    write_paths: ClassVar[tuple[str, ...]] = ()

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    kind: str = ""
    input: str | None = None  # read this earlier stage's output instead of the previous one's

    @field_validator("name")
    @classmethod
    def _reserved(cls, value: str) -> str:
        if value in {"ingest", "quarantine", "shards"}:
            raise ValueError(f"'{value}' is a reserved directory name")
        return value


class SparkConfig(Strict):
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)


class PipelineConfig(Strict):
    name: str = "pipeline"
    output: str
    executor: Literal["local", "spark"] = "local"
    workers: int = Field(default=2, ge=1, le=1024)
    seed: int = 0
    partition_rows: int = Field(default=2000, ge=1)
    verify_checksums: bool = True  # re-hash finished stages' outputs before reusing them
    inputs: list[InputConfig] = Field(min_length=1)
    stages: list[SerializeAsAny[StageConfig]] = Field(default_factory=list)  # dump each kind's own fields
    spark: SparkConfig = Field(default_factory=SparkConfig)
    # directories outside `output` that stages' write paths (index, cache) may point into; see pipeline/paths.py
    allow_write_outside_output: list[str] = Field(default_factory=list)

    @field_validator("output")
    @classmethod
    def _output_path(cls, value: str) -> str:
        value = local_path(value)
        if "://" in value:
            from pipeline.storage import check_uri

            check_uri(value)
        return value

    @field_validator("allow_write_outside_output")
    @classmethod
    def _allowed_dirs(cls, value: list[str]) -> list[str]:
        from pipeline.paths import is_root

        value = [local_path(v) for v in value]
        for v in value:
            if not v.strip():
                raise ValueError("an empty path is not a directory")
            if is_root(v):
                raise ValueError(f"'{v}' is a root directory: list the directories to write into")
        return value

    def stage(self, name: str) -> StageConfig:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


def _format_loc(loc: tuple[Any, ...], prefix: str = "") -> str:
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _problems(err: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for e in err.errors():
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{_format_loc(e['loc'], prefix)}: {msg}")
    return lines


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """`stages[2].threshold=0.7` -> (["stages", 2, "threshold"], 0.7); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError([f"--set {text}: expected key.path=value"])
    key, raw = text.split("=", 1)
    path: list[str | int] = []
    for part in key.strip().split("."):
        while "[" in part:
            head, rest = part.split("[", 1)
            if head:
                path.append(head)
            index, part = rest.split("]", 1)
            path.append(int(index))
        if part:
            path.append(part)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_override(data: dict[str, Any], path: list[str | int], value: Any) -> None:
    """Set a value in the raw config; a stage may be addressed by name (`stages.near_dedup.x`)."""
    node: Any = data
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list) and isinstance(part, str):
            matches = [s for s in node if isinstance(s, dict) and s.get("name") == part]
            if not matches:
                raise ConfigError([f"--set {'.'.join(map(str, path))}: no stage named '{part}'"])
            node = matches[0]
            continue
        try:
            node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
        except (IndexError, TypeError, KeyError) as exc:
            loc = _format_loc(tuple(path[: i + 1]))
            raise ConfigError([f"--set {loc}: no such key"]) from exc
    last = path[-1]
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError([f"--set {_format_loc(tuple(path))}: no such key"])


def load_raw(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError([f"{p}: config file not found"])
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{p}:{where}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{p}: not UTF-8 text"]) from exc
    if not isinstance(data, dict):
        raise ConfigError([f"{p}: the top level must be a mapping of keys"])
    return data


def _write_root(top: dict[str, Any]) -> PipelineConfig | None:
    """Only `output` and `allow_write_outside_output`, each validated, so that write paths are checked (and
    reported with the rest) when other top-level keys are invalid; None when these two are invalid too."""
    root = PipelineConfig.model_construct()
    try:
        root.output = top.get("output")  # type: ignore[assignment]
        root.allow_write_outside_output = top.get("allow_write_outside_output") or []
    except ValidationError:
        return None
    return root


def validate(data: dict[str, Any]) -> PipelineConfig:
    """Validate raw config data, each stage against its kind's model. Raises ConfigError."""
    from pipeline.paths import write_path_problems
    from stages.registry import stage_config_model

    problems: list[str] = []
    raw_stages = data.get("stages") or []
    top = {k: v for k, v in data.items() if k != "stages"}
    try:
        cfg = PipelineConfig.model_validate({**top, "stages": []})
    except ValidationError as err:
        problems.extend(_problems(err))
        cfg = None
    write_root = cfg or _write_root(top)
    stages: list[StageConfig] = []
    if not isinstance(raw_stages, list):
        problems.append("stages: must be a list")
        raw_stages = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_stages):
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict):
            problems.append(f"stages[{i}]: must be a mapping with at least a name")
            continue
        raw = dict(raw)
        kind = raw.get("kind") or raw.get("name")
        model = stage_config_model(kind) if isinstance(kind, str) else None
        if model is None:
            problems.append(f"stages[{i}].kind: unknown stage kind '{kind}'")
            continue
        raw["kind"] = kind
        try:
            stage = model.model_validate(raw)
        except ValidationError as err:
            problems.extend(_problems(err, f"stages[{i}]"))
            continue
        if stage.name in seen:
            problems.append(f"stages[{i}].name: duplicate stage name '{stage.name}'")
        if stage.input is not None and stage.input not in seen and stage.input != "ingest":
            problems.append(f"stages[{i}].input: '{stage.input}' is not an earlier stage")
        if write_root is not None:
            problems.extend(write_path_problems(write_root, stage, i))
        seen.add(stage.name)
        stages.append(stage)
    if problems or cfg is None:
        raise ConfigError(problems)
    cfg.stages = stages
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    data = load_raw(path)
    for text in overrides or []:
        key_path, value = parse_override(text)
        apply_override(data, key_path, value)
    return validate(data)


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def config_hash(obj: Any) -> str:
    """Short, stable hash of a JSON-able object (configs, fingerprints)."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]
