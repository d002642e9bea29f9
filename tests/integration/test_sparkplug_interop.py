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
