"""Fault injection for tests, at the moment a file is committed (written to its temporary name,
not yet renamed into place), the worst moment for a failure:

* `CURATE_FAULT_KILL_AT=N` SIGKILLs the process at its N-th commit;
* `CURATE_FAULT_FAIL_AT=N` raises `OSError(ENOSPC)` there instead, as a full disk would.

Fault tests use them to prove that a resumed run never trusts a half-written file."""

from __future__ import annotations

import errno
import os
import signal

_commits = 0


def before_commit() -> None:
    global _commits
    kill_at = os.environ.get("CURATE_FAULT_KILL_AT")
    fail_at = os.environ.get("CURATE_FAULT_FAIL_AT")
    if not kill_at and not fail_at:
        return
    _commits += 1
    if kill_at and _commits == int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)
    if fail_at and _commits == int(fail_at):
        raise OSError(errno.ENOSPC, "No space left on device (injected)")
