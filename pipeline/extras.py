"""Optional engines and the install command that brings each.

Spark, the Spark Connect client, vLLM, the HTTP client of the synth engine and the object-store
clients are extras of the package (pyproject.toml), imported only when a run uses them. When one is
missing, the user gets the command that installs it instead of a `ModuleNotFoundError`: the CLI asks
`install_hint` about any error a command ends with (exit 2, a problem of the set-up, not of the data).
"""

from __future__ import annotations

import re

# importable name -> (pip argument that brings it, what needs it)
OPTIONAL: dict[str, tuple[str, str]] = {
    "pyspark": ("'ling-curate[spark]'", "executor: spark"),
    "py4j": ("'ling-curate[spark]'", "executor: spark"),
    "grpc": ("'ling-curate[connect]'", "spark.remote (Spark Connect)"),
    "grpc_status": ("'ling-curate[connect]'", "spark.remote (Spark Connect)"),
    "google.rpc": ("'ling-curate[connect]'", "spark.remote (Spark Connect)"),
    "vllm": ("'ling-curate[synth]'", "the synth stage's vllm engine"),
    "httpx": ("'ling-curate[synth]'", "the synth stage's http engine"),
    "jinja2": ("'ling-curate[synth]'", "synth recipes"),
    "gguf": ("'ling-curate[synth]'", "curate demo-model"),
    "s3fs": ("'ling-curate[remote]'", "s3:// and s3a:// paths"),
    "upath": ("'ling-curate[remote]'", "paths on object stores and HDFS"),
    "gcsfs": ("gcsfs", "gs:// paths"),
}
# PySpark names the distribution, not the module, when the Connect client lacks one
_DISTRIBUTIONS = {"grpcio": "grpc", "grpcio-status": "grpc_status", "googleapis-common-protos": "google.rpc"}
_MESSAGES = (re.compile(r"No module named '([\w.]+)'"), re.compile(r"import of ([\w.]+) halted"),
             re.compile(r"\[PACKAGE_NOT_INSTALLED\] ([\w.-]+) "))


def _known(name: str) -> str | None:
    """The OPTIONAL entry a missing module (or a submodule of one) belongs to."""
    name = _DISTRIBUTIONS.get(name, name)
    while name and name not in OPTIONAL:
        name = name.rpartition(".")[0]
    return name or None


def _missing_modules(exc: BaseException) -> list[str]:
    """Names of modules an error says are missing, along its causes and wrapped errors (a `StageFailed`
    carries one; a Spark task's error comes back as text)."""
    found: list[str] = []
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ModuleNotFoundError) and err.name:
            found.append(err.name)
        found.extend(m.group(1) for pattern in _MESSAGES for m in pattern.finditer(str(err)))
        todo.extend([err.__cause__, err.__context__, getattr(err, "error", None)])
    return found


def install_hint(exc: BaseException) -> str | None:
    """`executor: spark needs pyspark, which is not installed: pip install 'ling-curate[spark]'` when `exc`
    comes from a missing optional engine, else None."""
    for name in _missing_modules(exc):
        key = _known(name)
        if key is not None:
            package, needed_by = OPTIONAL[key]
            return f"{needed_by} needs {key}, which is not installed: pip install {package}"
    return None
