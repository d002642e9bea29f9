"""Products, compaction and the catalog on a small hand-made lake, against values computed by hand."""

from __future__ import annotations

import json
import statistics
from datetime import timedelta

import duckdb
import pyarrow as pa
import pytest

from plantlake.core.config import load_config
from plantlake.core.lake import Interval, Lake
from plantlake.pipeline import compaction
from plantlake.pipeline.catalog import build_catalog, query
from plantlake.pipeline.products import build_day, days_touched
from schemas import get_table
from tests.conftest import ROOT
from tests.unit.test_audit_tables import _image, _inspection, _order, _sensor
from tests.unit.test_cross_source import IV, L1, T, _minute, _publish

pytestmark = pytest.mark.unit


@pytest.fixture
def lake(tmp_path):
    lake = Lake(tmp_path / "lake").ensure()
    _publish(lake, "sensor_readings", [dict(_sensor(0), ts=_minute(m), value=100.0 + m,
                                            quality="bad" if m < 4 else "good") for m in range(30)])
    _publish(lake, "production_orders", [
        dict(_order(1), actual_start=_minute(0), actual_end=_minute(20)),
        dict(_order(2), status="running", actual_start=_minute(25), actual_end=None),
        dict(_order(3), status="planned", actual_start=None, actual_end=None),
    ])
    _publish(lake, "quality_inspections", [dict(_inspection(i), order_id="PO0001", part_serial=f"S{i}",
                                                 measured_value=10.0 if i < 3 else 10.5, result="pass" if i < 3 else "fail")
                                            for i in range(1, 4)])
    _publish(lake, "inspection_images", [dict(_image(1), captured_at=_minute(10), order_id="PO0001"),
                                         dict(_image(3), captured_at=_minute(12), order_id="PO0001"),
                                         dict(_image(5), captured_at=_minute(40), part_serial="S9", order_id="PO0002")])
    return lake


def test_order_context_has_the_orders_window_aggregates_images_and_pass_rate(lake):
    cfg = load_config(ROOT / "plant.yaml")
    runs = build_day(lake, cfg, T.date(), "p1")
    assert [(r.product, r.rows, r.quarantined) for r in runs] == [
        ("assets", len(cfg.assets()), 0), ("order_context", 2, 0), ("image_training_set", 3, 0)]
    rows = {r["order_id"]: r for r in lake.read(get_table("order_context")).to_pylist()}
    assert set(rows) == {"PO0001", "PO0002"}  # the planned order has not started: no context yet
    o = rows["PO0001"]
    values = [100.0 + m for m in range(20)]  # readings in [08:00, 08:20)
    (agg,) = o["sensor"]
    assert (agg["asset_id"], agg["tag"], agg["unit"], agg["n"]) == (f"{L1}/press1", "nip_force", "kN", 20)
    assert agg["mean"] == pytest.approx(statistics.mean(values)) and (agg["min"], agg["max"]) == (100.0, 119.0)
    assert agg["std"] == pytest.approx(statistics.stdev(values)) and agg["bad_share"] == pytest.approx(4 / 20)
    assert (o["image_count"], o["inspections"], o["inspection_pass_rate"]) == (2, 3, pytest.approx(2 / 3))
    running = rows["PO0002"]["sensor"][0]  # still running: to now, i.e. every later reading
    assert running["n"] == 5 and running["min"] == 125.0

    # a rebuild of the day replaces it
    build_day(lake, cfg, T.date(), "p2")
    assert set(lake.read(get_table("order_context"))["run_id"].to_pylist()) == {"p2"}


def test_image_training_set_joins_sensor_features_as_of_capture_and_the_erp_verdict(lake):
    cfg = load_config(ROOT / "plant.yaml")
    build_day(lake, cfg, T.date(), "p1", products=("image_training_set",))
    rows = {r["part_serial"]: r for r in lake.read(get_table("image_training_set")).to_pylist()}
    first = rows["S1"]
    (f,) = first["sensor_features"]  # 120 s before 08:10: the readings of 08:09 and 08:10
    assert (f["mean"], f["min"], f["max"], f["last"]) == (109.5, 109.0, 110.0, 110.0)
    assert (first["label"], rows["S3"]["label"], rows["S9"]["label"]) == ("pass", "fail", None)
    assert first["line_id"] == L1 and first["uri"].startswith("images/")
    assert rows["S9"]["sensor_features"] == []  # no readings in the 2 minutes before 08:40


