"""A second virtual plant that shares none of our own plant's conventions.

Nordwerk's bottling line in Germany, built the way other vendors build theirs:

- OPC UA: CamelCase browse names (`Abfuellung/Linie1/LabelPrinter/WebSpeed`) at namespace index 3,
  numeric node ids, engineering units only as UNECE Rec 20 codes (UnitId, no display name), in
  units that need converting by quantity kind (N·m, r/min, m³/h, ppm, psi, lbf·in, °F, m/min);
- MQTT: JSON devices whose payloads carry an id, a timestamp (epoch ms and ISO 8601 with an
  offset, mixed), a unit and a quality next to the value, plus a device id that is no reading;
- a camera whose JPEG sidecars name the station by a code (`FL-CAM`) and German fields, and
  which freezes: five parts get the same frame;
- an ERP in SQLite with German column names and change times as ISO 8601 text with an offset;
- a historian export in Latin-1 with decimal comma and units written `°C`, `m³/h`.

`write(folder, start, end)` builds all of it for one window and writes the ground truth
(`truth.json`): every reading in its canonical unit, computed here from Rec 20's factors as
constants (not with plantlake's code), every capture and every order.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import math
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

NAMESPACE = "urn:nordwerk:abfuellung"
UNECE = "http://www.opcfoundation.org/UA/units/un/cefact"
TZ = ZoneInfo("Europe/Berlin")
SAMPLE_S = 10


@dataclass(frozen=True)
class Signal:
    """One OPC UA variable: its UNECE code and the canonical value as Rec 20's factor gives it."""

    machine: str
    name: str
    tag: str  # the browse name as a tag name (the documented rule: CamelCase split by '_', lower case)
    code: str
    base: float
    amp: float
    canonical: str
    scale: float  # Rec 20 factor from the source unit to the canonical unit
    offset: float = 0.0


#: Rec 20 factors, as constants: psi 6 894.757 Pa (1 bar = 10⁵ Pa); lbf·in 0.112 985 N·m;
#: °F -> °C (x - 32) x 5/9; m/min 1/60 m/s
SIGNALS = (
    Signal("Filler", "FillTorque", "fill_torque", "NU", 2.5, 0.2, "N*m", 1.0),
    Signal("Filler", "SpindleSpeed", "spindle_speed", "RPM", 1200, 30, "1/min", 1.0),
    Signal("Filler", "ProductFlow", "product_flow", "MQH", 12.0, 0.8, "m^3/h", 1.0),
    Signal("Filler", "Co2Level", "co2_level", "59", 400, 25, "ppm", 1.0),
    Signal("Filler", "TankPressure", "tank_pressure", "PS", 30, 2, "bar", 6894.757 / 1e5),
    Signal("Capper", "CapTorque", "cap_torque", "F21", 20, 1.5, "N*m", 0.112985),
    Signal("Capper", "MotorTemp", "motor_temp", "FAH", 160, 4, "degC", 5 / 9, -32 * 5 / 9),
    Signal("LabelPrinter", "WebSpeed", "web_speed", "2X", 30, 1, "m/s", 1 / 60),
)
#: machine browse names as asset ids (the documented slug rule, applied by hand)
MACHINES = {"Filler": "filler", "Capper": "capper", "LabelPrinter": "label_printer"}


def unit_id(code: str) -> int:
    """OPC UA Part 8: UnitId is the code's ASCII bytes, big-endian."""
    return int.from_bytes(code.encode("ascii"), "big")


