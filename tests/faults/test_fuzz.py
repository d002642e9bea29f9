"""Fuzzed inputs: whatever a device, an export or a camera sends, decode and conform either keep
a row or quarantine it with a reason — they never raise, and nothing vanishes uncounted."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import RAW
from connectors.csv.connector import CsvExportConnector
from connectors.images.connector import ImagesConnector, MetadataError
from connectors.images.probe import Job, Probe, probe
from connectors.mqtt import sparkplug
from connectors.mqtt.connector import RAW_SCHEMA, MqttConnector
from plantlake.core.config import load_config
from plantlake.core.lake import BlobStore
from plantlake.core.storage import LocalStorage
from schemas import get_table
from schemas.conform import ConformContext, conform
from tests.conftest import ROOT

pytestmark = pytest.mark.faults

CFG = load_config(ROOT / "plant.yaml")
SENSOR = get_table("sensor_readings")
NOW = datetime(2026, 1, 1, 7, tzinfo=UTC)
# derandomized: CI runs the same 300 examples each time, so a failure reproduces and the report is stable
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
#: per test: examples run, inputs generated, inputs accounted for (kept, quarantined, counted or deduped)
RUNS: dict[str, list[int]] = {}
UNITS = {"test_mqtt_payloads_are_decoded_or_quarantined": "MQTT payloads (JSON, bytes, Sparkplug B)",
         "test_csv_export_rows_are_conformed_or_quarantined": "historian CSV rows",
         "test_any_file_bytes_are_probed_without_raising": "image files (any bytes)",
         "test_any_sidecar_is_read_or_refused_with_a_reason": "sidecar JSON documents"}


def _count(test: str, inputs: int, accounted: int) -> None:
    run = RUNS.setdefault(test, [0, 0, 0])
    run[0], run[1], run[2] = run[0] + 1, run[1] + inputs, run[2] + accounted


@pytest.fixture(scope="module", autouse=True)
def _report_examples():
    yield
    from tests.faults.conftest import record

    for test, (examples, inputs, accounted) in RUNS.items():
        record(f"fuzzed {UNITS[test]}", data_in=inputs, data_out=accounted, lost=inputs - accounted, duplicates=0,
               unit="inputs", note=f"{examples} hypothesis examples; every input kept, quarantined with a reason or counted")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
telemetry = st.fixed_dictionaries({}, optional={
    "msg_id": json_values, "ts": json_values | st.sampled_from(["2026-01-01T06:00:00Z", "2026-01-01 06:00:01"]),
    "time_ms": json_values | st.integers(0, 2**45),
    "values": st.dictionaries(st.sampled_from(["power", "dryer_temp", "state", "x y", ""]), json_values, max_size=4),
    "units": json_values | st.dictionaries(st.sampled_from(["power", "dryer_temp"]),
                                           st.sampled_from(["kW", "W", "degF", "furlong", "", "°C"]), max_size=2),
})
topics = st.sampled_from([
    "acme/shenzhen/assembly/line1/press1/telemetry", "acme/shenzhen/assembly/line9/press9/telemetry",
    "acme/shenzhen/assembly/line1/press1/diagnostics", "spBv1.0/acme/DDATA/line1-utilities/chiller1",
    "spBv1.0/acme/DBIRTH/line2-utilities/chiller2", "spBv1.0/acme/NDEATH/line1-utilities", "spBv1.0/x", "other/topic",
])
typed_value = st.one_of(
    st.tuples(st.just("Double"), st.none() | st.floats(allow_nan=True)),
    st.tuples(st.just("Int32"), st.none() | st.integers(-2**31, 2**31 - 1)),
    st.tuples(st.just("Boolean"), st.none() | st.booleans()),
    st.tuples(st.just("String"), st.none() | st.text(max_size=8)),
)
#: the shapes that once stopped a whole drain: nesting past the recursion limit, numbers past
#: Python's digit limit or float's range, timestamps no datetime can hold
hostile = st.one_of(
    st.integers(900, 5000).map(lambda n: ("[" * n + "]" * n).encode()),
    st.integers(300, 5000).map(lambda n: ('{"msg_id": "n", "ts": "2026-01-01T06:00:00Z", "values": {"power": '
                                          + "9" * n + "}}").encode()),
    st.sampled_from(["1e30", "1e400", "-1e30", "18446744073709551615", "1.8e19", "-9e18"]).map(
        lambda ts: ('{"msg_id": "t", "ts": ' + ts + ', "values": {"power": 1.0}}').encode()),
)
metric = st.builds(lambda tv, extra: {"datatype": tv[0], "value": tv[1], **extra}, typed_value,
                   st.fixed_dictionaries({}, optional={"name": st.text(max_size=10), "alias": st.integers(0, 5)}))


def mqtt_raw(messages: list[tuple[str, bytes]]) -> dict[str, pa.Table]:
    n = len(messages)
    return {RAW: pa.table({"topic": [t for t, _ in messages], "payload": [p for _, p in messages], "qos": [1] * n,
                     "retain": [False] * n, "dup": [False] * n, "received_at": [NOW] * n},
                          schema=RAW_SCHEMA)}


def conform_sensor(connector, decoded) -> tuple[int, int]:
    ctx = ConformContext(run_id="fuzz", ingested_at=NOW, source_kind=connector.kind,
                         tag_rules=connector.tag_rules(), timezone=connector.timezone)
    result = conform(SENSOR, decoded.tables["sensor_readings"], ctx)
    assert all(r["reason"] and r["record"] for r in result.rejects.rows)
    return result.table.num_rows, len(result.rejects)


@FUZZ
@given(st.lists(st.tuples(topics, st.one_of(
    telemetry.map(lambda d: json.dumps(d, allow_nan=True).encode()),
    st.binary(max_size=64),
    st.builds(lambda seq, ms: sparkplug.encode(timestamp=1767247200000, seq=seq, metrics=ms),
              st.integers(0, 255), st.lists(metric, max_size=3)),
    st.builds(lambda t, seq, ms: sparkplug.encode(timestamp=t, seq=seq, metrics=[{**m, "timestamp": t} for m in ms]),
              st.integers(0, 2**64 - 1), st.integers(0, 255), st.lists(metric, max_size=2)),
    hostile,
)), min_size=1, max_size=12))
def test_mqtt_payloads_are_decoded_or_quarantined(messages):
    c = MqttConnector(CFG.source("mqtt_plant"), CFG, None)
    c.state, c.stats = {}, {}
    decoded = c.decode(mqtt_raw(messages))
    rejects = decoded.rejects["sensor_readings"]
    assert all(r["reason"] and r["column"] for r in rejects.rows)
    # every message is accounted for exactly once
    counted = decoded.stats
    outcomes = (len(rejects) - counted["metrics_quarantined"] + counted["raw_only"] + counted["decoded_messages"]
                + counted["control_messages"] + counted["redelivered"])
    assert outcomes == len(messages), counted
    conform_sensor(c, decoded)
    _count("test_mqtt_payloads_are_decoded_or_quarantined", len(messages), outcomes)


@FUZZ
@given(st.lists(st.tuples(st.text(max_size=24), st.sampled_from(["L1.PRESS.FORCE", "L1.WELD.STATE", "L2.COAT.DRYER_TEMP",
                                                                  "L9.NOPE", ""]),
                          st.text(max_size=12), st.sampled_from(["kN", "°F", "W", "", "bogus"]),
                          st.text(max_size=12)), min_size=1, max_size=20))
def test_csv_export_rows_are_conformed_or_quarantined(rows):
    src = CFG.source("historian_export")
    c = CsvExportConnector(src, CFG, None)
    cols = src.columns
    raw = pa.table({cols.ts: [r[0] for r in rows], cols.ref: [r[1] for r in rows], cols.value: [r[2] for r in rows],
                    cols.unit: [r[3] for r in rows], cols.status: [r[4] for r in rows],
                    "_file": ["fuzz.csv"] * len(rows), "_line": list(range(2, len(rows) + 2))})
    decoded = c.decode({RAW: raw})
    kept, rejected = conform_sensor(c, decoded)
    duplicates = len(rows) - len(decoded.rejects["sensor_readings"]) - kept - rejected
    assert duplicates >= 0  # the rest were the same (asset, tag, ts) twice: deduped, not lost
    _count("test_csv_export_rows_are_conformed_or_quarantined", len(rows),
           len(decoded.rejects["sensor_readings"]) + kept + rejected + duplicates)


@FUZZ
@given(st.binary(max_size=2048) | st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0garbage"]),
       st.sampled_from(["a.png", "b.jpg", "c.txt", "d"]))
def test_any_file_bytes_are_probed_without_raising(tmp_path_factory, data, name):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / name).write_bytes(data)
    opts = Probe(BlobStore(LocalStorage(folder / "lake"), "images"), BlobStore(LocalStorage(folder / "lake"), "quarantine/_files"),
                 (".png", ".jpg"), 10_000_000)
    row = probe(Job(str(folder / name), name, 0, len(data), 0), opts)
    # random bytes are never a decodable image: the reason and the column it concerns come back, no exception
    assert row["error"] and row["error_column"] in ("file", "image")
    _count("test_any_file_bytes_are_probed_without_raising", 1, 1)


@FUZZ
@given(json_values | telemetry)
def test_any_sidecar_is_read_or_refused_with_a_reason(body):
    c = ImagesConnector(CFG.source("camera_images"), CFG, None)
    rec = {"file": "x.jpg", "folder": 0, "sidecar": json.dumps(body, allow_nan=True), "exif_datetime": None}
    try:
        meta = c._metadata(rec)
    except MetadataError as exc:
        assert exc.column and str(exc)
    else:
        assert meta["asset_id"] in CFG.asset_ids() and meta["captured_at"].tzinfo is not None
    _count("test_any_sidecar_is_read_or_refused_with_a_reason", 1, 1)
