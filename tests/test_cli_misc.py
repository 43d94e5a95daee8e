"""Small CLI commands: dedup-params, tiny-model argument checks, report on a missing directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import curate


def test_dedup_params_prints_the_s_curve_choices(tmp_path: Path) -> None:
    proc = curate("dedup-params", "--threshold", "0.8", "--num-perm", "112", cwd=tmp_path, check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("MinHash LSH for Jaccard threshold 0.8")
    best = lines[lines.index("best choices:") + 2].split()
    bands, rows = int(best[0]), int(best[1])
    assert bands * rows <= 112
    p = 1 - (1 - 0.9 ** rows) ** bands
    assert abs(float(best[-1]) - p) < 1e-3  # the P(s=0.90) column is the S-curve
    bad = curate("dedup-params", "--threshold", "1.5", cwd=tmp_path)
    assert bad.returncode == 2


def test_report_on_missing_dir_exits_2(tmp_path: Path) -> None:
    proc = curate("report", "nowhere", cwd=tmp_path)
    assert proc.returncode == 2 and "no such run output directory" in proc.stderr


def test_log_records_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's log handler does not keep the stderr it was set up with: a record logged after that
    stream closed (py4j's finalizers log at interpreter exit, after pytest closed its capture) went to
    the closed stream and printed `--- Logging error ---`. py4j's connection chatter is not shown."""
    import io
    import logging
    import sys

    from pipeline.cli import _setup_logging

    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("py4j").level)
    try:
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        _setup_logging()
        first.close()
        later = io.StringIO()
        monkeypatch.setattr(sys, "stderr", later)
        monkeypatch.setattr(logging, "raiseExceptions", True)
        logging.getLogger("curate").info("still shown")
        logging.getLogger("py4j.clientserver").info("Closing down clientserver connection")
        assert later.getvalue().endswith("INFO still shown\n") and "Logging error" not in later.getvalue()
        assert "clientserver" not in later.getvalue()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("py4j").setLevel(saved[2])
