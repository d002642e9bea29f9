"""Sparkplug B as another edge node speaks it: payloads encoded with pysparkplug (an independent
implementation, never plantlake's own encoder), published to a real Mosquitto, drained by the
MQTT source as the docs configure it, compared with what was sent, value by value."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pysparkplug  # make venv installs it: the tests' independent Sparkplug encoder
import pytest

from plantlake.core.config import load_config
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from schemas import get_table
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, 6, tzinfo=UTC)
T0 = int((START + timedelta(minutes=5)).timestamp() * 1000)
GROUP, EDGE, DEVICE = "acme", "line1-utilities", "chiller1"  # plant.yaml maps it to assembly/line1/welder1
ASSET = "acme/shenzhen/assembly/line1/welder1"


def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


@pytest.fixture
def site(tmp_path, mosquitto, monkeypatch):
    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtt://127.0.0.1:{mosquitto.port}")
    cfg = load_config(tmp_path / "plant.yaml")
    run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)  # the durable session
    return cfg, mosquitto


def test_every_integer_width_and_sign_reads_back_as_sent(site):
    """Negative Int8/Int16 travel in the type's own width (pysparkplug), Int32/Int64 sign-extended:
    all read back as sent; unsigned values near their type's top stay positive."""
    from pysparkplug import DataType, DBirth, DData, Metric, NBirth

    cfg, broker = site
    D = pysparkplug.DataType
    sent = {"int8_min": (D.INT8, -128), "int8_neg": (D.INT8, -5), "int8_max": (D.INT8, 127),
            "int16_neg": (D.INT16, -1001), "int16_min": (D.INT16, -32768), "int32_neg": (D.INT32, -70000),
            "int32_min": (D.INT32, -2**31), "int64_neg": (D.INT64, -5_000_000_000_000),
            "uint8_top": (D.UINT8, 255), "uint16_top": (D.UINT16, 65535), "uint32_top": (D.UINT32, 4_000_000_000),
            "float_v": (D.FLOAT, -1.5), "double_v": (D.DOUBLE, -2.25), "bool_v": (D.BOOLEAN, True)}
    birth = tuple(Metric(timestamp=T0, name=name, datatype=dt, value=v, alias=i + 1)
                  for i, (name, (dt, v)) in enumerate(sent.items()))
    later = tuple(Metric(timestamp=T0 + 1000, name=None, datatype=dt, value=v, alias=i + 1)
                  for i, (dt, v) in enumerate(sent.values()))
    node = f"spBv1.0/{GROUP}/NBIRTH/{EDGE}"
    dev = f"spBv1.0/{GROUP}/{{}}/{EDGE}/{DEVICE}"
    _publish(broker.port, [
        (node, NBirth(timestamp=T0, seq=0, metrics=(Metric(timestamp=T0, name="bdSeq", datatype=DataType.INT64,
                                                            value=0),)).encode()),
        (dev.format("DBIRTH"), DBirth(timestamp=T0, seq=1, metrics=birth).encode()),
        (dev.format("DDATA"), DData(timestamp=T0 + 1000, seq=2, metrics=later).encode()),
    ])
    summary = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert summary.stats["messages"] == 3, summary.describe()
    rows = [r for r in Lake(cfg.lake_root()).read(get_table("sensor_readings")).to_pylist() if r["asset_id"] == ASSET]
    got = {(r["tag"], r["ts"]): r for r in rows}
    for ms in (T0, T0 + 1000):
        ts = datetime.fromtimestamp(ms / 1000, UTC)
        for name, (_dt, v) in sent.items():
            r = got[(name, ts)]
            assert (r["value"], r["quality"]) == (float(v), "good"), (name, ts, r)
            # an integer float64 holds exactly needs no second copy
            assert r["value_exact"] is None, (name, r)


