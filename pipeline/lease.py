"""The run lock on stores without flock (S3, GCS, HDFS): a lease object renewed by a heartbeat.

A holder writes `{owner, renewed}` to OUT/_lock and rewrites it every HEARTBEAT_S seconds; another
run treats a lock younger than LEASE_S as held, and an older one as left by a dead run (so a killed
run never blocks the next one for more than LEASE_S). After writing, the taker reads the lock back
once more after a pause and gives up if another run's write won: two runs starting within the same
instant cannot both proceed. The holder deletes the lock when it finishes.
"""

from __future__ import annotations

import json
import os
import platform
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.background import repeating

LEASE_S = float(os.environ.get("CURATE_LEASE_S", "120"))
HEARTBEAT_S = LEASE_S / 4
SETTLE_S = float(os.environ.get("CURATE_LEASE_SETTLE_S", "1.0"))


def read_lease(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _write(path: Path, owner: str, holder: str) -> None:
    path.write_text(json.dumps({"owner": owner, "holder": holder, "renewed": time.time()}))


@contextmanager
def lease_lock(path: Path, held_error: type[Exception]) -> Iterator[None]:
    owner = uuid.uuid4().hex
    holder = f"pid {os.getpid()} on {platform.node()}"
    current = read_lease(path)
    if current and time.time() - float(current.get("renewed", 0)) < LEASE_S:
        raise held_error(f"{path.parent} is in use by another run ({current.get('holder')}, lease renewed "
                         f"{time.time() - float(current['renewed']):.0f} s ago); wait for it or use another --output")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, owner, holder)
    time.sleep(SETTLE_S)
    won = read_lease(path)
    if not won or won.get("owner") != owner:
        raise held_error(f"{path.parent} was taken by another run ({(won or {}).get('holder')}) at the same moment")
    try:
        with repeating(HEARTBEAT_S, lambda: _write(path, owner, holder), "curate-lease"):
            yield
    finally:
        if (read_lease(path) or {}).get("owner") == owner:
            path.unlink(missing_ok=True)
