"""Progress display: rich bars on a terminal, plain log lines otherwise (cron, CI, files)."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pipeline.primitives import Progress

log = logging.getLogger("curate")


class Reporter:
    def __init__(self, enabled: bool = True, rich_bars: bool | None = None):
        self.enabled = enabled
        self.rich_bars = sys.stderr.isatty() if rich_bars is None else rich_bars
        self._progress: Any = None
        if enabled and self.rich_bars:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn(), transient=False)

    def __enter__(self) -> Reporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def task(self, label: str, unit: str | None = None, phase: str | None = None) -> TaskProgress:
        """A callback (done, total) for one unit of work, shown as `label: [phase: ]unit done/total`
        (`near_dedup: band buckets 8/8`, `near_dedup: verify: partitions 3/8`): a stage's phases get
        theirs through `StageContext.phase` (`near_dedup: signatures 14/14`)."""
        return TaskProgress(self, label, unit, phase)

    def _line(self, description: str) -> Progress:
        if not self.enabled:
            return lambda done, total: None
        if self._progress is not None:
            task_id = self._progress.add_task(description, total=None)

            def update(done: int, total: int) -> None:
                self._progress.update(task_id, completed=done, total=total)

            return update
        last = [0.0]

        def log_line(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last[0] > 5:
                last[0] = now
                log.info("%s %d/%d", description, done, total)

        return log_line

    def _say(self, text: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.console.print(text)
        else:
            log.info(text)

    def cached(self, name: str, manifest: dict[str, Any]) -> None:
        c = manifest["counts"]
        self._say(f"{name}: already done (in {c['in']}, kept {c['kept']}, removed {c['removed']})")

    def done(self, name: str, manifest: dict[str, Any]) -> None:
        c = manifest["counts"]
        self._say(f"{name}: in {c['in']}, added {c['added']}, kept {c['kept']}, removed {c['removed']} "
                  f"in {manifest['seconds']:.1f}s")


class TaskProgress:
    """The progress of one stage (or one phase of it): called with (done, total) like any `Progress`.

    A stage made of several steps over the executor primitives names each (`StageContext.phase`), so its
    lines say what they count (`near_dedup: signatures 14/14`, `near_dedup: components round 2 3/3`)
    instead of one anonymous count per step. The line (a rich bar or a log line) starts at the first
    call, so a phase with nothing to do (a finished step on resume) shows no empty bar."""

    def __init__(self, reporter: Reporter, label: str, unit: str | None = None, phase: str | None = None):
        self.reporter, self.label, self.unit, self.name = reporter, label, unit, phase
        self._update: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._update is None:
            self._update = self.reporter._line(task_description(self.label, self.unit, self.name))
        self._update(done, total)


def task_description(label: str, unit: str | None = None, phase: str | None = None) -> str:
    """`near_dedup: band buckets`; without a unit `label:` as before (the count follows)."""
    parts = [label] + [p for p in (phase, unit) if p]
    return ": ".join(parts[:-1]) + ": " + parts[-1] if len(parts) > 1 else f"{label}:"


def format_seconds(seconds: float) -> str:
    """`12.3s`, `4m 05s`, `1h 02m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