def test_image_training_set_has_each_tags_trace_on_a_fixed_grid_ending_at_the_capture(lake):
    cfg = load_config(ROOT / "plant.yaml")  # window 120 s, step 1 s: 120 points, 08:08:01 .. 08:10:00 for S1
    build_day(lake, cfg, T.date(), "p1", products=("image_training_set",))
    rows = {r["part_serial"]: r for r in lake.read(get_table("image_training_set")).to_pylist()}
    (trace,) = rows["S1"]["sensor_traces"]
    assert (trace["asset_id"], trace["tag"], trace["unit"], trace["step_s"]) == (f"{L1}/press1", "nip_force", "kN", 1)
    # the reading of 08:08:00 is outside the window (which starts after it): null until 08:09:00's
    assert trace["values"] == [None] * 59 + [109.0] * 60 + [110.0]
    assert trace["bad_share"] == 0.0
    assert rows["S9"]["sensor_traces"] == []  # no readings in the 2 minutes before 08:40

    # a coarser grid; and a capture whose window holds Bad readings only: every point null, bad_share 1
    coarse = cfg.model_copy(update={"products": cfg.products.model_copy(update={"image_trace_step_s": 30})})
    _publish(lake, "inspection_images", [dict(_image(1), captured_at=_minute(10), order_id="PO0001"),
                                         dict(_image(3), captured_at=_minute(3), order_id="PO0001")])
    build_day(lake, coarse, T.date(), "p2", products=("image_training_set",))
    rows = {r["part_serial"]: r for r in lake.read(get_table("image_training_set")).to_pylist()}
    (trace,) = rows["S1"]["sensor_traces"]  # 08:08:30, 08:09:00, 08:09:30, 08:10:00
    assert (trace["step_s"], trace["values"]) == (30, [None, 109.0, 109.0, 110.0])
    (bad,) = rows["S3"]["sensor_traces"]  # 08:01:30 .. 08:03:00: the readings of 08:02 and 08:03, both Bad
    assert (bad["values"], bad["bad_share"]) == ([None] * 4, 1.0)
    (agg,) = rows["S3"]["sensor_features"]
    assert (agg["mean"], agg["last"]) == (102.5, 103.0)  # the aggregates keep every reading, as before


def test_traces_read_the_same_in_duckdb_polars_and_pandas(lake):
    import polars as pl

    cfg = load_config(ROOT / "plant.yaml")
    build_day(lake, cfg, T.date(), "p1", products=("image_training_set",))
    data = lake.read(get_table("image_training_set"))
    con = duckdb.connect()
    con.register("its", data)
    duck = con.execute("select part_serial, t.tag, len(t.values), t.values[119] "
                       "from its, unnest(sensor_traces) as u(t) order by part_serial").fetchall()
    assert duck == [("S1", "nip_force", 120, 109.0), ("S3", "nip_force", 120, 111.0)]
    frame = pl.from_arrow(data).explode("sensor_traces").drop_nulls("sensor_traces")
    assert frame.select(pl.col("sensor_traces").struct.field("values").list.len()).to_series().to_list() == [120, 120]
    pdf = data.to_pandas()
    assert [len(t[0]["values"]) for t in pdf.sort_values("part_serial")["sensor_traces"] if len(t)] == [120, 120]


def test_days_touched_include_the_start_day_of_orders_running_in_the_interval(lake):
    cfg = load_config(ROOT / "plant.yaml")
    later = Interval(T + timedelta(days=1), T + timedelta(days=1, hours=1))
    assert days_touched(lake, cfg, [later]) == [T.date(), later.start.date()]  # PO0002 is still running


