"""The lean HistoryRead decoder reads exactly what asyncua's own decoder reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from asyncua import ua
from asyncua.ua.ua_binary import nodeid_to_binary, struct_to_binary

from connectors.opcua.binary import Unsupported, decode_results

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 6, tzinfo=UTC)


def response(values: list[ua.DataValue], cp: bytes | None = None) -> bytes:
    result = ua.HistoryReadResult(StatusCode=ua.StatusCode(0), ContinuationPoint=cp,
                                  HistoryData=ua.HistoryData(DataValues=values))
    empty = ua.HistoryReadResult(StatusCode=ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown))
    resp = ua.HistoryReadResponse(Results=[result, empty])
    return struct_to_binary(resp)


def test_scalars_statuses_and_timestamps_match_asyncua():
    dvs = [
        ua.DataValue(Value=ua.Variant(1.5, ua.VariantType.Double), SourceTimestamp=T0, ServerTimestamp=T0 + timedelta(milliseconds=20)),
        ua.DataValue(Value=ua.Variant(-7, ua.VariantType.Int32), StatusCode=ua.StatusCode(0x40900000), SourceTimestamp=T0 + timedelta(seconds=1)),
        ua.DataValue(Value=ua.Variant(True, ua.VariantType.Boolean), SourceTimestamp=T0 + timedelta(seconds=2, microseconds=123456)),
        ua.DataValue(Value=ua.Variant("RUNNING", ua.VariantType.String), SourceTimestamp=T0 + timedelta(seconds=3)),
        ua.DataValue(StatusCode=ua.StatusCode(0x808B0000), SourceTimestamp=T0 + timedelta(seconds=4)),
        ua.DataValue(Value=ua.Variant(4_000_000_000, ua.VariantType.UInt32), ServerTimestamp=T0),
    ]
    data = response(dvs, cp=b"\x01\x02")
    body = data[len(nodeid_to_binary(ua.FourByteNodeId(ua.ObjectIds.HistoryReadResponse_Encoding_DefaultBinary))) + len(struct_to_binary(ua.ResponseHeader())):]
    results = decode_results(body, 0)
    assert len(results) == 2
    h = results[0]
    assert h.continuation_point == b"\x01\x02"
    assert h.value == [1.5, -7.0, 1.0, None, None, 4e9]
    assert h.value_text == [None, None, None, "RUNNING", None, None]
    assert h.status == [0, 0x40900000, 0, 0, 0x808B0000, 0]
    us = lambda dt: int(dt.timestamp()) * 1_000_000 + dt.microsecond  # noqa: E731
    assert h.source_us == [us(T0), us(T0) + 1_000_000, us(T0) + 2_123_456, us(T0) + 3_000_000, us(T0) + 4_000_000, None]
    assert h.server_us[0] == us(T0) + 20_000
    assert h.variant == ["Double", "Int32", "Boolean", "String", "Null", "UInt32"]
    # and the same as asyncua's own decoder says
    from asyncua.common.utils import Buffer
    from asyncua.ua.ua_binary import struct_from_binary

    theirs = struct_from_binary(ua.HistoryReadResponse, Buffer(data)).Results[0].HistoryData.DataValues
    assert [dv.StatusCode.value for dv in theirs] == h.status
    assert [dv.Value.VariantType.name for dv in theirs] == h.variant
    assert results[1].status_code == ua.StatusCodes.BadNodeIdUnknown and results[1].value == []


def test_arrays_are_left_to_asyncua():
    data = response([ua.DataValue(Value=ua.Variant([1.0, 2.0], ua.VariantType.Double), SourceTimestamp=T0)])
    body = data[len(nodeid_to_binary(ua.FourByteNodeId(ua.ObjectIds.HistoryReadResponse_Encoding_DefaultBinary))) + len(struct_to_binary(ua.ResponseHeader())):]
    with pytest.raises(Unsupported, match="array"):
        decode_results(body, 0)


def test_the_connector_runs_its_session_from_plain_code_and_from_inside_an_event_loop():
    """asyncua's ThreadLoop gives the session a loop of its own: a caller inside a running loop
    (a notebook, an async runner) gets the result like a plain one, and errors come back raised."""
    import asyncio

    from connectors.opcua.connector import _run

    async def answer():
        await asyncio.sleep(0)
        return 42

    async def fail():
        raise TimeoutError("server did not answer")

    async def caller():
        return _run(answer())

    assert _run(answer()) == 42 and asyncio.run(caller()) == 42
    with pytest.raises(TimeoutError, match="server did not answer"):
        _run(fail())
