"""A lean decoder for HistoryRead responses (OPC UA binary encoding, Part 6).

asyncua decodes every DataValue through its generic, reflection-driven decoder, which
on a fast network is what a history read spends its time on. History data is regular:
scalar values with a status and two timestamps. This module reads exactly that with
`struct.unpack_from` into flat columns, and returns None for anything else (arrays,
structures, diagnostics) so the caller falls back to asyncua's decoder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

FILETIME_UNIX_US = 11_644_473_600_000_000  # 1601-01-01 -> 1970-01-01 in microseconds
HISTORY_DATA_BINARY = 658  # i=658: HistoryData_Encoding_DefaultBinary

_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_U16 = struct.Struct("<H")
#: variant type id -> (struct, python kind); String (12) is handled apart
_SCALARS = {1: (struct.Struct("<?"), "bool"), 2: (struct.Struct("<b"), "int"), 3: (struct.Struct("<B"), "int"),
            4: (struct.Struct("<h"), "int"), 5: (struct.Struct("<H"), "int"), 6: (struct.Struct("<i"), "int"),
            7: (struct.Struct("<I"), "int"), 8: (struct.Struct("<q"), "int"), 9: (struct.Struct("<Q"), "int"),
            10: (struct.Struct("<f"), "float"), 11: (struct.Struct("<d"), "float")}
VARIANT_NAMES = {1: "Boolean", 2: "SByte", 3: "Byte", 4: "Int16", 5: "UInt16", 6: "Int32", 7: "UInt32", 8: "Int64",
                 9: "UInt64", 10: "Float", 11: "Double", 12: "String", 0: "Null"}


class Unsupported(Exception):
    """The response holds something this decoder does not read; use asyncua's."""


@dataclass
class NodeHistory:
    status_code: int
    continuation_point: bytes | None
    value: list[float | None] = field(default_factory=list)
    value_text: list[str | None] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    source_us: list[int | None] = field(default_factory=list)
    server_us: list[int | None] = field(default_factory=list)
    variant: list[str | None] = field(default_factory=list)


def _us(filetime: int) -> int | None:
    return None if filetime <= 0 else filetime // 10 - FILETIME_UNIX_US


def decode_results(data: bytes, pos: int) -> list[NodeHistory]:
    """Decode `HistoryReadResult[]` starting at `pos` (after the response header)."""
    n = _I32.unpack_from(data, pos)[0]
    pos += 4
    out = []
    for _ in range(max(n, 0)):
        status = _U32.unpack_from(data, pos)[0]
        pos += 4
        ln = _I32.unpack_from(data, pos)[0]
        pos += 4
        cp = None if ln < 0 else data[pos:pos + ln]
        pos += max(ln, 0)
        node = NodeHistory(status, cp or None)
        # ExtensionObject: type id (a four-byte or two-byte node id), encoding byte, body
        enc = data[pos]
        if enc == 0x00:  # TwoByte
            type_id = data[pos + 1]
            pos += 2
        elif enc == 0x01:  # FourByte
            type_id = _U16.unpack_from(data, pos + 2)[0]
            pos += 4
        else:
            raise Unsupported(f"extension object type id encoding {enc}")
        body = data[pos]
        pos += 1
        if body == 0x00:  # no body: no data for this node
            out.append(node)
            continue
        if body != 0x01 or type_id != HISTORY_DATA_BINARY:
            raise Unsupported(f"history data of type i={type_id}")
        pos += 4  # body length
        pos = _data_values(data, pos, node)
        out.append(node)
    return out


def _data_values(data: bytes, pos: int, node: NodeHistory) -> int:
    count = _I32.unpack_from(data, pos)[0]
    pos += 4
    value, value_text, status, src, srv, variant = (node.value, node.value_text, node.status, node.source_us,
                                                    node.server_us, node.variant)
    for _ in range(max(count, 0)):
        mask = data[pos]
        pos += 1
        v: Any = None
        text: str | None = None
        vname: str | None = None
        if mask & 0x01:
            vt = data[pos]
            pos += 1
            if vt & 0xC0:
                raise Unsupported("array values")
            if vt in _SCALARS:
                st, kind = _SCALARS[vt]
                raw = st.unpack_from(data, pos)[0]
                pos += st.size
                v = (1.0 if raw else 0.0) if kind == "bool" else float(raw)
            elif vt == 12:
                ln = _I32.unpack_from(data, pos)[0]
                pos += 4
                if ln >= 0:
                    text = data[pos:pos + ln].decode("utf-8", errors="replace")
                    pos += ln
            elif vt != 0:
                raise Unsupported(f"variant type {vt}")
            vname = VARIANT_NAMES.get(vt)
        if mask & 0x02:
            status.append(_U32.unpack_from(data, pos)[0])
            pos += 4
        else:
            status.append(0)
        if mask & 0x04:
            src.append(_us(_I64.unpack_from(data, pos)[0]))
            pos += 8
        else:
            src.append(None)
        if mask & 0x10:
            pos += 2
        if mask & 0x08:
            srv.append(_us(_I64.unpack_from(data, pos)[0]))
            pos += 8
        else:
            srv.append(None)
        if mask & 0x20:
            pos += 2
        value.append(v)
        value_text.append(text)
        variant.append(vname)
    return pos


async def history_read(client: Any, params: Any) -> list[NodeHistory] | list[Any]:
    """Send a HistoryRead; decode fast when the response is plain history data.

    Returns NodeHistory objects, or asyncua's HistoryReadResult objects when the
    response needs the full decoder.
    """
    from asyncua import ua
    from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary

    session = client.uaclient.session if hasattr(client.uaclient, "session") else client.uaclient
    request = ua.HistoryReadRequest()
    request.Parameters = params
    buf = await session._send_request(request)
    raw = bytes(buf)
    header_buf = type(buf)(raw)
    nodeid_from_binary(header_buf)  # the response's type id
    header = struct_from_binary(ua.ResponseHeader, header_buf)
    header.ServiceResult.check()
    try:
        return decode_results(raw, len(raw) - len(header_buf))
    except (Unsupported, struct.error, IndexError):
        return struct_from_binary(ua.HistoryReadResponse, type(buf)(raw)).Results