def _grid(start: datetime, end: datetime, step_s: int = SAMPLE_S) -> list[datetime]:
    n = int((end - start).total_seconds() // step_s)
    return [start + timedelta(seconds=step_s * i) for i in range(n)]


def signal_value(sig: Signal, i: int) -> float:
    return round(sig.base + sig.amp * math.sin(i / 7 + len(sig.name)), 4)


# --------------------------------------------------------------------------- OPC UA


@dataclass
class ForeignOpcUa:
    """The line's OPC UA server with history of [start, end), run on its own loop in a thread."""

    start: datetime
    end: datetime
    port: int = 0
    server: Any = field(default=None, init=False)
    ns: int = field(default=0, init=False)

    def __enter__(self) -> ForeignOpcUa:
        from simulators.net import free_port

        self.port = self.port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="foreign-opcua", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(120)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        from asyncua import Server, ua

        from simulators.opcua_server import HistoryStore

        self.server = Server()
        await self.server.init()
        self.server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/nordwerk")
        for uri in ("urn:nordwerk:vendor", "urn:nordwerk:diagnostics"):  # ours is not index 2
            await self.server.register_namespace(uri)
        self.ns = ns = await self.server.register_namespace(NAMESPACE)
        store = HistoryStore()
        self.server.iserver.history_manager.set_storage(store)
        area = await self.server.nodes.objects.add_folder(ua.NodeId(100, ns), ua.QualifiedName("Abfuellung", ns))
        line = await area.add_object(ua.NodeId(200, ns), ua.QualifiedName("Linie1", ns))
        machines: dict[str, Any] = {}
        for k, sig in enumerate(SIGNALS):
            if sig.machine not in machines:
                machines[sig.machine] = await line.add_object(ua.NodeId(300 + len(machines), ns),
                                                              ua.QualifiedName(sig.machine, ns))
            var = await machines[sig.machine].add_variable(ua.NodeId(1000 + k, ns), ua.QualifiedName(sig.name, ns),
                                                           ua.Variant(0.0, ua.VariantType.Double))
            eu = ua.EUInformation(NamespaceUri=UNECE, UnitId=unit_id(sig.code), DisplayName=ua.LocalizedText(""),
                                  Description=ua.LocalizedText(""))
            await var.add_property(ua.NodeId(2000 + k, ns), ua.QualifiedName("EngineeringUnits", 0), eu,
                                   datatype=ua.NodeId(ua.ObjectIds.EUInformation))
            await self.server.historize_node_data_change(var, period=None)
            store.add(var.nodeid, [ua.DataValue(Value=ua.Variant(signal_value(sig, i), ua.VariantType.Double),
                                                SourceTimestamp=t, ServerTimestamp=t)
                                   for i, t in enumerate(_grid(self.start, self.end))])
        await self.server.start()


def opcua_truth(start: datetime, end: datetime) -> list[dict[str, Any]]:
    out = []
    for sig in SIGNALS:
        for i, t in enumerate(_grid(start, end)):
            out.append({"asset_id": f"nordwerk/werk1/abfuellung/linie1/{MACHINES[sig.machine]}", "tag": sig.tag,
                        "ts": t.isoformat(), "value": signal_value(sig, i) * sig.scale + sig.offset,
                        "unit": sig.canonical, "source": "opcua"})
    return out


# --------------------------------------------------------------------------- MQTT

#: device, field, unit sent, canonical unit, factor, offset (Rec 20: g = 10⁻³ kg; °F as above)
DEVICES = (("Waage1", "gewicht", "g", "kg", 1e-3, 0.0), ("Kuehlung", "vorlauf", "°F", "degC", 5 / 9, -32 * 5 / 9))


def mqtt_messages(start: datetime, end: datetime) -> list[tuple[str, bytes]]:
    """JSON device payloads: id, mixed epoch-ms / ISO timestamps, unit, quality, a device id."""
    out = []
    for dev, fld, unit, *_ in DEVICES:
        for i, t in enumerate(_grid(start, end, 60)):
            ts: Any = int(t.timestamp() * 1000) if i % 2 == 0 else t.astimezone(TZ).isoformat(timespec="milliseconds")
            body = {"id": f"{dev}-{i:04d}", "ts": ts, "unit": unit, "q": "good" if i % 10 else "uncertain",
                    "device_id": f"DEV-{dev.upper()}", fld: round(500 + 10 * math.sin(i / 5), 3)}
            out.append((f"nordwerk/linie1/{dev}/daten", json.dumps(body).encode()))
    return out


def mqtt_truth(start: datetime, end: datetime) -> list[dict[str, Any]]:
    out = []
    for dev, fld, _, canonical, scale, offset in DEVICES:
        for i, t in enumerate(_grid(start, end, 60)):
            out.append({"asset_id": f"nordwerk/werk1/abfuellung/linie1/{dev.lower()}", "tag": fld, "ts": t.isoformat(),
                        "value": round(500 + 10 * math.sin(i / 5), 3) * scale + offset, "unit": canonical,
                        "source": "mqtt", "quality": "good" if i % 10 else "uncertain", "message_id": f"{dev}-{i:04d}"})
    return out


# --------------------------------------------------------------------------- camera, ERP, historian


def _jpeg(seed: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    img = Image.new("RGB", (96, 64), (40 + seed * 13 % 200, 90, 160))
    for x in range(0, 96, 8):
        img.putpixel((x, seed % 64), (255, 255, 255))
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_camera(folder: Path, start: datetime, mtime: float) -> list[dict[str, Any]]:
    """Ten captures; the camera freezes for parts 5..9, which get part 4's frame."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(10):
        data = _jpeg(min(i, 4))
        when = start + timedelta(minutes=5 * i + 1)
        name = f"IMG_{i:04d}"
        (folder / f"{name}.jpg").write_bytes(data)
        (folder / f"{name}.json").write_text(json.dumps({
            "Station": "FL-CAM", "Seriennummer": f"NW-{1000 + i}", "Auftrag": "FA-7001",
            "Aufnahmezeit": when.astimezone(TZ).isoformat()}), encoding="utf-8")
        for p in (folder / f"{name}.jpg", folder / f"{name}.json"):
            os.utime(p, (mtime, mtime))
        out.append({"part_serial": f"NW-{1000 + i}", "captured_at": when.isoformat(),
                    "image_id": hashlib.sha256(data).hexdigest(), "source_file": f"bilder/{name}.jpg"})
    return out


def write_erp(path: Path, start: datetime) -> list[dict[str, Any]]:
    """An ERP in SQLite: German names, change times as ISO text with an offset (Berlin time)."""
    con = sqlite3.connect(path)
    con.execute('CREATE TABLE "Material" ("MatNr" TEXT PRIMARY KEY, "Kurztext" TEXT, "GeaendertAm" TEXT)')
    con.execute('CREATE TABLE "Fertigungsauftrag" ("AufNr" TEXT PRIMARY KEY, "MatNr" TEXT, "Linie" TEXT, '
                '"Status" TEXT, "Sollmenge" INTEGER, "Istmenge" INTEGER, "Start" TEXT, "GeaendertAm" TEXT)')
    con.execute('INSERT INTO "Material" VALUES (?, ?, ?)',
                ("M-0,5L", "Flasche 0,5 l", (start - timedelta(days=30)).astimezone(TZ).isoformat()))
    out = []
    for i in range(6):
        changed = start + timedelta(minutes=7 + 9 * i)
        begun = start + timedelta(minutes=9 * i)
        con.execute('INSERT INTO "Fertigungsauftrag" VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
                    (f"FA-{7001 + i}", "M-0,5L", "ABF1", "REL" if i % 2 else "GESTARTET", 1000 + 100 * i, 10 * i,
                     begun.astimezone(TZ).isoformat(), changed.astimezone(TZ).isoformat()))
        out.append({"order_id": f"FA-{7001 + i}", "status": "released" if i % 2 else "running",
                    "quantity_planned": 1000 + 100 * i, "quantity_produced": 10 * i,
                    "actual_start": begun.isoformat(), "updated_at": changed.isoformat()})
    con.commit()
    con.close()
    return out


#: historian export: tag, unit as written, canonical unit, factor
HISTORIAN = (("TANK1.TEMP", "°C", "degC", 1.0), ("TANK1.FLOW", "m³/h", "m^3/h", 1.0), ("TANK1.LEVEL", "%", "%", 1.0))


def write_historian(folder: Path, start: datetime, end: datetime, mtime: float) -> list[dict[str, Any]]:
    """A Latin-1 export with decimal comma, local times, units written with ° and ³."""
    folder.mkdir(parents=True, exist_ok=True)
    lines, out = ["Zeitpunkt;Messstelle;Messwert;Einheit"], []
    for i, t in enumerate(_grid(start, end, 60)):
        for k, (tag, unit, canonical, scale) in enumerate(HISTORIAN):
            v = round(10 + k * 20 + math.cos(i / 9 + k), 2)
            lines.append(f"{t.astimezone(TZ):%d.%m.%Y %H:%M:%S};{tag};{str(v).replace('.', ',')};{unit}")
            out.append({"asset_id": "nordwerk/werk1/abfuellung/linie1/tank1", "tag": tag.split(".")[1].lower(),
                        "ts": t.isoformat(), "value": v * scale, "unit": canonical, "source": "csv"})
    f = folder / f"Historian_{start.astimezone(TZ):%Y%m%d_%H%M}.csv"
    f.write_bytes(("\r\n".join(lines) + "\r\n").encode("latin-1"))
    os.utime(f, (mtime, mtime))
    return out


def write(folder: Path, start: datetime, end: datetime) -> dict[str, Any]:
    """Drop folders, ERP database and ground truth for [start, end); returns the truth."""
    mtime = (end - timedelta(minutes=1)).timestamp()  # settled, inside the window
    truth = {
        "readings": opcua_truth(start, end) + mqtt_truth(start, end)
        + write_historian(folder / "historian", start, end, mtime),
        "images": write_camera(folder / "bilder", start, mtime),
        "orders": write_erp(folder / "erp.sqlite", start),
    }
    (folder / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return truth


def publish(port: int, start: datetime, end: datetime) -> int:
    """Publish the devices' messages (QoS 1) to the broker on `port`; returns how many."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="nordwerk-devices", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    msgs = mqtt_messages(start, end)
    for topic, payload in msgs:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()
    return len(msgs)

