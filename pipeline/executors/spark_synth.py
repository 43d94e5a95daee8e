"""The synth stage on Spark: generation requests fanned out to Spark tasks, everything else on the driver.

With ``engine: http`` the stage runs exactly as locally (selection, chunking, prompt building, the response
cache, clean-up, ids and writing all happen in `stages.synth`, on the driver), except that the engine it
is handed is a `SparkHTTPEngine`: each call to ``generate`` (one chunk of cache misses, ``chunk_size``
requests) becomes one Spark job over a DataFrame of requests, whose tasks each create their own
`HTTPEngine` client and send their slice to the OpenAI-compatible servers. Results come back to the driver,
in request order, which writes them into the response cache. So:

* the cache stays one SQLite file touched by one process, the driver: it is consulted before any request
  leaves, only misses go out, and each chunk is committed when its job returns (a crash loses at most one
  chunk, as locally). Tasks never open it (SQLite on a shared filesystem from many hosts is not safe);
* outputs are the local executor's byte for byte: every request carries its own seed, so a result does not
  depend on which task or server produced it, and results are reassembled by request position;
* ``concurrency`` keeps its local meaning, the number of requests in flight against the servers: a job
  runs ``min(concurrency, task slots, requests)`` tasks and each task's client has an equal share of it.
  Each task starts its round robin over ``base_urls`` at a different server.

The offline engine (``engine: vllm``) stays on the driver: one engine per process that owns the
accelerator, fed the whole selection in large batches. That is right for Spark in local mode on a GPU box;
on a cluster, serve the model with ``vllm serve`` and use ``engine: http``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipeline.executors.spark_types import spark_schema
from synth.engines import GenRequest, GenResult, Sampling, batch_stats, dedupe_requests

if TYPE_CHECKING:
    from pipeline.executors.spark import SparkExecutor

log = logging.getLogger("curate.synth")

_REQUESTS = "pos long, idx long, id string, prompt string, params string"
_RESULTS = pa.schema([("idx", pa.int64()), ("result", pa.string())])
STATS_ROW = -1  # idx of the one row per task that carries the task's figures instead of a result
TOTALS = ("remote_jobs", "remote_tasks", "remote_requests", "remote_retries", "remote_task_seconds")


@dataclass(frozen=True)
class ClientSpec:
    """What a task needs to build its own `HTTPEngine`: the stage's engine settings (the API key stays in
    the environment variable they name), with this job's share of the concurrency."""

    base_urls: tuple[str, ...]
    concurrency: int  # per task
    kwargs: dict[str, Any]  # every other `HTTPEngine` argument, model name included