def test_reruns_backfills_and_out_of_order_runs_decode_with_the_state_as_of_their_interval(site):
    """Hour 1 carries the births (alias 1 pressure, 2 flow), hour 2 data by alias only, hour 3 a
    rebirth with the aliases reversed. Rerunning hour 2 must decode it with hour 1's aliases (not
    the newest, reversed ones), and rerunning hour 1 must not roll the state back: hour 4's data,
    by the reversed aliases, still lands under the right tags. Curated is the same after each."""
    from pysparkplug import DataType, DBirth, DData, Metric, NBirth

    cfg, broker = site
    hours = [START + timedelta(hours=h) for h in range(5)]
    dev = f"spBv1.0/{GROUP}/{{}}/{EDGE}/{DEVICE}"

    def ms(h: int, minute: int) -> int:
        return int((hours[h] + timedelta(minutes=minute)).timestamp() * 1000)

    def data(h: int, seq: int, by_alias: dict[int, float]) -> tuple[str, bytes]:
        metrics = tuple(Metric(timestamp=ms(h, 10), name=None, datatype=DataType.DOUBLE, value=v, alias=a)
                        for a, v in by_alias.items())
        return dev.format("DDATA"), DData(timestamp=ms(h, 10), seq=seq, metrics=metrics).encode()

    def birth(h: int, seq: int, aliases: dict[str, int]) -> tuple[str, bytes]:
        metrics = tuple(Metric(timestamp=ms(h, 1), name=n, datatype=DataType.DOUBLE, value=0.0, alias=a)
                        for n, a in aliases.items())
        return dev.format("DBIRTH"), DBirth(timestamp=ms(h, 1), seq=seq, metrics=metrics).encode()

    node = (f"spBv1.0/{GROUP}/NBIRTH/{EDGE}", NBirth(timestamp=ms(0, 0), seq=0, metrics=(
        Metric(timestamp=ms(0, 0), name="bdSeq", datatype=DataType.INT64, value=0),)).encode())
    plan = {0: [node, birth(0, 1, {"pressure": 1, "flow": 2}), data(0, 2, {1: 100.0, 2: 5.0})],
            1: [data(1, 3, {1: 101.0, 2: 6.0})],
            2: [birth(2, 4, {"pressure": 2, "flow": 1}), data(2, 5, {1: 7.0, 2: 102.0})],
            3: [data(3, 6, {1: 8.0, 2: 103.0})]}
    want = {(0, "pressure"): 100.0, (0, "flow"): 5.0, (1, "pressure"): 101.0, (1, "flow"): 6.0,
            (2, "flow"): 7.0, (2, "pressure"): 102.0, (3, "flow"): 8.0, (3, "pressure"): 103.0}
    lake = Lake(cfg.lake_root())

    def run(h: int) -> None:
        run_source("mqtt_plant", hours[h], hours[h + 1], config=cfg)

    def curated() -> dict[tuple[int, str], float]:
        rows = [r for r in lake.read(get_table("sensor_readings")).to_pylist()
                if r["asset_id"] == ASSET and r["tag"] in ("pressure", "flow") and r["ts"].minute == 10]
        return {(hours.index(r["ts"].replace(minute=0)), r["tag"]): r["value"] for r in rows}

    for h in range(3):
        _publish(broker.port, plan[h])
        run(h)
    assert curated() == {k: v for k, v in want.items() if k[0] < 3}
    run(1)  # a rerun of hour 2: its data by hour 1's aliases, not hour 3's reversed ones
    assert curated() == {k: v for k, v in want.items() if k[0] < 3}
    run(0)  # a rerun of the first hour must not take the state back to the first aliases
    _publish(broker.port, plan[3])
    run(3)
    assert curated() == want


