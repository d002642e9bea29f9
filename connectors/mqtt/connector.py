"""MQTT (paho-mqtt 2.x): a durable drain per run that loses nothing.

Each run connects with the source's fixed client id and a persistent session (MQTT 5
`clean_start=False` with a session expiry, or 3.1.1 `clean_session=False`), receives
what the broker queued since the last run plus what arrives until the drain goes idle
(or a message, byte or time budget is spent), and hands the messages to the runner in
chunks. The runner lands each chunk durably (fsynced Parquet) and only then does the
connector acknowledge its messages (`manual_ack=True`). A crash before that loses
nothing: the broker redelivers, and the curated key removes the duplicates.

Payloads: JSON mapped by topic pattern, Sparkplug B with BIRTH/DEATH state kept across
runs (aliases, datatypes, seq gaps reported, DEATH marks metrics stale), and raw topics
kept as bytes. Anything undecodable is quarantined with its reason.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from pydantic import BaseModel

from connectors.base import (
    RAW,
    Connector,
    Decoded,
    Extract,
    Finding,
    Raw,
    State,
    capture_regex,
    fill,
    tag_name,
)
from connectors.mqtt import sparkplug
from connectors.mqtt.session import Message, Session, open_session
from plantlake.core.lake import Interval
from schemas.rejects import Rejects, record_json

log = logging.getLogger(__name__)

TS = pa.timestamp("us", tz="UTC")
RAW_SCHEMA = pa.schema([("topic", pa.string()), ("payload", pa.binary()), ("qos", pa.int8()), ("retain", pa.bool_()),
                        ("dup", pa.bool_()), ("received_at", TS)])
BAD_NO_COMMUNICATION = 0x80310000
_EPOCH = {"s": 1_000_000, "ms": 1_000, "us": 1}
#: the instants a timestamp may name (years 1..9999, what Python's datetime holds), in µs since the epoch
MIN_US, MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999


class TopicPattern:
    """An MQTT topic pattern with `{name}` captures of whole levels and `+`/`#` wildcards."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        parts, subs = [], []
        for level in pattern.split("/"):
            if level == "#":
                parts.append(".*")
                subs.append("#")
            elif level == "+":
                parts.append("[^/]+")
                subs.append("+")
            else:
                parts.append(capture_regex(level))
                subs.append("+" if "{" in level else level)
        self.regex = re.compile("^" + "/".join(parts) + "$")
        self.subscription = "/".join(subs)

    def match(self, topic: str) -> dict[str, str] | None:
        m = self.regex.match(topic)
        return m.groupdict() if m else None



#: how long the per-interval Sparkplug state is kept: reruns and backfills within it decode exactly
SPARKPLUG_HISTORY_DAYS = 14


def _sparkplug_as_of(state: dict[str, Any], interval: Interval) -> dict[str, Any]:
    """The Sparkplug state as it stood at the interval's start: after the latest interval that
    ended by then. Without any kept interval (a state from before version 2), the current one; for
    an interval older than every kept one, nothing (its data decodes from the births it holds)."""
    history = state.get("sparkplug_history") or {}
    if not history:
        return json.loads(json.dumps(state.get("sparkplug") or {}))
    before = [k for k in history if Interval.from_key(k).end <= interval.start]
    if not before:
        return {}
    return json.loads(json.dumps(history[max(before, key=lambda k: Interval.from_key(k).end)]))


class MqttSession(BaseModel):
    """The durable session plantlake left on the broker: the next run checks the broker still has it."""

    client_id: str
    left_at: float
    expiry_s: int


class MqttState(State):
    """Version 2 keeps the Sparkplug state per interval: a rerun or backfill decodes from the state
    as of its interval's start, and an older interval never overwrites a newer one's."""

    version: int = 2
    session: MqttSession | None = None
    #: per Sparkplug edge node (group/edge), its last seq and each device's metric aliases, as they
    #: stood after the newest interval decoded (version 1 kept only this)
    sparkplug: dict[str, Any] = {}
    #: the same, after each interval (by interval key) of the last SPARKPLUG_HISTORY_DAYS
    sparkplug_history: dict[str, dict[str, Any]] = {}
    #: [digest, interval key] of the messages quarantined lately (the newest QUARANTINED_KEPT): one
    #: delivered again into another interval is counted as redelivered, not quarantined a second time
    #: (a rerun of its own interval quarantines it again, as the file it replaces did)
    quarantined: list[tuple[str, str]] = []


