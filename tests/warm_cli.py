"""A warm `curate` for tests that start a `curate run` dozens of times (the kill-and-resume chains).

A cold `curate run` spends ~1-1.5 CPU-s importing the CLI, pyarrow and the stage modules before it does
anything, which is most of what each short run of a kill chain costs. `WarmCurate` starts one server
process that imports all that once (`python tests/warm_cli.py CONFIG`, CONFIG's stage modules included);
each run is then a child FORKED from it, a new process like the one `python -m pipeline` starts: its own
session (process group), working directory, environment, stdout/stderr files, `pipeline.__main__` as its
main module (so the spawned pool workers start as they do under the real CLI) and a normal interpreter
exit. A SIGKILL (`CURATE_FAULT_KILL_AT`) ends it as it ends a cold run: returncode -9. The server only
imports; it never runs pipeline code (no thread pool, lock or counter is inherited in use).

Protocol: one JSON request per line on the server's stdin, one JSON reply per line on its stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


class WarmCurate:
    """The client: `run(...)` is `tests.conftest.curate(...)` for `curate` commands, served warm."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self._proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), str(config)], env=env,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        ready = self._proc.stdout.readline()
        assert ready.strip() == "ready", f"warm curate server did not start: {ready!r} (exit {self._proc.poll()})"
        self._dir = Path(tempfile.mkdtemp(prefix="warm_cli-"))
        self._n = 0

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._n += 1
        out, err = self._dir / f"{self._n}.out", self._dir / f"{self._n}.err"
        request = {"args": list(args), "cwd": str(cwd), "env": env or {}, "timeout": timeout,
                   "stdout": str(out), "stderr": str(err)}
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        reply = json.loads(self._proc.stdout.readline())
        proc = subprocess.CompletedProcess(["curate", *args], reply["returncode"], out.read_text(), err.read_text())
        out.unlink()
        err.unlink()
        if reply["timed_out"]:
            raise subprocess.TimeoutExpired(proc.args, timeout, proc.stdout, proc.stderr)
        return proc

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._proc.wait(timeout=30)
        for f in self._dir.iterdir():
            f.unlink()
        self._dir.rmdir()


def _warm_up(config: Path) -> None:
    """Import what `curate run CONFIG` imports before its first stage: the CLI, the runner and the
    executors, the report (a finished run writes it) and the stage modules CONFIG names."""
    import pipeline.cli
    import pipeline.errors
    import pipeline.input_checks
    import pipeline.progress
    import pipeline.report
    import pipeline.runner  # noqa: F401
    from pipeline.config import load_config

    cwd = os.getcwd()
    os.chdir(config.parent)
    try:
        load_config(config)
    finally:
        os.chdir(cwd)


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become a fresh `python -m pipeline ARGS` and run; never returns."""
    os.setsid()
    os.chdir(request["cwd"])
    os.environ.update(request["env"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request["stdout"], os.O_WRONLY | os.O_CREAT),
                            (2, request["stderr"], os.O_WRONLY | os.O_CREAT)):
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    import pipeline.__main__ as entry
    from pipeline.cli import main

    sys.modules["__main__"] = entry  # as `python -m pipeline`: spawned workers re-import this module
    sys.argv = [str(entry.__file__), *request["args"]]
    raise SystemExit(main(request["args"]))  # a normal exit: atexit handlers, flushed streams


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap() -> Any:
    """Exited children, the run's and the orphaned workers it left (this process is their subreaper)."""
    while True:
        try:
            done, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if not done:
            return
        yield done, status


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """The child's returncode as subprocess gives it (-N for a signal), once the child AND every process
    of its group (its pool workers) are gone: a cold run's workers hold its stdout/stderr pipes, so one
    outliving the run makes `subprocess.run` wait; here too, until `timeout`, then the group is killed."""
    deadline = time.monotonic() + timeout
    returncode = None
    while True:
        for done, status in _reap():
            if done == pid:
                returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if returncode is not None and not _group_alive(pid):
            return returncode, False
        if time.monotonic() > deadline:
            if _group_alive(pid):
                os.killpg(pid, signal.SIGKILL)
            while _group_alive(pid):  # until the last one is reaped
                list(_reap())
                time.sleep(0.01)
            return -signal.SIGKILL, True
        time.sleep(0.01)


def serve(config: Path) -> None:
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36  # a dead run's workers become our children: reaped, not zombies in its group
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    _warm_up(config)
    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        returncode, timed_out = _wait(pid, request["timeout"])
        print(json.dumps({"returncode": returncode, "timed_out": timed_out}), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    serve(Path(sys.argv[1]).resolve())
