"""Where a run may write: the one rule for config fields that name a write destination.

A stage's write paths (`StageConfig.write_paths`: the dedup stages' persistent `index`, synth's response
`cache`) are relative to the run's output directory and must stay inside it. An absolute path, a `..`
or a symlink that leads outside is a config error, unless the resolved path lies inside a directory
listed in the top-level `allow_write_outside_output` (e.g. a dedup index shared with earlier corpora).

Local paths are compared after resolving symlinks (`os.path.realpath`); URIs (`s3://bucket/out`) are
compared as strings: same scheme and bucket, and the `posixpath`-normalized path inside. Read paths
(inputs, models, tokenizers) are not restricted: they are resolved against the current directory and
checked to exist at config load (`ReadPath` in pipeline/config.py).
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError
from pipeline.storage import SCHEME_ALIASES

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig, StageConfig

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)(://[^/]*)(.*)$")


def _split(value: str) -> tuple[str, str]:
    """`s3://bucket/out` -> ("s3://bucket", "/out"); a local path -> ("", path); `file://` is local."""
    if value.startswith("file://"):
        value = value[len("file://"):]
    m = _URI.match(value)
    return (m.group(1) + m.group(2), m.group(3) or "/") if m else ("", value)


def _resolved(value: str) -> tuple[str, str]:
    """Local paths with symlinks resolved, URI paths normalized (`..` applied)."""
    prefix, path = _split(value)
    if prefix:
        return prefix, posixpath.normpath("/" + path.lstrip("/"))
    return "", os.path.realpath(path)


def _canonical(value: str) -> tuple[str, str]:
    """Comparable form: `_resolved` with the scheme lower-cased and Hadoop's S3 aliases folded."""
    prefix, path = _resolved(value)
    if prefix:
        scheme, rest = prefix.split("://", 1)
        prefix = f"{SCHEME_ALIASES.get(scheme.lower(), scheme.lower())}://{rest}"
    return prefix, path


def _join(output: str, value: str) -> str:
    """`value` resolved against `output`: relative values go under it, absolute ones and URIs stay."""
    prefix, path = _split(value)
    if prefix or os.path.isabs(path):
        return value if prefix else path
    out_prefix, out_path = _split(output)
    if out_prefix:
        return out_prefix + posixpath.normpath(posixpath.join("/" + out_path.lstrip("/"), path))
    return os.path.join(out_path, path)


def _inside(child: tuple[str, str], parent: tuple[str, str]) -> bool:
    if child[0] != parent[0]:
        return False
    base = parent[1].rstrip("/") or "/"
    return child[1] == base or child[1].startswith(base if base.endswith("/") else base + "/")


def is_root(value: str) -> bool:
    """A filesystem or bucket root: never acceptable as a directory to write anything into."""
    return _canonical(value)[1] == "/"


def write_path_problem(output: str, value: str, allowed: list[str] | tuple[str, ...] = ()) -> str | None:
    """Why `value` may not be written to in a run with this output directory; None when it may."""
    target = _canonical(_join(output, value))
    out = _canonical(output)
    if target == out:
        return f"must be a path inside output directory {output}, not the directory itself (got {value})"
    if _inside(target, out) or any(_inside(target, _canonical(d)) for d in allowed):
        return None
    link = "" if target[0] or os.path.abspath(_join(output, value)) == target[1] else f", which resolves to {target[1]}"
    return f"must stay inside output directory {output} (got {value}{link})"


def resolve_write_path(output: str, value: str, allowed: list[str] | tuple[str, ...], key: str) -> str:
    """The place to write `value` to (local: symlinks resolved; URI: normalized); ConfigError if it escapes."""
    problem = write_path_problem(output, value, allowed)
    if problem:
        raise ConfigError([f"{key}: {problem}"])
    prefix, path = _resolved(_join(output, value))
    return prefix + path


def stage_key(pipeline: PipelineConfig, stage: StageConfig, field: str) -> str:
    """The key path of a stage's field for messages (`stages.near_dedup.index`; names are unique)."""
    return f"stages.{stage.name}.{field}"


def stage_write_path(pipeline: PipelineConfig, stage: StageConfig, field: str) -> str | None:
    """Where a stage writes for its write-path `field` at run time; None when the field is unset."""
    value = getattr(stage, field)
    if not value:
        return None
    return resolve_write_path(pipeline.output, value, pipeline.allow_write_outside_output,
                              stage_key(pipeline, stage, field))


def write_path_problems(pipeline: PipelineConfig, stage: StageConfig, key: str) -> list[str]:
    """One line per write-path field of the stage at `key` (`stages.near_dedup`) that points outside the output."""
    problems = []
    for field in stage.write_paths:
        value = getattr(stage, field)
        if value:
            problem = write_path_problem(pipeline.output, value, pipeline.allow_write_outside_output)
            if problem:
                problems.append(f"{key}.{field}: {problem}")
    return problems
