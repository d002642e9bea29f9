"""OPC UA ingestion against the asyncua simulator over real connections."""

from __future__ import annotations

import math
import shutil
import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from asyncua import ua

from connectors.opcua.connector import HistoryRefused, SourceUnavailable
from plantlake.core.config import load_config, with_source
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import NothingPublished, run_source
from schemas import get_table
from schemas.units import affine
from simulators import truth
from simulators.net import free_port
from simulators.opcua_server import OpcUaSimulator
from simulators.story import Plant
from tests.conftest import ROOT, files_holding, lake_content, quarantined

pytestmark = pytest.mark.integration

SENSOR = get_table("sensor_readings")
START = datetime(2026, 1, 1, 6, tzinfo=UTC)
END = START + timedelta(hours=1)
PLANT = Plant(seed=42)


@pytest.fixture
def setup(tmp_path, monkeypatch, lake_kind):
    """A simulator with two hours of history and a site config pointing at it (its lake where
    `lake_kind` says: local unless the test runs on both lakes)."""
    sims = []

    def start(port: int = 0, **kw) -> OpcUaSimulator:
        sim = OpcUaSimulator(PLANT, port=port, **kw).start_in_thread(prefill=(START, END + timedelta(hours=1)))
        sims.append(sim)
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", f"opcua://127.0.0.1:{sim.port}/plantsim")
        return sim

    lake_kind.write_config(tmp_path)
    yield start, tmp_path
    for s in sims:
        if s.server is not None:
            s.stop_thread()


def curated(lake, date="2026-01-01") -> pa.Table:
    """The day's sensor rows of a `Lake` (or the lake at a local root)."""
    return (lake if isinstance(lake, Lake) else Lake(lake)).read(SENSOR, date)


def assert_matches_truth(table: pa.Table, start: datetime, end: datetime) -> None:
    """Every value the simulator historized, on the right asset and tag, converted exactly."""
    exp = truth.opcua_values(PLANT, start, end)
    got = table.filter(pc.and_(pc.greater_equal(table["ts"], pa.scalar(start, SENSOR.column("ts").type)),
                               pc.less(table["ts"], pa.scalar(end, SENSOR.column("ts").type))))
    assert got.num_rows == exp.num_rows
    g = {(r["asset_id"], r["tag"], r["ts"]): r for r in got.to_pylist()}
    for e in exp.to_pylist():
        r = g[(e["asset_id"], e["tag"], e["ts"])]
        assert r["status_code"] == e["status_code"]
        assert r["source_ref"] == e["node"]
        if e["value_text"] is not None:
            assert r["value_text"] == e["value_text"] and r["value"] is None
        else:
            scale, offset = affine(e["unit"] or None, r["unit"] or None)
            assert r["value"] == pytest.approx(scale * e["value"] + offset, rel=1e-12, abs=1e-12)
        assert r["quality"] == {0: "good", 0x40900000: "uncertain", 0x808B0000: "bad"}[e["status_code"]]


def test_past_hour_is_exactly_what_the_server_historized_and_rerun_is_identical(setup):
    start, tmp = setup
    start()
    cfg = load_config(tmp / "plant.yaml")
    s1 = run_source("opcua_plant", START, END, config=cfg)
    alarms = PLANT.alarms(START, END)
    events = sum(START <= t < END for a in alarms for t in (a.active_from, a.acked_at, a.active_to))
    assert s1.stats == {"nodes": 86, "nodes_missing": 0, "values": 86 * 360, "mode": "history", "slices": 1,
                        "events": events, "events_unmapped": 0}
    assert s1.tables["sensor_readings"].published == 86 * 360 and s1.tables["events"].published == events
    assert s1.quarantined == 0
    first = curated(tmp / "lake")
    assert_matches_truth(first, START, END)
    assert first.filter(pc.equal(first["tag"], "line_speed"))["unit"].unique().to_pylist() == ["m/min"]
    assert set(first["unit"].unique().to_pylist()) >= {"degC", "kN", "mm", "kW", "bar", "A", "V", "s", "1/min", "%", ""}

    everything = lake_content(tmp / "lake")
    run_source("opcua_plant", START, END, config=cfg)
    again = curated(tmp / "lake")
    assert lake_content(tmp / "lake") == everything
    key = [(k, "ascending") for k in SENSOR.primary_key]
    assert again.drop_columns(list(SENSOR.lineage)).sort_by(key).equals(first.drop_columns(list(SENSOR.lineage)).sort_by(key))


