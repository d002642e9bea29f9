"""The DAG factory: one ingest DAG per configured source, and the quality DAG.

DAG files in `dags/` call these builders; they hold no logic of their own. Only
Airflow's SDK and the light config model load at parse time; the runner, pyarrow
and the protocol libraries load inside the task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from plantlake.core.config import PlantConfig, default_config_path, load_config
from plantlake.pipeline.schedule import timetable

DAG_PREFIX = "plantlake_ingest_"
QUALITY_DAG = "plantlake_quality"
PRODUCTS_DAG = "plantlake_products"
COMPACTION_DAG = "plantlake_compaction"
#: the curated tables the cross-source checks read: a publish of any of them triggers the checks
CHECKED_TABLES = ("sensor_readings", "inspection_images", "production_orders", "quality_inspections")


@contextmanager
def fail_terminal() -> Iterator[None]:
    """A task body whose terminal errors (plantlake.core.errors.Terminal: config, drift, refused
    history, a failed audit, nothing published) fail the task at once: a retry would repeat them.
    Transient errors (the source did not answer) and anything unforeseen take the task's retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from plantlake.core.errors import Terminal

    try:
        yield
    except Terminal as exc:
        raise AirflowFailException(f"{exc.__class__.__name__}: {exc}") from exc


#: the executor of the tasks a plant site's edge worker runs (the deployment lists it in
#: AIRFLOW__CORE__EXECUTOR beside its central one; docker-compose.yml does)
EDGE_EXECUTOR = "EdgeExecutor"


def _edge_executor_configured(src: Any) -> None:
    from airflow.configuration import conf

    from plantlake.core.errors import ConfigError

    executors = conf.get("core", "executor")
    if EDGE_EXECUTOR not in executors:
        raise ConfigError(f"source {src.name}: `site: {src.site}` runs its ingest on that site's edge worker, but "
                          f"Airflow's executors are {executors!r}: add airflow.providers.edge3.executors.EdgeExecutor "
                          "to AIRFLOW__CORE__EXECUTOR (docker-compose.yml does), or remove `site`")


def site_queue(site: str) -> str:
    """The queue a site's edge worker serves (`airflow edge worker --queues site-<site>`)."""
    return f"site-{site}"


def asset_for(table: str, layer: str = "curated") -> Any:
    """The Airflow Asset a table's publish emits (name is the stable identity)."""
    from airflow.sdk import Asset

    return Asset(name=f"plantlake.{layer}.{table}", uri=f"plantlake://{layer}/{table}", group="plantlake")


def build_ingest_dags(config_path: str | Path | None = None) -> dict[str, Any]:
    """{dag_id: DAG} for every enabled source of the site config."""
    path = str(Path(config_path or default_config_path()).resolve())
    cfg: PlantConfig = load_config(path)
    dags = (ingest_dag(src, path) for src in cfg.sources if src.enabled)
    return {d.dag_id: d for d in dags}


def ingest_dag(src: Any, config_path: str) -> Any:
    """The ingest DAG of one source: one task that runs the pipeline for the data interval."""
    from airflow.sdk import dag, task

    from plantlake.app.alerts import IngestFailed
    from plantlake.core.kinds import source_kind

    outlets = [asset_for(t) for t in src.feeds(source_kind(src.kind).tables)]
    source_name = src.name

    # a source collected at a plant site runs on that site's edge worker (Airflow's Edge executor)
    placement = {"executor": EDGE_EXECUTOR, "queue": site_queue(src.site)} if src.site else {}
    if src.site:
        _edge_executor_configured(src)

    @dag(
        dag_id=f"{DAG_PREFIX}{src.name}",
        description=src.description or f"Ingest {src.kind} source {src.name} into the curated lake",
        schedule=timetable(src.schedule),
        start_date=src.start_date,
        catchup=src.catchup,
        max_active_runs=1,  # a source's cursor state is read and written once per run
        tags=["plantlake", "ingest", src.kind, *([site_queue(src.site)] if src.site else [])],
        default_args={
            "retries": src.retries,
            "retry_delay": timedelta(seconds=src.retry_delay_s),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=30),
            # once the task has failed for good (not on a retry): the source's incident, one message
            "on_failure_callback": IngestFailed(src.name, config_path),
        },
        doc_md=f"Runs source `{src.name}` ({src.kind}) through extract → raw → conform → audit → publish "
        f"for each data interval. Publishes: {', '.join(a.name for a in outlets)}."
        + (f" Runs on the edge worker of site `{src.site}` (queue `{site_queue(src.site)}`)." if src.site else ""),
    )
    def ingest_source() -> None:
        @task(task_id="ingest", outlets=outlets, **placement)
        def ingest(**context: Any) -> dict[str, Any]:
            from plantlake.app.lineage import record_ingest
            from plantlake.pipeline.runner import run_source

            with fail_terminal():
                cfg = load_config(config_path)
                summary = run_source(
                    source_name,
                    context["data_interval_start"],
                    context["data_interval_end"],
                    config=cfg,
                    run_id=context["run_id"],
                )
            from plantlake.app.metrics import record_run

            lake = cfg.open_lake()
            record_ingest(context, lake, summary)
            record_run(summary, lake)
            for table, ts in summary.tables.items():
                context["outlet_events"][asset_for(table)].extra = {
                    "rows": ts.published, "quarantined": ts.quarantined, "version": ts.version,
                    "interval": [summary.interval_start, summary.interval_end],
                }
            return summary.as_dict()

        ingest()

    return ingest_source()