def test_compaction_bin_packs_a_day_into_one_file_keeps_every_row_and_a_rerun_still_replaces_its_own(tmp_path):
    lake = Lake(tmp_path / "lake").ensure()
    table = get_table("sensor_readings")
    rows = [dict(_sensor(i), ts=T + timedelta(seconds=i)) for i in range(30)]
    ivs = [Interval(T + timedelta(minutes=h * 5), T + timedelta(minutes=h * 5 + 5)) for h in range(3)]
    for h, iv in enumerate(ivs):  # three intervals of one source, the third redelivering two rows of the second
        chunk = rows[h * 10:(h + 1) * 10] + (rows[15:17] if h == 2 else [])
        lake.publish(lake.stage(table, "line1_plc", iv, pa.Table.from_pylist(chunk[::-1], schema=table.arrow_schema())))
    _publish(lake, "sensor_readings", [dict(_sensor(0), asset_id=f"{L1}/coater1", tag="dryer_temperature")])  # source "t"
    before = lake.read(table)
    version = lake.version(table)
    done = compaction.compact_day(lake, table, T.date(), retention_hours=0)
    # four files (one per publish) into one; 33 rows kept; the two keys published twice are counted, not dropped
    assert (done.files_before, done.files_after, done.rows, done.duplicates) == (4, 1, 33, 2)
    from deltalake import DeltaTable

    ops = [h["operation"] for h in DeltaTable(lake.table_uri(table)).history() if h["version"] > version]
    assert sorted(ops) == ["OPTIMIZE", "VACUUM END", "VACUUM START"]  # the rows moved in one commit
    assert done.vacuumed == 4  # the replaced files are gone from the folder (retention 0 here)
    on_disk = sorted(p.name for p in (lake.table_dir(table) / f"date={T.date()}").glob("*.parquet"))
    assert [p.rsplit("/", 1)[-1] for p in lake.files(table)] == on_disk
    key = [*table.primary_key, "value"]
    assert lake.read(table).select(key).sort_by([(k, "ascending") for k in key]).equals(
        before.select(key).sort_by([(k, "ascending") for k in key]))
    # a rerun of the second interval, inside the compacted file: its 10 rows replaced by its 3 new ones
    lake.publish(lake.stage(table, "line1_plc", ivs[1], pa.Table.from_pylist(rows[10:13], schema=table.arrow_schema())))
    after = lake.read(table)
    assert after.num_rows == 33 - 10 + 3
    assert sorted(after.filter(pa.compute.equal(after["asset_id"], rows[0]["asset_id"]))["value"].to_pylist()) == sorted(
        [r["value"] for r in rows[:10] + rows[10:13] + rows[20:30] + rows[15:17]])
    # keys of the source's other intervals, in the compacted file, are still known to a rerun
    known = lake.published_keys(table, pa.Table.from_pylist(rows[10:20], schema=table.arrow_schema()), "line1_plc", ivs[1])
    assert known.num_rows == 10 + 12  # intervals 1 and 3 (the other source's key is out of scope)
    # compacting again: one file out, every row kept
    again = compaction.compact_day(lake, table, T.date(), retention_hours=0)
    assert (again.files_after, again.rows) == (1, 26)


def test_a_compaction_killed_before_its_commit_leaves_the_table_as_it_was(tmp_path, monkeypatch):
    lake = Lake(tmp_path / "lake").ensure()
    table = get_table("sensor_readings")
    for h in range(2):
        lake.publish(lake.stage(table, "s", Interval(T + timedelta(hours=h), T + timedelta(hours=h + 1)),
                                pa.Table.from_pylist([dict(_sensor(h))], schema=table.arrow_schema())))
    version, files = lake.version(table), lake.files(table)

    def killed(action, what):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(compaction.tables, "commit", killed)
    with pytest.raises(KeyboardInterrupt):
        compaction.compact_day(lake, table, T.date())
    assert (lake.version(table), lake.files(table)) == (version, files)
    monkeypatch.undo()
    assert compaction.compact_day(lake, table, T.date()).files_after == 1  # the next run succeeds
    assert lake.read(table).num_rows == 2


def test_the_catalog_has_a_documented_view_per_table_returning_the_parquet_rows(lake):
    cfg = load_config(ROOT / "plant.yaml")
    build_day(lake, cfg, T.date(), "p1")
    path = build_catalog(lake)
    from schemas.tables import TABLES

    con = duckdb.connect(str(path), read_only=True)
    views = {r[0] for r in con.execute("select view_name from duckdb_views() where not internal").fetchall()}
    assert views == set(TABLES)
    for name, table in TABLES.items():
        direct = lake.read(table)
        via = con.execute(f'select * from "{name}"').to_arrow_table()  # noqa: S608 - declared names
        assert via.num_rows == direct.num_rows, name
        assert via.column_names == table.column_names, name
        if direct.num_rows:
            key = [(k, "ascending") for k in table.primary_key]
            assert via.select(table.primary_key).sort_by(key).to_pylist() == \
                direct.select(table.primary_key).sort_by(key).to_pylist(), name
    comment = con.execute("select comment from duckdb_columns() where table_name = 'order_context' "
                          "and column_name = 'inspection_pass_rate'").fetchone()[0]
    assert comment == "Share of inspections that passed."
    assert query(lake, "select count(*) as n from sensor_readings").to_pylist() == [{"n": 30}]


