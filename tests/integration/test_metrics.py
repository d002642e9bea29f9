"""The metrics exporter (`plantlake metrics serve`): StatsD in as Airflow and other StatsD clients
send it, Prometheus' text format out, read back with prometheus_client's own parser; and a run's
plantlake counters sent through Airflow's StatsD logger over real UDP."""

from __future__ import annotations

import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from plantlake.app.metrics import StatsdStore, serve
from simulators.net import free_port, wait_port

pytestmark = pytest.mark.integration


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_statsd_lines_as_clients_write_them_become_prometheus_series():
    from prometheus_client import CollectorRegistry, generate_latest

    store = StatsdStore("airflow")
    store.feed(b"airflow.ti.finish,dag_id=plantlake_ingest_erp,task_id=ingest,state=success:1|c\n"
               b"airflow.ti.finish,dag_id=plantlake_ingest_erp,task_id=ingest,state=success:1|c")  # Airflow, InfluxDB tags
    store.feed(b"airflow.plantlake.rows_published,source=erp,table=materials:4|c")
    store.feed(b"airflow.plantlake.rows_in,source=erp,table=materials:10|c|@0.5")  # a sampled counter
    store.feed(b"airflow.executor.open_slots:16|g\nairflow.executor.open_slots:-2|g")  # a gauge, then a delta
    store.feed(b"airflow.dag_processing.last_duration:250|ms\nairflow.dag_processing.last_duration:750|ms")
    store.feed(b"page.views:3|c|#env:plant,site:shenzhen")  # DogStatsD tags
    store.feed(b"not a statsd line\nairflow.x:1|zz")  # both dropped, counted
    registry = CollectorRegistry(auto_describe=False)
    registry.register(store)
    got = samples(generate_latest(registry).decode())
    assert got[("airflow_ti_finish_total", (("dag_id", "plantlake_ingest_erp"), ("state", "success"),
                                            ("task_id", "ingest")))] == 2
    assert got[("plantlake_rows_published_total", (("source", "erp"), ("table", "materials")))] == 4
    assert got[("plantlake_rows_in_total", (("source", "erp"), ("table", "materials")))] == 20
    assert got[("airflow_executor_open_slots", ())] == 14
    assert got[("airflow_dag_processing_last_duration_count", ())] == 2
    assert got[("airflow_dag_processing_last_duration_sum", ())] == pytest.approx(1.0)
    assert got[("page_views_total", (("env", "plant"), ("site", "shenzhen")))] == 3
    assert store.dropped == 2 and store.received == 9


def test_a_runs_counters_reach_the_endpoint_through_airflows_statsd_logger(monkeypatch):
    """plantlake's `record_run` through the metrics backend a task gets from the compose file's
    `[metrics]` settings (Airflow's StatsD logger, InfluxDB tags), over UDP to the exporter, read
    from its HTTP endpoint."""
    import yaml
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    from plantlake.app.metrics import record_failure, record_run
    from plantlake.pipeline.runner import RunSummary, TableSummary
    from tests.conftest import ROOT

    statsd_port, http_port = free_port(), free_port()
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=("127.0.0.1", statsd_port, "127.0.0.1", http_port, "airflow", stop),
                              daemon=True)
    thread.start()
    wait_port("127.0.0.1", http_port)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-airflow-common"]["environment"]
    for key, value in compose.items():
        if key.startswith("AIRFLOW__METRICS__"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(statsd_port))
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=False)
    try:
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        summary = RunSummary("historian_export", "csv", (end - timedelta(hours=1)).isoformat(), end.isoformat(), "run-1",
                             raw_rows=2187, timings_s={"extract": 0.25, "publish": 1.5},
                             tables={"sensor_readings": TableSummary(
                                 rows_in=2187, published=2183, quarantined=4, duplicates=0,
                                 reasons={"value: … is not a number": 3, "expect_tag_values_to_be_within_physical_range(asset_id, "
                                          "tag, value): outside the physical range the site config gives the tag": 1})})
        record_run(summary)
        record_failure("erp", "audit_blocked")

        def scrape() -> dict:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as resp:  # noqa: S310
                return samples(resp.read().decode())

        deadline = time.monotonic() + 10
        while ("plantlake_runs_total", (("outcome", "audit_blocked"), ("source", "erp"))) not in (got := scrape()):
            assert time.monotonic() < deadline, sorted(got)
            time.sleep(0.1)
        src = (("source", "historian_export"),)
        table = (("source", "historian_export"), ("table", "sensor_readings"))
        assert got[("plantlake_runs_total", (("outcome", "success"), *src))] == 1
        assert got[("plantlake_rows_in_total", table)] == 2187
        assert got[("plantlake_rows_published_total", table)] == 2183
        assert got[("plantlake_rows_quarantined_total", (("reason", "value_is_not_a_number"), *table))] == 3
        assert got[("plantlake_rows_quarantined_total", (
            ("reason", "expect_tag_values_to_be_within_physical_range"), *table))] == 1
        assert got[("plantlake_raw_rows_total", src)] == 2187
        assert 300 <= got[("plantlake_lag_seconds", src)] < 400
        assert got[("plantlake_step_duration_sum", (*src, ("step", "publish")))] == pytest.approx(1.5)
        assert got[("plantlake_step_duration_count", (*src, ("step", "extract")))] == 1
    finally:
        from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
        stop.set()
        thread.join(timeout=10)
