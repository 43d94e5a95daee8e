"""Fault injection for tests, at the moment a file is committed (written to its temporary name,
not yet renamed into place), the worst moment for a failure:

* `CURATE_FAULT_KILL_AT=N` SIGKILLs the process at its N-th commit;
* `CURATE_FAULT_FAIL_AT=N` raises `OSError(ENOSPC)` there instead, as a full disk would;
* `CURATE_FAULT_MATCH=REGEX` makes those count only commits whose path matches REGEX (`re.search`
  on the path as the pipeline names it, e.g. `out/near_dedup/_work/bands/reduce/r00003.parquet`),
  so a test can aim at "the 2nd reduce output of near_dedup's band group-by" in any run;
* `CURATE_FAULT_TRACE=FILE` appends one line per commit to FILE: `pid<TAB>N<TAB>path`, N counting
  every commit of that process, so a test can map commits to the stage and step that make them.

Fault tests use them to prove that a resumed run never trusts a half-written file. Each process
counts its own commits (a worker of the process pool has its own count). Unset, they cost nothing."""

from __future__ import annotations

import errno
import os
import re
import signal

_commits = 0  # every commit of this process
_matches = 0  # commits that count towards KILL_AT / FAIL_AT (all of them without CURATE_FAULT_MATCH)


def before_commit(path: str | os.PathLike[str] | None = None) -> None:
    global _commits, _matches
    kill_at = os.environ.get("CURATE_FAULT_KILL_AT")
    fail_at = os.environ.get("CURATE_FAULT_FAIL_AT")
    trace = os.environ.get("CURATE_FAULT_TRACE")
    if not kill_at and not fail_at and not trace:
        return
    _commits += 1
    if trace:
        with open(trace, "a", encoding="utf-8") as fh:  # one short O_APPEND write: safe across processes
            fh.write(f"{os.getpid()}\t{_commits}\t{path}\n")
    match = os.environ.get("CURATE_FAULT_MATCH")
    if match and not re.search(match, str(path)):
        return
    _matches += 1
    if kill_at and _matches == int(kill_at):
        os.kill(os.getpid(), signal.SIGKILL)
    if fail_at and _matches == int(fail_at):
        raise OSError(errno.ENOSPC, "No space left on device (injected)")
