"""OPC UA events and Alarms & Conditions: HistoryRead of events (OPC UA Part 11, ReadEventDetails)
on the configured notifiers, with an EventFilter selecting the fields of Part 5's BaseEventType
and Part 9's condition types.

Each field is selected from the type that declares it (OPC UA Part 4, SimpleAttributeOperand):
EventId, EventType, SourceNode, SourceName, Time, ReceiveTime, Message and Severity from
BaseEventType; the ConditionId (the NodeId attribute, empty browse path), ConditionName and
Retain from ConditionType; AckedState/Id from AcknowledgeableConditionType; ActiveState/Id from
AlarmConditionType. A server leaves a field an event does not have null, so plain events and
alarms come back in one read. Continuation points are followed to the end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from plantlake.core.errors import HistoryRefused
from plantlake.core.lake import Interval
from schemas.rejects import Rejects

STREAM = "events"
TS = pa.timestamp("us", tz="UTC")
RAW_SCHEMA = pa.schema([
    ("notifier", pa.string()), ("event_id", pa.string()), ("time", TS), ("receive_time", TS),
    ("event_type", pa.string()), ("source_node", pa.string()), ("source_node_name", pa.string()),
    ("asset_id", pa.string()), ("tag", pa.string()), ("severity", pa.int64()), ("message", pa.string()),
    ("condition_id", pa.string()), ("condition_name", pa.string()), ("active", pa.bool_()),
    ("acked", pa.bool_()), ("retain", pa.bool_()),
])

#: (column, declaring type, browse path; empty: the NodeId attribute, i.e. the ConditionId)
FIELDS = (
    ("event_id", "BaseEventType", ("EventId",)),
    ("event_type", "BaseEventType", ("EventType",)),
    ("source_node", "BaseEventType", ("SourceNode",)),
    ("source_node_name", "BaseEventType", ("SourceName",)),
    ("time", "BaseEventType", ("Time",)),
    ("receive_time", "BaseEventType", ("ReceiveTime",)),
    ("message", "BaseEventType", ("Message",)),
    ("severity", "BaseEventType", ("Severity",)),
    ("condition_id", "ConditionType", ()),
    ("condition_name", "ConditionType", ("ConditionName",)),
    ("retain", "ConditionType", ("Retain",)),
    ("acked", "AcknowledgeableConditionType", ("AckedState", "Id")),
    ("active", "AlarmConditionType", ("ActiveState", "Id")),
)


def event_filter() -> Any:
    from asyncua import ua

    clauses = []
    for _, declared, path in FIELDS:
        op = ua.SimpleAttributeOperand()
        op.TypeDefinitionId = ua.NodeId(getattr(ua.ObjectIds, declared))
        op.BrowsePath = [ua.QualifiedName(p, 0) for p in path]
        op.AttributeId = ua.AttributeIds.Value if path else ua.AttributeIds.NodeId
        clauses.append(op)
    return ua.EventFilter(SelectClauses=clauses)


async def read_events(client: Any, notifiers: list[tuple[str, Any]], interval: Interval, *, source: str,
                      endpoint: str, timeout_s: float, ref: Callable[[Any], str],
                      mapped: dict[str, tuple[str | None, str | None]]) -> tuple[pa.Table, dict[str, int]]:
    """The events the notifiers historized in the half-open interval, as raw rows; `ref` names a
    node with its namespace URI, `mapped` gives a source node's (asset, tag) when the source maps it."""
    from asyncua import ua

    details = ua.ReadEventDetails(NumValuesPerNode=0, StartTime=interval.start,
                                  EndTime=interval.end - timedelta(microseconds=1), Filter=event_filter())
    rows: list[dict[str, Any]] = []
    type_ids: set[Any] = set()
    for name, node_id in notifiers:
        cp = None
        while True:
            params = ua.HistoryReadParameters(
                HistoryReadDetails=details, TimestampsToReturn=ua.TimestampsToReturn.Both,
                ReleaseContinuationPoints=False,
                NodesToRead=[ua.HistoryReadValueId(NodeId=node_id, ContinuationPoint=cp)])
            (res,) = await asyncio.wait_for(client.uaclient.history_read(params), timeout_s)
            if not res.StatusCode.is_good():
                raise HistoryRefused(
                    f"source {source}: {endpoint} refuses HistoryRead of events on notifier {name} "
                    f"({res.StatusCode.name}); remove it from the source's `events` or enable event history "
                    "on the server")
            for fl in (res.HistoryData.Events if res.HistoryData is not None else None) or []:
                # one value per select clause, in their order; a short or long answer is padded or cut
                values = [v.Value if v is not None else None for v in (fl.EventFields or [])][:len(FIELDS)]
                row = dict(zip([f[0] for f in FIELDS], values + [None] * (len(FIELDS) - len(values)), strict=True))
                row["notifier"] = name
                rows.append(row)
                if row["event_type"] is not None:
                    type_ids.add(row["event_type"])
            cp = res.ContinuationPoint or None
            if not cp:
                break
    names = await _browse_names(client, sorted(type_ids, key=str), timeout_s)
    out = []
    for r in rows:
        node = r["source_node"]
        source_ref = ref(node) if node is not None else None
        asset, tag = mapped.get(source_ref, (None, None)) if source_ref else (None, None)
        out.append({
            "notifier": r["notifier"], "event_id": r["event_id"].hex() if isinstance(r["event_id"], bytes) else None,
            "time": r["time"], "receive_time": r["receive_time"],
            "event_type": names.get(r["event_type"]) if r["event_type"] is not None else None,
            "source_node": source_ref, "source_node_name": r["source_node_name"], "asset_id": asset, "tag": tag,
            "severity": r["severity"], "message": getattr(r["message"], "Text", r["message"]),
            "condition_id": _condition(r, source_ref, ref),
            "condition_name": r["condition_name"], "active": r["active"], "acked": r["acked"], "retain": r["retain"]})
    table = pa.Table.from_pylist(out, schema=RAW_SCHEMA)
    lo, hi = pa.scalar(interval.start, TS), pa.scalar(interval.end, TS)
    keep = pc.or_kleene(pc.is_null(table["time"]), pc.and_(pc.greater_equal(table["time"], lo),
                                                           pc.less(table["time"], hi)))
    table = table.filter(keep)
    stats = {"events": table.num_rows,
             "events_unmapped": int(pc.sum(pc.is_null(table["asset_id"]).cast(pa.int64())).as_py() or 0)}
    return table, stats


