"""One dedup index store for exact and near dedup (pipeline/index_store.py), and failing tasks named by a
short label (stage, partition or bucket), never by the repr of what the task carries."""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.errors import StageFailed, task_label
from pipeline.executors.local import LocalExecutor
from pipeline.stage_context import Part, PartitionOutput, StageContext
from tests.conftest import curate, pipeline_config, write_config


def _indexed(**dedup: object) -> dict:
    return pipeline_config(stages=[{"name": "normalize"}, {"name": "exact_dedup", "index": "_index", **dedup}])


def test_switching_the_key_kind_starts_its_own_store_and_other_settings_are_a_config_error(workdir: Path) -> None:
    write_config(workdir / "pipeline.yaml", _indexed())
    curate("run", cwd=workdir, check=True)
    index = workdir / "out" / "_index"
    assert len(list((index / "exact_dup").glob("gen-*"))) == 1

    # text keys -> URL keys: another key name, so another store (a new line of generations), not a type clash
    proc = curate("run", "--set", "stages.exact_dedup.text=false", "--set", "stages.exact_dedup.url=true",
                  cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "ArrowTypeError" not in proc.stderr
    assert len(list((index / "url_dup").glob("gen-*"))) == 1
    assert len(list((index / "exact_dup").glob("gen-*"))) == 1

    # the same key with another normalization would compare keys of another meaning: a config error
    proc = curate("run", "--set", "stages.exact_dedup.lowercase=false", cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (f"curate: stages.exact_dedup.index: {index / 'exact_dup'} holds keys built with other settings "
            "(lowercase: True in the index, False now); use another index path or the same settings") in proc.stderr
    assert curate("validate", "--set", "stages.exact_dedup.lowercase=false", cwd=workdir).returncode == 2


def test_a_rerun_of_the_same_output_replaces_its_own_generation(workdir: Path) -> None:
    write_config(workdir / "pipeline.yaml", _indexed())
    first = curate("run", cwd=workdir, check=True)
    assert first.returncode == 0
    kept = json_counts(workdir)["kept"]
    curate("run", "--set", "stages.normalize.max_newlines=7", cwd=workdir, check=True)
    # the earlier run of this output is not an "earlier corpus": nothing is removed as a duplicate of itself
    assert json_counts(workdir)["kept"] == kept
    assert len(list((workdir / "out" / "_index" / "exact_dup").glob("gen-*"))) == 1


def json_counts(workdir: Path) -> dict:
    import json

    return json.loads((workdir / "out" / "exact_dedup" / "_manifest.json").read_text())["counts"]


# -- failing tasks are named by a label ---------------------------------------------------------------


class _Big:
    """Something a task carries whose repr would flood an error line."""

    def __repr__(self) -> str:
        return "<Big " + "x" * 5000 + ">"


def _fails_on_second(big: _Big, part: Part) -> PartitionOutput:
    if part.index == 1:
        raise ValueError("bad row")
    return PartitionOutput(pq.read_table(part.path))


def _reduce_fails(big: _Big, table: pa.Table) -> pa.Table:
    raise ValueError("bad bucket")


def _keys(path: Path, part: int) -> pa.Table:
    return pa.table({"key": pa.array([part, part + 1], pa.uint64())})


@pytest.mark.parametrize("workers", [1, 2])
def test_failing_partition_and_bucket_are_named_by_a_short_label(tmp_path: Path, workers: int) -> None:
    from pipeline.config import validate

    inputs = []
    for i in range(3):
        inputs.append(tmp_path / "in" / f"part-{i:05d}.parquet")
        inputs[-1].parent.mkdir(exist_ok=True)
        pq.write_table(pa.table({"id": [str(i)], "text": ["t"]}), inputs[-1])
    cfg = validate(pipeline_config())
    with LocalExecutor(workers) as ex:
        ctx = StageContext(cfg.stages[0], cfg, inputs, tmp_path / "normalize", tmp_path, ex, "h",
                           lambda phase, unit: lambda d, t: None)
        with pytest.raises(StageFailed) as err:
            ctx.write_partitions(functools.partial(_fails_on_second, _Big()))
        assert str(err.value) == "normalize part-00001: ValueError: bad row"
        with pytest.raises(StageFailed) as err:
            ex.group_by_key(inputs, _keys, functools.partial(_reduce_fails, _Big()), tmp_path / "units", n_buckets=2)
        assert str(err.value) in ("units bucket 0: ValueError: bad bucket", "units bucket 1: ValueError: bad bucket")


def test_task_labels() -> None:
    assert task_label(13) == "13"
    assert task_label(Path("/o/x/part-00003.parquet")) == "part-00003"
    assert task_label(("conf", _Big(), Path("/o/in/part-00007.parquet"), Path("/o/stage"))) == "part-00007"
    assert task_label((_Big(), 3)) == "task"
    assert len(task_label("y" * 500)) == 80
