"""IIoT telemetry of the plant over MQTT: JSON on a UNS topic tree and Sparkplug B.

JSON devices publish per machine on `acme/shenzhen/assembly/<line>/<machine>/telemetry`;
coater gateways stamp `time_ms` (epoch milliseconds), the others an ISO `ts`; line 2's
coater reports degF and the presses report power in W. The welders' chillers are a
Sparkplug B edge node per line (`spBv1.0/acme/…/<line>-utilities/chiller<n>`) with
NBIRTH, DBIRTH (names, aliases, datatypes), alias-only DDATA and DDEATH, seq 0..255.
Every message carries a unique id (`msg_id` in JSON, `uuid` in Sparkplug) so tests can
account for each one. QoS 1.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from connectors.mqtt import sparkplug
from simulators.story import ENTERPRISE, Machine, Plant, TagSpec

log = logging.getLogger(__name__)

SPB_DATATYPE = {"double": "Double", "int": "Int32", "counter": "Int64", "bool": "Boolean", "string": "String"}


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    msg_id: str
    #: what the message says, for ground truth: [(asset_id, tag, ts_us, value, unit)]
    readings: tuple[tuple[str, str, int, Any, str], ...] = ()


def telemetry_topic(m: Machine) -> str:
    return f"{m.asset_id}/telemetry"


def edge_node(line: str) -> str:
    return f"{line}-utilities"


def chiller(line: str) -> str:
    return f"chiller{line.removeprefix('line')}"


def _iso(us: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def json_messages(plant: Plant, start: datetime, end: datetime) -> Iterator[Message]:
    t_us = plant.grid(start, end)
    for m in plant.machines:
        tags = m.tags("mqtt")
        if not tags:
            continue
        series = {t.name: plant.values(m, t, t_us)[0] for t in tags}
        for i, t in enumerate(t_us.tolist()):
            msg_id = f"{plant.seed}:{m.line}.{m.id}:{t // 1_000_000}"
            values = {name: round(float(v[i]), 4) for name, v in series.items()}
            body: dict[str, Any] = {"msg_id": msg_id, "device": f"iot-{m.id}", "values": values,
                                    "units": {tg.name: tg.unit for tg in tags}}
            if m.role == "coater":
                body["time_ms"] = t // 1000
            else:
                body["ts"] = _iso(t)
            readings = tuple((m.asset_id, tg.name, t, values[tg.name], tg.unit) for tg in tags)
            yield Message(telemetry_topic(m), json.dumps(body, separators=(",", ":")).encode(), msg_id, readings)


def sparkplug_messages(plant: Plant, start: datetime, end: datetime) -> Iterator[Message]:
    """One session per line: NBIRTH, DBIRTH, DDATA per sample, DDEATH."""
    t_us = plant.grid(start, end)
    if len(t_us) == 0:
        return
    for line in plant.line_ids:
        m = plant.machine(line, "welder")
        tags = m.tags("sparkplug")
        node, dev = edge_node(line), chiller(line)
        series = {t.name: plant.values(m, t, t_us)[0] for t in tags}
        seq = 0
        base = f"spBv1.0/{ENTERPRISE}"
        t0 = int(t_us[0] // 1000)
        sid = f"{plant.seed}:spb:{node}:{t0}"
        yield Message(f"{base}/NBIRTH/{node}", sparkplug.encode(
            timestamp=t0, seq=seq, uuid=f"{sid}:nbirth",
            metrics=[{"name": "bdSeq", "datatype": "Int64", "value": 0}]), f"{sid}:nbirth")
        seq += 1
        aliases = {tg.name: i + 1 for i, tg in enumerate(tags)}
        birth = [{"name": tg.name, "alias": aliases[tg.name], "datatype": SPB_DATATYPE[tg.kind],
                  "value": _value(tg, series[tg.name][0]), "timestamp": t0} for tg in tags]
        readings = tuple((m.asset_id, tg.name, int(t_us[0]), _value(tg, series[tg.name][0]), tg.unit) for tg in tags)
        yield Message(f"{base}/DBIRTH/{node}/{dev}", sparkplug.encode(timestamp=t0, seq=seq, uuid=f"{sid}:dbirth",
                                                                       metrics=birth), f"{sid}:dbirth", readings)
        for i, t in enumerate(t_us.tolist()[1:], start=1):
            seq = (seq + 1) % 256
            ts = t // 1000
            metrics = [{"alias": aliases[tg.name], "value": _value(tg, series[tg.name][i]), "timestamp": ts,
                        "datatype": SPB_DATATYPE[tg.kind]} for tg in tags]
            msg_id = f"{plant.seed}:spb:{node}/{dev}:{t // 1_000_000}"
            readings = tuple((m.asset_id, tg.name, t, _value(tg, series[tg.name][i]), tg.unit) for tg in tags)
            yield Message(f"{base}/DDATA/{node}/{dev}", sparkplug.encode(timestamp=ts, seq=seq, uuid=msg_id,
                                                                          metrics=metrics), msg_id, readings)
        seq = (seq + 1) % 256
        tend = int(t_us[-1] // 1000) + 1  # the device dies after its last sample
        yield Message(f"{base}/DDEATH/{node}/{dev}", sparkplug.encode(timestamp=tend, seq=seq, uuid=f"{sid}:ddeath",
                                                                       metrics=[]), f"{sid}:ddeath")


def _value(tag: TagSpec, v: Any) -> Any:
    v = _py(v)
    if tag.kind == "double":
        return round(float(v), 4)
    if tag.kind == "bool":
        return bool(v)
    return v


def messages(plant: Plant, start: datetime, end: datetime) -> list[Message]:
    """All messages of [start, end), JSON then Sparkplug, in a fixed order."""
    return [*json_messages(plant, start, end), *sparkplug_messages(plant, start, end)]


@dataclass
class MqttPublisher:
    plant: Plant
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    client_id: str = "plantsim-publisher"
    qos: int = 1
    #: CA file to verify a TLS broker with; None speaks plain TCP
    ca_certs: str | None = None

    def _client(self) -> Any:
        import paho.mqtt.client as mqtt

        # MQTT 3.1.1: what every broker speaks, and a publisher needs nothing newer
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311)
        if self.username:
            c.username_pw_set(self.username, self.password)
        if self.ca_certs:
            c.tls_set(ca_certs=self.ca_certs)
        c.max_inflight_messages_set(500)
        c.max_queued_messages_set(0)
        connected = threading.Event()
        result: list[Any] = []
        c.on_connect = lambda client, userdata, flags, rc, props: (result.append(rc), connected.set())
        c.connect(self.host, self.port, keepalive=30)
        c.loop_start()
        if not connected.wait(15) or result[0].is_failure:
            c.loop_stop()
            raise ConnectionError(f"MQTT broker {self.host}:{self.port} refused the publisher: {result[0] if result else 'no CONNACK'}")
        return c

    def send(self, msgs: list[Message], timeout: float = 300) -> list[str]:
        """Publish with QoS 1 and wait until the broker acknowledged every message."""
        c = self._client()
        try:
            infos = [c.publish(m.topic, m.payload, qos=self.qos) for m in msgs]
            deadline = time.monotonic() + timeout
            for info in infos:
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
                if not info.is_published():
                    raise TimeoutError(f"broker did not acknowledge all messages within {timeout:.0f} s")
        finally:
            c.loop_stop()
            c.disconnect()
        return [m.msg_id for m in msgs]

    def publish(self, start: datetime, end: datetime) -> list[str]:
        msgs = messages(self.plant, start, end)
        ids = self.send(msgs)
        log.info("published %d messages for %s .. %s to %s:%d", len(ids), start, end, self.host, self.port)
        return ids

    def run_live(self, speed: float = 1.0, start: datetime | None = None) -> None:
        """Publish the story as it happens (accelerated by `speed`) until interrupted."""
        wall0 = datetime.now(UTC)
        sim = start or wall0
        step = timedelta(seconds=self.plant.sample_s)
        while True:
            self.send(messages(self.plant, sim, sim + step))
            sim += step
            target = wall0 + (sim - (start or wall0)) / speed
            time.sleep(max(0.0, (target - datetime.now(UTC)).total_seconds()))


def paced_send(host: str, port: int, msgs: Iterable[tuple[str, bytes]], *, rate: float | None = None,
               client_id: str = "plantsim-paced", progress: Callable[[int], None] | None = None) -> int:
    """Publish (topic, payload) pairs with QoS 1 at `rate` messages/s, or as fast as the broker
    acknowledges (None); returns how many the broker acknowledged, all of them.

    MQTT 5 on the `mqtt5` codec over a plain socket, keeping as many messages in flight as the
    broker's Receive Maximum allows: paho's publisher tops out near 4,000 messages/s, too slow
    to load a broker at a plant's 10,000/s. `progress` is told the acknowledged count every second.
    """
    import select
    import socket

    import mqtt5

    from connectors.mqtt.session import frame

    sock = socket.create_connection((host, port), timeout=15)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(mqtt5.ConnectPacket(client_id, clean_start=True, keep_alive=60).write())
    buf = bytearray()

    def packets(timeout: float) -> list[Any]:
        ready, _, _ = select.select([sock], [], [], timeout)
        if not ready:
            return []
        data = sock.recv(1 << 16)
        if not data:
            raise ConnectionError(f"MQTT broker {host}:{port} closed the publisher's connection")
        buf.extend(data)
        out, malformed = frame(buf)
        if malformed is not None:
            raise ConnectionError(f"MQTT broker {host}:{port} sent a malformed packet: {malformed}")
        return out

    connack = next((p for p in packets(15) if isinstance(p, mqtt5.ConnAckPacket)), None)
    if connack is None or connack.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
        sock.close()
        raise ConnectionError(f"MQTT broker {host}:{port} refused the publisher: {connack}")
    window = connack.receive_max
    told = time.monotonic()
    it = iter(msgs)
    sent = acked = 0
    mid = 0
    t0 = time.monotonic()
    done = False
    try:
        while not done or acked < sent:
            due = sent + 1 if rate is None else int((time.monotonic() - t0) * rate) + 1
            batch = []
            while not done and sent + len(batch) < due and sent + len(batch) - acked < window:
                m = next(it, None)
                if m is None:
                    done = True
                    break
                mid = mid % 65535 + 1
                batch.append(mqtt5.PublishPacket(m[0], m[1], qos=mqtt5.QoS.AT_LEAST_ONCE, packet_id=mid).write())
            if batch:
                sock.sendall(b"".join(batch))
                sent += len(batch)
            full = sent - acked >= window or (done and acked < sent)
            wait = 0.05 if full else (0.0 if rate is None else max(0.0, t0 + sent / rate - time.monotonic()))
            for p in packets(wait):
                if isinstance(p, mqtt5.PubAckPacket):
                    acked += 1
            if progress is not None and time.monotonic() - told >= 1.0:
                told = time.monotonic()
                progress(acked)
    finally:
        try:
            sock.sendall(mqtt5.DisconnectPacket().write())
        finally:
            sock.close()
    return acked