def _generate_task(spec: ClientSpec, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Send this task's requests through a client of its own; yield one row per request plus a stats row."""
    from pyspark import TaskContext

    from synth.engine_http import HTTPEngine

    rows = [r for b in batches for r in b.to_pylist()]
    if not rows:
        return
    ctx = TaskContext.get()
    task = ctx.partitionId() if ctx is not None else 0
    shift = task % len(spec.base_urls)  # tasks start their round robin at different servers
    urls = list(spec.base_urls[shift:] + spec.base_urls[:shift])
    requests = [GenRequest(r["id"], r["prompt"], Sampling(**json.loads(r["params"]))) for r in rows]
    t0 = time.perf_counter()
    with HTTPEngine(urls, concurrency=spec.concurrency, **spec.kwargs) as engine:
        results = engine.generate(requests)
        stats = dict(engine.last_stats)
    stats.update({"task": task, "pid": os.getpid(), "in_task": ctx is not None,
                  "seconds": round(time.perf_counter() - t0, 3)})
    out = [{"idx": r["idx"], "result": json.dumps(res.to_dict(), ensure_ascii=False)}
           for r, res in zip(rows, results, strict=True)]
    out.append({"idx": STATS_ROW, "result": json.dumps(stats)})
    yield pa.RecordBatch.from_pylist(out, schema=_RESULTS)


class SparkHTTPEngine:
    """The `HTTPEngine` contract (one result per request, in order, per-row failures) with the requests
    sent from Spark tasks. The driver only discovers the served model name (when not configured)."""

    def __init__(self, ex: SparkExecutor, base_urls: str | Sequence[str], *, concurrency: int = 16,
                 label: str = "synth", **kwargs: Any) -> None:
        """``kwargs``: the other `HTTPEngine` arguments (``model``, ``api_key_env``, ``timeout_s``, ...)."""
        from synth.engine_http import HTTPEngine

        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("SparkHTTPEngine needs at least one base URL")
        if kwargs.get("model") is None:  # ask /v1/models once here rather than in every task
            with HTTPEngine(urls, concurrency=1, **kwargs) as probe:
                kwargs["model"] = probe.model
        kwargs["model_id"] = kwargs.get("model_id") or kwargs["model"]
        self.ex = ex
        self.base_urls = tuple(urls)
        self.model = str(kwargs["model"])
        self.model_id = str(kwargs["model_id"])
        self.concurrency = max(1, int(concurrency))
        self.kwargs = kwargs
        self.label = label
        self.last_stats: dict[str, Any] = {}
        self.generated_on = "spark_tasks"
        self.totals: dict[str, Any] = dict.fromkeys(TOTALS, 0)

    def __repr__(self) -> str:
        return f"SparkHTTPEngine(base_urls={list(self.base_urls)!r}, model={self.model!r})"

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        t0 = time.perf_counter()
        unique, mapping = dedupe_requests(requests)
        if not unique:
            self.last_stats = {"requests": 0, "unique": 0, "failed": 0, "retries": 0, "tasks": 0}
            return []
        n_tasks = max(1, min(self.concurrency, self.ex.workers, len(unique)))
        spec = ClientSpec(self.base_urls, math.ceil(self.concurrency / n_tasks), self.kwargs)
        # interleaved, so every task (a range of positions) gets a similar mix of recipes (prompt and output lengths)
        order = [i for t in range(n_tasks) for i in range(t, len(unique), n_tasks)]
        rows = [(pos, i, unique[i].id, unique[i].prompt, json.dumps(unique[i].params.to_dict()))
                for pos, i in enumerate(order)]
        df = self.ex.spark.createDataFrame(rows, _REQUESTS).repartitionByRange(n_tasks, "pos")
        with self.ex.job(f"{self.label}: generate {len(unique)} requests"):
            out = df.mapInArrow(functools.partial(_generate_task, spec), spark_schema(_RESULTS)).collect()
        got: dict[int, GenResult] = {}
        tasks: list[dict[str, Any]] = []
        for r in out:
            if r["idx"] == STATS_ROW:
                tasks.append(json.loads(r["result"]))
            else:
                got[int(r["idx"])] = GenResult.from_dict(json.loads(r["result"]))
        if len(got) != len(unique):
            raise RuntimeError(f"synth: {len(unique)} requests sent to Spark tasks, {len(got)} results came back")
        unique_results = [got[i] for i in range(len(unique))]
        retries = sum(int(t.get("retries", 0)) for t in tasks)
        self.last_stats = batch_stats(
            requests, unique_results, time.perf_counter() - t0, retries=retries,
            unavailable=next((t["unavailable"] for t in tasks if t.get("unavailable")), None),
            tasks=sum(1 for t in tasks if t.get("in_task")))
        self.totals["remote_jobs"] += 1
        self.totals["remote_tasks"] += self.last_stats["tasks"]
        self.totals["remote_requests"] += sum(int(t.get("unique", 0)) for t in tasks if t.get("in_task"))
        self.totals["remote_retries"] += retries
        self.totals["remote_task_seconds"] = round(self.totals["remote_task_seconds"]
                                                   + sum(float(t.get("seconds", 0.0)) for t in tasks), 3)
        return [unique_results[j].with_id(r.id) for r, j in zip(requests, mapping, strict=True)]

    def close(self) -> None:
        pass  # the clients live and die inside their tasks
