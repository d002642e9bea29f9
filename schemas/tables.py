"""Every curated table and product, declared once (DESIGN section 3).

Change a table additively: add a nullable column and bump `version`; then run
`plantlake schemas lock` and `plantlake schemas docs`. A test rejects anything else.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.model import Column, Table

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
F64 = pa.float64()
I64 = pa.int64()

QUALITIES = ("good", "uncertain", "bad")
ORDER_STATUSES = ("planned", "released", "running", "completed", "cancelled")
ASSET_LEVELS = ("enterprise", "site", "area", "line", "cell")


def _lineage() -> tuple[Column, ...]:
    return (
        Column("ingested_at", TS, "When plantlake wrote the row (UTC).", nullable=False),
        Column("run_id", STR, "The pipeline run (Airflow run id or CLI run id) that wrote the row.", nullable=False),
    )


SENSOR_READINGS = Table(
    name="sensor_readings",
    version=4,
    description="Every sensor value from OPC UA and MQTT, one row per asset, tag and source timestamp (historian style).",
    columns=(
        Column("ts", TS, "Source timestamp of the value (UTC, microseconds).", nullable=False),
        Column("server_ts", TS, "Server or broker timestamp when the source gives one."),
        Column("asset_id", STR, "ISA-95 asset path, e.g. acme/shenzhen/assembly/line1/press2.", nullable=False),
        Column("tag", STR, "Canonical tag name.", nullable=False),
        Column("value", F64, "Numeric value in the canonical unit."),
        Column("value_text", STR, "Value of a non-numeric tag (state, string)."),
        Column("unit", STR, "Canonical unit of `value` (pint-parseable); empty for dimensionless or text."),
        Column("quality", STR, "Data quality derived from the status code.", nullable=False, allowed=QUALITIES),
        Column("status_code", I64, "Raw OPC UA StatusCode, or the mapped code for other sources.", nullable=False, min=0),
        Column("source", STR, "Source kind the value came from.", nullable=False, kinds=True),
        Column("source_ref", STR, "Node id with namespace URI, MQTT topic or export column the value came from.", nullable=False),
        *_lineage(),
        Column("message_id", STR, "Id of the message that carried the value (MQTT msg id, Sparkplug uuid), when the source has one."),
        Column("source_name", STR, "Name of the configured source that wrote the row (`sources[].name`; `source` is its "
               "kind). Null in files written before sensor_readings v3."),
        Column("value_exact", STR, "The value exactly as sent, in digits, when it is an integer `value` (float64) "
               "cannot hold exactly: beyond ±2^53, e.g. Int64/UInt64 counters and ids over MQTT. Read this column "
               "then; `value` holds the nearest float. Null otherwise, and in files before sensor_readings v4."),
    ),
    primary_key=("asset_id", "tag", "ts"),
    partition_column="ts",
    key_scope="source",
)

PRODUCTION_ORDERS = Table(
    name="production_orders",
    version=1,
    description="Production orders from the ERP, latest version of each order.",
    columns=(
        Column("order_id", STR, "ERP production order number.", nullable=False),
        Column("material_id", STR, "Material produced.", nullable=False, references="materials.material_id"),
        Column("line_id", STR, "ISA-95 asset path of the line the order runs on.", nullable=False),
        Column("status", STR, "Order status.", nullable=False, allowed=ORDER_STATUSES),
        Column("quantity_planned", I64, "Planned quantity in pieces.", nullable=False, min=0),
        Column("quantity_produced", I64, "Produced quantity in pieces.", min=0),
        Column("quantity_scrap", I64, "Scrapped quantity in pieces.", min=0),
        Column("planned_start", TS, "Planned start (UTC)."),
        Column("planned_end", TS, "Planned end (UTC)."),
        Column("actual_start", TS, "Actual start (UTC)."),
        Column("actual_end", TS, "Actual end (UTC)."),
        Column("updated_at", TS, "Last change in the ERP (UTC); the incremental cursor.", nullable=False),
        *_lineage(),
    ),
    primary_key=("order_id",),
    key_scope="latest",
    version_column="updated_at",
)

MATERIALS = Table(
    name="materials",
    version=1,
    description="Material master data from the ERP.",
    columns=(
        Column("material_id", STR, "ERP material number.", nullable=False),
        Column("name", STR, "Material description.", nullable=False),
        Column("material_type", STR, "Material type (finished, semi-finished, raw)."),
        Column("base_unit", STR, "Base unit of measure."),
        Column("updated_at", TS, "Last change in the ERP (UTC).", nullable=False),
        *_lineage(),
    ),
    primary_key=("material_id",),
    key_scope="latest",
    version_column="updated_at",
)

QUALITY_INSPECTIONS = Table(
    name="quality_inspections",
    version=1,
    description="Quality inspection results per part and characteristic from the ERP.",
    columns=(
        Column("inspection_id", STR, "ERP inspection lot/result id.", nullable=False),
        Column("order_id", STR, "Production order the part belongs to.", nullable=False),
        Column("part_serial", STR, "Serial number of the inspected part.", nullable=False),
        Column("asset_id", STR, "ISA-95 path of the inspection station."),
        Column("inspected_at", TS, "Inspection time (UTC).", nullable=False),
        Column("characteristic", STR, "Inspected characteristic."),
        Column("measured_value", F64, "Measured value."),
        Column("lower_limit", F64, "Lower specification limit."),
        Column("upper_limit", F64, "Upper specification limit."),
        Column("unit", STR, "Unit of the measured value and limits."),
        Column("result", STR, "Inspection verdict.", nullable=False, allowed=("pass", "fail")),
        Column("defect_code", STR, "Defect code when the part failed."),
        Column("updated_at", TS, "Last change in the ERP (UTC).", nullable=False),
        *_lineage(),
    ),
    primary_key=("inspection_id",),
    partition_column="inspected_at",
    key_scope="latest",
    version_column="updated_at",
)

INSPECTION_IMAGES = Table(
    name="inspection_images",
    version=2,
    description="One row per capture (station, part, capture time, file), linked to order and ERP verdict, "
                "with a content-addressed copy of its bytes (the same bytes for several parts are several rows).",
    columns=(
        Column("image_id", STR, "sha256 of the image bytes (the blob key: identical frames share it).", nullable=False),
        Column("capture_id", STR, "The capture's key: sha256 of station, part serial, capture time and file name."),
        Column("captured_at", TS, "Capture time (UTC).", nullable=False),
        Column("asset_id", STR, "ISA-95 path of the camera station.", nullable=False),
        Column("part_serial", STR, "Serial number of the photographed part."),
        Column("order_id", STR, "Production order of the part when known."),
        Column("uri", STR, "Content-addressed copy in the lake.", nullable=False),
        Column("source_file", STR, "Name of the file in the drop folder."),
        Column("width", I64, "Width in pixels.", nullable=False, min=1),
        Column("height", I64, "Height in pixels.", nullable=False, min=1),
        Column("format", STR, "Image format (PNG, JPEG, ...).", nullable=False),
        Column("mode", STR, "Pillow colour mode."),
        Column("bytes", I64, "File size in bytes.", nullable=False, min=1),
        Column("camera_model", STR, "EXIF camera model."),
        Column("exposure_time_s", F64, "EXIF exposure time.", unit="s"),
        Column("exif_datetime", TS, "EXIF DateTimeOriginal interpreted in the site time zone (UTC)."),
        Column("brightness", F64, "Mean grey level, 0..255.", min=0, max=255),
        Column("contrast", F64, "Standard deviation of grey levels.", min=0),
        Column("sharpness", F64, "Variance of the Laplacian (higher is sharper).", min=0),
        Column("label", STR, "ERP verdict for the part when known (pass/fail).", allowed=("pass", "fail")),
        *_lineage(),
    ),
    primary_key=("capture_id",),
    partition_column="captured_at",
    key_scope="table",
)

ASSETS = Table(
    name="assets",
    version=1,
    description="The ISA-95 asset hierarchy from the site config.",
    columns=(
        Column("asset_id", STR, "ISA-95 path.", nullable=False),
        Column("parent_id", STR, "Parent asset path; null for the enterprise."),
        Column("level", STR, "ISA-95 level.", nullable=False, allowed=ASSET_LEVELS),
        Column("name", STR, "Display name.", nullable=False),
        Column("description", STR, "Free text."),
        *_lineage(),
    ),
    primary_key=("asset_id",),
)

_TAG_AGG = pa.struct(
    [
        ("asset_id", STR),
        ("tag", STR),
        ("unit", STR),
        ("n", I64),
        ("mean", F64),
        ("min", F64),
        ("max", F64),
        ("std", F64),
        ("bad_share", F64),
    ]
)

EVENTS = Table(
    name="events",
    version=1,
    description="OPC UA events and Alarms & Conditions state changes: one row per event notification the server "
                "historized (a condition's activation, acknowledgement and return to normal are three rows).",
    columns=(
        Column("event_id", STR, "The server's EventId (hex): unique per notification.", nullable=False),
        Column("time", TS, "When the event occurred at its source (the event's Time, UTC).", nullable=False),
        Column("receive_time", TS, "When the server received it (ReceiveTime, UTC)."),
        Column("event_type", STR, "Browse name of the event type, e.g. ExclusiveLevelAlarmType, AuditEventType.",
               nullable=False),
        Column("source_node", STR, "The node the event is about (SourceNode), with its namespace URI (nsu=…;…).",
               nullable=False),
        Column("source_node_name", STR, "The server's name of that node (SourceName)."),
        Column("asset_id", STR, "ISA-95 asset of the source node when the source maps it (a mapped variable's "
               "asset); null for events about other nodes, e.g. the server itself."),
        Column("tag", STR, "Tag of the source node when it is a mapped variable (the reading the alarm watches)."),
        Column("severity", I64, "Urgency, 1 (lowest) to 1000 (highest), as OPC UA Part 5 defines it.", min=1, max=1000),
        Column("message", STR, "The event's Message text."),
        Column("condition_id", STR, "Alarms and conditions: the condition's node (nsu=…;…); every state change of "
               "one alarm has the same one. Null for plain events."),
        Column("condition_name", STR, "The condition's name, e.g. WeldTempHigh."),
        Column("active", pa.bool_(), "Alarm state after the event: active (ActiveState/Id)."),
        Column("acked", pa.bool_(), "Acknowledged (AckedState/Id)."),
        Column("retain", pa.bool_(), "The condition is still of interest (Retain)."),
        Column("source", STR, "Source kind the event came from.", nullable=False, kinds=True),
        Column("source_name", STR, "Name of the configured source that wrote the row (`sources[].name`)."),
        *_lineage(),
    ),
    primary_key=("event_id",),
    partition_column="time",
)

_ALARM = pa.struct(
    [("condition_id", STR), ("condition_name", STR), ("asset_id", STR), ("tag", STR), ("severity", I64),
     ("active_from", TS), ("active_to", TS)]
)

ORDER_CONTEXT = Table(
    name="order_context",
    version=2,
    layer="products",
    description="One row per production order: its line, window, material, sensor aggregates per tag, images and inspection pass rate.",
    columns=(
        Column("order_id", STR, "ERP production order number.", nullable=False),
        Column("line_id", STR, "ISA-95 path of the line.", nullable=False),
        Column("material_id", STR, "Material produced."),
        Column("status", STR, "Order status.", allowed=ORDER_STATUSES),
        Column("quantity_planned", I64, "Planned quantity.", min=0),
        Column("quantity_produced", I64, "Produced quantity.", min=0),
        Column("planned_start", TS, "Planned start (UTC)."),
        Column("planned_end", TS, "Planned end (UTC)."),
        Column("actual_start", TS, "Actual start (UTC)."),
        Column("actual_end", TS, "Actual end (UTC)."),
        Column("sensor", pa.list_(_TAG_AGG), "Per asset and tag aggregates over the order's actual window."),
        Column("image_count", I64, "Images captured for the order's parts.", min=0),
        Column("inspections", I64, "Inspections recorded for the order.", min=0),
        Column("inspection_pass_rate", F64, "Share of inspections that passed.", min=0, max=1),
        *_lineage(),
        Column("alarms", pa.list_(_ALARM), "Alarm episodes (from `events`) on the order's line that overlapped its "
               "actual window: condition, asset and tag, severity, active from / to (to null: still active). "
               "Null in files before order_context v2."),
    ),
    primary_key=("order_id",),
    partition_column="actual_start",
)

_WINDOW_AGG = pa.struct(
    [("asset_id", STR), ("tag", STR), ("unit", STR), ("mean", F64), ("min", F64), ("max", F64), ("last", F64)]
)

_TRACE = pa.struct(
    [("asset_id", STR), ("tag", STR), ("unit", STR), ("step_s", I64), ("bad_share", F64),
     ("values", pa.list_(F64))]
)

IMAGE_TRAINING_SET = Table(
    name="image_training_set",
    version=4,
    layer="products",
    description="One row per image: URI, features, part and order, sensor features around capture, and the ERP verdict as label.",
    columns=(
        Column("image_id", STR, "sha256 of the image bytes.", nullable=False),
        Column("capture_id", STR, "The capture's key (inspection_images.capture_id)."),
        Column("uri", STR, "Content-addressed copy in the lake.", nullable=False),
        Column("captured_at", TS, "Capture time (UTC).", nullable=False),
        Column("asset_id", STR, "Camera station.", nullable=False),
        Column("line_id", STR, "Line of the station."),
        Column("part_serial", STR, "Part serial."),
        Column("order_id", STR, "Production order."),
        Column("width", I64, "Width in pixels.", min=1),
        Column("height", I64, "Height in pixels.", min=1),
        Column("brightness", F64, "Mean grey level.", min=0, max=255),
        Column("contrast", F64, "Grey level standard deviation.", min=0),
        Column("sharpness", F64, "Variance of the Laplacian.", min=0),
        Column("sensor_features", pa.list_(_WINDOW_AGG), "Sensor aggregates on the image's line in the window before capture."),
        Column("sensor_traces", pa.list_(_TRACE), "Per asset and tag on the image's line: the window's readings on a "
               "fixed grid (every step_s seconds, the last point at capture; each the last Good reading at or before "
               "it in the window, null before the first) and the share of the window's readings that were Bad or "
               "Uncertain."),
        Column("label", STR, "ERP inspection verdict (pass/fail).", allowed=("pass", "fail")),
        Column("defect_code", STR, "ERP defect code."),
        *_lineage(),
        Column("alarms", pa.list_(_ALARM), "Alarm episodes (from `events`) on the image's line that overlapped the "
               "window before capture; active_to is null when the alarm was still active at capture (what was known "
               "then). Null in files before image_training_set v4."),
    ),
    primary_key=("capture_id",),
    partition_column="captured_at",
    key_scope="table",
)

QUALITY_RESULTS = Table(
    name="quality_results",
    version=1,
    layer="_quality",
    description="One row per audit check or expectation of every run: for quality trends.",
    columns=(
        Column("validated_at", TS, "When the audit ran (UTC).", nullable=False),
        Column("run_id", STR, "The pipeline run.", nullable=False),
        Column("source", STR, "The configured source.", nullable=False),
        Column("table_name", STR, "The curated table audited.", nullable=False),
        Column("interval_start", TS, "Start of the run's data interval (UTC).", nullable=False),
        Column("expectation", STR, "The check or GX expectation, with its column.", nullable=False),
        Column("level", STR, "batch: blocks the publish; row: sets rows aside.", nullable=False,
               allowed=("batch", "row")),
        Column("success", pa.bool_(), "Whether it held.", nullable=False),
        Column("unexpected_count", I64, "Rows (or items) that broke it.", min=0),
        Column("element_count", I64, "Rows audited.", min=0),
        Column("ingested_at", TS, "When plantlake wrote the row (UTC).", nullable=False),
    ),
    primary_key=("run_id", "table_name", "expectation", "interval_start"),
    partition_column="interval_start",
    lineage=("ingested_at", "run_id", "validated_at"),
)

CROSS_SOURCE_CHECKS = Table(
    name="cross_source_checks",
    version=1,
    layer="_quality",
    description="Checks across sources after an interval is published: images without an ERP inspection, "
                "orders without sensor coverage on their line, the share of Bad/Uncertain readings per line.",
    columns=(
        Column("interval_start", TS, "Start of the checked interval (UTC).", nullable=False),
        Column("interval_end", TS, "End of the checked interval (UTC).", nullable=False),
        Column("check", STR, "Which check.", nullable=False,
               allowed=("image_has_inspection", "order_sensor_coverage", "line_bad_share")),
        Column("subject", STR, "What was checked: image id, order id or line.", nullable=False),
        Column("line_id", STR, "ISA-95 path of the line the subject belongs to, when known."),
        Column("value", F64, "The measure: 1/0 for an image with/without inspection, the covered share of an "
               "order's minutes, the bad share of a line's readings.", nullable=False),
        Column("threshold", F64, "The bound `value` is held to.", nullable=False),
        Column("success", pa.bool_(), "Whether the value is within its bound.", nullable=False),
        Column("detail", STR, "Counts behind the value."),
        Column("run_id", STR, "The run that checked.", nullable=False),
        Column("ingested_at", TS, "When plantlake wrote the row (UTC).", nullable=False),
    ),
    primary_key=("check", "subject", "interval_start"),
    partition_column="interval_start",
)

SOURCE_FRESHNESS = Table(
    name="source_freshness",
    version=1,
    layer="_quality",
    description="Each run of the quality DAG's freshness check: per source, its last published interval, how far "
                "behind now it is, and whether the source is fresh, stale or failed.",
    columns=(
        Column("checked_at", TS, "When the check ran (UTC).", nullable=False),
        Column("source", STR, "The configured source.", nullable=False),
        Column("kind", STR, "The source's kind.", nullable=False),
        Column("state", STR, "fresh: within its freshness; stale: behind it, or nothing published yet; failed: an "
               "open incident of a run that failed (terminal, or its audit held the batch back); unchecked: no "
               "freshness set and no incident.", nullable=False, allowed=("fresh", "stale", "failed", "unchecked")),
        Column("freshness_s", F64, "The source's `freshness` setting, in seconds (null: not set).", min=0),
        Column("last_interval_start", TS, "Start of the newest interval a run of the source published."),
        Column("last_interval_end", TS, "End of that interval."),
        Column("last_published_at", TS, "When that run published it."),
        Column("lag_s", F64, "checked_at minus last_interval_end, in seconds (null: nothing published yet)."),
        Column("incident", STR, "The open incident's kind and message, when the state is failed or stale."),
        Column("run_id", STR, "The quality DAG run that checked.", nullable=False),
        Column("ingested_at", TS, "When plantlake wrote the row (UTC).", nullable=False),
    ),
    primary_key=("checked_at", "source"),
    partition_column="checked_at",
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        SENSOR_READINGS,
        PRODUCTION_ORDERS,
        MATERIALS,
        QUALITY_INSPECTIONS,
        INSPECTION_IMAGES,
        EVENTS,
        ASSETS,
        ORDER_CONTEXT,
        IMAGE_TRAINING_SET,
        QUALITY_RESULTS,
        CROSS_SOURCE_CHECKS,
        SOURCE_FRESHNESS,
    )
}


def get_table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"unknown table {name!r}; declared: {', '.join(TABLES)}") from None
