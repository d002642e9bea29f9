"""Lineage pieces on their own: the lake-file transport, dataset naming, and `trace`'s refusals."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from plantlake.app.lineage_file import FILE_ENV, LakeFileConfig, LakeFileTransport
from plantlake.core.errors import ConfigError
from plantlake.core.lake import Lake
from plantlake.pipeline.trace import trace
from schemas import get_table

pytestmark = pytest.mark.unit


def _event() -> object:
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    return RunEvent(eventType=RunState.COMPLETE, eventTime=datetime(2026, 3, 2, tzinfo=UTC).isoformat(),
                    run=Run(runId=str(uuid.uuid4())), job=Job(namespace="plantlake", name="d.t"), producer="test")


def test_the_transport_appends_one_json_line_per_event_to_the_file_the_environment_names(tmp_path, monkeypatch):
    transport = LakeFileTransport(LakeFileConfig.from_dict({}))
    monkeypatch.delenv(FILE_ENV, raising=False)
    transport.emit(_event())  # no file named: nothing kept, nothing raised
    target = tmp_path / "lake" / "_lineage" / "events.jsonl"
    monkeypatch.setenv(FILE_ENV, str(target))
    transport.emit(_event())
    transport.emit(_event())
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(e["eventType"], e["job"]["name"]) for e in lines] == [("COMPLETE", "d.t")] * 2
    assert lines[0]["run"]["runId"] != lines[1]["run"]["runId"]


def test_source_datasets_are_named_by_the_system_and_the_reference():
    from plantlake.app.lineage import source_datasets, split_uri
    from plantlake.pipeline.runner import RunSummary

    s = RunSummary("opcua_plant", "opcua", "a", "b", "r", origin="opc.tcp://10.0.0.5:4840/plantsim",
                   refs=["nsu=urn:x;Plant/{line}/*", "events i=2253"])
    inputs, facet = source_datasets(s)
    assert [(i.namespace, i.name) for i in inputs] == [("opc.tcp://10.0.0.5:4840", "/plantsim/nsu=urn:x;Plant/{line}/*"),
                                                       ("opc.tcp://10.0.0.5:4840", "/plantsim/events i=2253")]
    assert facet.refs == s.refs and inputs[0].facets["plantlake_sourceRefs"].refs == ["nsu=urn:x;Plant/{line}/*"]
    erp = RunSummary("erp", "erp", "a", "b", "r", origin="sqlite:///data/erp.sqlite", refs=["orders"])
    assert [(i.namespace, i.name) for i in source_datasets(erp)[0]] == [("sqlite:///data/erp.sqlite", "orders")]
    assert split_uri("s3://plant-lake/site1/curated/events") == ("s3://plant-lake", "site1/curated/events")


def test_trace_names_the_key_it_needs_and_the_row_it_did_not_find(tmp_path):
    lake = Lake(tmp_path / "lake").ensure()
    with pytest.raises(ConfigError, match=r"unknown table 'readings'"):
        trace(lake, "readings", ["x"])
    with pytest.raises(ConfigError, match=r"its key is \(asset_id, tag, ts\); got 1 value"):
        trace(lake, "sensor_readings", ["acme/s/a/line1/press1"])
    with pytest.raises(ConfigError, match=r"no sensor_readings rows yet"):
        trace(lake, "sensor_readings", ["acme/s/a/line1/press1", "nip_force", "2026-03-02T08:00:00Z"])
    from tests.unit.test_audit_tables import _sensor
    from tests.unit.test_cross_source import _publish

    _publish(lake, "sensor_readings", [_sensor(0)])
    row = lake.read(get_table("sensor_readings")).to_pylist()[0]
    found = trace(lake, "sensor_readings", [row["asset_id"], row["tag"], row["ts"].isoformat()])
    assert found["written_by"] == {"source": "t", "interval": found["written_by"]["interval"], "run_id": row["run_id"],
                                   "ingested_at": str(row["ingested_at"])}
    assert found["references"]["source_ref"] == row["source_ref"] and found["lineage"] == []
    with pytest.raises(ConfigError, match=r"no row with \{'asset_id': "):
        trace(lake, "sensor_readings", [row["asset_id"], row["tag"], "2020-01-01T00:00:00Z"])
    with pytest.raises(ConfigError, match=r"key column ts is timestamp\[us, tz=UTC\], not 'yesterday'"):
        from plantlake.pipeline.trace import _value

        _value(get_table("sensor_readings"), "ts", "yesterday")