def _condition(row: dict[str, Any], source_ref: str | None, ref: Callable[[Any], str]) -> str | None:
    """The condition's node; from a server that does not report it (the NodeId attribute of a
    condition event), the source node and condition name, `<source node>#<name>`, which are as
    stable. None for an event of no condition."""
    if row["condition_id"] is not None:
        return ref(row["condition_id"])
    if row["condition_name"] is not None and source_ref is not None:
        return f"{source_ref}#{row['condition_name']}"
    return None


async def _browse_names(client: Any, node_ids: list[Any], timeout_s: float) -> dict[Any, str]:
    """Event type NodeIds -> their browse names (one Read)."""
    from asyncua import ua

    if not node_ids:
        return {}
    dvs = await asyncio.wait_for(client.uaclient.read_attributes(node_ids, ua.AttributeIds.BrowseName), timeout_s)
    return {n: (dv.Value.Value.Name if dv.StatusCode.is_good() and dv.Value.Value is not None else n.to_string())
            for n, dv in zip(node_ids, dvs, strict=True)}


def decode(raw: pa.Table, kind: str, source_name: str) -> tuple[pa.Table, Rejects]:
    """Raw event rows -> `events` input; an event without an id, time or source node is quarantined."""
    rejects = Rejects(stage="decode")
    data = rejects.add(raw, pc.is_null(raw["event_id"]), "event_id",
                       lambda r: f"event_id: the server sent no EventId (notifier {r['notifier']})")
    data = rejects.add(data, pc.is_null(data["time"]), "time",
                       lambda r: f"time: the server sent no Time for event {r['event_id']} (notifier {r['notifier']})")
    data = rejects.add(data, pc.is_null(data["source_node"]), "source_node",
                       lambda r: f"source_node: event {r['event_id']} names no SourceNode (notifier {r['notifier']})")
    data = data.drop_columns(["notifier"])
    data = data.append_column("source", pa.array([kind] * data.num_rows, pa.string()))
    return data.append_column("source_name", pa.array([source_name] * data.num_rows, pa.string())), rejects
