"""Send what vLLM, torch and Triton print to ``OUT/<stage>/engine.log`` instead of the terminal.

Why at the file-descriptor level: vLLM's engine core runs in a child process that inherits fds 1 and 2
when it is spawned, and torch/Triton write from C++ straight to those fds, so replacing ``sys.stdout`` or
configuring loggers cannot catch them. While the engine is created, called or closed, fds 1 and 2 point at
the log file; the tool's own log lines keep reaching the terminal because the logging handlers that wrote
to it are given a stream on the saved terminal fd for that time. vLLM's Python logger is pointed at the
file for the rest of the process (it logs from the parent between calls too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

ENGINE_LOGGERS = ("vllm", "torch", "triton", "transformers")


def _route_loggers(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ENGINE_LOGGERS:
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            if isinstance(h, logging.FileHandler) and h.baseFilename == str(path.resolve()):
                break
        else:
            lg.handlers = [handler]
            lg.propagate = False


def _terminal_handlers() -> list[logging.StreamHandler]:
    """Stream handlers (root's and named loggers') that write to the process's stdout or stderr."""
    streams = {id(s) for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None}
    loggers = [logging.getLogger()] + [lg for lg in logging.Logger.manager.loggerDict.values()
                                       if isinstance(lg, logging.Logger)
                                       and lg.name.split(".")[0] not in ENGINE_LOGGERS]  # fmt: skip
    out = []
    for lg in loggers:
        for h in lg.handlers:
            if type(h) is logging.StreamHandler and id(h.stream) in streams:
                out.append(h)
    return out


@contextlib.contextmanager
def engine_output(path: Path | None) -> Iterator[None]:
    """Within the block, fds 1 and 2 write to ``path`` (appending); None: change nothing."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    saved = (os.dup(1), os.dup(2))
    handlers = _terminal_handlers()
    terminal = {1: os.fdopen(os.dup(saved[0]), "w", buffering=1, encoding="utf-8", errors="replace"),
                2: os.fdopen(os.dup(saved[1]), "w", buffering=1, encoding="utf-8", errors="replace")}
    previous = []
    for h in handlers:
        fd = 1 if h.stream in (sys.stdout, sys.__stdout__) else 2
        previous.append((h, h.setStream(terminal[fd])))
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        _route_loggers(path)
        yield
    finally:
        for s in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for h, old in previous:
            h.setStream(old)
        _route_loggers(path)  # vLLM configures its logger when first imported, inside the block
        for f in terminal.values():
            f.close()
        for fd in (*saved, log_fd):
            os.close(fd)
