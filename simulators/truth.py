"""Ground truth: what the virtual plant produced in a window, as Arrow tables.

Tests compare plantlake's curated output with these exactly: OPC UA values per node
and timestamp, MQTT messages by id with the readings they carry, images by file with
hash and label, ERP orders, parts and inspections by key.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from simulators import mqtt_publisher
from simulators.camera import Camera
from simulators.opcua_server import node_key
from simulators.story import NAMESPACE_URI, Plant

TS = pa.timestamp("us", tz="UTC")


def opcua_values(plant: Plant, start: datetime, end: datetime) -> pa.Table:
    t_us = plant.grid(start, end)
    cols: dict[str, list] = {"node": [], "asset_id": [], "tag": [], "ts": [], "value": [], "value_text": [],
                             "unit": [], "status_code": []}
    for m in plant.machines:
        for tag in m.tags("opcua"):
            values, status = plant.values(m, tag, t_us)
            n = len(t_us)
            cols["node"] += [f"nsu={NAMESPACE_URI};s={node_key(m, tag)}"] * n
            cols["asset_id"] += [m.asset_id] * n
            cols["tag"] += [tag.name] * n
            cols["ts"] += t_us.tolist()
            if tag.kind == "string":
                cols["value"] += [None] * n
                cols["value_text"] += values.tolist()
            else:
                cols["value"] += [float(v) for v in values.tolist()]
                cols["value_text"] += [None] * n
            cols["unit"] += [tag.unit] * n
            cols["status_code"] += status.tolist()
    cols["ts"] = pa.array(cols["ts"], pa.int64()).cast(TS)
    return pa.table(cols)


def mqtt_messages(plant: Plant, start: datetime, end: datetime) -> pa.Table:
    """One row per reading carried by a message (messages without readings: one row, null tag)."""
    rows = []
    for m in mqtt_publisher.messages(plant, start, end):
        kind = "sparkplug" if m.topic.startswith("spBv1.0/") else "json"
        if not m.readings:
            rows.append({"msg_id": m.msg_id, "topic": m.topic, "kind": kind, "asset_id": None, "tag": None,
                         "ts": None, "value": None, "unit": None})
        for asset, tag, ts, value, unit in m.readings:
            rows.append({"msg_id": m.msg_id, "topic": m.topic, "kind": kind, "asset_id": asset, "tag": tag,
                         "ts": ts, "value": float(value), "unit": unit})
    t = pa.Table.from_pylist(rows)
    return t.set_column(t.column_names.index("ts"), "ts", pa.array(t["ts"].to_pylist(), pa.int64()).cast(TS))


def images(plant: Plant, start: datetime, end: datetime) -> pa.Table:
    shots = Camera(plant, Path("/nonexistent")).shots(start, end, write=False)
    return pa.Table.from_pylist([{
        "file": s.name, "sidecar": s.sidecar, "station": s.station, "part_serial": s.part.serial,
        "order_id": s.part.order_id, "captured_at": s.captured_at, "format": s.format, "corrupt": s.corrupt,
        "sha256": s.sha256, "label": s.label, "defect_code": s.part.defect_code} for s in shots])


def parts(plant: Plant, start: datetime, end: datetime) -> pa.Table:
    return pa.Table.from_pylist([{
        "part_serial": p.serial, "order_id": p.order_id, "line": p.line, "started_at": p.started_at,
        "finished_at": p.finished_at, "defect": p.defect, "defect_code": p.defect_code, "measured": p.measured}
        for p in plant.parts(start, end)])


def orders(plant: Plant, start: datetime, end: datetime) -> pa.Table:
    return pa.Table.from_pylist([{
        "order_id": o.order_id, "line": o.line, "material_id": o.material_id, "planned_start": o.planned_start,
        "planned_end": o.planned_end, "actual_start": o.actual_start, "actual_end": o.actual_end,
        "quantity_planned": o.quantity_planned} for o in plant.orders(start, end)])


def write_manifest(plant: Plant, start: datetime, end: datetime, folder: Path) -> dict[str, int]:
    """Write every ground-truth table of [start, end) as Parquet into `folder`; returns row counts."""
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, fn in (("opcua_values", opcua_values), ("mqtt_messages", mqtt_messages), ("images", images),
                     ("parts", parts), ("orders", orders)):
        t = fn(plant, start, end)
        pq.write_table(t, folder / f"{name}.parquet")
        counts[name] = t.num_rows
    return counts

