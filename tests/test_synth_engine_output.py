"""Engine output (vLLM, torch, Triton; child processes included) goes to engine.log, the tool's own log
lines stay on the terminal: checked at the file-descriptor level in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import logging, os, subprocess, sys
from pathlib import Path
from synth.engine_output import engine_output

logging.basicConfig(level=logging.INFO, handlers=[logging.StreamHandler(sys.stderr)], format="%(name)s %(message)s")
log = logging.getLogger("curate.synth")
with engine_output(Path(sys.argv[1])):
    print("engine print on stdout", flush=True)
    os.write(2, b"C++ warning on fd 2\n")
    subprocess.run([sys.executable, "-c", "import sys; print('child out'); print('child err', file=sys.stderr)"])
    logging.getLogger("vllm").warning("vllm logger line")
    log.info("synth: 1/2 prompts")
logging.getLogger("vllm").warning("vllm logger after the block")
log.info("synth: 2/2 prompts")
print("tool output")
"""


def test_engine_output_goes_to_the_log_and_own_lines_to_the_terminal(tmp_path: Path) -> None:
    log_file = tmp_path / "synth" / "engine.log"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(log_file)], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "tool output\n"
    assert proc.stderr.splitlines() == ["curate.synth synth: 1/2 prompts", "curate.synth synth: 2/2 prompts"]
    logged = log_file.read_text()
    for line in ("engine print on stdout", "C++ warning on fd 2", "child out", "child err", "vllm logger line",
                 "vllm logger after the block"):
        assert line in logged, (line, logged)
