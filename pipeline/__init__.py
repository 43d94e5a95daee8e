"""ling-curate: pretraining-data curation. `pipeline.open_run(OUT)` inspects a run from a notebook."""

from __future__ import annotations

__version__ = "0.1.0"


def open_run(path: str):  # avoids importing pandas at package import
    from pipeline.run_view import RunView

    return RunView(path)


__all__ = ["__version__", "open_run"]
