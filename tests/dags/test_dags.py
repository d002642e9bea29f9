"""The real DAG folder: parses cleanly, and a DAG run publishes what the source held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from plantlake.app.demo import write_historian_export
from tests.conftest import ROOT

pytestmark = pytest.mark.dags

DAG_ID = "plantlake_ingest_historian_export"


def test_dagbag_has_no_import_errors_and_every_dag_is_well_formed(dagbag):
    from airflow.timetables.interval import CronDataIntervalTimetable

    assert dagbag.import_errors == {}
    assert set(dagbag.dags) == {DAG_ID, "plantlake_ingest_opcua_plant", "plantlake_ingest_mqtt_plant",
                                "plantlake_ingest_camera_images", "plantlake_ingest_erp",  # erp_exports: disabled
                                "plantlake_quality", "plantlake_products", "plantlake_compaction"}
    quality = dagbag.dags["plantlake_quality"]
    # data-aware: a publish of any table the cross-source checks read triggers it
    assert sorted(a.name for a in quality.timetable.asset_condition.objects) == [
        f"plantlake.curated.{t}" for t in ("inspection_images", "production_orders", "quality_inspections",
                                           "sensor_readings")]
    assert sorted(t.task_id for t in quality.topological_sort()) == ["cross_source_checks", "data_docs",
                                                                      "source_freshness"]
    assert quality.get_task("cross_source_checks").downstream_task_ids == {"data_docs"}
    # and on its own clock, so a source that stops publishing is noticed (the freshness check)
    assert quality.timetable.timetable.expression == "*/15 * * * *"
    products = dagbag.dags["plantlake_products"]  # and of the alarms the products join
    assert sorted(a.name for a in products.timetable.asset_condition.objects) == [
        f"plantlake.curated.{t}" for t in ("events", "inspection_images", "production_orders", "quality_inspections",
                                           "sensor_readings")]
    assert [a.name for t in products.tasks for a in t.outlets] == [
        "plantlake.products.order_context", "plantlake.products.image_training_set"]
    assert isinstance(dagbag.dags["plantlake_compaction"].timetable, CronDataIntervalTimetable)
    for dag_id, dag in dagbag.dags.items():  # a transient failure gets retried in every DAG
        for t in dag.tasks:
            assert t.retries >= 2, f"{dag_id}.{t.task_id} retries {t.retries}"
    for dag_id, dag in dagbag.dags.items():
        if not dag_id.startswith("plantlake_ingest_"):
            continue
        assert dag.tags, f"{dag_id} has no tags"
        assert "plantlake" in dag.tags
        assert isinstance(dag.timetable, CronDataIntervalTimetable), dag_id
        assert dag.max_active_runs == 1
        outlets = [a.name for t in dag.tasks for a in t.outlets]
        tables = {"plantlake_ingest_camera_images": ["inspection_images"],
                  "plantlake_ingest_erp": ["materials", "production_orders", "quality_inspections"],
                  "plantlake_ingest_opcua_plant": ["sensor_readings", "events"]}  # its `events` notifier
        assert outlets == [f"plantlake.curated.{t}" for t in tables.get(dag_id, ["sensor_readings"])]


def test_timetable_gives_a_real_data_interval(dagbag):
    import pendulum
    from airflow.timetables.base import DataInterval

    dag = dagbag.dags[DAG_ID]
    after = pendulum.datetime(2026, 3, 1, 10, 17, tz="UTC")
    interval: DataInterval = dag.timetable.infer_manual_data_interval(run_after=after)
    assert interval.start == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert interval.end == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert interval.start < interval.end


def test_dag_file_parse_does_not_import_heavy_libraries():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = (
        "import sys, runpy; runpy.run_path('dags/plantlake_ingest.py');"
        "heavy = [m for m in ('pyarrow', 'pandas', 'polars', 'duckdb', 'great_expectations', 'asyncua', 'paho', 'PIL') if m in sys.modules];"
        "print('HEAVY=' + ','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout + "\n", out.stdout


def test_dag_test_run_publishes_the_interval(dagbag, plant, plant_dir):
    """dag.test() runs the real task for one hour; the Parquet it publishes holds that hour."""
    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    write_historian_export(plant_dir / "drop" / "historian", start, hours=2)
    dag = dagbag.dags[DAG_ID]
    run = dag.test(logical_date=start + timedelta(hours=1))
    assert str(run.state) == "success"
    assert run.data_interval_start == start

    from plantlake.core.lake import Lake
    from schemas import get_table

    lake = Lake(plant_dir / "lake")
    sensor = get_table("sensor_readings")
    owned = lake.dataset(sensor).to_table(columns=["_source", "_interval", "date"]).to_pylist()
    assert {(r["_source"], r["_interval"], str(r["date"])) for r in owned} == {
        ("historian_export", "20260301T090000Z_20260301T100000Z", "2026-03-01")}
    table = lake.read(sensor)
    # 360 ten-second steps x 6 numeric tags + 12 x 2 state rows; 3 unreadable rows quarantined by
    # conform and a 65535 kN glitch by the audit (outside the press's physical range in plant.yaml)
    assert table.num_rows == 360 * 6 + 12 * 2 - 1
    assert set(table["run_id"].to_pylist()) == {run.run_id}
    ts = table["ts"].to_pylist()
    assert min(ts) == start and max(ts) == start + timedelta(seconds=3590)
    quarantine = lake.read_quarantine("sensor_readings")
    assert quarantine.num_rows == 3 + 1
    glitch = [r for r in quarantine.to_pylist() if r["stage"] == "audit"]
    assert [(r["column"], r["reason"]) for r in glitch] == [(
        "value", "expect_tag_values_to_be_within_physical_range(asset_id, tag, value): outside the physical "
                    "range the site config gives the tag (historian_export)")]
    assert '"value": 65535.0' in glitch[0]["record"]

    # the task's asset event carries what was published
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run.run_id)).all()
        assert len(events) == 1
        assert events[0].extra["rows"] == table.num_rows


def test_opcua_dag_reads_a_past_hour_exactly_as_historized(dagbag, plant_dir, monkeypatch):
    from plantlake.core.lake import Lake
    from schemas import get_table
    from simulators.opcua_server import OpcUaSimulator
    from tests.integration.test_opcua import END, PLANT, START, assert_matches_truth

    sim = OpcUaSimulator(PLANT).start_in_thread(prefill=(START, END))
    try:
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", f"opcua://127.0.0.1:{sim.port}/plantsim")
        run = dagbag.dags["plantlake_ingest_opcua_plant"].test(logical_date=END)
        assert str(run.state) == "success"
        assert (run.data_interval_start, run.data_interval_end) == (START, END)
        table = Lake(plant_dir / "lake").read(get_table("sensor_readings"))
        assert set(table["run_id"].to_pylist()) == {run.run_id}
        assert_matches_truth(table, START, END)
    finally:
        sim.stop_thread()


def test_mqtt_dag_drains_the_durable_session_into_curated(dagbag, plant, plant_dir, monkeypatch, tmp_path):
    """dag.test() of the MQTT DAG: every message the broker queued while no run was active lands once."""
    from plantlake.core.connections import get_connection
    from plantlake.core.kinds import source_kind
    from plantlake.core.lake import Lake
    from schemas import get_table
    from simulators import truth
    from simulators.broker import Mosquitto
    from simulators.mqtt_publisher import MqttPublisher
    from simulators.story import Plant

    start = datetime(2026, 1, 1, 6, tzinfo=UTC)
    story = Plant(seed=42)
    with Mosquitto(data_dir=tmp_path / "mosquitto") as broker:
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtt://127.0.0.1:{broker.port}")
        src = plant.source("mqtt_plant")
        assert source_kind("mqtt").load()(src, plant, get_connection(src.connection_id)).open_session() is False
        sent = MqttPublisher(story, port=broker.port).publish(start, start + timedelta(hours=1))
        run = dagbag.dags["plantlake_ingest_mqtt_plant"].test(logical_date=start + timedelta(hours=1))
    assert str(run.state) == "success"
    table = Lake(plant_dir / "lake").read(get_table("sensor_readings"))
    exp = truth.mqtt_messages(story, start, start + timedelta(hours=1))
    exp = exp.filter(exp["tag"].is_valid())
    good = table.filter(pc.equal(table["status_code"], 0))
    assert good.num_rows == exp.num_rows
    assert set(good["message_id"].to_pylist()) == set(exp["msg_id"].to_pylist()) <= set(sent)
    assert set(table["run_id"].to_pylist()) == {run.run_id}
    raw = list((plant_dir / "lake" / "raw" / "mqtt_plant").rglob("*.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in raw) == len(sent)


def test_images_dag_publishes_the_hours_camera_files(dagbag, plant_dir):
    from plantlake.core.lake import Lake
    from schemas import get_table
    from simulators import truth
    from simulators.camera import Camera
    from simulators.story import Plant

    start = datetime(2026, 1, 1, 6, tzinfo=UTC)
    story = Plant(seed=42)
    Camera(story, plant_dir / "drop" / "images").shots(start, start + timedelta(hours=1))
    run = dagbag.dags["plantlake_ingest_camera_images"].test(logical_date=start + timedelta(hours=1))
    assert str(run.state) == "success"
    table = Lake(plant_dir / "lake").read(get_table("inspection_images"))
    exp = truth.images(story, start, start + timedelta(hours=1))
    intact = {r["sha256"] for r in exp.to_pylist() if not r["corrupt"]}
    assert set(table["image_id"].to_pylist()) == intact and table.num_rows == len(intact)
    assert set(table["run_id"].to_pylist()) == {run.run_id}


def test_erp_dag_upserts_the_erps_tables(dagbag, plant_dir, monkeypatch):
    from plantlake.core.lake import Lake
    from schemas import get_table
    from simulators.erp import ErpSimulator
    from simulators.story import Plant

    start = datetime(2026, 1, 2, 6, tzinfo=UTC)
    url = f"sqlite:///{plant_dir / 'erp.sqlite'}"
    erp = ErpSimulator(Plant(seed=42, start=datetime(2026, 1, 1, tzinfo=UTC)), url)
    erp.sync(start + timedelta(hours=1))
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", url)
    run = dagbag.dags["plantlake_ingest_erp"].test(logical_date=start + timedelta(hours=1))
    assert str(run.state) == "success"
    lake = Lake(plant_dir / "lake")
    assert lake.read(get_table("materials")).num_rows == 4
    inspections = lake.read(get_table("quality_inspections"))
    assert inspections.num_rows > 100 and set(inspections["run_id"].to_pylist()) == {run.run_id}
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        events = {e.asset.name: e.extra for e in
                  session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run.run_id)).all()}
    assert events["plantlake.curated.quality_inspections"]["rows"] == inspections.num_rows


def test_erp_dag_with_injected_bad_rows_quarantines_them_and_a_blocked_batch_fails_without_an_asset_event(
        dagbag, plant_dir, monkeypatch):
    """Bad ERP rows go to quarantine with their expectation and the good rows publish; with a
    strict policy the same kind of row fails the task, emits no Asset event and leaves the lake
    as it was. The quality DAG then checks the interval across sources and builds Data Docs."""
    import json

    import sqlalchemy as sa
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from plantlake.core.lake import Lake
    from schemas import get_table
    from simulators.erp import ErpSimulator
    from simulators.story import Plant

    start = datetime(2026, 1, 2, 6, tzinfo=UTC)
    url = f"sqlite:///{plant_dir / 'erp.sqlite'}"
    erp = ErpSimulator(Plant(seed=42, start=datetime(2026, 1, 1, tzinfo=UTC)), url)
    erp.sync(start + timedelta(hours=2))
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", url)
    with erp.engine.begin() as conn:  # an ERP user books a finish three days before the start
        order = conn.execute(sa.text("select order_no from orders where actual_start is not null "
                                     "order by order_no limit 1")).scalar_one()
        conn.execute(sa.text("update orders set actual_finish = :f, changed_at = :c where order_no = :o"),
                     {"f": datetime(2025, 12, 30, 8), "c": datetime(2026, 1, 2, 14, 30), "o": order})
    dag = dagbag.dags["plantlake_ingest_erp"]
    run = dag.test(logical_date=start + timedelta(hours=1))
    assert str(run.state) == "success"
    lake = Lake(plant_dir / "lake")
    orders = lake.read(get_table("production_orders"))
    assert order not in orders["order_id"].to_pylist() and orders.num_rows > 0
    q = lake.read_quarantine("production_orders").to_pylist()
    assert [(r["stage"], json.loads(r["record"])["order_id"], r["reason"]) for r in q] == [
        ("audit", order, "expect_column_pair_values_a_to_be_greater_than_b(actual_end, actual_start): "
                         "an order cannot end before it starts")]

    # the same order changed again, under a policy that tolerates no bad row: the batch is blocked
    with erp.engine.begin() as conn:
        conn.execute(sa.text("update orders set changed_at = :c where order_no = :o"),
                     {"c": datetime(2026, 1, 2, 15, 30), "o": order})
    cfg = plant_dir / "plant.yaml"
    cfg.write_text(cfg.read_text().replace("    kind: erp\n", "    kind: erp\n    max_bad_share: 0.0\n", 1))
    from airflow.dag_processing.dagbag import DagBag

    before = {p: p.read_bytes() for p in (lake.root / "curated").rglob("*.parquet")}
    strict = DagBag(dag_folder=str(ROOT / "dags")).dags["plantlake_ingest_erp"]
    blocked = strict.test(logical_date=start + timedelta(hours=2))
    assert str(blocked.state) == "failed"
    # a failed audit needs a person, not a retry: the task failed on its first try
    assert [(str(ti.state), ti.try_number) for ti in blocked.get_task_instances()] == [("failed", 1)]
    with create_session() as session:
        assert session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == blocked.run_id)).all() == []
    assert {p: p.read_bytes() for p in (lake.root / "curated").rglob("*.parquet")} == before
    kept = json.loads((lake.root / "_quality" / "results" / "production_orders" /
                       "erp__20260102T070000Z_20260102T080000Z.json").read_text())
    assert kept["passed"] is False and [c["name"] for c in kept["checks"] if not c["success"] and c["level"] == "batch"] \
        == ["share of rows failing row-level expectations <= 0"]

    # the quality DAG for the published interval: cross-source rows and Data Docs naming the suites
    checked = dagbag.dags["plantlake_quality"].test(
        run_conf={"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()})
    # the checks and the Data Docs pass; the freshness check does not: January's hours are long past
    assert {ti.task_id: str(ti.state) for ti in checked.get_task_instances()} == {
        "cross_source_checks": "success", "data_docs": "success", "source_freshness": "failed"}
    rows = lake.read(get_table("cross_source_checks"))
    assert rows.num_rows > 0 and set(rows["check"].to_pylist()) <= {"order_sensor_coverage", "image_has_inspection",
                                                                     "line_bad_share"}
    index = (lake.root / "_quality" / "docs" / "index.html").read_text()
    for suite in ("production_orders", "quality_inspections", "materials", "cross_source_checks"):
        assert suite in index
    pages = sorted(p.name for p in (lake.root / "_quality" / "docs" / "validations").rglob("*.html"))
    assert "erp__20260102T060000Z_20260102T070000Z.html" in pages


def test_compaction_dag_compacts_the_previous_day(dagbag, plant, plant_dir):
    from plantlake.core.lake import Lake
    from plantlake.pipeline.runner import run_source
    from schemas import get_table

    start = datetime(2026, 3, 1, 9, tzinfo=UTC)
    write_historian_export(plant_dir / "drop" / "historian", start, hours=2)
    for h in range(2):
        run_source("historian_export", start + timedelta(hours=h), start + timedelta(hours=h + 1), config=plant)
    lake = Lake(plant_dir / "lake")
    table = get_table("sensor_readings")
    before = lake.read(table)
    run = dagbag.dags["plantlake_compaction"].test(logical_date=datetime(2026, 3, 2, 0, 30, tzinfo=UTC))
    assert str(run.state) == "success" and run.data_interval_start.date() == start.date()
    assert len(lake.files(table)) == 1  # the two hours' files in one
    after = lake.read(table)
    key = [(k, "ascending") for k in table.primary_key]
    assert after.drop_columns(["ingested_at", "run_id"]).sort_by(key).equals(
        before.drop_columns(["ingested_at", "run_id"]).sort_by(key))


def test_an_unreachable_source_is_retried_and_a_config_problem_is_not(dagbag, plant_dir, monkeypatch):
    """Transient (the ERP's database refuses connections) takes the source's retries; terminal
    (a connection id nothing defines) fails on the first try with the setting that fixes it."""
    from airflow.dag_processing.dagbag import DagBag

    cfg = plant_dir / "plant.yaml"
    cfg.write_text(cfg.read_text().replace("    kind: erp\n", "    kind: erp\n    retries: 2\n    retry_delay_s: 1\n", 1))
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_ERP", "postgresql://erp:pw@127.0.0.1:1/erp")  # nothing listens on port 1
    dag = DagBag(dag_folder=str(ROOT / "dags")).dags["plantlake_ingest_erp"]
    unreachable = dag.test(logical_date=datetime(2026, 1, 2, 7, tzinfo=UTC))
    assert [(str(ti.state), ti.try_number) for ti in unreachable.get_task_instances()] == [("failed", 3)]

    monkeypatch.delenv("AIRFLOW_CONN_PLANT_ERP")
    missing = dag.test(logical_date=datetime(2026, 1, 2, 8, tzinfo=UTC))
    assert [(str(ti.state), ti.try_number) for ti in missing.get_task_instances()] == [("failed", 1)]


def test_a_source_at_a_site_needs_the_edge_executor_and_says_so(airflow_db, plant_dir, monkeypatch):
    """`site:` puts a source's ingest on that site's edge worker; a deployment without the Edge
    executor gets an import error naming the setting, not a DAG that never runs."""
    from airflow.dag_processing.dagbag import DagBag

    cfg = plant_dir / "plant.yaml"
    cfg.write_text(cfg.read_text().replace("    kind: opcua\n", "    kind: opcua\n    site: plant-a\n", 1))
    monkeypatch.setenv("PLANTLAKE_CONFIG", str(cfg))
    errors = DagBag(dag_folder=str(ROOT / "dags")).import_errors
    assert len(errors) == 1
    message = next(iter(errors.values()))
    assert "source opcua_plant: `site: plant-a` runs its ingest on that site's edge worker" in message
    assert "AIRFLOW__CORE__EXECUTOR" in message