def test_64_bit_integers_beyond_2_53_keep_their_exact_digits(site):
    """float64 rounds Int64/UInt64 beyond 2^53 (9007199254741003 -> ...004; the UInt64 top becomes
    2^64): `value` holds the nearest float and `value_exact` the digits as sent."""
    from pysparkplug import DataType, DBirth, Metric, NBirth

    cfg, broker = site
    D = DataType
    sent = {"count_big": (D.INT64, 9_007_199_254_741_003), "count_neg": (D.INT64, -9_007_199_254_741_003),
            "uid_top": (D.UINT64, 2**64 - 1), "count_exact": (D.INT64, 2**53)}
    birth = tuple(Metric(timestamp=T0, name=n, datatype=dt, value=v, alias=i + 1)
                  for i, (n, (dt, v)) in enumerate(sent.items()))
    _publish(broker.port, [
        (f"spBv1.0/{GROUP}/NBIRTH/{EDGE}", NBirth(timestamp=T0, seq=0, metrics=(
            Metric(timestamp=T0, name="bdSeq", datatype=DataType.INT64, value=0),)).encode()),
        (f"spBv1.0/{GROUP}/DBIRTH/{EDGE}/{DEVICE}", DBirth(timestamp=T0, seq=1, metrics=birth).encode())])
    run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    rows = {r["tag"]: r for r in Lake(cfg.lake_root()).read(get_table("sensor_readings")).to_pylist()
            if r["asset_id"] == ASSET}
    for name, (_dt, v) in sent.items():
        exact = None if abs(v) <= 2**53 else str(v)
        assert (rows[name]["value"], rows[name]["value_exact"]) == (float(v), exact), name
        assert rows[name]["value_exact"] is None or int(rows[name]["value_exact"]) == v


def test_what_the_birth_declares_decides_where_a_metric_lands(site):
    """String, Text and UUID metrics land in value_text and DateTime as ISO text, from the birth's
    datatype alone (no tag mapping); an is_null metric lands as an explicit null; a metric that is
    not one reading (Bytes, an array) and the edge node's own metrics are quarantined naming what
    they are, never dropped; the other metrics of those messages still land."""
    from pysparkplug import DataType, DBirth, DData, Metric, NBirth, NData

    cfg, broker = site
    D = DataType
    stamp = datetime(2026, 1, 1, 5, 59, 30, 250000, tzinfo=UTC)
    birth = (Metric(timestamp=T0, name="recipe", datatype=D.STRING, value="A-12", alias=1),
             Metric(timestamp=T0, name="note", datatype=D.TEXT, value="warm start", alias=2),
             Metric(timestamp=T0, name="lot", datatype=D.UUID, value="6f1c0e3a-lot", alias=3),
             Metric(timestamp=T0, name="serviced", datatype=D.DATETIME, value=stamp, alias=4),
             Metric(timestamp=T0, name="setpoint", datatype=D.DOUBLE, value=None, is_null=True, alias=5),
             Metric(timestamp=T0, name="blob", datatype=D.BYTES, value=b"\x00\x01", alias=6),
             Metric(timestamp=T0, name="curve", datatype=D.DOUBLE_ARRAY, value=(1.0, 2.0), alias=7),
             Metric(timestamp=T0, name="flow", datatype=D.DOUBLE, value=4.5, alias=8))
    later = (Metric(timestamp=T0 + 1000, name=None, datatype=D.STRING, value="B-7", alias=1),
             Metric(timestamp=T0 + 1000, name=None, datatype=D.DOUBLE, value=4.75, alias=8),
             # store and forward: a value from before, sent late, keeps its own time
             Metric(timestamp=T0 - 30_000, name=None, datatype=D.DOUBLE, value=4.25, alias=8, is_historical=True))
    node_metrics = (Metric(timestamp=T0, name="bdSeq", datatype=D.INT64, value=0),
                    Metric(timestamp=T0, name="Node Control/Rebirth", datatype=D.BOOLEAN, value=False),
                    Metric(timestamp=T0, name="cabinet_temp", datatype=D.DOUBLE, value=31.0))
    _publish(broker.port, [
        (f"spBv1.0/{GROUP}/NBIRTH/{EDGE}", NBirth(timestamp=T0, seq=0, metrics=node_metrics).encode()),
        (f"spBv1.0/{GROUP}/DBIRTH/{EDGE}/{DEVICE}", DBirth(timestamp=T0, seq=1, metrics=birth).encode()),
        (f"spBv1.0/{GROUP}/DDATA/{EDGE}/{DEVICE}", DData(timestamp=T0 + 1000, seq=2, metrics=later).encode()),
        (f"spBv1.0/{GROUP}/NDATA/{EDGE}", NData(timestamp=T0 + 1000, seq=3, metrics=(
            Metric(timestamp=T0 + 1000, name="cabinet_temp", datatype=D.DOUBLE, value=31.5),)).encode()),
    ])
    summary = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    rows = [r for r in Lake(cfg.lake_root()).read(get_table("sensor_readings")).to_pylist() if r["asset_id"] == ASSET]
    got = {(r["tag"], r["ts"].timestamp()): (r["value"], r["value_text"], r["quality"]) for r in rows}
    t0, t1 = T0 / 1000, T0 / 1000 + 1
    assert got == {
        ("recipe", t0): (None, "A-12", "good"), ("recipe", t1): (None, "B-7", "good"),
        ("note", t0): (None, "warm start", "good"), ("lot", t0): (None, "6f1c0e3a-lot", "good"),
        ("serviced", t0): (None, "2026-01-01T05:59:30.250000Z", "good"),
        ("setpoint", t0): (None, None, "good"),
        ("flow", t0): (4.5, None, "good"), ("flow", t1): (4.75, None, "good"), ("flow", t0 - 30): (4.25, None, "good")}
    reasons = sorted(summary.tables["sensor_readings"].examples.values())
    assert summary.quarantined == 4 and summary.stats["metrics_quarantined"] == 4
    assert any("metric 'blob' of line1-utilities/chiller1 is a Sparkplug Bytes" in r for r in reasons), reasons
    assert any("metric 'curve' of line1-utilities/chiller1 is a Sparkplug DoubleArray" in r for r in reasons), reasons
    assert sum("'cabinet_temp' of edge node acme/line1-utilities is the node's own" in r
               for r in (json_reason for json_reason in _quarantine_reasons(cfg))) == 2
    assert summary.stats["decoded_messages"] == 2 and summary.stats["control_messages"] == 2


