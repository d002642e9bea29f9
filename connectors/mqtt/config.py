"""The site config of a `mqtt` source (MQTT brokers): what `sources[]` with `kind: mqtt` accepts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from plantlake.core.config import CAPTURE, ConfigModel, SourceBase


class _TopicRule(ConfigModel):
    @staticmethod
    def _check_template(pattern: str, template: str) -> None:
        missing = set(CAPTURE.findall(template)) - set(CAPTURE.findall(pattern))
        if missing:
            raise ValueError(f"asset uses {sorted(missing)} which the topic pattern does not capture")


class MqttJson(_TopicRule):
    """JSON telemetry: a topic pattern (`{name}` captures one level, `+`/`#` as in MQTT)
    mapped to an asset; one row per field of the values object. With `values: ''` the
    payload's top-level fields are the values, except the fields named as `id`, `timestamp`,
    `units` and `quality` (never readings), and as `include`/`exclude` select. A tag mapping
    names a field as `<topic>#<field>` (e.g. `plant/line1/filler/telemetry#temp`)."""

    topic: str = Field(min_length=1)
    asset: str = Field(min_length=1)
    values: str = Field("values", description="Field holding {tag: value}; '' for the top level.")
    units: str | None = Field("units", description="Field holding {tag: unit}, or one unit for every value "
                              "of the message, when the device sends it.")
    timestamp: list[str] = Field(default_factory=lambda: ["ts"], min_length=1,
                                 description="Candidate timestamp fields: ISO 8601 strings or epoch numbers.")
    epoch_unit: Literal["s", "ms", "us"] = "ms"
    id: str | None = Field("msg_id", description="Field with the message's unique id.")
    quality: str | None = Field(None, description="Field with the message's quality: good/uncertain/bad "
                                "or an OPC UA StatusCode number.")
    include: list[str] = Field(default_factory=lambda: ["*"], min_length=1,
                               description="Globs of the value fields to take (default all).")
    exclude: list[str] = Field(default_factory=list, description="Globs of value fields to leave out (e.g. "
                               "device ids, counters of the gateway); counted as fields_excluded.")

    @model_validator(mode="after")
    def _tpl(self) -> MqttJson:
        self._check_template(self.topic, self.asset)
        return self


class MqttSparkplug(_TopicRule):
    """Sparkplug B devices: group, edge node and device patterns mapped to an asset.

    Each device metric is a reading of tag `<metric name>` (made a tag name) on the asset; a tag
    mapping names it as `spBv1.0/<group>/<edge node>/<device>#<metric name>`. Where it lands
    follows the datatype its DBIRTH declares: Int8…UInt64, Float and Double in `value` (a
    negative IntN in either the type's width or sign-extended; an integer beyond ±2^53 also in
    `value_exact`, its exact digits), Boolean as 1/0, String, Text and UUID in `value_text`,
    DateTime as ISO 8601 text in `value_text`, an `is_null` metric as an explicit null (quality
    good). A DataSet, Template, Bytes, File, property set or array metric, and the edge node's own
    metrics (NBIRTH/NDATA, other than bdSeq and Node Control), are quarantined each with a reason
    naming what they are; the message's other metrics still land. Aliases resolve from the
    DBIRTH; a rerun or backfill decodes with the births as of its interval's start. A DDEATH,
    or the NDEATH of the live session (its bdSeq), marks every metric of the device Bad, timed
    when the broker delivered it; an NDEATH of an older session is ignored. A seq gap keeps the
    values and is counted (`sparkplug_seq_gaps` in the run summary) and logged; plantlake sends
    no rebirth request (it is not the primary host application, and needs no write access). A
    message delivered again (QoS 1 after a lost acknowledgement; older than the node's newest
    decoded one) is counted as `redelivered` and not decoded twice; so is a quarantined message
    (of any topic) delivered again into a later interval.
    """

    group: str = Field(min_length=1)
    edge_node: str = Field(min_length=1)
    device: str = "+"
    asset: str = Field(min_length=1)
    units: dict[str, str] = Field(default_factory=dict, description="Metric name -> unit the device reports in.")

    @model_validator(mode="after")
    def _tpl(self) -> MqttSparkplug:
        self._check_template(f"{self.group}/{self.edge_node}/{self.device}", self.asset)
        return self


class MqttSource(SourceBase):
    """An MQTT broker drained through a persistent session once per run (at least once)."""

    kind: Literal["mqtt"]
    client_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                                  description="Fixed client id of the persistent session (default plantlake-<name>).")
    protocol: Literal["v5", "v311"] = "v5"
    qos: Literal[1, 2] = 1
    session_expiry_s: int = Field(14 * 86400, ge=60)
    idle_s: float = Field(2.0, gt=0, description="Stop after this long without a message.")
    max_messages: int = Field(2_000_000, ge=1)
    max_bytes: int = Field(2 * 1024**3, ge=1)
    max_duration_s: float = Field(600.0, gt=0, description="A drain ends after this long even while messages keep "
                                  "coming (under a steady load the broker never goes quiet for idle_s). For a busy "
                                  "broker keep it well under the schedule interval: the run still decodes and "
                                  "publishes what it drained (bench/mqtt_sustained.py: 10 s in a 30 s schedule keeps "
                                  "up with 10,000 msg/s).")
    chunk_messages: int = Field(5000, ge=1, le=60000, description="Messages landed (and then acknowledged) together.")
    max_payload_bytes: int = Field(256 * 1024, ge=1, description="Larger payloads are quarantined. Keep it at or "
                                   "below the broker's message_size_limit (shipped: 1 MiB): the broker drops a larger "
                                   "message without telling anyone, so it would never reach plantlake to be counted.")
    json_topics: list[MqttJson] = Field(default_factory=list, alias="json")
    sparkplug: list[MqttSparkplug] = Field(default_factory=list)
    raw_topics: list[str] = Field(default_factory=list, description="Kept in raw only, counted, never decoded.")

    @model_validator(mode="after")
    def _something(self) -> MqttSource:
        if not (self.json_topics or self.sparkplug or self.raw_topics):
            raise ValueError("map at least one topic (json, sparkplug or raw_topics)")
        wrong = [t.ref for t in self.tags if "#" not in t.ref or t.ref.startswith("#") or t.ref.endswith("#")]
        if wrong:
            raise ValueError(f"tags refs {wrong} name no field: an MQTT ref is <topic>#<field> "
                             "(e.g. 'plant/line1/filler/telemetry#temp', 'spBv1.0/group/edge/device#metric')")
        return self
