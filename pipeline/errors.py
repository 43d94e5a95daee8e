"""Errors every layer raises and the CLI turns into one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


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


def call_naming_item(fn: Callable[[Any], Any], item: Any) -> Any:
    """`fn(item)`, with any error but a StageFailed re-raised as one that names the item."""
    try:
        return fn(item)
    except StageFailed:
        raise
    except Exception as exc:  # re-raised with the item that failed
        raise StageFailed(str(item), exc) from exc
