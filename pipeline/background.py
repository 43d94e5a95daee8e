"""A function repeated on a driver thread for as long as a block runs (lease heartbeats, Spark progress)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def repeating(interval_s: float, tick: Callable[[], bool | None], name: str) -> Iterator[None]:
    """Call `tick` every `interval_s` seconds on a daemon thread while the block runs; a tick that returns
    False ends the repetition early. The thread is stopped and joined when the block ends, however it ends."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval_s):
            if tick() is False:
                return

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