def _quarantine_reasons(cfg) -> list[str]:
    return [r["reason"] for r in Lake(cfg.lake_root()).read_quarantine("sensor_readings").to_pylist()]


def test_session_rules_a_stale_death_a_will_and_a_redelivered_message(site):
    """A node that reconnected (bdSeq 1) is not killed by its old session's will (bdSeq 0); the
    will of the live session, written at CONNECT, marks the metrics Bad after their last good value,
    not before it; a message delivered twice is no seq gap."""
    from pysparkplug import DataType, DBirth, DData, Metric, NBirth, NDeath

    cfg, broker = site
    D = DataType

    def bd(n: int) -> Metric:
        return Metric(timestamp=None, name="bdSeq", datatype=D.INT64, value=n)

    connect_ms = T0 - 60_000  # when the edge node connected and registered its will
    node, dev = f"spBv1.0/{GROUP}/{{}}/{EDGE}", f"spBv1.0/{GROUP}/{{}}/{EDGE}/{DEVICE}"
    flow = (Metric(timestamp=T0, name="flow", datatype=D.DOUBLE, value=4.5, alias=1),)
    data = DData(timestamp=T0 + 2000, seq=2, metrics=(
        Metric(timestamp=T0 + 2000, name=None, datatype=D.DOUBLE, value=4.75, alias=1),)).encode()
    _publish(broker.port, [
        (node.format("NBIRTH"), NBirth(timestamp=T0, seq=0, metrics=(bd(1),)).encode()),
        (dev.format("DBIRTH"), DBirth(timestamp=T0, seq=1, metrics=flow).encode()),
        (node.format("NDEATH"), NDeath(timestamp=connect_ms, bd_seq_metric=bd(0)).encode()),  # the old session's
        (dev.format("DDATA"), data),
        (dev.format("DDATA"), data),  # delivered again
        (node.format("NDEATH"), NDeath(timestamp=connect_ms, bd_seq_metric=bd(1)).encode()),  # the live session's
    ])
    summary = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    rows = sorted((r["ts"], r["value"], r["quality"]) for r in
                  Lake(cfg.lake_root()).read(get_table("sensor_readings")).to_pylist()
                  if r["asset_id"] == ASSET and r["tag"] == "flow")
    assert [(v, q) for _, v, q in rows] == [(4.5, "good"), (4.75, "good"), (None, "bad")], rows
    assert rows[-1][0] > rows[-2][0]  # the will's mark comes after the last good value
    assert summary.stats["sparkplug_stale_deaths"] == 1 and summary.stats["sparkplug_seq_gaps"] == 0
