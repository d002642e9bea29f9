"""A connector's state is typed and versioned: what the lake stores is checked against the
connector's model on the way in and out, an older file without a version reads as version 1, and
a state it did not write fails the run naming the file (terminal: a retry would not mend it)."""

from __future__ import annotations

import pytest

from connectors.csv.connector import CsvExportConnector
from connectors.mqtt.connector import MqttConnector
from plantlake.core.config import load_config
from plantlake.core.errors import StateInvalid, Terminal
from tests.conftest import ROOT

pytestmark = pytest.mark.unit
CFG = load_config(ROOT / "plant.yaml")


def test_a_stored_state_round_trips_with_its_version_and_an_old_one_reads_as_version_1():
    c = CsvExportConnector(CFG.source("historian_export"), CFG, None)
    old = {"intervals": {"20260101T060000Z_20260101T070000Z": [["a.csv", 10, 123]]}, "watermark_ns": 5}
    state = c.load_state(old)
    assert state == old and "version" not in state
    assert c.dump_state(state) == {**old, "version": 1}
    assert c.load_state({}) == {"intervals": {}, "watermark_ns": 0}


def test_a_state_the_connector_did_not_write_fails_naming_the_file():
    c = CsvExportConnector(CFG.source("historian_export"), CFG, None)
    with pytest.raises(StateInvalid) as err:
        c.load_state({"intervals": {}, "cursor": "2026-01-01"})  # another kind's state, or edited by hand
    assert isinstance(err.value, Terminal)
    assert str(err.value).startswith("source historian_export: its state (_state/historian_export.json) is not "
                                     "a csv state (cursor: Extra inputs are not permitted)")
    with pytest.raises(StateInvalid, match="is version 7, written by a newer plantlake"):
        c.load_state({"version": 7})
    m = MqttConnector(CFG.source("mqtt_plant"), CFG, None)
    with pytest.raises(StateInvalid, match=r"session\.left_at"):
        m.load_state({"session": {"client_id": "plantlake-mqtt-plant", "left_at": "yesterday", "expiry_s": 60}})
    with pytest.raises(ValueError, match="sparkplug"):
        m.dump_state({"sparkplug": ["not", "a", "mapping"]})  # a connector cannot commit a malformed state


def test_the_sparkplug_state_is_read_as_of_the_intervals_start_and_a_version_1_state_still_reads():
    from datetime import UTC, datetime, timedelta

    from connectors.mqtt.connector import _sparkplug_as_of
    from plantlake.core.lake import Interval

    t = datetime(2026, 1, 1, 6, tzinfo=UTC)
    hour = [Interval(t + timedelta(hours=h), t + timedelta(hours=h + 1)) for h in range(4)]
    m = MqttConnector(CFG.source("mqtt_plant"), CFG, None)
    legacy = m.load_state({"version": 1, "sparkplug": {"acme/edge": {"seq": 7, "devices": {}}}})
    assert _sparkplug_as_of(legacy, hour[3]) == {"acme/edge": {"seq": 7, "devices": {}}}  # until history exists
    state = {"sparkplug": {"newest": 1}, "sparkplug_history": {hour[0].key: {"after": 0}, hour[2].key: {"after": 2}}}
    assert _sparkplug_as_of(state, hour[1]) == {"after": 0}  # a rerun of hour 2 starts from hour 1's
    assert _sparkplug_as_of(state, hour[3]) == {"after": 2}
    assert _sparkplug_as_of(state, hour[0]) == {}  # older than every kept interval: from its own births
    assert m.dump_state(legacy)["version"] == 2
