"""One encoding of a rejected row, whichever stage rejected it (decode, conform, the audit all
call `record_json`; the audit and two connectors used json.dumps(default=str) before: bytes as
"b'...'", NaN bare)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from schemas.rejects import Rejects, reason_kind, record_json

pytestmark = pytest.mark.unit


def test_a_record_is_json_with_bytes_as_hex_and_no_bare_nan():
    rec = {"payload": b"\x00\xffok", "ts": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "value": float("nan"),
           "big": float("inf"), "n": 3, "__row": 7}
    text = record_json(rec)
    assert json.loads(text) == {"payload": "00ff6f6b", "ts": "2026-01-02 03:04:05+00:00", "value": "nan",
                                "big": "inf", "n": 3}
    assert "NaN" not in text and "Infinity" not in text and text == record_json(dict(reversed(rec.items())))


def test_reasons_group_by_kind_without_their_values():
    r = Rejects(stage="decode")
    data = pa.table({"ts": ["3.2.", "x"]})
    r.record(data, pa.array([True, True]), "ts", lambda row: f"ts: {row['ts']!r} is not a time in 'iso'")
    assert r.reasons() == {"ts: … is not a time in …": 2}
    assert [json.loads(x["record"]) for x in r.rows] == [{"ts": "3.2."}, {"ts": "x"}]
    assert reason_kind("value: 'abc' (row 3)") == "value: …"
    assert r.table().column_names == ["stage", "column", "reason", "record"]