def test_secured_endpoint_with_username_and_basic256sha256(setup, monkeypatch):
    import asyncio
    import json

    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    start, tmp = setup
    sim = start(users={"historian": "s3cr3t"}, secure_dir=tmp / "pki")
    cert, key = tmp / "client-cert.der", tmp / "client-key.pem"
    asyncio.run(setup_self_signed_certificate(key, cert, "urn:plantlake:client", "localhost",
                                              [ExtendedKeyUsageOID.CLIENT_AUTH], {"organizationName": "plantlake"}))
    extra = {"security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt",
             "certificate": str(cert), "private_key": str(key)}
    conn = {"conn_type": "opcua", "host": "127.0.0.1", "port": sim.port, "schema": "plantsim",
            "login": "historian", "password": "s3cr3t", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", json.dumps(conn))
    cfg = load_config(tmp / "plant.yaml")
    s = run_source("opcua_plant", START, START + timedelta(minutes=10), config=cfg)
    assert s.tables["sensor_readings"].published == 86 * 60
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", json.dumps({**conn, "password": "wrong"}))
    with pytest.raises(Exception, match="(?i)BadUserAccessDenied|BadIdentityTokenRejected|denied|rejected"):
        run_source("opcua_plant", START, START + timedelta(minutes=10), config=cfg)


def test_unreachable_server_raises_a_retriable_error_naming_the_endpoint(setup, monkeypatch):
    _, tmp = setup
    port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", f"opcua://127.0.0.1:{port}/plantsim")
    cfg = load_config(tmp / "plant.yaml")
    t = time.monotonic()
    with pytest.raises(SourceUnavailable, match=f"opc.tcp://127.0.0.1:{port}/plantsim unreachable"):
        run_source("opcua_plant", START, END, config=cfg)
    assert time.monotonic() - t < 35
    assert not list((tmp / "lake" / "curated").rglob("*.parquet"))


def test_server_without_history_gets_a_clear_message_and_poll_mode_works(setup):
    start, tmp = setup
    sim = OpcUaSimulator(PLANT, history=False).start_in_thread()
    try:
        import os

        os.environ["AIRFLOW_CONN_PLANT_OPCUA"] = f"opcua://127.0.0.1:{sim.port}/plantsim"
        sim.call(sim.advance(START, START + timedelta(minutes=1)))
        cfg = load_config(tmp / "plant.yaml")
        with pytest.raises(HistoryRefused, match="refuses HistoryRead .* set `mode: poll`"):
            run_source("opcua_plant", START, END, config=cfg)
        polled = cfg.model_copy(update={"sources": [
            s.model_copy(update={"mode": "poll", "poll_samples": 2, "poll_interval_s": 0.2}) if s.name == "opcua_plant" else s
            for s in cfg.sources]})
        # the source also reads the server's event history, which this server does not keep either
        with pytest.raises(HistoryRefused, match=r"refuses HistoryRead of events on notifier i=2253 "
                                                 r"\(BadHistoryOperationUnsupported\); remove it from the source's `events`"):
            run_source("opcua_plant", START, END, config=polled)
        polled = with_source(polled, "opcua_plant", events=[])
        s = run_source("opcua_plant", START, END, config=polled)
        assert s.stats["values"] == 86 * 2
        got = curated(tmp / "lake")
        # both samples read the last value the plant wrote (same source timestamp): one row per tag
        assert got.num_rows == 86 and s.tables["sensor_readings"].duplicates == 86
        assert set(got["ts"].to_pylist()) == {START + timedelta(seconds=50)}
    finally:
        sim.stop_thread()


def test_bad_values_and_missing_nodes_are_quarantined_with_reasons(setup):
    start, tmp = setup
    sim = start()
    ns = sim.ns
    node = ua.NodeId("line1.press1.roll_force", ns)
    t0 = START + timedelta(seconds=5)  # between the regular samples
    bad = [
        ua.DataValue(Value=ua.Variant(math.nan, ua.VariantType.Double), SourceTimestamp=t0, ServerTimestamp=t0),
        ua.DataValue(Value=ua.Variant(math.inf, ua.VariantType.Double), SourceTimestamp=t0 + timedelta(seconds=1), ServerTimestamp=t0),
        ua.DataValue(Value=ua.Variant("12,5 kN", ua.VariantType.String), SourceTimestamp=t0 + timedelta(seconds=2), ServerTimestamp=t0),
    ]
    sim.store.add(node, bad)
    text = (tmp / "plant.yaml").read_text()
    anchor = text.index("\n", text.index("s=line2.press2.line_speed")) + 1
    gone = '      - {ref: "nsu=urn:acme:shenzhen:plantsim;s=line1.press1.gone", asset: assembly/line1/press1, tag: gone}\n'
    (tmp / "plant.yaml").write_text(text[:anchor] + gone + text[anchor:])
    cfg = load_config(tmp / "plant.yaml")
    s = run_source("opcua_plant", START, START + timedelta(minutes=10), config=cfg)
    assert s.stats["nodes_missing"] == 1
    reasons = s.tables["sensor_readings"].reasons
    assert reasons == {"source_ref: node not found on the server": 1, "value: not a finite number": 2,
                       "value: not a number as mapped for tag roll_force": 1}
    assert s.tables["sensor_readings"].published == 86 * 60
    q = quarantined(tmp / "lake", "sensor_readings", s)
    assert "nsu=urn:acme:shenzhen:plantsim;s=line1.press1.gone" in " ".join(r["reason"] for r in q)


def test_future_and_ancient_timestamps_are_quarantined(setup):
    start, tmp = setup
    sim = start()
    node = ua.NodeId("line1.press1.roll_force", sim.ns)
    far = datetime(2099, 1, 1, tzinfo=UTC)
    sim.store.add(node, [ua.DataValue(Value=ua.Variant(1.0, ua.VariantType.Double), SourceTimestamp=datetime(1999, 12, 31, tzinfo=UTC)),
                         ua.DataValue(Value=ua.Variant(2.0, ua.VariantType.Double), SourceTimestamp=far)])
    cfg = load_config(tmp / "plant.yaml")
    # an interval whose only reading is quarantined published nothing: the run fails, naming why
    with pytest.raises(NothingPublished, match=r"1 input row\(s\) .* none published — 1 quarantined "
                                               r"\(1 x ts: before 2000 \(e\.g\. ts: before 2000 \(1999-12-31 00:00:00\+00:00\)\)\)"
                                               r".*on_nothing_published: warn"):
        run_source("opcua_plant", datetime(1999, 12, 31, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC), config=cfg)
    assert Lake(tmp / "lake").read(SENSOR).num_rows == 0
    cfg = with_source(cfg, "opcua_plant", on_nothing_published="warn")
    s = run_source("opcua_plant", datetime(1999, 12, 31, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC), config=cfg)
    assert s.tables["sensor_readings"].reasons == {"ts: before 2000": 1}
    s = run_source("opcua_plant", datetime(2098, 12, 31, tzinfo=UTC), datetime(2099, 1, 2, tzinfo=UTC), config=cfg)
    assert s.tables["sensor_readings"].reasons == {"ts: in the future": 1}


def test_week_backfill_then_gap_detection_replays_exactly_the_missing_hours(tmp_path, monkeypatch):
    """`plantlake run` over a past week, hours lost, `plantlake gaps --fill` restores exactly them."""
    import json
    import os
    import subprocess
    import sys

    from plantlake.pipeline.gaps import find_gaps

    coarse = Plant(seed=42, sample_s=300)
    week0 = datetime(2026, 1, 5, tzinfo=UTC)
    week1 = week0 + timedelta(days=7)
    sim = OpcUaSimulator(coarse).start_in_thread(prefill=(week0, week1))
    try:
        shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
        env = {**os.environ, "PLANTLAKE_CONFIG": str(tmp_path / "plant.yaml"),
               "AIRFLOW_CONN_PLANT_OPCUA": f"opcua://127.0.0.1:{sim.port}/plantsim"}
        out = subprocess.run([sys.executable, "-m", "plantlake", "run", "opcua_plant", "--start", week0.isoformat(),
                              "--end", week1.isoformat(), "--json"], env=env, cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        summary = json.loads(out.stdout)
        assert summary["tables"]["sensor_readings"]["published"] == 86 * 12 * 24 * 7
        alarms = coarse.alarms(week0, week1)  # and the week's alarm events, each state change once
        assert summary["tables"]["events"]["published"] == sum(
            week0 <= t < week1 for a in alarms for t in (a.active_from, a.acked_at, a.active_to)) > 100
        lake = Lake(tmp_path / "lake")
        assert sorted({f.split("/")[-2] for f in lake.files(SENSOR)}) == [f"date=2026-01-0{d}" for d in range(5, 10)] + [
            "date=2026-01-10", "date=2026-01-11"]  # a week of day partitions
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", env["AIRFLOW_CONN_PLANT_OPCUA"])
        cfg = load_config(tmp_path / "plant.yaml")
        assert find_gaps(cfg, "opcua_plant", week0, week1) == []
        # lose Wednesday: its rows are deleted
        from deltalake import DeltaTable

        DeltaTable(lake.table_uri(SENSOR)).delete("date = '2026-01-07'")
        gaps = find_gaps(cfg, "opcua_plant", week0, week1)
        assert [g.start for g in gaps] == [datetime(2026, 1, 7, h, tzinfo=UTC) for h in range(24)]
        out = subprocess.run([sys.executable, "-m", "plantlake", "gaps", "opcua_plant", "--start", week0.isoformat(),
                              "--end", week1.isoformat(), "--fill"], env=env, cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        assert find_gaps(cfg, "opcua_plant", week0, week1) == []
        assert lake.read(SENSOR, "2026-01-07").num_rows == 86 * 12 * 24
        assert lake.read(SENSOR).num_rows == 86 * 12 * 24 * 7
    finally:
        sim.stop_thread()


def test_a_verbose_cli_run_writes_the_password_nowhere(setup, tmp_path):
    """`plantlake -v run` logs asyncua's requests at DEBUG, the login among them: the password shows
    as *** on stdout and stderr, and nowhere in the lake (Parquet decoded)."""
    import os
    import subprocess
    import sys

    start, tmp = setup
    password = "Pl4nt-Secret-x9"
    sim = start(users={"historian": password})
    env = {**os.environ, "AIRFLOW_CONN_PLANT_OPCUA": f"opcua://historian:{password}@127.0.0.1:{sim.port}/plantsim"}
    done = subprocess.run([sys.executable, "-m", "plantlake", "-v", "--config", str(tmp / "plant.yaml"), "run",
                           "opcua_plant", "--start", START.isoformat(),
                           "--end", (START + timedelta(minutes=2)).isoformat()],
                          capture_output=True, text=True, timeout=300, cwd=tmp, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ActivateSessionRequest" in done.stderr and "***" in done.stderr  # the login was logged, masked
    assert password not in done.stdout and password not in done.stderr
    assert files_holding(tmp / "lake", password) == []


EVENTS = get_table("events")


def test_weld_alarms_come_from_the_servers_event_history_as_part_9_conditions(setup):
    """HistoryRead of events on the Server object: each alarm episode of the story is three
    notifications of one condition (active, acknowledged, back to normal), on the weld_temp
    variable's asset and tag; an area notifier gives its line's alone; a rerun is identical."""
    start, tmp = setup
    start()
    cfg = load_config(tmp / "plant.yaml")
    run_source("opcua_plant", START, END, config=cfg)
    got = Lake(tmp / "lake").read(EVENTS).sort_by([("time", "ascending"), ("asset_id", "ascending")]).to_pylist()
    expected = sorted(((t, a.line, active, acked) for a in PLANT.alarms(START, END)
                       for t, active, acked in ((a.active_from, True, False), (a.acked_at, True, True),
                                                (a.active_to, False, True)) if START <= t < END))
    assert len(expected) >= 9  # the hour has alarms on both lines
    assert [(r["time"], r["asset_id"].split("/")[3], r["active"], r["acked"]) for r in got] == expected
    for r in got:
        line = r["asset_id"].split("/")[3]
        assert r["asset_id"] == f"acme/shenzhen/assembly/{line}/welder{line[-1]}" and r["tag"] == "weld_temp"
        assert r["source_node"] == f"nsu=urn:acme:shenzhen:plantsim;s={line}.welder{line[-1]}.weld_temp"
        assert r["condition_id"] == r["source_node"] + ".HighAlarm" and r["condition_name"] == "WeldTempHigh"
        assert (r["event_type"], r["severity"], r["source"], r["source_name"]) == (
            "ExclusiveLevelAlarmType", 700, "opcua", "opcua_plant")
        assert r["retain"] == r["active"] and len(r["event_id"]) == 32
        assert r["message"] == ("Weld temperature above 350 degC" if not r["acked"] else
                                "Weld temperature alarm acknowledged by the operator" if r["active"] else
                                "Weld temperature back below 350 degC")
    run_source("opcua_plant", START, END, config=cfg)
    assert Lake(tmp / "lake").read(EVENTS).num_rows == len(got)

    # an area notifier: line 1's events only; its source nodes not mapped by the source: counted
    area = with_source(cfg, "opcua_plant", events=["nsu=urn:acme:shenzhen:plantsim;s=line1"],
                       nodes=[cfg.source("opcua_plant").nodes[0].model_copy(update={"path": "Plant/line2/{machine}",
                                                                                      "asset": "assembly/line2/{machine}"})])
    summary = run_source("opcua_plant", START, END, config=area)
    line1 = [e for e in expected if e[1] == "line1"]
    assert summary.stats["events"] == len(line1) and summary.stats["events_unmapped"] == len(line1)
    rows = Lake(tmp / "lake").read(EVENTS).to_pylist()
    assert len(rows) == len(line1) and {r["asset_id"] for r in rows} == {None}  # the rerun replaced the hour's


def test_an_events_notifier_in_a_namespace_the_server_lacks_fails_naming_it(setup):
    start, tmp = setup
    start()
    cfg = with_source(load_config(tmp / "plant.yaml"), "opcua_plant", events=["nsu=urn:not:there;s=Area1"])
    with pytest.raises(ValueError, match=r"events notifier nsu=urn:not:there;s=Area1: the server has no namespace"):
        run_source("opcua_plant", START, END, config=cfg)


def test_alarm_events_of_another_servers_own_alarm_machinery_are_read(tmp_path, monkeypatch):
    """Not our simulator: a plain asyncua server with its own event history (HistoryDict) and its own
    AlarmConditionType events (asyncua's event objects), fired on a variable of another vendor's
    namespace, plus a plain BaseEventType event of the server. The server does not report the
    ConditionId (the NodeId attribute), as some do not: the source node and condition name stand in."""
    import asyncio

    from asyncua import Server

    port = free_port()
    t0 = datetime(2026, 3, 2, 8, tzinfo=UTC)

    async def serve(ready: asyncio.Event, stop: asyncio.Event) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/vendor")
        ns = await server.register_namespace("urn:other:vendor")
        press = await server.nodes.objects.add_object(ua.NodeId("Press7", ns), ua.QualifiedName("Press7", ns))
        force = await press.add_variable(ua.NodeId("Press7.Force", ns), ua.QualifiedName("Force", ns), 12.5)
        await server.start()
        await server.historize_node_data_change(force, period=None)
        alarm = await server.get_event_generator(ua.ObjectIds.AlarmConditionType, ua.ObjectIds.Server)
        plain = await server.get_event_generator()
        # after the generators: the Server object then names the types it generates, which it historizes
        await server.historize_node_event(server.nodes.server, period=None)
        alarm.event.SourceNode, alarm.event.SourceName = force.nodeid, "Force"
        alarm.event.Severity, alarm.event.ConditionName = 800, "ForceHigh"
        for minute, active, acked in ((1, True, False), (2, True, True), (4, False, True)):
            setattr(alarm.event, "ActiveState/Id", active)
            setattr(alarm.event, "AckedState/Id", acked)
            alarm.event.Retain = active
            await alarm.trigger(t0 + timedelta(minutes=minute), f"force alarm {'on' if active else 'off'}")
        plain.event.Severity = 100
        await plain.trigger(t0 + timedelta(minutes=5), "server note")
        await asyncio.sleep(1.5)  # the server's own subscription stores the events
        ready.set()
        await stop.wait()
        await server.stop()

    loop = asyncio.new_event_loop()
    ready, stop = asyncio.Event(), asyncio.Event()
    import threading

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(ready, stop),), daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(ready.wait(), 30), loop).result(40)
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", f"opcua://127.0.0.1:{port}/vendor")
        (tmp_path / "plant.yaml").write_text((ROOT / "plant.yaml").read_text())
        cfg = with_source(load_config(tmp_path / "plant.yaml"), "opcua_plant", nodes=[], events=["i=2253"], tags=[
            {"ref": "nsu=urn:other:vendor;s=Press7.Force", "asset": "assembly/line1/press1", "tag": "force",
             "unit": "kN"}])
        summary = run_source("opcua_plant", t0, t0 + timedelta(hours=1), config=cfg)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
    assert summary.stats["events"] == 4 and summary.stats["events_unmapped"] == 1  # the server's own note
    rows = Lake(tmp_path / "lake").read(EVENTS).sort_by("time").to_pylist()
    alarm, note = rows[:3], rows[3]
    assert [(r["time"], r["active"], r["acked"], r["retain"]) for r in alarm] == [
        (t0 + timedelta(minutes=1), True, False, True), (t0 + timedelta(minutes=2), True, True, True),
        (t0 + timedelta(minutes=4), False, True, False)]
    for r in alarm:
        assert (r["event_type"], r["source_node"], r["source_node_name"]) == (
            "AlarmConditionType", "nsu=urn:other:vendor;s=Press7.Force", "Force")
        assert (r["asset_id"], r["tag"], r["severity"], r["condition_name"]) == (
            "acme/shenzhen/assembly/line1/press1", "force", 800, "ForceHigh")
        assert r["condition_id"] == "nsu=urn:other:vendor;s=Press7.Force#ForceHigh"
    assert len({r["event_id"] for r in rows}) == 4
    assert (note["event_type"], note["message"], note["severity"], note["asset_id"], note["condition_id"],
            note["active"]) == ("BaseEventType", "server note", 100, None, None, None)
