"""MQTT ingestion against a real Mosquitto the tests start, kill and restart; every message accounted for by id."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import paho.mqtt.client as mqtt
import pyarrow.parquet as pq
import pytest

from connectors.mqtt import sparkplug
from plantlake.core.config import load_config
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from schemas import get_table
from schemas.units import affine, canonical_unit
from simulators import truth
from simulators.mqtt_publisher import MqttPublisher
from simulators.story import Plant
from tests.conftest import ROOT, quarantined

pytestmark = pytest.mark.integration

SENSOR = get_table("sensor_readings")
START = datetime(2026, 1, 1, 6, tzinfo=UTC)
PLANT = Plant(seed=42)


@pytest.fixture
def site(tmp_path, mosquitto, monkeypatch):
    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtt://127.0.0.1:{mosquitto.port}")
    cfg = load_config(tmp_path / "plant.yaml")
    first = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)  # creates the durable session
    assert first.stats["session_present"] is False and first.raw_rows == 0
    return cfg, tmp_path


def raw_ids(lake) -> list[str]:
    """The message ids of every raw file landed for mqtt_plant (`lake`: a Lake, or a local root)."""
    lake = lake if isinstance(lake, Lake) else Lake(lake)
    ids = []
    for key in lake.storage.list("raw/mqtt_plant"):
        for rec in pq.read_table(lake.open_raw(key)).to_pylist():
            if rec["topic"].startswith("spBv1.0/"):
                ids.append(sparkplug.decode(rec["payload"]).uuid)
            else:
                ids.append(json.loads(rec["payload"])["msg_id"])
    return ids


def check_curated(lake_root, start, end) -> None:
    """Every reading of every message is in curated, once, with its value converted exactly."""
    exp = truth.mqtt_messages(PLANT, start, end)
    exp = exp.filter(exp["tag"].is_valid())
    data = (lake_root if isinstance(lake_root, Lake) else Lake(lake_root)).read(SENSOR)
    got = {(r["asset_id"], r["tag"], r["ts"]): r for r in data.to_pylist()}
    con = duckdb.connect()
    con.register("d", data)
    assert con.execute("select count(*) - count(distinct (asset_id, tag, ts)) from d").fetchone()[0] == 0
    for e in exp.to_pylist():
        r = got[(e["asset_id"], e["tag"], e["ts"])]
        assert r["message_id"] == e["msg_id"]
        target = canonical_unit(e["unit"] or None)
        scale, offset = affine(e["unit"] or None, target)
        assert r["unit"] == target and r["value"] == pytest.approx(scale * e["value"] + offset, rel=1e-9, abs=1e-9)


KILLER = """
import os, signal, sys
from datetime import UTC, datetime, timedelta
from plantlake.core.kinds import source_kind
from plantlake.core.config import load_config
from plantlake.core.connections import get_connection
from plantlake.core.lake import Interval
cfg = load_config(sys.argv[1])
src = cfg.source("mqtt_plant")
c = source_kind("mqtt").load()(src, cfg, get_connection(src.connection_id))
start = datetime(2026, 1, 1, 6, tzinfo=UTC)
ex = c.extract(Interval(start, start + timedelta(hours=1)), {})
batch = next(iter(ex.streams[""].batches))  # received ...
print(batch.num_rows, flush=True)
os.kill(os.getpid(), signal.SIGKILL)      # ... and gone before the durable write
"""


def test_malformed_payloads_are_kept_raw_and_quarantined_with_reasons(site, mosquitto):
    cfg, tmp = site
    ts = "2026-01-01T06:00:00Z"
    good = json.dumps({"msg_id": "ok-1", "ts": ts, "values": {"power": 5.0}, "units": {"power": "kW"}})
    bad = [
        ("acme/shenzhen/assembly/line1/press1/telemetry", b"{not json"),
        ("acme/shenzhen/assembly/line1/press1/telemetry", json.dumps({"msg_id": "x1", "values": {"power": 1}}).encode()),
        ("acme/shenzhen/assembly/line1/press1/telemetry", json.dumps({"msg_id": "x2", "ts": ts, "values": {"power": {"a": 1}}}).encode()),
        ("acme/shenzhen/assembly/line1/press1/telemetry", json.dumps({"msg_id": "x3", "ts": "2026-01-01T06:00:01Z", "values": {"power": "high"}}).encode()),
        ("acme/shenzhen/assembly/line1/press1/telemetry", json.dumps({"msg_id": "x4", "ts": "yesterday", "values": {"power": 1}}).encode()),
        ("acme/shenzhen/assembly/line1/press1/telemetry", b"{" + b" " * 300_000 + b"}"),
        ("acme/shenzhen/assembly/line9/press9/telemetry", good.encode()),
        ("spBv1.0/acme/DDATA/line1-utilities/chiller1", b"\xff\xff\xffnot protobuf"),
        ("spBv1.0/acme/DDATA/line2-utilities/chiller2", sparkplug.encode(timestamp=1767247200000, seq=5, uuid="early",
                                                                          metrics=[{"alias": 1, "value": 3.0, "datatype": "Double"}])),
        ("acme/shenzhen/assembly/line1/press1/diagnostics", b"\x00\x01binary blob"),
        ("acme/shenzhen/assembly/line1/press1/telemetry", good.encode()),
    ]
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bad-device")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    for topic, payload in bad:
        pub.publish(topic, payload, qos=1).wait_for_publish(5)
    pub.loop_stop()
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    t = s.tables["sensor_readings"]
    assert s.raw_rows == len(bad) and s.stats["raw_only"] == 1
    assert t.reasons == {
        "payload: not JSON": 1,
        "timestamp: none of ['ts', 'time_ms'] in the payload on acme/shenzhen/assembly/line1/press1/telemetry": 1,
        "value: field … is not a scalar on acme/shenzhen/assembly/line1/press1/telemetry": 1,
        "value: not a number as mapped for tag power": 1,
        "timestamp: field … is not a time": 1,
        "payload: 300002 bytes exceeds max_payload_bytes": 1,
        "topic: asset … is not in the site hierarchy": 1,
        "payload: not a Sparkplug B payload": 1,
        "payload: DDATA for line2-utilities/chiller2 before its DBIRTH": 1,
    }
    assert t.quarantined == 9 and t.published == 1
    q = quarantined(tmp / "lake", "sensor_readings", s)
    assert all(r["record"] and r["reason"] for r in q)


def test_tls_and_credentials_come_from_the_airflow_connection(tmp_path, monkeypatch):
    """A TLS-only broker with a password file: the connection's URI and extra carry everything,
    a wrong password or a missing CA fails with a clear error that never shows the password."""
    from plantlake.core.errors import SourceUnavailable
    from simulators.broker import Mosquitto

    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    cfg = load_config(tmp_path / "plant.yaml")
    with Mosquitto(data_dir=tmp_path / "broker", users={"plantlake": "s3cret-Pw", "plantsim": "pub-Pw"},
                   tls=True) as broker:
        base = f"127.0.0.1:{broker.port}"
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtts://plantlake:wrong-Pw@{base}?ca_certs={broker.ca_cert}")
        with pytest.raises(SourceUnavailable, match="refused the session") as err:
            run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
        assert "wrong-Pw" not in str(err.value)
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtt://plantlake:s3cret-Pw@{base}")  # plain TCP to TLS
        with pytest.raises(SourceUnavailable):
            run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)

        monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtts://plantlake:s3cret-Pw@{base}?ca_certs={broker.ca_cert}")
        assert run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg).raw_rows == 0
        sent = MqttPublisher(PLANT, port=broker.port, username="plantsim", password="pub-Pw",
                             ca_certs=str(broker.ca_cert)).publish(START, START + timedelta(minutes=10))
        s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert s.stats["session_present"] is True and s.quarantined == 0
    assert sorted(raw_ids(tmp_path / "lake")) == sorted(sent)
    check_curated(tmp_path / "lake", START, START + timedelta(minutes=10))


def test_v311_session_with_a_small_inflight_window_drains_everything(site, mosquitto, monkeypatch):
    """MQTT 3.1.1 brokers send only max_inflight_messages unacknowledged messages: the drain lands
    and acknowledges what it has when the broker goes quiet instead of stalling until idle."""
    cfg, tmp = site
    from plantlake.core.config import with_source

    cfg311 = with_source(cfg, "mqtt_plant", protocol="v311", client_id="plantlake-v311")
    run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg311)  # opens the 3.1.1 session
    sent = MqttPublisher(PLANT, port=mosquitto.port).publish(START, START + timedelta(minutes=20))
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg311)
    assert s.stats["messages"] >= len(sent) and len(s.raw_files) > 1
    assert set(raw_ids(tmp / "lake")) >= set(sent)
    check_curated(tmp / "lake", START, START + timedelta(minutes=20))


def test_late_and_out_of_order_messages_land_in_their_own_event_day(site, mosquitto):
    """A device that was offline flushes yesterday's readings after today's: the run for today's
    interval keeps them all, each in the date= partition of its own event time."""
    cfg, tmp = site
    stamps = ["2026-01-01T06:10:00Z", "2025-12-31T23:59:59Z", "2026-01-01T06:05:00Z", "2025-12-30T12:00:00Z"]
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="late-device")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    for i, ts in enumerate(stamps):
        body = {"msg_id": f"late-{i}", "ts": ts, "values": {"nip_force": 1000.0 + i}, "units": {"nip_force": "kN"}}
        pub.publish("acme/shenzhen/assembly/line1/press1/telemetry", json.dumps(body), qos=1).wait_for_publish(5)
    pub.loop_stop()
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert s.published == 4 and s.quarantined == 0
    rows = Lake(tmp / "lake").dataset(get_table("sensor_readings")).to_table(columns=["date", "message_id"])
    by_day: dict[str, list[str]] = {}
    for r in rows.to_pylist():
        by_day.setdefault(f"date={r['date']}", []).append(r["message_id"])
    assert {k: sorted(v) for k, v in by_day.items()} == {"date=2026-01-01": ["late-0", "late-2"],
                                                          "date=2025-12-31": ["late-1"], "date=2025-12-30": ["late-3"]}
