"""Errors every layer raises and the CLI turns into one line."""

from __future__ import annotations


class StageFailed(Exception):
    """A stage raised on some partition or step; carries where, so the CLI can say it in one line."""

    def __init__(self, where: str, error: BaseException):
        super().__init__(f"{where}: {type(error).__name__}: {error}")
        self.where = where
        self.error = error

    def __reduce__(self) -> tuple[type[StageFailed], tuple[str, BaseException]]:
        return StageFailed, (self.where, self.error)  # crosses process boundaries (pool workers, Spark tasks)
