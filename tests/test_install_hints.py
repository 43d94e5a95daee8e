"""An optional engine that is not installed (PySpark, the Spark Connect client, vLLM, the object-store
clients) is reported with the command that installs it: one line, exit 2, no traceback. Each missing
module is simulated by `sys.modules[name] = None`, which makes its import fail as if it were absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.errors import StageFailed
from pipeline.extras import install_hint
from tests.conftest import pipeline_config, write_config


def run_cli(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    code = main(args)
    return code, capsys.readouterr().err


def problems(err: str) -> list[str]:
    """The error lines (progress lines before them are fine), after checking that no traceback came."""
    assert "Traceback" not in err and "Error:" not in err
    return [line for line in err.splitlines() if line.startswith("curate:")]


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in list(sys.modules):  # loaded submodules too, so that nothing of them is reached
        if any(name == m or name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def test_executor_spark_without_pyspark(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    hide(monkeypatch, "pyspark")
    code, err = run_cli(["run", "pipeline.yaml", "--executor", "spark"], workdir, monkeypatch, capsys)
    assert code == 2
    assert problems(err) == [
        "curate: executor: spark needs pyspark, which is not installed: pip install 'ling-curate[spark]'"]


def test_spark_connect_without_its_client(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("pyspark")  # PySpark itself is there; its Connect client's grpcio is not
    write_config(workdir / "connect.yaml", pipeline_config(executor="spark",
                                                           spark={"remote": "sc://127.0.0.1:15002"}))
    hide(monkeypatch, "grpc")
    code, err = run_cli(["run", "connect.yaml"], workdir, monkeypatch, capsys)
    assert code == 2
    assert problems(err) == ["curate: spark.remote (Spark Connect) needs grpc, which is not installed: "
                                        "pip install 'ling-curate[connect]'"]


def test_s3_output_without_s3fs(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    write_config(workdir / "s3.yaml", pipeline_config(output="s3://bucket/out"))
    hide(monkeypatch, "s3fs")
    code, err = run_cli(["validate", "s3.yaml"], workdir, monkeypatch, capsys)
    assert code == 2
    assert problems(err) == ["curate: output: s3:// needs s3fs, which is not installed: "
                             "pip install 'ling-curate[remote]' (got 's3://bucket/out')"]


def test_vllm_engine_without_vllm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hide(monkeypatch, "vllm")
    from synth.engine_kinds import make_engine

    with pytest.raises(ImportError) as err:
        make_engine("vllm", model=str(tmp_path))
    assert install_hint(err.value) == ("the synth stage's vllm engine needs vllm, which is not installed: "
                                       "pip install 'ling-curate[synth]'")


@pytest.mark.parametrize(("error", "command"), [
    (ModuleNotFoundError("No module named 'httpx'", name="httpx"), "pip install 'ling-curate[synth]'"),
    (ModuleNotFoundError("No module named 'vllm.platforms'", name="vllm.platforms"),
     "pip install 'ling-curate[synth]'"),
    (ImportError("[PACKAGE_NOT_INSTALLED] grpcio-status >= 1.48.1 must be installed; however, it was not found."),
     "pip install 'ling-curate[connect]'"),
    # a Spark task's error comes back to the driver as text
    (StageFailed("synth", RuntimeError("ModuleNotFoundError: No module named 'upath'")),
     "pip install 'ling-curate[remote]'"),
    (ModuleNotFoundError("No module named 'gcsfs'", name="gcsfs"), "pip install gcsfs"),
])
def test_every_optional_engine_names_its_install_command(error: BaseException, command: str) -> None:
    hint = install_hint(error)
    assert hint is not None and hint.endswith(command)


def test_other_errors_get_no_install_hint() -> None:
    assert install_hint(ModuleNotFoundError("No module named 'numpyy'", name="numpyy")) is None
    assert install_hint(ValueError("bad value")) is None
    assert install_hint(StageFailed("mix", KeyError("n_tokens"))) is None
