"""Progress of Spark jobs from Spark's status tracker, for classic sessions.

Kept apart from the executor because it is the one place that touches the SparkContext: the executor
itself is DataFrame API only so that Spark Connect works, and a Connect session has no SparkContext
and no status tracker. There `tracked` does nothing and only the caller's start and end show.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.background import repeating
from pipeline.primitives import Progress

# How often a driver thread reads Spark's status tracker while a job runs (progress lines, bars).
PROGRESS_POLL_S = 0.5


def group_task_counts(tracker: Any, group: str) -> tuple[int, int]:
    """(finished tasks, tasks) over the stages of a job group's jobs, from Spark's status tracker."""
    done = tasks = 0
    for job in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job)
        for stage in info.stageIds if info is not None else ():
            stage_info = tracker.getStageInfo(stage)
            if stage_info is not None:
                done += stage_info.numCompletedTasks
                tasks += stage_info.numTasks
    return done, tasks



def _context(spark: Any) -> Any | None:
    """The SparkContext of a classic session; None under Spark Connect (no status tracker there)."""
    try:
        return spark.sparkContext
    except Exception:  # Spark Connect sessions have no sparkContext
        return None


@contextmanager
def tracked(spark: Any, progress: Progress | None, total: int) -> Iterator[None]:
    """Report the Spark jobs started inside as `total` units of work, moving with their finished tasks.

    The jobs run under a job group of their own; a driver thread polls Spark's status tracker every
    PROGRESS_POLL_S and reports `finished tasks / tasks` of the group's stages scaled to `total` (the
    caller's unit: items, buckets), never `total` itself: the caller reports the end when the action
    has returned. Without a status tracker (Spark Connect) only the caller's start and end show.
    """
    context = _context(spark) if progress is not None and total > 0 else None
    if context is None:
        yield
        return
    group = f"curate-{uuid.uuid4().hex[:12]}"
    context.setJobGroup(group, "curate", interruptOnCancel=False)
    tracker = context.statusTracker()
    last = 0

    def poll() -> bool:
        nonlocal last
        try:
            done, tasks = group_task_counts(tracker, group)
        except Exception:  # the session is stopping; progress is best effort
            return False
        value = min(total - 1, done * total // tasks) if tasks else 0
        if value > last:
            last = value
            progress(value, total)  # type: ignore[misc]
        return True

    try:
        with repeating(PROGRESS_POLL_S, poll, "curate-spark-progress"):
            yield
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
        context.setLocalProperty("spark.job.description", None)
