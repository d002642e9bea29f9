"""The MQTT 5 session plantlake drains with (connectors/mqtt/session.py), tested from the standard in:
a broker written here from OASIS MQTT 5.0 byte layouts (no MQTT library on its side) sends packets
cut at every byte, and a real Mosquitto takes the session over and runs QoS 2."""

from __future__ import annotations

import socket
import struct
import threading
import time
from types import SimpleNamespace

import paho.mqtt.client as mqtt
import pytest

from connectors.mqtt.session import Mqtt5Session
from plantlake.core.connections import Connection

pytestmark = pytest.mark.integration


def varint(n: int) -> bytes:
    """MQTT 5 §1.5.5 Variable Byte Integer."""
    out = bytearray()
    while True:
        n, byte = divmod(n, 128)
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s: str) -> bytes:
    """§1.5.4 UTF-8 Encoded String: two-byte length, then the bytes."""
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def packet(first: int, body: bytes) -> bytes:
    """§2.1.1 fixed header: packet type and flags, then the Remaining Length."""
    return bytes([first]) + varint(len(body)) + body


def publish(topic: str, payload: bytes, mid: int, *, qos: int = 1, dup: bool = False, retain: bool = False,
            props: bytes = b"") -> bytes:
    """§3.3 PUBLISH: flags DUP(3) QoS(2-1) RETAIN(0); topic, packet id, properties, payload."""
    flags = (8 if dup else 0) | (qos << 1) | (1 if retain else 0)
    return packet(0x30 | flags, utf8(topic) + struct.pack(">H", mid) + varint(len(props)) + props + payload)


def read_packet(conn: socket.socket) -> tuple[int, bytes]:
    first = conn.recv(1)[0]
    n, shift = 0, 0
    while True:
        b = conn.recv(1)[0]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    body = b""
    while len(body) < n:
        body += conn.recv(n - len(body))
    return first, body


class HandBroker:
    """Accepts one client: checks its CONNECT and SUBSCRIBE, answers, then sends `script` in pieces."""

    def __init__(self, script: bytes, piece: int) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.script, self.piece = script, piece
        self.seen: dict = {}
        self.received: list[tuple[int, bytes]] = []
        self.sent = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        self.conn = conn
        first, body = read_packet(conn)  # §3.1 CONNECT
        assert first == 0x10
        assert body[:7] == utf8("MQTT") + bytes([5]), body[:7]  # protocol name, level 5
        self.seen["flags"], self.seen["keepalive"] = body[7], struct.unpack(">H", body[8:10])[0]
        conn.sendall(packet(0x20, bytes([1, 0]) + varint(0)))  # CONNACK: session present, Success
        first, body = read_packet(conn)  # §3.8 SUBSCRIBE (flags 0010)
        assert first == 0x82
        mid = body[:2]
        conn.sendall(packet(0x90, mid + varint(0) + bytes([1])))  # SUBACK: granted QoS 1
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(0.2)  # the session is up before anything comes
        for i in range(0, len(self.script), self.piece):
            conn.sendall(self.script[i:i + self.piece])
            if i < 512 or len(self.script) - i < 512:  # the small packets and the headers: one read each piece
                time.sleep(0.001)
        self.sent.set()
        conn.settimeout(5)
        try:
            while True:
                self.received.append(read_packet(conn))
        except (OSError, IndexError):
            pass


def session(port: int, **source) -> tuple[Mqtt5Session, dict]:
    src = SimpleNamespace(**{"name": "hand", "client_id": "plantlake-hand", "connection_id": "hand", "protocol": "v5",
                             "qos": 1, "session_expiry_s": 3600, **source})
    stats: dict = {}
    return Mqtt5Session(src, Connection("hand", "mqtt", "127.0.0.1", port), ["plant/#"], stats), stats


def drain(s: Mqtt5Session, want: int, within: float = 20) -> list:
    got: list = []
    deadline = time.monotonic() + within
    while len(got) < want and time.monotonic() < deadline:
        got += s.receive(0.2)
    return got


