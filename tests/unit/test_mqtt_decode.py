"""Sparkplug B state across runs and topic patterns, decoded without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from connectors.base import RAW
from connectors.mqtt import sparkplug
from connectors.mqtt.connector import RAW_SCHEMA, MqttConnector, TopicPattern
from plantlake.core.config import load_config
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

T0 = 1767247200000  # 2026-01-01T06:00:00Z in ms
NODE, DEV = "spBv1.0/acme/{}/line1-utilities", "spBv1.0/acme/{}/line1-utilities/chiller1"


def raw(*msgs: tuple[str, bytes]) -> dict[str, pa.Table]:
    """The landed raw table of these messages, as decode receives it."""
    now = datetime(2026, 1, 1, 7, tzinfo=UTC)
    return {RAW: pa.table({"topic": [t for t, _ in msgs], "payload": [p for _, p in msgs], "qos": [1] * len(msgs),
                     "retain": [False] * len(msgs), "dup": [False] * len(msgs), "received_at": [now] * len(msgs)},
                          schema=RAW_SCHEMA)}


def connector(state: dict | None = None) -> MqttConnector:
    cfg = load_config(ROOT / "plant.yaml")
    c = MqttConnector(cfg.source("mqtt_plant"), cfg, None)
    c.state, c.stats = state or {}, {}
    return c


def birth(seq: int) -> list[tuple[str, bytes]]:
    return [
        (NODE.format("NBIRTH"), sparkplug.encode(timestamp=T0, seq=seq, metrics=[])),
        (DEV.format("DBIRTH"), sparkplug.encode(timestamp=T0, seq=seq + 1, uuid="b1", metrics=[
            {"name": "coolant_flow", "alias": 1, "datatype": "Double", "value": 40.0},
            {"name": "pump_on", "alias": 2, "datatype": "Boolean", "value": True}])),
    ]


def data(seq: int, ms: int, flow: float, uuid: str) -> tuple[str, bytes]:
    return DEV.format("DDATA"), sparkplug.encode(timestamp=T0 + ms, seq=seq, uuid=uuid,
                                                 metrics=[{"alias": 1, "value": flow}])


def test_aliases_from_a_birth_in_an_earlier_run_decode_later_data():
    first = connector()
    out = first.decode(raw(*birth(0)))
    assert out.tables["sensor_readings"].num_rows == 2  # the birth's own values
    # the next run starts from the committed state: alias 1 is still coolant_flow
    second = connector(first.state)
    out = second.decode(raw(data(2, 1000, 41.5, "d1")))
    t = out.tables["sensor_readings"].to_pylist()
    assert [(r["asset_id"], r["tag"], r["value"], r["unit"], r["message_id"]) for r in t] == [
        ("acme/shenzhen/assembly/line1/welder1", "coolant_flow", 41.5, "l/min", "d1")]
    assert len(out.rejects["sensor_readings"]) == 0 and out.stats["sparkplug_seq_gaps"] == 0


def test_seq_gaps_are_counted_and_death_marks_metrics_stale():
    c = connector()
    out = c.decode(raw(*birth(254), data(0, 1000, 41.0, "d1"), data(3, 2000, 42.0, "d2"),
                       (DEV.format("DDEATH"), sparkplug.encode(timestamp=T0 + 3000, seq=4, uuid="death", metrics=[])),
                       data(5, 4000, 43.0, "after-death")))
    assert out.stats["sparkplug_seq_gaps"] == 1  # 255 -> 0 wraps cleanly; 0 -> 3 is a gap
    rows = out.tables["sensor_readings"].to_pylist()
    dead = [r for r in rows if r["message_id"] == "death"]
    assert sorted(r["tag"] for r in dead) == ["coolant_flow", "pump_on"]
    assert all(r["status_code"] == 0x80310000 and r["value"] is None for r in dead)
    reasons = out.rejects["sensor_readings"].reasons()
    assert list(reasons) == ["payload: DDATA for line1-utilities/chiller1 after its DEATH and before a new DBIRTH "
                             "on spBv1.0/acme/DDATA/line1-utilities/chiller1"]


def test_topic_patterns_capture_levels_and_build_subscriptions():
    p = TopicPattern("acme/shenzhen/{area}/{line}/{machine}/telemetry")
    assert p.subscription == "acme/shenzhen/+/+/+/telemetry"
    assert p.match("acme/shenzhen/assembly/line1/press1/telemetry") == {
        "area": "assembly", "line": "line1", "machine": "press1"}
    assert p.match("acme/shenzhen/assembly/line1/press1/diagnostics") is None
    q = TopicPattern("spBv1.0/acme/+/{line}-utilities/chiller{n}")
    assert q.match("spBv1.0/acme/DDATA/line2-utilities/chiller2") == {"line": "line2", "n": "2"}
    assert TopicPattern("a/#").match("a/b/c") == {}


def json_device_connector(**rule) -> MqttConnector:
    """A broker of JSON devices as a new user configures it from docs/configuration.md."""
    from plantlake.core.config import parse_config

    cfg = parse_config({
        "enterprise": {"id": "nord", "sites": [{"id": "werk1", "areas": [{"id": "abfuellung", "lines": [
            {"id": "linie1", "cells": [{"id": "fueller1"}]}]}]}]},
        "sources": [{"name": "devices", "kind": "mqtt", "json": [{
            "topic": "werk1/{line}/{cell}/data", "asset": "abfuellung/{line}/{cell}", **rule}]}]})
    c = MqttConnector(cfg.source("devices"), cfg, None)
    c.state, c.stats = {}, {}
    return c


def test_id_timestamp_unit_and_quality_fields_are_never_readings():
    import json

    c = json_device_connector(values="", timestamp=["ts_ms", "time"], id="msgId", units="unit", quality="q",
                              exclude=["deviceId"])
    msgs = [("werk1/linie1/fueller1/data", json.dumps(
        {"msgId": f"m{i}", "deviceId": "FL-0815", "ts_ms": T0 + i * 1000, "unit": "degC", "q": q,
         "temp": 21.5 + i, "pressure_set": 4}).encode()) for i, q in enumerate(["good", "uncertain", 2150891520])]
    msgs.append(("werk1/linie1/fueller1/data", json.dumps(
        {"msgId": "m3", "deviceId": "FL-0815", "time": "2026-01-01T06:00:03Z", "temp": 24.5}).encode()))
    out = c.decode(raw(*msgs))
    t = out.tables["sensor_readings"].to_pylist()
    assert len(out.rejects["sensor_readings"]) == 0
    assert sorted({r["tag"] for r in t}) == ["pressure_set", "temp"]  # no ts_ms, msgId, unit, q or deviceId rows
    assert [(r["tag"], r["value"], r["unit"], r["status_code"], r["message_id"]) for r in t if r["tag"] == "temp"] == [
        ("temp", 21.5, "degC", 0, "m0"), ("temp", 22.5, "degC", 0x40000000, "m1"),
        ("temp", 23.5, "degC", 2150891520, "m2"), ("temp", 24.5, None, 0, "m3")]
    assert out.stats["fields_excluded"] == 4 and out.stats["decoded_messages"] == 4


def test_a_device_whose_fields_all_fall_outside_include_is_quarantined_with_the_reason():
    import json

    c = json_device_connector(values="", timestamp=["ts"], include=["temp*"])
    out = c.decode(raw(("werk1/linie1/fueller1/data", json.dumps({"ts": T0, "level": 3}).encode())))
    assert out.tables["sensor_readings"].num_rows == 0
    assert "none of the fields ['level'] is a value by include ['temp*']" in out.rejects["sensor_readings"].rows[0]["reason"]


def test_an_mqtt_tag_ref_in_another_form_than_topic_field_fails_the_config_check():
    from plantlake.core.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"an MQTT ref is <topic>#<field>"):
        parse_config({
            "enterprise": {"id": "nord", "sites": [{"id": "werk1", "areas": [{"id": "a", "lines": [{"id": "l1"}]}]}]},
            "sources": [{"name": "devices", "kind": "mqtt", "json": [{"topic": "werk1/x", "asset": "a/l1"}],
                         "tags": [{"ref": "werk1/x/temp", "asset": "a/l1", "tag": "temp", "unit": "degF"}]}]})


def test_a_redelivered_message_is_decoded_once():
    """QoS 1 redelivers: the same bytes on the same topic twice give one quarantine row and no seq
    gap, and are counted as redelivered (every message still ends in exactly one outcome)."""
    c = connector()
    garbage = ("acme/shenzhen/assembly/line1/press1/telemetry", b"\xff not json {")
    out = c.decode(raw(*birth(0), data(2, 1000, 41.5, "d1"), data(2, 1000, 41.5, "d1"), garbage, garbage))
    assert len(out.rejects["sensor_readings"]) == 1
    assert (out.stats["redelivered"], out.stats["sparkplug_seq_gaps"], out.stats["decoded_messages"]) == (2, 0, 2)


def test_a_chunk_delivered_again_in_the_next_run_is_no_gap_and_not_decoded_twice():
    """A run's acknowledgements lost with the broker: the next run receives the chunk again. Its
    messages are older than the node's newest decoded one; they count as redelivered, make no seq
    gap, and are not decoded again (after a rebirth their aliases would be misread)."""
    first = connector()
    first.decode(raw(*birth(0), data(2, 1000, 41.0, "d2"), data(3, 2000, 42.0, "d3"), data(4, 3000, 43.0, "d4")))
    second = connector(first.state)
    out = second.decode(raw(data(3, 2000, 42.0, "d3"), data(4, 3000, 43.0, "d4"), data(5, 4000, 44.0, "d5")))
    assert [r["message_id"] for r in out.tables["sensor_readings"].to_pylist()] == ["d5"]
    assert (out.stats["redelivered"], out.stats["sparkplug_seq_gaps"]) == (2, 0)


def test_a_poison_message_delivered_again_into_a_later_interval_is_quarantined_once():
    from datetime import timedelta

    from plantlake.core.lake import Interval

    garbage = ("acme/shenzhen/assembly/line1/press1/telemetry", b"\xff not json {")
    t = datetime(2026, 1, 1, 6, tzinfo=UTC)
    first, later = Interval(t, t + timedelta(hours=1)), Interval(t + timedelta(hours=1), t + timedelta(hours=2))
    c = connector()
    c.interval = first
    assert len(c.decode(raw(garbage)).rejects["sensor_readings"]) == 1
    again = connector(c.state)
    again.interval = first  # a rerun of its own interval quarantines it again (its file is replaced)
    assert len(again.decode(raw(garbage)).rejects["sensor_readings"]) == 1
    moved = connector(c.state)
    moved.interval = later  # the acknowledgement was lost: it arrives again with the next interval
    out = moved.decode(raw(garbage))
    assert len(out.rejects["sensor_readings"]) == 0 and out.stats["redelivered"] == 1
