"""Pipeline configuration: `pipeline.yaml` parsed into pydantic models.

Each stage kind registers its own settings model (see `stages/registry.py`); the top-level model
only knows the common shape. Validation problems are reported one line per problem, naming the key
path by stage name (`stages.shard.max_shard_bytes: ...`), echoing the bad value and suggesting the
closest valid key or kind, because users fix configs by reading those lines.

Fields that name a file a stage reads carry a `ReadPath` marker: at load they are resolved against
the current directory, checked to exist (a missing one is a config error naming its key) and handed
on absolute, so Spark tasks in another working directory find them. Dumps (and so stage hashes) keep
the spelling the user wrote; file contents enter the hashes through each stage's `fingerprint()`.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializationInfo,
    SerializeAsAny,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from pipeline.errors import ConfigError
from stages.registry import STAGE_MODULES, stage_config_model

InputFormat = Literal["jsonl", "jsonl.gz", "jsonl.zst", "parquet", "hf", "warc", "wet", "html", "repo"]
# file name endings -> format, longest first (`format:` may be omitted when the path ends in one)
FORMAT_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".wet.gz", "wet"), (".wet", "wet"), (".warc.gz", "warc"), (".warc", "warc"), (".html", "html"), (".htm", "html"),
    (".jsonl.gz", "jsonl.gz"), (".json.gz", "jsonl.gz"), (".ndjson.gz", "jsonl.gz"),
    (".jsonl.zst", "jsonl.zst"), (".json.zst", "jsonl.zst"), (".ndjson.zst", "jsonl.zst"),
    (".jsonl", "jsonl"), (".json", "jsonl"), (".ndjson", "jsonl"), (".parquet", "parquet"), (".pq", "parquet"))
HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def local_path(value: str) -> str:
    """`file:///data/x` -> `/data/x`: the runner and workers address local or shared-mount paths."""
    return value[len("file://"):] if value.startswith("file://") else value


@dataclass(frozen=True)
class ReadPath:
    """Marks a settings field naming a file or directory a stage reads: `Annotated[str | None, ReadPath()]`.

    `optional`: a value neither existing nor spelled as a path (`./x`, `.cache/x`, `/x`, `~/x`) is passed on
    as is (a hub id, a served model name). `only_if`: which strings are paths at all (recipe files beside
    built-in recipe names). `key`: in a list of mappings, the key holding the path (`{recipe: ./r.yaml}`).
    List values are resolved item by item; URIs (`s3://...`) are passed on unchanged."""

    optional: bool = False
    only_if: Callable[[str], bool] | None = None
    key: str | None = None


ReadFile = Annotated[str, ReadPath()]  # a file or directory that must exist
ModelRef = Annotated[str, ReadPath(optional=True)]  # a local checkpoint/tokenizer, or a hub id / served name


def _marker_in(annotation: Any) -> ReadPath | None:
    if typing.get_origin(annotation) is Annotated:
        found = next((m for m in typing.get_args(annotation)[1:] if isinstance(m, ReadPath)), None)
        return found or _marker_in(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((m for m in map(_marker_in, typing.get_args(annotation)) if m is not None), None)
    return None


def read_path_fields(model: type[BaseModel]) -> dict[str, ReadPath]:
    """The fields of a settings model marked `ReadPath` (`ReadFile`, `ReadFile | None`, ...), with their marker."""
    out = {}
    for name, info in model.model_fields.items():
        marker = next((m for m in info.metadata if isinstance(m, ReadPath)), None) or _marker_in(info.annotation)
        if marker is not None:
            out[name] = marker
    return out


def _spelled_as_path(value: str) -> bool:
    """`./x`, `.cache/x`, `/x`, `~/x`, or `dir/x` where `dir` exists here: a path, never a hub id or served name."""
    first = value.split("/", 1)[0]
    return value.startswith((".", "/", "~")) or ("/" in value and os.path.isdir(first))


def _resolve_one(value: str, marker: ReadPath, key: str, problems: list[str]) -> str:
    if "://" in value and not value.startswith("file://"):
        return value  # a URI: the storage layer reads it where it is
    if marker.only_if is not None and not marker.only_if(value):
        return value
    absolute = os.path.abspath(os.path.expanduser(local_path(value)))
    if os.path.exists(absolute):
        return absolute
    if marker.optional and not _spelled_as_path(value):
        return value
    where = "" if absolute == value else f" (resolved against the current directory: {absolute})"
    problems.append(f"{key}: file not found: {value}{where}")
    return value


def _resolve_value(value: Any, marker: ReadPath, key: str, problems: list[str]) -> Any:
    if isinstance(value, str):
        return _resolve_one(value, marker, key, problems)
    if isinstance(value, list):
        return [_resolve_value(v, marker, f"{key}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, dict) and marker.key and isinstance(value.get(marker.key), str):
        return {**value, marker.key: _resolve_one(value[marker.key], marker, f"{key}.{marker.key}", problems)}
    return value


def resolve_read_paths(settings: BaseModel, prefix: str) -> list[str]:
    """Make every `ReadPath` field of `settings` absolute (in place); one problem line per missing file.
    The configured spelling is kept for dumps and hashes (`Strict._configured`)."""
    problems: list[str] = []
    for name, marker in read_path_fields(type(settings)).items():
        value = getattr(settings, name)
        if value is None:
            continue
        resolved = _resolve_value(value, marker, f"{prefix}.{name}", problems)
        if resolved != value:
            if isinstance(settings, Strict) and name not in settings._configured:
                settings._configured[name] = copy.deepcopy(value)
            settings.__dict__[name] = resolved  # no re-validation: the value was valid as written
    return problems


_SCIENTIFIC = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _is_numeric(annotation: Any) -> bool:
    """int/float fields (also optional ones, or ones constrained with Annotated), but none that take str."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_numeric(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return all(_is_numeric(a) for a in args) if args else False
    return annotation in (int, float)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, not silently ignored. Numbers may be
    written `1e8` (YAML reads that as a string) in int and float fields; an integral one is an int."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    _configured: dict[str, Any] = PrivateAttr(default_factory=dict)  # read paths as written (see ReadPath)

    @field_validator("*", mode="before")
    @classmethod
    def _scientific_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and info.field_name and _SCIENTIFIC.match(value.strip()):
            field = cls.model_fields.get(info.field_name)
            if field is not None and _is_numeric(field.annotation):
                number = float(value)
                return int(number) if number.is_integer() else number
        return value

    @model_serializer(mode="wrap")
    def _configured_spelling(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """Dumps show read paths as the user wrote them (hashes stay independent of the working
        directory); `model_dump(context={"resolved_paths": True})` shows them absolute."""
        data = handler(self)
        if self._configured and isinstance(data, dict) and not (info.context or {}).get("resolved_paths"):
            for name, value in self._configured.items():
                if name in data:
                    data[name] = copy.deepcopy(value)
        return data


class InputConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str
    # omitted: inferred from the path's ending (FORMAT_SUFFIXES) or, for a directory, a saved HF dataset
    format: InputFormat | None = Field(default=None, validate_default=True)
    text_field: str = "text"
    id_field: str | None = None
    url_field: str | None = None
    split: str | None = None  # for `hf` inputs loaded with load_dataset / DatasetDict
    # source code (docs/code.md): the file's path inside its repository and the repository's name, as The
    # Stack-style records carry them (`content`, `path`, `repo`); documents get `path`, `repo`, `language`
    path_field: str | None = None
    repo_field: str | None = None
    # `format: repo` (a checked-out directory tree, or a glob of them): larger files are skipped (counted)
    max_file_bytes: int = Field(default=1_000_000, ge=1)
    # a plain JSONL file larger than this is read by all workers in byte ranges (cut at line ends), a
    # Parquet file in runs of row groups of about this size; compressed JSONL is always read whole
    split_bytes: int = Field(default=64 << 20, ge=1)

    @field_validator("path")
    @classmethod
    def _file_uri(cls, value: str) -> str:
        return local_path(value)

    @field_validator("format", mode="before")
    @classmethod
    def _infer_format(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None or not isinstance(info.data.get("path"), str):
            return value
        return infer_format(info.data["path"])

    @field_validator("repo_field")
    @classmethod
    def _repo_needs_path(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("path_field") is None:
            raise ValueError("repo_field needs path_field (the file's path inside the repository)")
        return value


def infer_format(path: str) -> str:
    """The input format a path's ending implies; ValueError (naming the choices) when it implies none."""
    lowered = path.lower().rstrip("/")
    for suffix, fmt in FORMAT_SUFFIXES:
        if lowered.endswith(suffix):
            return fmt
    if "://" not in path and os.path.isdir(path) and any(os.path.exists(os.path.join(path, m)) for m in HF_MARKERS):
        return "hf"
    raise ValueError(f"cannot infer the format of '{path}' from its name (known endings: .jsonl, .jsonl.gz, "
                     ".jsonl.zst, .parquet, also .json and .ndjson; .warc(.gz), .wet(.gz), .html; or a saved "
                     "Hugging Face dataset directory): set format: jsonl, jsonl.gz, jsonl.zst, parquet or hf "
                     "(web crawls: warc, wet or html; a source-code directory tree: repo)")


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
    remote: str | None = None  # a Spark Connect server, e.g. sc://127.0.0.1:15002 (then `master` is the server's)
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _conf_strings(cls, value: Any) -> Any:
        """Spark settings are strings; YAML (and --set) read `2` or `true` as numbers and booleans."""
        if not isinstance(value, dict):
            return value
        return {k: (str(v).lower() if isinstance(v, bool) else str(v)) if isinstance(v, int | float | bool) else v
                for k, v in value.items()}


class PipelineConfig(Strict):
    name: str = "pipeline"
    output: str
    executor: Literal["local", "spark"] = "local"
    workers: int = Field(default=2, ge=1, le=1024)
    seed: int = 0
    partition_rows: int = Field(default=2000, ge=1)
    verify_checksums: bool = True  # re-hash finished stages' outputs before reusing them
    # an input file that yields no documents with more than this fraction of its records quarantined
    # stops the run after ingest (exit 2): almost always a wrong `format:` or `text_field:`
    max_quarantine_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
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
        elif not re.fullmatch(r"[A-Za-z0-9_-]+", str(part)):
            out += f'["{part}"]'  # a key with dots, e.g. spark.conf["spark.executor.memory"]
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The settings model inside an annotation (`Foo | None`, `list[Foo]`, `dict[str, Foo]`), if any, and
    whether it sits behind a mapping (whose keys are then the next part of a key path)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    mapping = typing.get_origin(annotation) in (dict, typing.Mapping)
    for arg in typing.get_args(annotation):
        found, behind = _nested_model(arg)
        if found is not None:
            return found, behind or mapping
    return None, False


def _keys_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the mapping at `loc` inside `model` (for 'did you mean' suggestions)."""
    behind_mapping = False
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int) or behind_mapping:
            behind_mapping = False
            continue
        field = model.model_fields.get(str(part))
        model, behind_mapping = _nested_model(field.annotation) if field is not None else (None, False)
    return list(model.model_fields) if model is not None else []


def suggestion(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """` (did you mean X?)` for the closest choice, or nothing when none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _problems(err: ValidationError, prefix: str = "", model: type[BaseModel] | None = None) -> list[str]:
    """One line per pydantic error: key path, message, the bad value, and for an unknown key the closest valid one."""
    lines = []
    for e in err.errors():
        msg = e["msg"].removeprefix("Value error, ")
        loc = tuple(e["loc"])
        if e["type"] == "extra_forbidden":
            msg = "unknown key" + suggestion(str(loc[-1]), _keys_at(model, loc[:-1])) if loc else "unknown key"
        elif e["type"] != "missing" and isinstance(e.get("input"), str | int | float | bool):
            msg += f" (got {_shown(e['input'])})"
        lines.append(f"{_format_loc(loc, prefix)}: {msg}")
    return lines


# -- --set KEY=VALUE ----------------------------------------------------------------------------
_KEY_TOKEN = re.compile(r"""\[\s*(?P<q>["'])(?P<quoted>.*?)(?P=q)\s*\]|\[(?P<index>[^\]]*)\]|\.?(?P<name>[^.\[\]]+)""")
SET_SYNTAX = 'write a.b.c, a[2].c (a list position) or a["key.with.dots"] (a key that contains dots)'


def _split_assignment(text: str) -> tuple[str, str]:
    """Split at the first `=` outside brackets and quotes (a quoted key may contain one)."""
    quote, depth = "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'" and depth:
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "=" and depth == 0:
            return text[:i], text[i + 1:]
    raise ConfigError([f"--set {text}: expected KEY=VALUE ({SET_SYNTAX})"])


def parse_key_path(key: str) -> list[str | int]:
    """`stages[2].threshold` -> ["stages", 2, "threshold"]; `spark.conf["spark.executor.memory"]` ->
    ["spark", "conf", "spark.executor.memory"]. A bad index is a ConfigError."""
    path: list[str | int] = []
    pos = 0
    key = key.strip()
    while pos < len(key):
        m = _KEY_TOKEN.match(key, pos)
        if m is None or m.end() == pos:
            raise ConfigError([f"--set {key}: cannot read the key at '{key[pos:]}': {SET_SYNTAX}"])
        if m.group("quoted") is not None:
            path.append(m.group("quoted"))
        elif m.group("index") is not None:
            index = m.group("index").strip()
            if not re.fullmatch(r"-?\d+", index):
                raise ConfigError([f"--set {key}: bad index [{index}]: {SET_SYNTAX}"])
            path.append(int(index))
        else:
            path.append(m.group("name").strip())
        pos = m.end()
    if not path:
        raise ConfigError([f"--set {key}: empty key ({SET_SYNTAX})"])
    return path


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """`stages[2].threshold=0.7` -> (["stages", 2, "threshold"], 0.7); the value is read as YAML."""
    key, raw = _split_assignment(text)
    path = parse_key_path(key)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_override(data: dict[str, Any], path: list[str | int], value: Any) -> None:
    """Set a value in the raw config; a stage (or input) may be addressed by name (`stages.near_dedup.x`)."""
    node: Any = data
    for i, part in enumerate(path[:-1]):
        loc = _format_loc(tuple(path[: i + 1]))
        if isinstance(node, list) and isinstance(part, str):
            names = [s.get("name") if isinstance(s, dict) else s for s in node]
            matches = [s for s, n in zip(node, names, strict=True) if n == part]
            if not matches:
                kind = "stage" if path[0] == "stages" else "entry"
                raise ConfigError([f"--set {_format_loc(tuple(path))}: no {kind} named '{part}'"
                                   f"{suggestion(part, [n for n in names if isinstance(n, str)])}"])
            if isinstance(matches[0], str):  # `- normalize` shorthand: make it a mapping to set a key in
                node[node.index(part)] = matches[0] = {"name": part}
            node = matches[0]
            continue
        try:
            if isinstance(node, dict) and node.get(part) is None:
                node[part] = {}  # a missing (or empty, `spark:`) mapping on the way is created
            node = node[part]
        except (IndexError, TypeError, KeyError):
            size = f" ({_format_loc(tuple(path[:i]))} has {len(node)} entries)" if isinstance(node, list) else ""
            raise ConfigError([f"--set {loc}: no such key{size}"]) from None
    last = path[-1]
    if isinstance(node, list) and isinstance(last, int) and -len(node) <= last < len(node):
        node[last] = value
    elif isinstance(node, dict) and not isinstance(last, int):
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


def stage_prefixes(raw_stages: list[Any]) -> list[str]:
    """Key path of each raw stage for messages: `stages.<name>` when it has a unique valid name, else `stages[i]`."""
    names = [r.get("name") if isinstance(r, dict) else r for r in raw_stages]
    out = []
    for i, name in enumerate(names):
        ok = isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-]+", name) and names.count(name) == 1
        out.append(f"stages.{name}" if ok else f"stages[{i}]")
    return out


def stage_kinds() -> list[str]:
    return sorted(STAGE_MODULES)


def validate(data: dict[str, Any]) -> PipelineConfig:
    """Validate raw config data, each stage against its kind's model, and resolve read paths. Raises ConfigError."""
    from pipeline.columns import plan_problems
    from pipeline.paths import write_path_problems
    from stages.registry import make_stage

    problems: list[str] = []
    raw_stages = data.get("stages") or []
    top = {k: v for k, v in data.items() if k != "stages"}
    try:
        cfg = PipelineConfig.model_validate({**top, "stages": []})
    except ValidationError as err:
        problems.extend(_problems(err, model=PipelineConfig))
        cfg = None
    write_root = cfg or _write_root(top)
    stages: list[StageConfig] = []
    if not isinstance(raw_stages, list):
        problems.append("stages: must be a list")
        raw_stages = []
    prefixes = stage_prefixes(raw_stages)
    seen: set[str] = set()
    for i, raw in enumerate(raw_stages):
        key = prefixes[i]
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict):
            problems.append(f"{key}: must be a mapping with at least a name (got {_shown(raw)})")
            continue
        raw = dict(raw)
        kind = raw.get("kind") or raw.get("name")
        model = stage_config_model(kind) if isinstance(kind, str) else None
        if model is None:
            problems.append(f"{key}.kind: unknown stage kind {_shown(kind)}{suggestion(str(kind), stage_kinds())}; "
                            f"valid kinds: {', '.join(stage_kinds())}")
            continue
        raw["kind"] = kind
        try:
            stage = model.model_validate(raw)
        except ValidationError as err:
            problems.extend(_problems(err, key, model))
            continue
        if stage.name in seen:
            problems.append(f"stages[{i}].name: duplicate stage name '{stage.name}'")
        if stage.input is not None and stage.input not in seen and stage.input != "ingest":
            problems.append(f"{key}.input: '{stage.input}' is not an earlier stage"
                            f"{suggestion(stage.input, sorted(seen))}")
        if write_root is not None:
            problems.extend(write_path_problems(write_root, stage, key))
        problems.extend(resolve_read_paths(stage, key))
        seen.add(stage.name)
        stages.append(stage)
    if problems or cfg is None:
        raise ConfigError(problems)
    cfg.stages = stages
    column_problems = plan_problems(cfg, stages, prefixes, make_stage)  # no problem so far: one stage per key
    if column_problems:
        raise ConfigError(column_problems)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> PipelineConfig:
    """Read, override (`--set`) and validate a config; relative read paths resolve against the current directory."""
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
