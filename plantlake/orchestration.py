"""The DAG factory: one ingest DAG per configured source.

DAG files in `dags/` call these builders; they hold no logic of their own. Only
Airflow's SDK and the light config model load at parse time; the runner, pyarrow
and the protocol libraries load inside the task.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from plantlake.config import PlantConfig, default_config_path, load_config

DAG_PREFIX = "plantlake_ingest_"


def asset_for(table: str, layer: str = "curated") -> Any:
    """The Airflow Asset a table's publish emits (name is the stable identity)."""
    from airflow.sdk import Asset

    return Asset(name=f"plantlake.{layer}.{table}", uri=f"plantlake://{layer}/{table}", group="plantlake")


def timetable(schedule: str) -> Any:
    """A real data interval (start < end) for every run, in UTC."""
    from airflow.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable(schedule, timezone="UTC")


def build_ingest_dags(config_path: str | Path | None = None) -> dict[str, Any]:
    """{dag_id: DAG} for every enabled source of the site config."""
    path = str(Path(config_path or default_config_path()).resolve())
    cfg: PlantConfig = load_config(path)
    dags = (ingest_dag(src, path) for src in cfg.sources if src.enabled)
    return {d.dag_id: d for d in dags}


def ingest_dag(src: Any, config_path: str) -> Any:
    """The ingest DAG of one source: one task that runs the pipeline for the data interval."""
    from airflow.sdk import dag, task

    import connectors

    outlets = [asset_for(t) for t in connectors.tables_for(src.kind)]
    source_name = src.name

    @dag(
        dag_id=f"{DAG_PREFIX}{src.name}",
        description=src.description or f"Ingest {src.kind} source {src.name} into the curated lake",
        schedule=timetable(src.schedule),
        start_date=src.start_date,
        catchup=src.catchup,
        max_active_runs=1,  # a source's cursor state is read and written once per run
        tags=["plantlake", "ingest", src.kind],
        default_args={
            "retries": src.retries,
            "retry_delay": timedelta(seconds=src.retry_delay_s),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=30),
        },
        doc_md=f"Runs source `{src.name}` ({src.kind}) through extract → raw → conform → audit → publish "
        f"for each data interval. Publishes: {', '.join(a.name for a in outlets)}.",
    )
    def ingest_source() -> None:
        @task(task_id="ingest", outlets=outlets)
        def ingest(**context: Any) -> dict[str, Any]:
            from plantlake.runner import run_source

            summary = run_source(
                source_name,
                context["data_interval_start"],
                context["data_interval_end"],
                config=load_config(config_path),
                run_id=context["run_id"],
            )
            for table, ts in summary.tables.items():
                context["outlet_events"][asset_for(table)].extra = {
                    "rows": ts.published, "quarantined": ts.quarantined, "files": ts.files,
                    "interval": [summary.interval_start, summary.interval_end],
                }
            return summary.as_dict()

        ingest()

    return ingest_source()
