"""Sparkplug B payloads (protobuf), without generated code.

The Payload message of the Sparkplug B specification (the fields plant telemetry uses:
timestamp, seq, uuid, body and metrics with name, alias, timestamp, datatype and the
scalar values) is declared here as a protobuf descriptor, so no protoc step is needed.
Fields this module does not declare (metadata, properties, datasets, templates) are kept
by protobuf as unknown fields and ignored.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

#: Sparkplug B metric datatypes (spec section 6.4.16)
DATATYPES = {1: "Int8", 2: "Int16", 3: "Int32", 4: "Int64", 5: "UInt8", 6: "UInt16", 7: "UInt32", 8: "UInt64",
             9: "Float", 10: "Double", 11: "Boolean", 12: "String", 13: "DateTime", 14: "Text", 15: "UUID",
             16: "DataSet", 17: "Bytes", 18: "File", 19: "Template", 20: "PropertySet", 21: "PropertySetList",
             22: "Int8Array", 23: "Int16Array", 24: "Int32Array", 25: "Int64Array", 26: "UInt8Array",
             27: "UInt16Array", 28: "UInt32Array", 29: "UInt64Array", 30: "FloatArray", 31: "DoubleArray",
             32: "BooleanArray", 33: "StringArray", 34: "DateTimeArray"}
#: what a reading of each scalar datatype is: a number, a boolean or text (DateTime: ISO 8601 text);
#: the other datatypes (DataSet, Template, Bytes, File, property sets, arrays) are not one reading
READING = {**{code: "number" for code in range(1, 11)}, 11: "bool", 12: "text", 13: "datetime", 14: "text",
           15: "text"}
DT = {v: k for k, v in DATATYPES.items()}
#: bits of the signed integer datatypes (Int8, Int16, Int32, Int64)
_SIGNED_BITS = {1: 8, 2: 16, 3: 32, 4: 64}
_VALUE_FIELD = {1: "int_value", 2: "int_value", 3: "int_value", 5: "int_value", 6: "int_value", 7: "int_value",
                4: "long_value", 8: "long_value", 13: "long_value", 9: "float_value", 10: "double_value",
                11: "boolean_value", 12: "string_value", 14: "string_value"}


@cache
def payload_class() -> Any:
    f = descriptor_pb2.FileDescriptorProto(name="plantlake_sparkplug_b.proto", package="org.eclipse.tahu.protobuf",
                                           syntax="proto2")
    payload = f.message_type.add(name="Payload")
    L, T = descriptor_pb2.FieldDescriptorProto.Label, descriptor_pb2.FieldDescriptorProto.Type
    for name, num, typ in (("timestamp", 1, T.TYPE_UINT64), ("seq", 3, T.TYPE_UINT64), ("uuid", 4, T.TYPE_STRING),
                           ("body", 5, T.TYPE_BYTES)):
        payload.field.add(name=name, number=num, type=typ, label=L.LABEL_OPTIONAL)
    payload.field.add(name="metrics", number=2, type=T.TYPE_MESSAGE, label=L.LABEL_REPEATED,
                      type_name=".org.eclipse.tahu.protobuf.Payload.Metric")
    metric = payload.nested_type.add(name="Metric")
    for name, num, typ in (("name", 1, T.TYPE_STRING), ("alias", 2, T.TYPE_UINT64), ("timestamp", 3, T.TYPE_UINT64),
                           ("datatype", 4, T.TYPE_UINT32), ("is_historical", 5, T.TYPE_BOOL),
                           ("is_transient", 6, T.TYPE_BOOL), ("is_null", 7, T.TYPE_BOOL)):
        metric.field.add(name=name, number=num, type=typ, label=L.LABEL_OPTIONAL)
    metric.oneof_decl.add(name="value")
    for name, num, typ in (("int_value", 10, T.TYPE_UINT32), ("long_value", 11, T.TYPE_UINT64),
                           ("float_value", 12, T.TYPE_FLOAT), ("double_value", 13, T.TYPE_DOUBLE),
                           ("boolean_value", 14, T.TYPE_BOOL), ("string_value", 15, T.TYPE_STRING),
                           ("bytes_value", 16, T.TYPE_BYTES)):
        metric.field.add(name=name, number=num, type=typ, label=L.LABEL_OPTIONAL, oneof_index=0)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload"))


def encode(*, timestamp: int, seq: int | None, metrics: list[dict[str, Any]], uuid: str | None = None) -> bytes:
    """metrics: dicts with name and/or alias, datatype (name or code), value, optional timestamp."""
    p = payload_class()(timestamp=timestamp)
    if seq is not None:
        p.seq = seq
    if uuid:
        p.uuid = uuid
    for m in metrics:
        pm = p.metrics.add()
        if m.get("name") is not None:
            pm.name = m["name"]
        if m.get("alias") is not None:
            pm.alias = m["alias"]
        if m.get("timestamp") is not None:
            pm.timestamp = m["timestamp"]
        dt = m.get("datatype")
        if dt is not None:
            pm.datatype = DT[dt] if isinstance(dt, str) else dt
        value = m.get("value")
        if value is None:
            pm.is_null = True
        else:
            code = pm.datatype or DT["Double"]
            if code in (1, 2, 3, 4) and value < 0:  # signed ints travel two's-complement
                value = value & (0xFFFFFFFF if code != 4 else 0xFFFFFFFFFFFFFFFF)
            setattr(pm, _VALUE_FIELD.get(code, "double_value"), value)
    return p.SerializeToString()


def decode(data: bytes) -> Any:
    """Parse bytes into a Payload message; raises google.protobuf.message.DecodeError."""
    p = payload_class()()
    p.ParseFromString(data)
    return p


def metric_value(m: Any, datatype: int | None) -> Any:
    """The Python value of a metric, using the datatype from its BIRTH when the DATA omits it."""
    if m.is_null:
        return None
    which = m.WhichOneof("value")
    if which is None:
        return None
    value = getattr(m, which)
    bits = _SIGNED_BITS.get(m.datatype or datatype)
    if bits and which in ("int_value", "long_value"):
        # a negative IntN travels in two forms in the wild: sign-extended to the protobuf field
        # (uint32 int_value, uint64 long_value: Int16 -1001 as 4294966295, as Tahu's encoders do) or
        # in the type's own width (-1001 as 64535, as pysparkplug and others do); a positive IntN
        # never reaches 2**(bits-1), so both read back the same
        field = 32 if which == "int_value" else 64
        if value >= 2 ** (field - 1):
            value -= 2**field
        elif bits < field and 2 ** (bits - 1) <= value < 2**bits:
            value -= 2**bits
    return value
