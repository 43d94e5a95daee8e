"""A wall-clock limit around one call, for per-page work that pathological input can make unbounded.

SIGALRM via `setitimer`: the handler raises `TimeLimitExceeded` in the running Python code (C code
such as a parser finishes its current call first). Only the main thread of a process can take
signals; elsewhere (a thread pool) the limit is not enforced and `enforced` says so. The previous
handler and timer are restored afterwards, so nested or foreign alarms are left as they were.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class TimeLimitExceeded(Exception):
    pass


def enforced() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _raise(signum: int, frame: object) -> None:
    raise TimeLimitExceeded


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise TimeLimitExceeded in the body after `seconds` of wall time (0 or less: no limit)."""
    if seconds <= 0 or not enforced():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
