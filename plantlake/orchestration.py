"""The DAG factory: one ingest DAG per configured source, and the quality DAG.

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
QUALITY_DAG = "plantlake_quality"
#: the curated tables the cross-source checks read: a publish of any of them triggers the checks
CHECKED_TABLES = ("sensor_readings", "inspection_images", "production_orders", "quality_inspections")


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


def build_quality_dag(config_path: str | Path | None = None) -> Any:
    """The quality DAG: cross-source checks of each interval the ingest DAGs publish, then
    the Data Docs. Scheduled on the curated Assets (any publish triggers it); the intervals to
    check come from the triggering events, or from the run's `start`/`end` params when run by hand."""
    from airflow.sdk import AssetAny, Param, dag, task

    path = str(Path(config_path or default_config_path()).resolve())
    trigger = AssetAny(*(asset_for(t) for t in CHECKED_TABLES))

    @dag(
        dag_id=QUALITY_DAG,
        description="Cross-source checks of each published interval, and the GX Data Docs",
        schedule=trigger,
        catchup=False,
        max_active_runs=1,
        tags=["plantlake", "quality"],
        params={"start": Param(None, type=["null", "string"], description="ISO start of an interval to check"),
                "end": Param(None, type=["null", "string"], description="ISO end of that interval")},
        doc_md="Checks every interval the ingest DAGs publish across sources (images without an ERP "
        "inspection, orders without sensor coverage, Bad/Uncertain share per line) into "
        "`_quality/cross_source_checks/`, then brings the Data Docs under `_quality/docs/` up to date.",
    )
    def quality() -> None:
        @task(task_id="cross_source_checks")
        def checks(**context: Any) -> dict[str, Any]:
            from datetime import datetime

            from plantlake.lake import Interval, Lake
            from quality.cross_source import run_checks

            cfg = load_config(path)
            lake = Lake(cfg.lake_root()).ensure()
            spans = set()
            for events in (context.get("triggering_asset_events") or {}).values():
                for event in events:
                    span = (event.extra or {}).get("interval")
                    if span:
                        spans.add(tuple(span))
            params = context["params"]
            if params.get("start") and params.get("end"):
                spans.add((params["start"], params["end"]))
            out = {}
            for start, end in sorted(spans):
                iv = Interval(datetime.fromisoformat(start), datetime.fromisoformat(end))
                out[iv.key] = run_checks(lake, cfg, iv, context["run_id"]).failures()
            return out

        @task(task_id="data_docs")
        def docs() -> str:
            from plantlake.lake import Lake
            from quality.docs import build_data_docs

            cfg = load_config(path)
            return str(build_data_docs(Lake(cfg.lake_root()).ensure(), cfg))

        checks() >> docs()

    return quality()