class MqttConnector(Connector):
    State = MqttState

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session: Session | None = None
        self._assets: dict[tuple, str | None] = {}  # (asset template, captures) -> asset id
        self._fields: dict[tuple[int, str], bool] = {}  # (rule, JSON field) -> a value?
        self.redelivery = False  # set by the Sparkplug decode for a message delivered again
        self.json_rules = [(TopicPattern(r.topic), r) for r in self.source.json_topics]
        self.spb_rules = [(TopicPattern(f"{r.group}/{r.edge_node}/{r.device}"), r) for r in self.source.sparkplug]
        self.raw_rules = [TopicPattern(t) for t in self.source.raw_topics]
        self.state: dict[str, Any] = {}
        #: the interval extract read, and the Sparkplug state decode reads and moves on (as of its start)
        self.interval: Interval | None = None
        self.spb: dict[str, Any] | None = None
        self.stats: dict[str, Any] = {}  # the drain's counters (filled in as its batches are read)
        self.counted: dict[str, Any] = {}  # the last decode's

    @property
    def client_id(self) -> str:
        return self.source.client_id or f"plantlake-{self.source.name}"

    def lineage(self) -> tuple[str, list[str]]:
        origin, _ = super().lineage()
        return origin, self.subscriptions()

    def subscriptions(self) -> list[str]:
        subs = [p.subscription for p, _ in self.json_rules] + [p.subscription for p in self.raw_rules]
        for r in self.source.sparkplug:  # spBv1.0/<group>/<message type>/<edge node>[/<device>]
            subs.append(TopicPattern(f"spBv1.0/{r.group}/+/{r.edge_node}").subscription)
            subs.append(TopicPattern(f"spBv1.0/{r.group}/+/{r.edge_node}/{r.device}").subscription)
        return list(dict.fromkeys(subs))

    # ---- the session ---------------------------------------------------------------------

    def _connect(self) -> Session:
        self.session = open_session(self.source, self.connection, self.subscriptions(), self.stats)
        self.stats["session_present"] = self.session.present
        return self.session

    def open_session(self) -> bool:
        """Connect and subscribe once, so the broker queues for this client from now on.

        Returns whether the broker already had the session. Deployments do this by running
        the DAG once; the demo and tests call it before the plant starts publishing.
        """
        self.stats = {"messages": 0, "bytes": 0}
        self._connect()
        self.close()
        return self.stats["session_present"]

    def extract(self, interval: Interval, state: dict[str, Any]) -> Extract:
        self.state = json.loads(json.dumps(state))  # decode updates it; the runner commits it after publish
        self.interval = interval
        self.spb = _sparkplug_as_of(self.state, interval)  # what decode reads and moves on
        self.stats = {"messages": 0, "bytes": 0}
        session = self._connect()
        self._check_session(self.state.get("session"))
        # what the next run checks the broker against: plantlake left this session now
        self.state["session"] = {"client_id": self.client_id, "left_at": time.time(),
                                 "expiry_s": self.source.session_expiry_s}
        self._chunks: list[list[tuple[int, int, int]]] = []

        def ack(i: int) -> None:
            lost = session.ack(self._chunks[i])
            if lost:  # received on a connection since lost: the broker delivers these again
                self.stats["acks_lost"] = self.stats.get("acks_lost", 0) + lost
                log.warning("source %s: %d message(s) landed but not acknowledged (the broker connection was lost); "
                            "the broker redelivers them, and curated keeps each once", self.source.name, lost)
            self._chunks[i] = []  # acknowledged: a long drain keeps no per-message bookkeeping

        return Extract.one(RAW_SCHEMA, self._drain(session), on_landed=ack, state=self.state, stats=self.stats)

    def _check_session(self, left: dict[str, Any] | None) -> None:
        """Warn when the broker has no session although plantlake left one that has not expired: it
        was taken over by another client, or the broker lost it — the messages queued for it are gone."""
        self.stats["session_lost"] = False
        if self.stats.get("session_present") or not left or left.get("client_id") != self.client_id:
            return
        age = time.time() - float(left.get("left_at", 0))
        if age < float(left.get("expiry_s", 0)):
            self.stats["session_lost"] = True
            log.warning("source %s: the broker had no session for client id %r although plantlake left one %.0f s ago "
                        "(expiry %s s): another client took it over, or the broker lost its persistence; messages "
                        "queued since then are lost. Check the broker's ACL and persistence (deploy/mosquitto/)",
                        self.source.name, self.client_id, age, left.get("expiry_s"))

    def _drain(self, session: Session) -> Iterator[pa.Table]:
        """Chunks of received messages. A chunk is handed over when it is full or when the broker
        goes quiet with messages pending (it may be waiting for our acks: MQTT 3.1.1 brokers send
        only `max_inflight_messages` unacknowledged); the drain ends after `idle_s` of silence
        with nothing pending, or when a budget is spent."""
        src = self.source
        flush_s = min(0.05, src.idle_s)
        start = last = time.monotonic()
        received: deque[Message] = deque()  # read from the session, not yet in a chunk
        while True:
            chunk: list[Message] = []
            while len(chunk) < src.chunk_messages and not self._spent(start, len(chunk)):
                if received:
                    take = min(len(received), src.chunk_messages - len(chunk),
                               max(1, src.max_messages - self.stats["messages"] - len(chunk)))
                    chunk += [received.popleft() for _ in range(take)]
                    last = time.monotonic()
                    continue
                quiet = time.monotonic() - last
                if (chunk and quiet >= flush_s) or quiet >= src.idle_s:
                    break
                received.extend(session.receive(min(0.2, (flush_s if chunk else src.idle_s) - quiet)))
            if not chunk:
                return
            self.stats["messages"] += len(chunk)
            self.stats["bytes"] += sum(len(m[1]) for m in chunk)
            self._chunks.append([(*m[6], m[2]) for m in chunk])
            yield pa.table({
                "topic": [m[0] for m in chunk], "payload": pa.array([m[1] for m in chunk], pa.binary()),
                "qos": pa.array([m[2] for m in chunk], pa.int8()), "retain": [m[3] for m in chunk],
                "dup": [m[4] for m in chunk], "received_at": pa.array([m[5] for m in chunk], pa.int64()).cast(TS),
            }, schema=RAW_SCHEMA)
            if self._spent(start):
                return
            last = time.monotonic()  # the chunk was landed and acknowledged: the broker may send more now

    def _spent(self, start: float, pending: int = 0) -> bool:
        s = self.source
        return (self.stats["messages"] + pending >= s.max_messages or self.stats["bytes"] >= s.max_bytes
                or time.monotonic() - start >= s.max_duration_s)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()  # unacknowledged messages stay queued in the session
            self.session = None

    # ---- decode ----------------------------------------------------------------------------

    def decode(self, raw: Raw) -> Decoded:
        raw = raw[RAW]
        if self.spb is None:  # decoded outside a run (no interval): the current state, moved on in place
            self.spb = self.state.setdefault("sparkplug", {})
        rejects = Rejects(stage="decode")
        rows: dict[str, list] = {k: [] for k in ("ts", "asset_id", "tag", "value", "value_text", "type", "unit",
                                                 "status_code", "source_ref", "message_id", "value_exact",
                                                 "null_sent")}
        self.metric_rejects: list[tuple[str, str]] = []  # metrics of a decoded message that are not readings
        # every message ends in exactly one of: rows, quarantine, raw only, control (lifecycle,
        # commands), or redelivered (the same bytes on the same topic again: QoS 1 redelivers)
        self.counted = dict(raw_only=0, sparkplug_seq_gaps=0, decoded_messages=0, control_messages=0,
                            fields_excluded=0, metrics_quarantined=0, sparkplug_stale_deaths=0, redelivered=0,
                            rule_hits={})
        seen: set[tuple[str, bytes]] = set()
        quarantined = self.state.setdefault("quarantined", [])
        here = self.interval.key if self.interval else ""
        earlier = {d for d, key in quarantined if key != here}
        # records as dicts of plain values; `received_at` as µs since the epoch (datetimes cost a quarter
        # of the decode), shown as a time again in a quarantine record
        cols = {n: raw[n].to_pylist() for n in raw.column_names if n != "received_at"}
        cols["received_at"] = raw["received_at"].cast(pa.int64()).to_pylist()
        names = list(cols)
        for rec in (dict(zip(names, values, strict=True)) for values in zip(*cols.values(), strict=True)):
            if (rec["topic"], rec["payload"]) in seen or (earlier and _digest(rec) in earlier):  # once: no seq gap
                self.counted["redelivered"] += 1
                continue
            seen.add((rec["topic"], rec["payload"]))
            before = len(rows["ts"])
            try:
                problem = self._decode_one(rec, rows)
            except Exception as exc:  # noqa: BLE001 - one poison message is quarantined, never the batch's end
                for col in rows.values():
                    del col[before:]
                problem = ("payload", f"payload: cannot be decoded ({exc.__class__.__name__}: {str(exc)[:160]}) "
                                      f"on {rec['topic'][:200]}")
            if problem:
                column, reason = problem
                rejects.rows.append({"stage": "decode", "column": column, "reason": reason,
                                     "record": _shown(rec)})
                quarantined.append([_digest(rec), here])
            elif self.redelivery:
                self.counted["redelivered"] += 1
            elif len(rows["ts"]) > before:
                self.counted["decoded_messages"] += 1
            elif not self._raw_only(rec["topic"]):
                self.counted["control_messages"] += 1
            # metrics of a decoded message that are not readings: each quarantined, counted apart
            # from the messages (a message is quarantined whole only when it cannot be read)
            for column, reason in [] if problem else self.metric_rejects:
                rejects.rows.append({"stage": "decode", "column": column, "reason": reason, "record": _shown(rec)})
                self.counted["metrics_quarantined"] += 1
            self.metric_rejects, self.redelivery = [], False
        del quarantined[:-QUARANTINED_KEPT]
        table = pa.table({
            "ts": pa.array(rows["ts"], pa.int64()).cast(TS), "asset_id": pa.array(rows["asset_id"], pa.string()),
            "tag": pa.array(rows["tag"], pa.string()), "value": pa.array(rows["value"], pa.float64()),
            "value_text": pa.array(rows["value_text"], pa.string()), "type": pa.array(rows["type"], pa.string()),
            "unit": pa.array(rows["unit"], pa.string()), "status_code": pa.array(rows["status_code"], pa.int64()),
            "source_ref": pa.array(rows["source_ref"], pa.string()),
            "message_id": pa.array(rows["message_id"], pa.string()), "source": pa.array(["mqtt"] * len(rows["ts"]), pa.string()),
            "value_exact": pa.array(rows["value_exact"], pa.string()),
            "null_sent": pa.array(rows["null_sent"], pa.bool_()),
        })
        return Decoded({"sensor_readings": table}, {"sensor_readings": rejects}, stats=self.counted,
                       state=self._sparkplug_after())

    def _sparkplug_after(self) -> dict[str, Any]:
        """The state to commit: this interval's Sparkplug state kept under its key; the current one
        moved on only when no newer interval was decoded (a rerun never rolls it back)."""
        if self.interval is None:
            return self.state
        history = self.state.setdefault("sparkplug_history", {})
        history[self.interval.key] = json.loads(json.dumps(self.spb))
        newest = max(history, key=lambda k: Interval.from_key(k).end)
        horizon = Interval.from_key(newest).end - timedelta(days=SPARKPLUG_HISTORY_DAYS)
        for key in [k for k in history if Interval.from_key(k).end < horizon]:
            del history[key]
        if newest == self.interval.key:
            self.state["sparkplug"] = history[newest]
        return self.state

    def _decode_one(self, rec: dict[str, Any], rows: dict[str, list]) -> tuple[str, str] | None:
        topic, payload = rec["topic"], rec["payload"]
        if len(payload) > self.source.max_payload_bytes:
            return "payload", f"payload: {len(payload)} bytes exceeds max_payload_bytes ({self.source.max_payload_bytes}) on {topic}"
        if topic.startswith("spBv1.0/"):
            return self._sparkplug(rec, rows)
        for i, (pattern, rule) in enumerate(self.json_rules):
            captures = pattern.match(topic)
            if captures is not None:
                self._hit(f"json{i}")
                return self._json(rec, rule, captures, rows)
        if self._raw_only(topic):
            self.counted["raw_only"] += 1
            return None
        return "topic", f"topic: no mapping for {topic!r}"

    def _hit(self, rule: str) -> None:
        hits = self.counted.setdefault("rule_hits", {})
        hits[rule] = hits.get(rule, 0) + 1

    def _raw_only(self, topic: str) -> bool:
        return not topic.startswith("spBv1.0/") and not any(p.match(topic) is not None for p, _ in self.json_rules) \
            and any(p.match(topic) is not None for p in self.raw_rules)

    def _asset(self, template: str, captures: dict[str, str]) -> str | None:
        key = (template, *captures.values())  # a topic's captures come in the pattern's order
        if key not in self._assets:
            self._assets[key] = self.plant.resolve_asset(fill(template, captures))
        return self._assets[key]

    def _kept(self, rule: Any, field: str) -> bool:
        """Whether a JSON field is a value by the rule's include / exclude globs (asked once per field)."""
        key = (id(rule), field)
        if key not in self._fields:
            self._fields[key] = (any(fnmatch.fnmatchcase(field, g) for g in rule.include)
                                 and not any(fnmatch.fnmatchcase(field, g) for g in rule.exclude))
        return self._fields[key]

    def probe(self, interval: Interval, *, listen_s: float = 5.0) -> list[Finding]:
        """Listen on a throwaway session (never the durable one: its queue stays as it is) to the
        source's subscriptions; per rule the topics and a sample reading, per tag mapping its field."""
        from connectors.mqtt.discover import listen

        seen = listen(self.connection, f"source {self.source.name}", listen_s, self.subscriptions())
        quiet = f"no message in {listen_s:g} s (a quiet device? listen longer: --seconds)"
        out = []
        bodies: dict[str, dict] = {}
        for t, got in seen.items():
            if not t.startswith("spBv1.0/") and got.payloads:
                try:
                    body = json.loads(got.payloads[-1])
                except ValueError:
                    continue
                if isinstance(body, dict):
                    bodies[t] = body
        for i, (pattern, rule) in enumerate(self.json_rules):
            topics = [t for t in seen if pattern.match(t) is not None]
            place = f"json[{i}] {rule.topic}"
            if not topics:
                out.append(Finding(place, False, quiet))
                continue
            t = topics[0]
            asset = self._asset(rule.asset, pattern.match(t) or {})
            if asset is None:
                out.append(Finding(place, False, f"{t}: asset {fill(rule.asset, pattern.match(t) or {})!r} is not in "
                                                 "the site hierarchy"))
                continue
            body = bodies.get(t)
            if body is None:
                out.append(Finding(place, False, f"{t}: the payload is not a JSON object"))
                continue
            values = body.get(rule.values) if rule.values else {
                k: v for k, v in body.items() if k not in {*rule.timestamp, rule.id, rule.units, rule.quality}}
            values = {k: v for k, v in (values or {}).items() if not any(fnmatch.fnmatch(k, x) for x in rule.exclude)}
            stamp = next((body[f] for f in rule.timestamp if f in body), None)
            out.append(Finding(place, bool(values) and stamp is not None,
                               f"{len(topics)} topic(s), {sum(seen[x].count for x in topics)} messages; {t} -> {asset}: "
                               + (", ".join(f"{k}={v!r}" for k, v in list(values.items())[:4]) or "NO value fields")
                               + ("" if stamp is not None else f"; NO timestamp field ({', '.join(rule.timestamp)})")))
        births: dict[str, set[str]] = {}
        for t, got in seen.items():
            parts = t.split("/")
            if len(parts) == 5 and parts[2] == "DBIRTH":
                for p in got.payloads:
                    try:
                        births.setdefault("/".join((parts[0], parts[1], parts[3], parts[4])), set()).update(
                            m.name for m in sparkplug.decode(p).metrics if m.name)
                    except Exception:  # noqa: BLE001 - not Sparkplug B: the rule reports what it saw
                        continue
        for i, (pattern, rule) in enumerate(self.spb_rules):
            devices = sorted({"/".join((p[1], p[3], p[4])) for p in (t.split("/") for t in seen)
                              if len(p) == 5 and p[0] == "spBv1.0" and pattern.match("/".join((p[1], p[3], p[4])))})
            place = f"sparkplug[{i}] {rule.group}/{rule.edge_node}/{rule.device}"
            out.append(Finding(place, bool(devices), f"{len(devices)} device(s): {', '.join(devices[:5])}" if devices
                               else quiet))
        for i, pattern in enumerate(self.raw_rules):
            n = sum(g.count for t, g in seen.items() if pattern.match(t) is not None)
            out.append(Finding(f"raw_topics[{i}] {pattern.pattern}", n > 0, f"{n} messages" if n else quiet))
        for k, tag in enumerate(self.source.tags):
            topic, _, fld = tag.ref.rpartition("#")
            body = bodies.get(topic)
            found = fld in births.get(topic, set()) or (body is not None and (fld in body or any(
                isinstance(body.get(r.values), dict) and fld in body[r.values] for _, r in self.json_rules if r.values)))
            out.append(Finding(f"tags[{k}] {tag.ref}", bool(found),
                               "field seen" if found else ("topic seen, no such field" if topic in seen or topic in births
                                                           else quiet)))
        return out

    def unmatched(self) -> list[str]:
        if not self.stats.get("messages"):
            return []
        hits = self.counted.get("rule_hits", {})
        return ([f"json[{i}] topic {r.topic!r} matched no message" for i, (_, r) in enumerate(self.json_rules)
                 if not hits.get(f"json{i}")]
                + [f"sparkplug[{i}] {r.group}/{r.edge_node}/{r.device} matched no message"
                   for i, (_, r) in enumerate(self.spb_rules) if not hits.get(f"spb{i}")])

    def _json(self, rec: dict, rule: Any, captures: dict, rows: dict[str, list]) -> tuple[str, str] | None:
        topic = rec["topic"]
        try:
            body = json.loads(rec["payload"])
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # also too deep, or a 5,000-digit number
            return "payload", f"payload: not JSON ({exc.__class__.__name__}: {str(exc)[:80]}) on {topic}"
        if not isinstance(body, dict):
            return "payload", f"payload: expected a JSON object, got {type(body).__name__} on {topic}"
        asset = self._asset(rule.asset, captures)
        if asset is None:
            return "topic", f"topic: asset {fill(rule.asset, captures)!r} is not in the site hierarchy ({topic})"
        ts = None
        for f in rule.timestamp:
            if f in body and body[f] is not None:
                ts = _timestamp(body[f], rule.epoch_unit)
                if ts is None:
                    return "timestamp", f"timestamp: field {f!r} is not a time ({body[f]!r}) on {topic}"
                break
        if ts is None:
            return "timestamp", f"timestamp: none of {rule.timestamp} in the payload on {topic}"
        meta = {rule.id, *rule.timestamp, rule.units, rule.quality} - {None}  # never readings
        values = body.get(rule.values) if rule.values else {k: v for k, v in body.items() if k not in meta}
        if not isinstance(values, dict) or not values:
            return "payload", f"payload: no {rule.values or 'top-level'} object of values on {topic}"
        kept = {k: v for k, v in values.items() if self._kept(rule, k)}
        if not kept:
            return "payload", (f"payload: none of the fields {sorted(values)[:10]} is a value by include "
                               f"{rule.include} / exclude {rule.exclude} on {topic}")
        units = body.get(rule.units) if rule.units else None
        unit_of = (lambda f: units.get(f)) if isinstance(units, dict) else (
            (lambda f: units) if isinstance(units, str) else (lambda f: None))
        status = 0
        if rule.quality and body.get(rule.quality) is not None:
            status = _status(body[rule.quality])
            if status is None:
                return "quality", f"quality: field {rule.quality!r} is not a quality ({body[rule.quality]!r}) on {topic}"
        msg_id = str(body[rule.id]) if rule.id and body.get(rule.id) is not None else None
        for field, v in kept.items():
            if isinstance(v, dict | list):
                return "value", f"value: field {field!r} is not a scalar on {topic}"
        self.counted["fields_excluded"] = self.counted.get("fields_excluded", 0) + len(values) - len(kept)
        for field, v in kept.items():
            self._row(rows, ts, asset, tag_name(field), v, unit_of(field), status, f"{topic}#{field}", msg_id)
        return None

    def _row(self, rows: dict[str, list], ts: int, asset: str | None, tag: str, v: Any, unit: str | None,
             status: int, ref: str, msg_id: str | None, *, kind: str | None = None, null_sent: bool = False) -> None:
        """One reading; `kind` is what the source declares it to be (a Sparkplug birth's datatype:
        text lands in value_text), `null_sent` that the source sent an explicit null."""
        if not MIN_US <= ts <= MAX_US:  # what a datetime can hold; conform judges plausibility
            raise ValueError(f"timestamp {ts} µs is outside the years 1..9999")
        rows["ts"].append(ts)
        rows["asset_id"].append(asset)
        rows["tag"].append(tag)
        # an integer float64 cannot hold exactly (an Int64/UInt64 counter or id beyond 2**53) keeps its digits
        rows["value_exact"].append(str(v) if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 2**53
                                   else None)
        if isinstance(v, bool):
            rows["value"].append(1.0 if v else 0.0)
            rows["value_text"].append(None)
            rows["type"].append("bool")
        elif isinstance(v, int | float):
            rows["value"].append(float(v))
            rows["value_text"].append(None)
            rows["type"].append(None)
        else:
            rows["value"].append(None)
            rows["value_text"].append(None if v is None else str(v))
            rows["type"].append(None)
        if kind == "text":
            rows["value"][-1], rows["value_text"][-1] = None, None if v is None else str(v)
            rows["type"][-1] = "text"
        rows["null_sent"].append(null_sent)
        rows["unit"].append(unit)
        rows["status_code"].append(status)
        rows["source_ref"].append(ref)
        rows["message_id"].append(msg_id)

    def _sparkplug(self, rec: dict, rows: dict[str, list]) -> tuple[str, str] | None:
        topic = rec["topic"]
        parts = topic.split("/")
        if len(parts) not in (4, 5):
            return "topic", f"topic: not a Sparkplug B topic ({topic!r})"
        _, group, mtype, edge = parts[:4]
        device = parts[4] if len(parts) == 5 else None
        try:
            p = sparkplug.decode(rec["payload"])
        except Exception as exc:  # protobuf raises DecodeError and friends for garbage
            return "payload", f"payload: not a Sparkplug B payload ({exc.__class__.__name__}) on {topic}"
        nodes = self.spb
        node_key = f"{group}/{edge}"
        node = nodes.setdefault(node_key, {"seq": None, "devices": {}})
        bd_seq = next((sparkplug.metric_value(m, m.datatype) for m in p.metrics if m.name == "bdSeq"), None)
        if mtype == "NBIRTH":
            node["seq"] = p.seq if p.HasField("seq") else None
            node["bdSeq"] = bd_seq
            node["last_ms"] = p.timestamp if p.HasField("timestamp") else 0
        elif mtype == "NDEATH" and None not in (bd_seq, node.get("bdSeq")) and bd_seq != node["bdSeq"]:
            # the will of an earlier session (the spec's bdSeq rule): the node is alive in a newer one
            self.counted["sparkplug_stale_deaths"] += 1
            log.warning("sparkplug %s: NDEATH with bdSeq %s while the live NBIRTH has %s: ignored", node_key,
                        bd_seq, node["bdSeq"])
            return None
        elif p.HasField("seq") and mtype != "NDEATH":
            expected = None if node["seq"] is None else (node["seq"] + 1) % 256
            last_ms = node.get("last_ms", 0)
            if p.HasField("timestamp") and (p.timestamp < last_ms or (p.timestamp == last_ms and p.seq == node["seq"])):
                # older than the newest message of the node already decoded (and published: the state is
                # committed after the publish): a chunk whose acknowledgement was lost, delivered again.
                # Its rows are in the lake; decoding it again after a rebirth would misread its aliases.
                self.redelivery = True
                return None
            if expected is not None and p.seq != expected and p.seq != node["seq"]:
                # kept: the values are real; the gap is counted in the run summary and logged
                self.counted["sparkplug_seq_gaps"] += 1
                log.warning("sparkplug %s: seq %d after %d (messages lost upstream?)", node_key, p.seq, node["seq"])
            node["seq"] = p.seq
            node["last_ms"] = max(node.get("last_ms", 0), p.timestamp if p.HasField("timestamp") else 0)
        msg_id = p.uuid or f"{topic}@{p.seq}:{p.timestamp}"
        received_us = rec["received_at"]
        base_ts = p.timestamp * 1000 if p.HasField("timestamp") else received_us
        if device is None:  # node-level messages: lifecycle, and the edge node's own metrics
            if mtype == "NDEATH":  # a will: its payload was written at CONNECT; the broker sent it now
                for dev_name, dev in node["devices"].items():
                    self._death(rows, group, edge, dev_name, dev, max(received_us, dev.get("last_us", 0) + 1),
                                msg_id)
            elif mtype in ("NBIRTH", "NDATA"):
                own = [m.name or f"alias {m.alias}" for m in p.metrics
                       if not (m.name == "bdSeq" or m.name.startswith(("Node Control/", "Properties/")))]
                self.metric_rejects += [("payload", f"payload: {mtype} metric {name!r} of edge node {group}/{edge} "
                                                    "is the node's own, not a device's: plantlake maps device "
                                                    "metrics (sparkplug[].device); kept in raw") for name in own]
            return None
        captures = None
        rule = None
        for i, (pattern, r) in enumerate(self.spb_rules):
            captures = pattern.match(f"{group}/{edge}/{device}")
            if captures is not None:
                rule = r
                self._hit(f"spb{i}")
                break
        if rule is None:
            return "topic", f"topic: no sparkplug mapping for {group}/{edge}/{device}"
        asset = self._asset(rule.asset, captures)
        if asset is None:
            return "topic", f"topic: asset {fill(rule.asset, captures)!r} is not in the site hierarchy ({topic})"
        dev = node["devices"].setdefault(device, {"aliases": {}, "names": {}, "asset": asset, "stale": True})
        dev["asset"] = asset
        if mtype == "DBIRTH":
            dev["aliases"] = {str(m.alias): [m.name, m.datatype] for m in p.metrics if m.HasField("alias")}
            dev["names"] = {m.name: m.datatype for m in p.metrics}
            dev["stale"] = False
        elif mtype == "DDEATH":
            self._death(rows, group, edge, device, dev, base_ts, msg_id)
            return None
        elif mtype != "DDATA":
            return None  # NCMD/DCMD/STATE are not telemetry
        resolved = []
        for m in p.metrics:
            if m.name:
                name, dt = m.name, m.datatype or dev["names"].get(m.name)
            elif str(m.alias) in dev["aliases"]:
                name, dt = dev["aliases"][str(m.alias)]
                dt = m.datatype or dt
            else:
                return "payload", (f"payload: {mtype} for {edge}/{device} before its DBIRTH "
                                   f"(alias {m.alias} unknown) on {topic}")
            resolved.append((name, dt, m))
        if mtype == "DDATA" and dev["stale"]:
            return "payload", f"payload: DDATA for {edge}/{device} after its DEATH and before a new DBIRTH on {topic}"
        dev["last_us"] = max([dev.get("last_us", 0)] + [m.timestamp * 1000 if m.HasField("timestamp") else base_ts
                                                          for _, _, m in resolved])
        for name, dt, m in resolved:
            kind = sparkplug.READING.get(dt)
            if kind is None:  # a DataSet, Template, Bytes, File, property set or array: not one reading
                self.metric_rejects.append(("value", f"value: metric {name!r} of {edge}/{device} is a Sparkplug "
                                                     f"{sparkplug.DATATYPES.get(dt, f'datatype {dt}')}, which "
                                                     "plantlake does not flatten into readings; kept in raw"))
                continue
            ts = m.timestamp * 1000 if m.HasField("timestamp") else base_ts
            value = sparkplug.metric_value(m, dt)
            if kind == "datetime" and value is not None:
                value = datetime.fromtimestamp(value / 1000, UTC).isoformat().replace("+00:00", "Z")
            self._row(rows, ts, asset, tag_name(name), value, rule.units.get(name), 0,
                      f"spBv1.0/{group}/{edge}/{device}#{name}", msg_id,
                      kind="text" if kind in ("text", "datetime") else None, null_sent=bool(m.is_null))
        return None

    def _death(self, rows: dict[str, list], group: str, edge: str, device: str, dev: dict, ts: int, msg_id: str) -> None:
        """DEATH marks every metric of the device stale: one Bad row per metric at the death time."""
        if dev.get("stale"):
            return
        dev["stale"] = True
        for name in dev["names"]:
            self._row(rows, ts, dev["asset"], tag_name(name), None, None, BAD_NO_COMMUNICATION,
                      f"spBv1.0/{group}/{edge}/{device}#{name}", msg_id)


