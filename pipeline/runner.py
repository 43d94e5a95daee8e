"""The runner: plans the stage graph, takes the run lock, skips finished work, writes manifests.

Every stage's identity is a hash chained from its settings and its input stage's hash (ingest's
from the input files' fingerprint), so changing a stage reruns it and everything after it, and
nothing else. A stage is finished when its `_manifest.json` carries that hash; partial progress
inside a stage (per-partition markers) carries it too and is reused on resume.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import functools
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import __version__, storage
from pipeline.config import PipelineConfig, StageConfig, config_hash
from pipeline.errors import StageFailed
from pipeline.executors.local import LocalExecutor
from pipeline.ids import ids_distinct
from pipeline.ingest import InputFile, fingerprint, list_input_files
from pipeline.ingest_split import ingest_files
from pipeline.input_checks import check_ingest
from pipeline.io import clean_temp_files, read_json_or_none, sha256_file, write_json, write_parquet
from pipeline.partitions import partition_name
from pipeline.plans import keep_first_per_key, removed_rows, run_dedup_stage, run_map_stage
from pipeline.primitives import Executor, Progress
from pipeline.progress import Reporter
from pipeline.schema import QUARANTINE_SCHEMA
from pipeline.stage_context import StageContext, finish_counts
from pipeline.storage import arrow

log = logging.getLogger("curate")
SCRATCH_DIRS = ("_work", "_scored")  # a stage's resumable intermediates, removed after its manifest


class LockHeld(Exception):
    """Another run holds the output directory."""


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """An flock on OUT/_lock: released by the kernel if the holder dies, so no stale locks.
    A remote OUT (s3://, hdfs://) has no flock: it gets a lease (pipeline/lease.py)."""
    if not storage.is_local(out):
        from pipeline.lease import lease_lock

        with lease_lock(out / "_lock", LockHeld):
            yield
        return
    out.mkdir(parents=True, exist_ok=True)
    path = out / "_lock"
    fh = open(path, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "unknown process"
        fh.close()
        raise LockHeld(f"{out} is in use by another run ({holder}); wait for it or use another --output") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()} on {platform.node()} since {_now()}\n")
    fh.flush()
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class PlannedStage:
    config: StageConfig
    input_name: str
    hash: str


@dataclass
class Plan:
    files: list[InputFile]
    ingest_hash: str
    stages: list[PlannedStage] = field(default_factory=list)

    def describe(self) -> list[dict[str, Any]]:
        rows = [{"stage": "ingest", "kind": "ingest", "input": f"{len(self.files)} files", "hash": self.ingest_hash}]
        for s in self.stages:
            rows.append({"stage": s.config.name, "kind": s.config.kind, "input": s.input_name, "hash": s.hash})
        return rows


def make_plan(cfg: PipelineConfig, files: list[InputFile] | None = None) -> Plan:
    """Resolve input files (unless given) and chain stage hashes. Raises ConfigError for unmatched inputs."""
    from stages.registry import make_stage

    files = list_input_files(cfg.inputs) if files is None else files
    ingest_hash = config_hash({"inputs": [i.model_dump(mode="json") for i in cfg.inputs],
                               "partition_rows": cfg.partition_rows, "files": fingerprint(files),
                               "version": __version__})
    plan = Plan(files, ingest_hash)
    hashes = {"ingest": ingest_hash}
    previous = "ingest"
    for stage_cfg in cfg.stages:
        input_name = stage_cfg.input or previous
        stage = make_stage(stage_cfg, cfg)
        h = config_hash({"settings": stage_cfg.model_dump(mode="json"), "input": hashes[input_name],
                         "seed": cfg.seed, "extra": stage.fingerprint(), "version": __version__})
        plan.stages.append(PlannedStage(stage_cfg, input_name, h))
        hashes[stage_cfg.name] = h
        previous = stage_cfg.name
    return plan


def data_partitions(out: Path, stage: str) -> list[Path]:
    return sorted((out / stage / "data").glob("part-*.parquet"))


class Runner:
    def __init__(self, cfg: PipelineConfig, reporter: Reporter | None = None, files: list[InputFile] | None = None):
        if cfg.executor == "spark" and not storage.is_remote_uri(cfg.output):
            # Spark's Python workers run in the JVM's working directory, which an existing session may
            # have elsewhere: give them absolute paths (stage hashes do not depend on `output`)
            cfg = cfg.model_copy(update={"output": os.path.abspath(cfg.output)})
        self.cfg = cfg
        self.out = storage.location(cfg.output)
        self.reporter = reporter or Reporter(enabled=False)
        self.files = files

    # -- entry point ----------------------------------------------------------------------------
    def run(self, fresh: bool = False) -> dict[str, Any]:
        """Run (or resume) the pipeline. Raises ConfigError, LockHeld or StageFailed."""
        plan = make_plan(self.cfg, self.files)
        if self.cfg.executor == "spark":  # as for `output` above; ids and hashes use `relpath`, not `path`
            plan.files = [f if storage.is_remote_uri(f.path) else dataclasses.replace(f, path=os.path.abspath(f.path))
                          for f in plan.files]
        with run_lock(self.out):
            if fresh:
                for child in self.out.iterdir():
                    if child.name not in ("_lock", "_cache"):  # the response cache outlives --fresh
                        storage.remove(child)
            clean_temp_files(self.out)  # e.g. a `_run.json` a killed run was writing
            run_info = self._run_info(plan)
            write_json(run_info, self.out / "_run.json")
            executor = self._executor()
            try:
                summary = [self._ingest(plan, executor)]
                check_ingest(self.cfg, self.out, plan.files)  # exit 2 when an input yielded nothing usable
                for planned in plan.stages:
                    summary.append(self._stage(planned, executor))
            except BaseException as exc:
                run_info.update(status="failed", finished=_now(), error=str(exc))
                write_json(run_info, self.out / "_run.json")
                raise
            finally:
                executor.close()
            run_info.update(status="finished", finished=_now(), stages=summary)
            write_json(run_info, self.out / "_run.json")
            return run_info

    def _executor(self) -> Executor:
        if self.cfg.executor == "spark":
            from pipeline.executors.spark import SparkExecutor

            return SparkExecutor(self.cfg)
        return LocalExecutor(self.cfg.workers)

    def _run_info(self, plan: Plan) -> dict[str, Any]:
        versions = {"ling-curate": __version__, "python": platform.python_version(), "pyarrow": pa.__version__}
        return {"name": self.cfg.name, "config": self.cfg.model_dump(mode="json"),
                "config_hash": config_hash(self.cfg.model_dump(mode="json")), "plan": plan.describe(),
                "versions": versions, "executor": self.cfg.executor, "workers": self.cfg.workers,
                "started": _now(), "finished": None, "status": "running", "argv": sys.argv}

    def _prepare_stage_dir(self, name: str, stage_hash: str, owned: tuple[Path, ...] = ()
                           ) -> tuple[Path, dict | None]:
        """Return the stage dir and its finished manifest if still valid; wipe stale partial work
        (and the other paths the stage owns, like the quarantine for ingest)."""
        stage_dir = self.out / name
        manifest = read_json_or_none(stage_dir / "_manifest.json")
        if manifest and manifest.get("config_hash") == stage_hash:
            damaged = self._damaged_files(manifest)
            if not damaged:
                return stage_dir, manifest
            for rel in damaged:
                log.warning("%s: %s is missing or corrupt (checksum mismatch); recomputing it", name, rel)
                (self.out / rel).unlink(missing_ok=True)
                (stage_dir / "_parts" / f"{Path(rel).name.removesuffix('.parquet')}.json").unlink(missing_ok=True)
            if name == "ingest":
                storage.rmtree(stage_dir / "_files")
            (stage_dir / "_manifest.json").unlink()
        started = read_json_or_none(stage_dir / "_stage.json")
        if (started or {}).get("config_hash") != stage_hash:
            for path in (stage_dir, *owned):
                storage.rmtree(path)
        clean_temp_files(stage_dir)  # e.g. a `_manifest.json` the killed run was writing
        for sub in ("data", "removed", "_parts", "_files", "_raw"):
            clean_temp_files(stage_dir / sub)
        write_json({"config_hash": stage_hash, "started": _now()}, stage_dir / "_stage.json")
        return stage_dir, None

    def _damaged_files(self, manifest: dict[str, Any]) -> list[str]:
        """Output files of a finished stage whose sha256 no longer matches its manifest."""
        if not self.cfg.verify_checksums:
            return []
        damaged = []
        for rel, digest in sorted((manifest.get("files") or {}).items()):
            path = self.out / rel
            if not path.is_file() or sha256_file(path) != digest:
                damaged.append(rel)
        return damaged

    def _output_files(self, stage_dir: Path, kind: str, known: dict[str, str] | None = None) -> dict[str, str]:
        """sha256 of everything a stage wrote that later stages or users read (`known`: digests its
        tasks took of the files they wrote, in parallel, by path relative to the output)."""
        roots = [stage_dir / "data", stage_dir / "removed"]
        if kind == "shard":
            roots.append(self.out / "shards")
        if kind == "ingest":
            roots.append(self.out / "quarantine")
        files = sorted(p for root in roots if root.is_dir() for p in root.rglob("*")
                       if p.is_file() and not p.name.startswith("."))
        known = known or {}
        return {rel: known.get(rel) or sha256_file(p) for p in files for rel in [str(p.relative_to(self.out))]}

    def _progress(self, label: str, unit: str | None = None, phase: str | None = None) -> Progress:
        return self.reporter.task(label, unit, phase)

    def _finish(self, stage_dir: Path, name: str, kind: str, stage_hash: str, counts: dict[str, Any],
                started: float, input_name: str | None, known: dict[str, str] | None = None) -> dict[str, Any]:
        tokens = counts.pop("tokens_kept", None)
        manifest = {"stage": name, "kind": kind, "config_hash": stage_hash, "input": input_name,
                    "counts": {k: counts[k] for k in ("in", "kept", "removed", "added", "by_reason")},
                    "stats": {k: v for k, v in counts.items()
                              if k not in ("in", "kept", "removed", "added", "by_reason")},
                    "tokens": tokens, "seconds": round(time.monotonic() - started, 3),
                    "executor": self.cfg.executor, "finished": _now(),
                    "files": self._output_files(stage_dir, kind, known)}
        c = manifest["counts"]
        if c["in"] + c["added"] != c["kept"] + c["removed"]:
            raise StageFailed(name, AssertionError(f"counts do not balance: {c}"))
        write_json(manifest, stage_dir / "_manifest.json")
        self.reporter.done(name, manifest)
        return {"stage": name, "cached": False, **c}

    # -- ingest ---------------------------------------------------------------------------------
    def _ingest(self, plan: Plan, executor: Executor) -> dict[str, Any]:
        stage_dir, manifest = self._prepare_stage_dir("ingest", plan.ingest_hash, (self.out / "quarantine",))
        if manifest:
            self.reporter.cached("ingest", manifest)
            return {"stage": "ingest", "cached": True, **manifest["counts"]}
        clean_temp_files(self.out / "quarantine")
        started = time.monotonic()
        results = ingest_files(executor, plan.files, stage_dir, self.cfg.partition_rows, plan.ingest_hash,
                               lambda unit: self._progress("ingest", unit=unit))
        raw_parts = [stage_dir / "_raw" / f"{name}.parquet" for r in results for name in r["parts"]]
        by_reason: dict[str, int] = {}
        for r in results:
            for k, v in r["by_reason"].items():
                by_reason[k] = by_reason.get(k, 0) + v
        dup_results = [] if ids_distinct(raw_parts) else executor.group_by_key(  # which rows repeat an id
            raw_parts, _id_keys, functools.partial(keep_first_per_key, reason_prefix="duplicate_id"),
            stage_dir / "_work", progress=self._progress("ingest", unit="id buckets", phase="unique ids"))
        kept = 0
        dup_count = 0
        digests = {f"ingest/data/{name}.parquet": d for r in results for name, d in r.get("digests", {}).items()}
        for i, raw in enumerate(raw_parts):
            final = stage_dir / "data" / raw.name
            gone = removed_rows(dup_results, i)
            n_rows = pq.ParquetFile(arrow(raw)).metadata.num_rows
            quarantined = self.out / "quarantine" / f"{partition_name(raw)}-duplicate-ids.parquet"
            if gone and not (final.exists() and quarantined.exists()):  # both there: a killed run wrote them
                table = pq.read_table(arrow(raw))
                mask = pa.array([r not in gone for r in range(table.num_rows)])
                _quarantine_duplicate_ids(table.filter(pc.invert(mask)), quarantined)
                write_parquet(table.filter(mask), final)
            if gone:
                dup_count += len(gone)
                digests.pop(f"ingest/data/{raw.name}", None)  # rewritten without the repeats
            elif not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                storage.link_or_copy(raw, final)
            kept += n_rows - len(gone)
        if dup_count:
            by_reason["quarantine:duplicate_id"] = dup_count
        records = sum(r["records"] for r in results)
        skipped: dict[str, int] = {}  # WARC records that are not documents (request, non-200, ...)
        for r in results:
            for k, v in r.get("skipped", {}).items():
                skipped[k] = skipped.get(k, 0) + v
        counts = {"in": records, "kept": kept, "removed": records - kept, "added": 0,
                  "by_reason": dict(sorted(by_reason.items())), "files": len(plan.files),
                  "skipped": dict(sorted(skipped.items()))}
        summary = self._finish(stage_dir, "ingest", "ingest", plan.ingest_hash, counts, started, None, digests)
        storage.rmtree(stage_dir / "_raw")
        storage.rmtree(stage_dir / "_work")
        return summary

    # -- stages ---------------------------------------------------------------------------------
    def _stage(self, planned: PlannedStage, executor: Executor) -> dict[str, Any]:
        from stages.registry import make_stage

        cfg = planned.config
        stage_dir, manifest = self._prepare_stage_dir(cfg.name, planned.hash)
        if manifest:
            self.reporter.cached(cfg.name, manifest)
            return {"stage": cfg.name, "cached": True, **manifest["counts"]}
        started = time.monotonic()
        stage = make_stage(cfg, self.cfg)  # the shape only: models load in the tasks, not on the driver
        unit = getattr(stage, "progress_unit", None) or {"map": "partitions", "dedup": "partitions"}.get(stage.shape)
        ctx = StageContext(cfg, self.cfg, data_partitions(self.out, planned.input_name), stage_dir, self.out,
                           executor, planned.hash, functools.partial(self._phase, cfg.name),
                           self._progress(cfg.name, unit=unit or "tasks"))
        if stage.shape == "dedup" or (stage.shape == "map" and len(ctx.inputs) > 1):  # surely several tasks
            executor.start_workers((type(stage).__module__,))  # no-op once running (ingest started them)
        try:
            if stage.shape == "map":
                run_map_stage(ctx)
                stats = None
            elif stage.shape == "dedup":
                run_dedup_stage(ctx)
                stats = None
            else:
                stats = stage.run(ctx)
            counts = finish_counts(ctx, getattr(stage, "writes_partitions", True), stats)
        except StageFailed as exc:  # named by its stage, then its task (partition, bucket)
            if exc.where.startswith(cfg.name):
                raise
            raise StageFailed(f"{cfg.name}: {exc.where}", exc.error) from exc
        except (ValueError, RuntimeError, OSError) as exc:  # one line naming the stage, not a traceback
            raise StageFailed(cfg.name, exc) from exc
        summary = self._finish(stage_dir, cfg.name, cfg.kind, planned.hash, counts, started, planned.input_name)
        # Scratch goes only once the manifest is written: a run killed before that (e.g. while `_finish`
        # hashes every output) resumes from it instead of redoing the stage's costliest work.
        for scratch in SCRATCH_DIRS:
            storage.rmtree(stage_dir / scratch)
        return summary

    def _phase(self, name: str, phase: str | None, unit: str | None) -> Progress:
        return self._progress(name, unit=unit, phase=phase)


def _id_keys(path: Path, part: int) -> pa.Table:
    """Key table for the unique-id check: the first occurrence (partition order, row) keeps the id."""
    import numpy as np

    ids = pq.read_table(arrow(path), columns=["id"]).column("id")
    n = len(ids)
    return pa.table({"key": ids, "part": pa.array(np.full(n, part, dtype=np.int32)),
                     "row": pa.array(np.arange(n, dtype=np.int64)), "id": ids,
                     "prio_0": pa.array(np.full(n, part, dtype=np.int32)),
                     "prio_1": pa.array(np.arange(n, dtype=np.int64))})


def _quarantine_duplicate_ids(table: pa.Table, path: Path) -> None:
    rows = []
    for doc in table.to_pylist():
        meta = json.loads(doc["meta"] or "{}")
        rows.append({"source": doc["source"], "file": meta.get("file"), "line": meta.get("line"),
                     "field": "id", "error": f"duplicate id {doc['id']!r}: an earlier record has it",
                     "raw": json.dumps(doc, ensure_ascii=True).encode(), "id": doc["id"]})
    write_parquet(pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA), path)

