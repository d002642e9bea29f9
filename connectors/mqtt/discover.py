"""`plantlake discover mqtt`: listen to a broker for a while and draft its source block.

A throwaway session (clean start, a random client id, QoS 0: nothing is queued for it and
plantlake's durable session is not touched) subscribes to `#` (or the filters given) and keeps
the first payloads of every topic. Sparkplug B topics (`spBv1.0/…`) become device rules: the
group, edge node and device seen, with each metric and datatype its DBIRTH declares. JSON topics
of one shape (depth, last level) become one topic pattern: the levels that vary are `{captures}`
mapped to the site's assets (`connectors.discovery`); the timestamp, id, unit and quality fields
are told from their values (ISO 8601 or epoch numbers by magnitude; unique strings; unit text;
good/bad/uncertain or a StatusCode), the value fields with their observed types and units are
listed, and a text field that is none of those (a device id) is excluded, never read as a reading.
Anything else is kept raw (`raw_topics`).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.discovery import Draft, Hierarchy, Named, group_rules
from plantlake.core.errors import SourceUnavailable

SAMPLES = 50  # payloads kept per topic
MAX_TOPICS = 20_000
TS_NAME = re.compile(r"^(ts|t|time|timestamp|datetime|date_time|.*_?(ts|time|timestamp|zeit|zeitpunkt)(_ms|_us|_s)?|zeit.*)$", re.I)
ID_NAME = re.compile(r"^(id|msg_?id|message_?id|uuid|guid|.*_msg_id)$", re.I)
UNIT_NAME = re.compile(r"^(unit|units|uom|eng_?unit|einheit(en)?)$", re.I)
QUALITY_NAME = re.compile(r"^(q|quality|qualitaet|qualität|status_?code)$", re.I)
QUALITY_WORDS = {"good", "bad", "uncertain", "gut", "schlecht", "unsicher"}


@dataclass
class Seen:
    count: int = 0
    payloads: list[bytes] = field(default_factory=list)


def listen(connection: Any, target: str, seconds: float, filters: list[str]) -> dict[str, Seen]:
    import paho.mqtt.client as mqtt

    from connectors.mqtt.session import authenticate

    c = connection
    if c is None or not c.host:
        raise ValueError(f"{target}: no broker host (give mqtt://host:port or a connection id)")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"plantlake-discover-{secrets.token_hex(4)}",
                         protocol=mqtt.MQTTv5)
    authenticate(client, c)
    seen: dict[str, Seen] = {}
    lock = threading.Lock()
    ready = threading.Event()
    refused: list[Any] = []

    def on_connect(cl: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            refused.append(rc)
        else:
            cl.subscribe([(f, 0) for f in filters])
        ready.set()

    def on_message(cl: Any, userdata: Any, msg: Any) -> None:
        with lock:
            s = seen.get(msg.topic)
            if s is None:
                if len(seen) >= MAX_TOPICS:
                    return
                s = seen[msg.topic] = Seen()
            s.count += 1
            if len(s.payloads) < SAMPLES or msg.topic.split("/")[2:3] in (["DBIRTH"], ["NBIRTH"]):
                s.payloads.append(msg.payload)

    client.on_connect, client.on_message = on_connect, on_message
    try:
        client.connect(c.host, c.port or 1883, keepalive=30, clean_start=True)
    except OSError as exc:
        raise SourceUnavailable(f"MQTT broker {c.host}:{c.port or 1883} unreachable ({exc.__class__.__name__}: {exc})") from exc
    client.loop_start()
    try:
        if not ready.wait(15) or refused:
            raise SourceUnavailable(f"MQTT broker {c.host}:{c.port or 1883} refused the session "
                                    f"({refused[0] if refused else 'no CONNACK'})")
        time.sleep(seconds)
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        return dict(seen)


def discover(target: str, connection: Any, *, name: str, plant: Any | None, seconds: float = 30.0,
             topics: list[str] | None = None, **_: Any) -> list[Draft]:
    """A draft for what the broker at `target` carried while plantlake listened for `seconds`."""
    began = time.monotonic()
    seen = listen(connection, target, seconds, topics or ["#"])
    return [draft(seen, name=name, plant=plant, target=target,
                  figures={"listened_s": seconds, "topics": len(seen), "messages": sum(s.count for s in seen.values()),
                           "seconds": round(time.monotonic() - began, 1)})]


def draft(seen: dict[str, Seen], *, name: str, plant: Any | None, target: str, figures: dict[str, Any]) -> Draft:
    hierarchy = Hierarchy(plant)
    spb = {t: s for t, s in seen.items() if t.startswith("spBv1.0/")}
    json_topics, raw = {}, {}
    for t, s in seen.items():
        if t in spb:
            continue
        bodies = [b for b in (_json(p) for p in s.payloads) if isinstance(b, dict)]
        (json_topics if bodies and len(bodies) == len(s.payloads) else raw)[t] = bodies
    source: dict[str, Any] = {"name": name, "kind": "mqtt", "description": f"Discovered on {target}",
                              "connection_id": name, "schedule": "0 * * * *", "client_id": f"plantlake-{name}"}
    notes: dict[tuple, str] = {
        (): (f"listened {figures['listened_s']:g} s: {figures['messages']} messages on {figures['topics']} topics; "
             "a device that sent nothing meanwhile is not here"),
        ("connection_id",): f"set AIRFLOW_CONN_{name.upper()}=mqtt://<user>:<password>@<host>:1883",
        ("client_id",): "fixed: the broker keeps this session's queue between runs (bind it to the user in the ACL)"}
    new_assets: dict[str, str] = {}
    rules = _json_rules(json_topics, hierarchy, notes, new_assets, target)
    if rules:
        source["json"] = rules
    devices = _sparkplug_rules(spb, hierarchy, notes, new_assets, target)
    if devices:
        source["sparkplug"] = devices
    if raw:
        source["raw_topics"] = sorted({_wildcard(t) for t in raw})
        notes[("raw_topics",)] = (f"{len(raw)} topic(s) whose payloads are not JSON objects or Sparkplug B (e.g. "
                                  f"{sorted(raw)[0]}): kept in raw, counted, never decoded")
    if not (rules or devices or raw):
        raise SourceUnavailable(f"{target}: no message arrived in {figures['listened_s']:g} s on the topics "
                                "subscribed: listen longer (--for), or check the broker's ACL for this user")
    return Draft(source, notes, new_assets, figures)


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None


def _wildcard(topic: str) -> str:
    levels = topic.split("/")
    return "/".join(levels[:-1] + ["+"]) if len(levels) > 2 else topic


def _json_rules(topics: dict[str, list[dict]], hierarchy: Hierarchy, notes: dict, new_assets: dict,
                target: str) -> list[dict[str, Any]]:
    by_shape: dict[tuple, list[Named]] = {}
    for t, bodies in sorted(topics.items()):
        levels = tuple(t.split("/"))
        by_shape.setdefault((len(levels), levels[-1]), []).append(Named(levels, bodies))
    out = []
    for shape in sorted(by_shape):
        for rule in group_rules(by_shape[shape], hierarchy):
            bodies = [b for m in rule.members for b in m.payload]
            entry, why = _fields(bodies)
            k = len(out)
            out.append({"topic": "/".join(rule.pattern), "asset": rule.asset, **entry})
            notes[("json", k)] = f"{len(rule.members)} topic(s), {len(bodies)} payloads sampled; " + why
            if rule.new_assets:
                notes[("json", k, "asset")] = (f"{len(rule.new_assets)} asset(s) not in the site hierarchy before; "
                                               "added below it: name and place them")
                new_assets.update({a: f"discovered on {target}" for a in rule.new_assets})
    return out


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "text"
    return "object" if isinstance(v, dict) else "list" if isinstance(v, list) else "null"


def _epoch_unit(v: float) -> str | None:
    a = abs(v)
    return "us" if 1e14 < a < 1e17 else "ms" if 1e11 < a < 1e14 else "s" if 1e8 < a < 1e11 else None


def _iso(v: Any) -> bool:
    if not isinstance(v, str) or not re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", v):
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _fields(bodies: list[dict]) -> tuple[dict[str, Any], str]:
    """The json rule's fields from sampled payloads, and the comment that says what was seen."""
    keys: dict[str, list[Any]] = {}
    for b in bodies:
        for k, v in b.items():
            keys.setdefault(k, []).append(v)
    kinds = {k: Counter(_kind(v) for v in vs) for k, vs in keys.items()}
    entry: dict[str, Any] = {}
    said: list[str] = []
    # timestamps: ISO 8601 text or epoch numbers, named like one
    ts, units_seen = [], set()
    for k, vs in keys.items():
        if all(_iso(v) for v in vs) or (TS_NAME.match(k) and all(_kind(v) == "number" and _epoch_unit(v) for v in vs)) \
                or (TS_NAME.match(k) and all(_iso(v) or (_kind(v) == "number" and _epoch_unit(v)) for v in vs)):
            ts.append(k)
            units_seen |= {_epoch_unit(v) for v in vs if _kind(v) == "number"}
    entry["timestamp"] = ts or ["ts"]
    if len(units_seen - {None}) == 1:
        entry["epoch_unit"] = next(iter(units_seen - {None}))
    elif len(units_seen - {None}) > 1:
        said.append(f"epoch timestamps in several units ({', '.join(sorted(units_seen - {None}))}): check epoch_unit")
    if not ts:
        said.append("NO timestamp field found: name it in `timestamp` (messages without one are quarantined)")
    # the id: a text field unique per message
    ids = [k for k, vs in keys.items() if k not in ts and all(isinstance(v, str) for v in vs) and len(set(vs)) == len(vs)
           and len(vs) == len(bodies)]
    ident = next((k for k in ids if ID_NAME.match(k)), ids[0] if ids else None)
    entry["id"] = ident
    if ident is None:
        said.append("no message id: a duplicate delivery is told from (asset, tag, ts)")
    # values: a nested object of numbers, else the top level
    nested = [k for k, c in kinds.items() if c["object"] == len(bodies)
              and all(all(_kind(x) in ("number", "bool", "null") for x in v.values()) for v in keys[k])]
    unit_maps = [k for k, c in kinds.items() if c["object"] == len(bodies) and k not in nested
                 and all(all(isinstance(x, str) for x in v.values()) for v in keys[k])]
    taken = set(ts) | ({ident} if ident else set())
    if nested:
        field_name = nested[0]
        entry["values"] = field_name
        unit_field = next((u for u in unit_maps if all(set(b[u]) <= set(b[field_name]) for b in bodies)), None)
        entry["units"] = unit_field
        values = {x: [b[field_name][x] for b in bodies if x in b[field_name]] for b in bodies for x in b[field_name]}
        units = {x: sorted({b[unit_field][x] for b in bodies if unit_field and x in b[unit_field]}) for x in values}
    else:
        entry["values"] = ""
        unit_field = next((k for k, c in kinds.items() if UNIT_NAME.match(k) and c["text"] == len(bodies)), None)
        entry["units"] = unit_field
        quality = next((k for k, vs in keys.items() if QUALITY_NAME.match(k) and k not in taken
                        and all((isinstance(v, str) and v.lower() in QUALITY_WORDS) or _kind(v) == "number" for v in vs)),
                       None)
        if quality:
            entry["quality"] = quality
        taken |= {x for x in (unit_field, quality) if x}
        values = {k: vs for k, vs in keys.items() if k not in taken and kinds[k]["number"] + kinds[k]["bool"] > 0}
        others = sorted(k for k in keys if k not in taken and k not in values)
        if others:
            entry["exclude"] = others
            said.append(f"excluded {', '.join(others)}: text or structure, not a reading (ids, names)")
        units = {k: sorted({b[unit_field] for b in bodies if unit_field}) for k in values}
    desc = []
    for x, vs in sorted(values.items()):
        kind = Counter(_kind(v) for v in vs).most_common(1)[0][0]
        u = units.get(x) or []
        desc.append(f"{x} {kind}" + (f" ({', '.join(u)})" if u else ""))
    if not values:
        said.append("NO value fields: nothing here is a reading")
    return entry, "fields: " + (", ".join(desc) if desc else "none") + ("; " + "; ".join(said) if said else "")


