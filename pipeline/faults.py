"""Fault injection for tests: `CURATE_FAULT_KILL_AT=N` SIGKILLs the process at its N-th atomic
write, after the temporary file is written and before it is renamed into place. This is the
worst moment to die, and fault tests use it to prove resumption never trusts a half-written file."""

from __future__ import annotations

import os
import signal

_writes = 0


def before_commit() -> None:
    global _writes
    target = os.environ.get("CURATE_FAULT_KILL_AT")
    if not target:
        return
    _writes += 1
    if _writes == int(target):
        os.kill(os.getpid(), signal.SIGKILL)
