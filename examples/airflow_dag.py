"""Airflow DAG: nightly incremental curation through the `curate` CLI.

The CLI's exit codes carry the meaning: 0 done (or nothing new), 1 a stage failed (Airflow retries),
2 bad config (fix it; retrying will not help), 3 another run holds the lock (retry later).
"""

from __future__ import annotations

import datetime as dt

from airflow import DAG
from airflow.operators.bash import BashOperator

REPO = "/srv/ling-curate"

with DAG(
    dag_id="ling_curate_incremental",
    schedule="15 2 * * *",
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": dt.timedelta(minutes=20)},
    tags=["data", "pretraining"],
) as dag:
    curate = BashOperator(
        task_id="curate_incremental",
        bash_command=f"cd {REPO} && .venv/bin/curate --log-format json run pipeline.yaml --incremental",
    )
    report = BashOperator(
        task_id="report",
        bash_command=f"cd {REPO} && .venv/bin/curate status out/demo && .venv/bin/curate report out/demo",
    )
    curate >> report