def _sparkplug_rules(topics: dict[str, Seen], hierarchy: Hierarchy, notes: dict, new_assets: dict,
                     target: str) -> list[dict[str, Any]]:
    from connectors.mqtt import sparkplug

    devices: dict[tuple[str, str, str], dict[str, str]] = {}
    for t, s in topics.items():
        parts = t.split("/")
        if len(parts) != 5 or parts[2] not in ("DBIRTH", "DDATA", "DDEATH", "DCMD"):
            continue
        metrics = devices.setdefault((parts[1], parts[3], parts[4]), {})
        if parts[2] == "DBIRTH":
            for p in s.payloads:
                try:
                    for m in sparkplug.decode(p).metrics:
                        if m.name:
                            metrics[m.name] = sparkplug.DATATYPES.get(m.datatype, f"datatype {m.datatype}")
                except Exception:  # noqa: BLE001 - a payload that is not Sparkplug B: said below, not fatal
                    metrics.setdefault("?", "not a Sparkplug B payload")
    out = []
    named = [Named(k, v) for k, v in sorted(devices.items())]
    for rule in group_rules(named, hierarchy):
        k = len(out)
        group, edge, device = rule.pattern
        out.append({"group": group, "edge_node": edge, "device": device, "asset": rule.asset})
        metrics: dict[str, str] = {}
        for m in rule.members:
            metrics.update(m.payload)
        if metrics:
            notes[("sparkplug", k)] = (f"{len(rule.members)} device(s); metrics from DBIRTH: "
                                       + ", ".join(f"{n} {t}" for n, t in sorted(metrics.items()))[:700]
                                       + "; set `units` per metric: births carry none plantlake reads")
        else:
            notes[("sparkplug", k)] = (f"{len(rule.members)} device(s); no DBIRTH seen while listening: the metrics "
                                       "and their datatypes are unknown until a birth (a device's rebirth) is seen")
        if rule.new_assets:
            notes[("sparkplug", k, "asset")] = (f"{len(rule.new_assets)} asset(s) not in the site hierarchy before; "
                                                "added below it: name and place them")
            new_assets.update({a: f"discovered on {target}" for a in rule.new_assets})
    return out