#: how many quarantined messages' digests the state keeps
QUARANTINED_KEPT = 10_000


def _digest(rec: dict[str, Any]) -> str:
    import hashlib

    return hashlib.blake2b(rec["topic"].encode("utf-8", "replace") + b"\0" + rec["payload"], digest_size=12).hexdigest()


def _shown(rec: dict[str, Any]) -> str:
    """A quarantined message as its record: the payload as text, its first 2 KiB."""
    received = rec.get("received_at")
    if isinstance(received, int):
        received = str(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=received))  # as a datetime shows
    return record_json({**rec, "payload": rec["payload"][:2048].decode("utf-8", "replace"), "received_at": received})


_QUALITY = {"good": 0, "ok": 0, "uncertain": 0x40000000, "bad": 0x80000000}


def _status(v: Any) -> int | None:
    """An OPC UA StatusCode from a quality field: a number as sent, or good / uncertain / bad."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int) and 0 <= v < 2**32:
        return v
    if isinstance(v, str):
        return _QUALITY.get(v.strip().lower())
    return None


def _timestamp(v: Any, epoch_unit: str) -> int | None:
    """Microseconds since the epoch from an ISO 8601 string or an epoch number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        us = v * _EPOCH[epoch_unit]
        return int(us) if math.isfinite(us) and MIN_US <= us <= MAX_US else None
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        return int(dt.timestamp()) * 1_000_000 + dt.microsecond
    return None