def published_intervals(context: dict[str, Any]) -> list[Any]:
    """The data intervals a data-aware run is about: from its triggering Asset events' `interval`
    extra (the ingest task sets it), plus the `start`/`end` params of a manual run."""
    from datetime import datetime

    from plantlake.core.lake import Interval

    spans = set()
    for events in (context.get("triggering_asset_events") or {}).values():
        for event in events:
            span = (event.extra or {}).get("interval")
            if span:
                spans.add(tuple(span))
    params = context.get("params") or {}
    if params.get("start") and params.get("end"):
        spans.add((params["start"], params["end"]))
    return [Interval(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in sorted(spans)]


def _interval_params() -> dict[str, Any]:
    from airflow.sdk import Param

    return {"start": Param(None, type=["null", "string"], description="ISO start of an interval to handle"),
            "end": Param(None, type=["null", "string"], description="ISO end of that interval")}


def _as_of_param() -> dict[str, Any]:
    from airflow.sdk import Param

    return {"as_of": Param(None, type=["null", "string"], description="ISO time the freshness check is as of "
                           "(default: the run's time)")}


def data_docs_task(path: str) -> Any:
    """A task bringing the Data Docs up to date (the quality and products DAGs end with it)."""
    from airflow.sdk import task

    @task(task_id="data_docs")
    def docs() -> str:
        from quality.docs import build_data_docs

        with fail_terminal():
            cfg = load_config(path)
            return str(build_data_docs(cfg.open_lake().ensure(), cfg))

    return docs()


def build_quality_dag(config_path: str | Path | None = None) -> Any:
    """The quality DAG: cross-source checks of each interval the ingest DAGs publish, then
    the Data Docs; beside them each source's freshness. Scheduled on the curated Assets (any
    publish triggers it) or its own cron (`quality.freshness_schedule`); the intervals to check
    come from the triggering events, or from the run's `start`/`end` params when run by hand."""
    from airflow.sdk import AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

    path = str(Path(config_path or default_config_path()).resolve())
    cfg = load_config(path)
    trigger = AssetOrTimeSchedule(timetable=CronTriggerTimetable(cfg.quality.freshness_schedule, timezone="UTC"),
                                  assets=AssetAny(*(asset_for(t) for t in CHECKED_TABLES)))

    @dag(
        dag_id=QUALITY_DAG,
        description="Cross-source checks of each published interval, sources' freshness, and the Data Docs",
        schedule=trigger,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["plantlake", "quality"],
        params={**_interval_params(), **_as_of_param()},
        default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
        doc_md="Checks every interval the ingest DAGs publish across sources (images without an ERP "
        "inspection, orders without sensor coverage, Bad/Uncertain share per line) into "
        "`_quality/cross_source_checks/`, then brings the Data Docs under `_quality/docs/` up to date. "
        "Every run (also on its own schedule, `quality.freshness_schedule`) records each source's lag in "
        "`_quality/source_freshness/` and fails when a source is stale or its runs failed, alerting once per incident.",
    )
    def quality() -> None:
        @task(task_id="cross_source_checks")
        def checks(**context: Any) -> dict[str, Any]:
            from plantlake.app.lineage import record_tables
            from quality.cross_source import TABLE, run_checks
            from schemas import get_table

            with fail_terminal():
                cfg = load_config(path)
                lake = cfg.open_lake().ensure()
                read = [(t, lake.version(get_table(t))) for t in CHECKED_TABLES]
                done = [run_checks(lake, cfg, iv, context["run_id"]) for iv in published_intervals(context)]
            record_tables(context, lake, read, [(TABLE, (r.version, r.rows.num_rows, 0, [r.interval.start.isoformat(),
                                                                                      r.interval.end.isoformat()]))
                                                for r in done], context["run_id"])
            return {r.interval.key: r.failures() for r in done}

        @task(task_id="source_freshness")
        def freshness(**context: Any) -> dict[str, Any]:
            from plantlake.app.alerts import raise_incident
            from plantlake.app.metrics import record_freshness
            from plantlake.core.errors import SourcesUnhealthy
            from plantlake.pipeline.health import check_freshness

            with fail_terminal():
                cfg = load_config(path)
                lake = cfg.open_lake().ensure()
                # as of the run's time (its cron tick, the publish that triggered it, a manual run's start), or
                # of the `as_of` param (the demo checks its past hours as of its own clock)
                as_of = (context.get("params") or {}).get("as_of")
                when = datetime.fromisoformat(as_of) if as_of else context["dag_run"].run_after
                result = check_freshness(lake, cfg, context["run_id"], when,
                                         raise_incident=lambda s, k, r: raise_incident(cfg, lake, s, k, r, context))
                states = {h.source: h.state for h in result.sources}
                record_freshness(result)
                if result.failing:
                    raise SourcesUnhealthy("; ".join(
                        f"source {h.source} is {h.state}: {h.problem}" + (
                            " (its `freshness` in the site config sets the bound)" if h.state == "stale" else
                            " (closes when a run of it publishes)") for h in result.failing))
            return states

        checks() >> data_docs_task(path)
        freshness()

    return quality()


def build_products_dag(config_path: str | Path | None = None) -> Any:
    """The products DAG: rebuilds `order_context` and `image_training_set` for the days a
    publish of the curated tables they read touched (data-aware), then the analyst catalog."""
    from airflow.sdk import AssetAny, dag, task

    from plantlake.pipeline.products import PRODUCTS

    path = str(Path(config_path or default_config_path()).resolve())
    reads = sorted({t for tables in PRODUCTS.values() for t in tables})

    @dag(
        dag_id=PRODUCTS_DAG,
        description="Fused products (order context, image training set) and the analyst catalog",
        schedule=AssetAny(*(asset_for(t) for t in reads)),
        catchup=False,
        max_active_runs=1,
        tags=["plantlake", "products"],
        params=_interval_params(),
        default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
        doc_md="Rebuilds the products of every day the triggering publishes touched (an order's context "
        "lives on its start day), each through stage → audit → publish, then `catalog.duckdb`.",
    )
    def products() -> None:
        @task(task_id="build_products", outlets=[asset_for(p, "products") for p in PRODUCTS])
        def build(**context: Any) -> dict[str, Any]:
            from plantlake.app.lineage import record_tables
            from plantlake.pipeline.products import build_day, days_touched

            out: dict[str, Any] = {}
            runs = []
            with fail_terminal():
                cfg = load_config(path)
                lake = cfg.open_lake().ensure()
                for day in days_touched(lake, cfg, published_intervals(context)):
                    runs += build_day(lake, cfg, day, context["run_id"])
                    out[day.isoformat()] = {r.product: r.rows for r in runs if r.day == day.isoformat()}
            read = sorted({(t, v) for r in runs for t, v in (r.inputs or {}).items()}, key=str)
            record_tables(context, lake, read, [(r.product, (r.version, r.rows, r.quarantined, [r.day]))
                                                for r in runs], context["run_id"], [r.manifest for r in runs if r.manifest])
            for name in PRODUCTS:
                context["outlet_events"][asset_for(name, "products")].extra = {"days": sorted(out)}
            return out

        @task(task_id="catalog")
        def catalog() -> str:
            from plantlake.pipeline.catalog import build_catalog

            with fail_terminal():
                return str(build_catalog(load_config(path).open_lake().ensure()))

        build() >> [catalog(), data_docs_task(path)]

    return products()


def build_compaction_dag(config_path: str | Path | None = None) -> Any:
    """Daily compaction of every table's partition of the previous day (and a vacuum), then the catalog."""
    from airflow.sdk import dag, task

    path = str(Path(config_path or default_config_path()).resolve())

    @dag(
        dag_id=COMPACTION_DAG,
        description="Compact a day's small files of every table into large ones, vacuum old files",
        schedule=timetable("30 0 * * *"),  # the day before, once its last hourly runs are in
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["plantlake", "maintenance"],
        default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    )
    def compaction() -> None:
        @task(task_id="compact", outlets=[asset_for("sensor_readings")])
        def compact(**context: Any) -> dict[str, Any]:
            from plantlake.pipeline.catalog import build_catalog
            from plantlake.pipeline.compaction import compact_all

            with fail_terminal():
                cfg = load_config(path)
                lake = cfg.open_lake().ensure()
                done = compact_all(lake, context["data_interval_start"].date(), cfg.lake.vacuum_retention_hours)
                build_catalog(lake)
            return {c.table: vars(c) for c in done}

        compact()

    return compaction()