def test_a_rebuilt_product_day_without_bad_rows_drops_the_days_old_quarantine(tmp_path):
    """A product rebuild goes through the runner's write-audit-publish path: its quarantine file for
    the day is replaced, and removed when the rebuild sets nothing aside."""
    from datetime import UTC, date, datetime

    from plantlake.pipeline.products import publish

    lake = Lake(tmp_path / "lake").ensure()
    table = get_table("order_context")
    day = date(2026, 1, 2)

    def rows(rate: float):
        now = datetime(2026, 1, 2, 8, tzinfo=UTC)
        return pa.Table.from_pylist([
            {"order_id": "PO1", "line_id": "acme/l1", "actual_start": now, "inspection_pass_rate": 0.5,
             "ingested_at": now, "run_id": "r"},
            {"order_id": "PO2", "line_id": "acme/l1", "actual_start": now, "inspection_pass_rate": rate,
             "ingested_at": now, "run_id": "r"}], schema=table.arrow_schema())

    first = publish(lake, "order_context", day, rows(1.5), "run-1")  # a pass rate above 1: set aside
    assert (first.rows, first.quarantined) == (1, 1)
    quarantine = lake.read_quarantine("order_context")
    assert [json.loads(r)["order_id"] for r in quarantine["record"].to_pylist()] == ["PO2"]
    again = publish(lake, "order_context", day, rows(0.75), "run-2")
    assert (again.rows, again.quarantined) == (2, 0)
    assert lake.read_quarantine("order_context").num_rows == 0  # the rebuild's commit removed the day's rejects
    assert sorted(lake.read(table)["order_id"].to_pylist()) == ["PO1", "PO2"]