@pytest.mark.parametrize("piece", [1, 7, 1 << 16])
def test_packets_cut_anywhere_arrive_whole_and_are_acknowledged_only_when_asked(piece):
    big = bytes(range(256)) * 800  # 204,800 bytes: more than one socket read
    props = b"\x02" + struct.pack(">I", 60) + b"\x26" + utf8("line") + utf8("1")  # §3.3.2.3: expiry, user property
    script = (publish("plant/a", b'{"v": 1}', 1) + publish("plant/b", big, 2, dup=True, props=props)
              + publish("plant/c", b"", 3, retain=True)
              + packet(0x30, utf8("plant/q0") + varint(0) + b"zero"))  # QoS 0: no packet id
    broker = HandBroker(script, piece)
    s, stats = session(broker.port)
    assert s.present is True
    # §3.1.2.4 Clean Start is 0 (the durable session); keep alive as configured
    assert broker.seen["flags"] & 0x02 == 0 and broker.seen["keepalive"] == Mqtt5Session.KEEPALIVE_S
    got = drain(s, 4)
    assert [(m[0], m[1], m[2], m[3], m[4]) for m in got] == [
        ("plant/a", b'{"v": 1}', 1, False, False), ("plant/b", big, 1, False, True),
        ("plant/c", b"", 1, True, False), ("plant/q0", b"zero", 0, False, False)]
    assert broker.sent.wait(10)
    time.sleep(0.2)
    assert broker.received == []  # nothing acknowledged on arrival
    assert s.ack([(*m[6], m[2]) for m in got]) == 0
    deadline = time.monotonic() + 5
    while len(broker.received) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    # §3.4 PUBACK per QoS 1 message, by packet id; none for QoS 0
    assert broker.received == [(0x40, struct.pack(">H", mid)) for mid in (1, 2, 3)]
    s.close()
    assert stats == {}


def test_a_malformed_packet_from_the_broker_is_a_lost_connection_not_a_crash(caplog):
    script = publish("plant/a", b"1", 1) + bytes([0x3F, 0x00])  # QoS 3 does not exist (§3.3.1.2)
    broker = HandBroker(script, 1 << 16)
    s, stats = session(broker.port)
    got = drain(s, 1)
    assert [m[0] for m in got] == ["plant/a"]
    deadline = time.monotonic() + 5
    while not stats.get("connection_lost") and time.monotonic() < deadline:
        s.receive(0.1)
    assert stats["connection_lost"] == 1
    assert "malformed packet from the broker" in caplog.text
    # what came on the lost connection is not acknowledged on another one: the broker delivers it again
    assert s.ack([(*got[0][6], 1)]) == 1
    s.close()


def test_a_broker_that_says_the_session_was_taken_over_is_not_fought_over(caplog):
    script = publish("plant/a", b"1", 1) + packet(0xE0, bytes([0x8E]) + varint(0))  # §3.14 DISCONNECT, 0x8E
    broker = HandBroker(script, 1 << 16)
    s, stats = session(broker.port)
    got = drain(s, 1)
    for _ in range(15):  # no reconnect: that would take the session back from the other client
        got += s.receive(0.1)
    assert [m[0] for m in got] == ["plant/a"] and stats == {"session_taken_over": True}
    assert "handed plantlake's session (client id 'plantlake-hand') to another client" in caplog.text
    s.close()


def test_a_broker_closing_the_connection_again_and_again_stops_the_tug_of_war(mosquitto, caplog):
    """Mosquitto 2.0 closes the older of two connections with one client id without a reason: plantlake
    reconnects (a broker restart looks the same), but not forever against another client."""
    s, stats = session(mosquitto.port)
    thief = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plantlake-hand", protocol=mqtt.MQTTv5)
    thief.reconnect_delay_set(0.1, 0.1)
    thief.connect("127.0.0.1", mosquitto.port, clean_start=False)
    thief.loop_start()
    try:
        deadline = time.monotonic() + 30
        while not stats.get("session_contested") and time.monotonic() < deadline:
            s.receive(0.1)
        assert stats == {"connection_lost": Mqtt5Session.QUICK_DROPS, "session_contested": True}
        assert "another client is probably using client id 'plantlake-hand'" in caplog.text
        for _ in range(10):
            s.receive(0.1)
        assert stats["connection_lost"] == Mqtt5Session.QUICK_DROPS  # gave up: the other client keeps it
        deadline = time.monotonic() + 5
        while not thief.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert thief.is_connected()
    finally:
        thief.disconnect()
        thief.loop_stop()
        s.close()


def test_qos2_messages_are_received_once_and_completed_after_the_landed_ack(mosquitto):
    s, _ = session(mosquitto.port, qos=2)
    s.close()  # the session exists: the broker queues for it
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pub", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    for i in range(50):
        pub.publish("plant/x", f"m{i}", qos=2).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()
    s, stats = session(mosquitto.port, qos=2)
    got = drain(s, 50)
    assert [m[1] for m in got] == [f"m{i}".encode() for i in range(50)] and {m[2] for m in got} == {2}
    assert s.ack([(*m[6], m[2]) for m in got]) == 0  # PUBREC each; the broker's PUBRELs are completed
    extra = drain(s, 1, within=1)
    s.close()
    s, _ = session(mosquitto.port, qos=2)
    again = drain(s, 1, within=1)
    s.close()
    assert extra == [] and again == [] and stats == {}
