"""Errors every layer raises and the CLI turns into one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import Any

LABEL_CHARS = 80  # a label longer than this is cut: an error line names its task, it does not dump it


class ConfigError(Exception):
    """Invalid configuration; `problems` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class StageFailed(Exception):
    """A stage raised on some partition or step; carries where, so the CLI can say it in one line."""

    def __init__(self, where: str, error: BaseException):
        super().__init__(f"{where}: {type(error).__name__}: {error}")
        self.where = where
        self.error = error

    def __reduce__(self) -> tuple[type[StageFailed], tuple[str, BaseException]]:
        return StageFailed, (self.where, self.error)  # crosses process boundaries (pool workers, Spark tasks)


def task_label(item: Any) -> str:
    """A short human name for a task item: its own `label` if it has one (partition tasks, group-by
    buckets), a file's name without `.parquet`, a number; for a tuple, the first file in it. Never the
    repr of what the task carries (stage objects, configs, pickled functions)."""
    label = getattr(item, "label", None)
    if isinstance(label, str):
        return label
    if isinstance(item, PurePath):
        return item.name.removesuffix(".parquet")
    if isinstance(item, bool | int | float):
        return str(item)
    if isinstance(item, str):
        name = item.rstrip("/").rsplit("/", 1)[-1] if "/" in item else item
        return name.removesuffix(".parquet")[:LABEL_CHARS]
    if isinstance(item, tuple | list):
        for x in item:
            if isinstance(x, PurePath) and x.suffix or getattr(x, "label", None):
                return task_label(x)
        for x in item:
            if isinstance(x, str) and x.endswith(".parquet"):
                return task_label(x)
        return f"task of {len(item)} items" if isinstance(item, list) else "task"
    return type(item).__name__


def call_naming_item(fn: Callable[[Any], Any], item: Any) -> Any:
    """`fn(item)`, with any error but a StageFailed re-raised as one that names the item by its label."""
    try:
        return fn(item)
    except StageFailed:
        raise
    except Exception as exc:  # re-raised with the item that failed
        raise StageFailed(task_label(item), exc) from exc