def test_a_past_training_set_is_rebuilt_byte_for_byte_after_new_data_and_a_corrected_verdict(lake, tmp_path, capsys):
    import hashlib

    from plantlake.app.cli import main
    from plantlake.pipeline.products import manifest

    cfg = load_config(ROOT / "plant.yaml")
    (first,) = [r for r in build_day(lake, cfg, T.date(), "p1") if r.product == "image_training_set"]
    m1 = manifest.manifests(lake, "image_training_set", T.date())[-1]
    assert (m1.run_id, m1.rows, m1.published, m1.version) == ("p1", 3, 3, first.version)
    assert set(m1.inputs) == {"inspection_images", "sensor_readings", "quality_inspections", "events"}
    assert m1.inputs["events"] is None  # no events table yet: read as empty, and so on a replay
    assert all(isinstance(m1.inputs[t], int) for t in ("inspection_images", "sensor_readings", "quality_inspections"))
    assert m1.settings["image_trace_step_s"] == 1
    as_built = get_table("image_training_set")
    then = lake.dataset(as_built, version=m1.version).to_table(columns=as_built.column_names)

    # later: a new capture, and the ERP corrects S1's verdict to fail
    images = get_table("inspection_images")  # from another source, so it adds to the first one's
    lake.publish(lake.stage(images, "t2", IV, pa.Table.from_pylist(
        [dict(_image(2), captured_at=_minute(11), part_serial="S2", order_id="PO0001")], schema=images.arrow_schema())))
    _publish(lake, "quality_inspections", [dict(_inspection(1), part_serial="S1", result="fail", defect_code="CRACK",
                                                updated_at=_minute(60))])
    build_day(lake, cfg, T.date(), "p2")
    m2 = manifest.manifests(lake, "image_training_set", T.date())[-1]
    now = {r["part_serial"]: r["label"] for r in lake.read(as_built).to_pylist()}
    assert (m2.rows, now["S1"], now["S2"]) == (4, "fail", "pass") and m2.content_hash != m1.content_hash
    assert m2.inputs["quality_inspections"] > m1.inputs["quality_inspections"]

    # as of the first build's version: the same bytes, the verdict as it was known then
    data, again, past = manifest.rebuild(lake, cfg, "image_training_set", m1.version)
    assert past.content_hash == m1.content_hash and again.content_hash == m1.content_hash
    assert again.inputs == m1.inputs and again.run_id == "p1"
    assert data.equals(then.cast(data.schema))  # the rows the build published, lineage included
    assert {r["part_serial"]: r["label"] for r in data.to_pylist()} == {"S1": "pass", "S3": "fail", "S9": None}
    # as of a time between the builds: the first build; as of now: the second
    assert manifest.rebuild(lake, cfg, "image_training_set", m2.when - timedelta(microseconds=1), T.date())[1] \
        .content_hash == m1.content_hash
    assert manifest.rebuild(lake, cfg, "image_training_set", m2.when, T.date())[1].content_hash == m2.content_hash
    # as of a time before any build of the day: from the inputs as they were then, labelled as known then
    data, built, past = manifest.rebuild(lake, cfg, "image_training_set", m1.when - timedelta(milliseconds=1), T.date())
    assert past is None and built.inputs == m1.inputs and built.rows == 3
    assert data.drop_columns(["ingested_at", "run_id"]).equals(then.drop_columns(["ingested_at", "run_id"]).cast(
        data.drop_columns(["ingested_at", "run_id"]).schema))

    # the CLI writes the file whose sha256 the manifest holds
    config = tmp_path / "plant.yaml"
    config.write_text((ROOT / "plant.yaml").read_text().replace("root: ./lake", f"root: {lake.root}"))
    assert main(["--config", str(config), "products", "build", "--as-of", str(m1.version),
                 "--product", "image_training_set", "--out", str(tmp_path / "sets")]) == 0
    (written,) = (tmp_path / "sets").glob("*.parquet")
    assert hashlib.sha256(written.read_bytes()).hexdigest() == m1.content_hash
    assert "identical" in capsys.readouterr().out
    assert main(["--config", str(config), "products", "manifests", "--product", "image_training_set"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split(" built ")[0] for line in listed] == [
        f"image_training_set {T.date()} version {m1.version}:", f"image_training_set {T.date()} version {m2.version}:"]

    # once compaction vacuumed the replaced inputs, a replay says which setting keeps them
    from plantlake.core.errors import ConfigError

    compaction.compact_all(lake, T.date(), 0)
    with pytest.raises(ConfigError, match="lake.vacuum_retention_hours"):
        manifest.rebuild(lake, cfg, "image_training_set", m1.version)


def _event(i: int, minute: float, condition: str, active: bool, acked: bool, asset: str | None = f"{L1}/press1") -> dict:
    return dict(event_id=f"e{i:03d}", time=T + timedelta(minutes=minute), receive_time=None,
                event_type="ExclusiveLevelAlarmType", source_node=f"nsu=urn:x;s={condition}.src",
                source_node_name="nip_force", asset_id=asset, tag="nip_force" if asset else None, severity=700,
                message="m", condition_id=f"nsu=urn:x;s={condition}", condition_name=condition, active=active,
                acked=acked, retain=active, source="opcua", source_name="opcua_plant", ingested_at=T, run_id="r")


def test_alarm_episodes_join_orders_and_images_with_what_was_known_at_capture(lake):
    cfg = load_config(ROOT / "plant.yaml")
    _publish(lake, "events", [
        _event(1, 9.5, "NipHigh", True, False), _event(2, 9 + 50 / 60, "NipHigh", True, True),
        _event(3, 10.5, "NipHigh", False, True),          # 08:09:30 - 08:10:30
        _event(4, 35, "NipLow", True, False),             # 08:35, never back to normal
        _event(5, 11, "ServerRestart", True, False, asset=None),  # on no asset: on no line
    ])
    build_day(lake, cfg, T.date(), "p1")
    images = {r["part_serial"]: r["alarms"] for r in lake.read(get_table("image_training_set")).to_pylist()}
    (s1,) = images["S1"]  # captured 08:10, the alarm still active then: its end was not known yet
    assert (s1["condition_name"], s1["asset_id"], s1["tag"], s1["severity"]) == ("NipHigh", f"{L1}/press1", "nip_force", 700)
    assert (s1["active_from"], s1["active_to"]) == (T + timedelta(minutes=9.5), None)
    (s3,) = images["S3"]  # captured 08:12, window from 08:10: the episode ended at 08:10:30
    assert (s3["active_from"], s3["active_to"]) == (T + timedelta(minutes=9.5), T + timedelta(minutes=10.5))
    (s9,) = images["S9"]  # 08:40: the low alarm active since 08:35
    assert (s9["condition_name"], s9["active_to"]) == ("NipLow", None)
    orders = {r["order_id"]: r["alarms"] for r in lake.read(get_table("order_context")).to_pylist()}
    assert [(a["condition_name"], a["active_to"]) for a in orders["PO0001"]] == [("NipHigh", T + timedelta(minutes=10.5))]
    assert [(a["condition_name"], a["active_to"]) for a in orders["PO0002"]] == [("NipLow", None)]


def test_a_baseline_on_three_images_is_refused_naming_the_counts(lake):
    from plantlake.core.errors import ConfigError
    from plantlake.pipeline.train import train_baseline

    build_day(lake, load_config(ROOT / "plant.yaml"), T.date(), "p1", products=("image_training_set",))
    with pytest.raises(ConfigError, match=r"version \d+ has 2 labelled images \(1 failed\); a baseline needs at least 30"):
        train_baseline(lake, 120)
