"""The broker session a drain reads from: connect, subscribe, receive, acknowledge on demand.

MQTT 5 (the default) runs on `mqtt5`, a sans-I/O codec written in Rust, over a socket this
module owns: it reads what the broker sent in large blocks, parses every packet in it at
once and writes a landed chunk's PUBACKs in one send. MQTT 3.1.1, which `mqtt5` does not
speak, runs on paho's network loop. paho reads a packet with three `recv` calls and runs
each message through its own callback machinery; that capped a drain at about 14,000
messages/s on 2 cores, where the C client `mosquitto_sub` drains the same session ten
times faster (bench/mqtt.py measures both).

Both sessions acknowledge only what the drain asks them to (after the chunk was landed
durably), never on arrival. Both survive the broker going away: the MQTT 5 session
reconnects to its durable session on the next receive; paho does the same in its loop.
Messages received on a connection that was lost are not acknowledged on the new one: the
broker delivers them again and the curated key keeps each once.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any, Protocol

from plantlake.core.errors import SourceUnavailable

log = logging.getLogger(__name__)

#: topic, payload, qos, retain, dup, received at (µs since the epoch), (connection, packet id)
Message = tuple[str, bytes, int, bool, bool, int, tuple[int, int]]

#: MQTT 5 reason code of a DISCONNECT sent because another client connected with our client id
SESSION_TAKEN_OVER = 0x8E


class Session(Protocol):
    #: whether the broker still had the durable session when we connected
    present: bool

    def receive(self, timeout: float) -> list[Message]:
        """What arrived: at least one message, or nothing after `timeout` seconds."""

    def ack(self, ids: list[tuple[int, int, int]]) -> int:
        """Acknowledge (connection, packet id, qos) of landed messages; return how many could not be
        (received on a connection since lost: the broker delivers those again)."""

    def close(self) -> None: ...


def open_session(source: Any, connection: Any, subscriptions: list[str], stats: dict[str, Any]) -> Session:
    """A connected, subscribed session for an MQTT source; `stats` gets its connection events."""
    if connection is None or not connection.host:
        raise ValueError(f"source {source.name}: connection {source.connection_id!r} has no host")
    cls = Mqtt5Session if source.protocol == "v5" else PahoSession
    return cls(source, connection, subscriptions, stats)


def _unavailable(source: Any, c: Any, what: str) -> SourceUnavailable:
    return SourceUnavailable(f"source {source.name}: MQTT broker {c.host}:{c.port or 1883} {what}")


def _refused(source: Any, c: Any, subscriptions: list[str], failed: list[bool], client_id: str) -> None:
    refused = [t for t, bad in zip(subscriptions, failed, strict=False) if bad]
    if refused:
        raise PermissionError(f"source {source.name}: broker refused the subscription to {', '.join(refused)} "
                              f"(check the broker's ACL for client {client_id!r})")


def _lost(source: Any, stats: dict[str, Any], why: object) -> None:
    stats["connection_lost"] = stats.get("connection_lost", 0) + 1
    log.warning("source %s: lost the broker during the drain (%s); what was received is landed, and the messages not "
                "acknowledged stay queued in the session for the next run", source.name, why)


def _taken_over(source: Any, stats: dict[str, Any], client_id: str) -> None:
    stats["session_taken_over"] = True
    log.warning("source %s: the broker handed plantlake's session (client id %r) to another client during the drain; "
                "bind client ids to users (deploy/mosquitto/acl)", source.name, client_id)


def tls_context(c: Any) -> ssl.SSLContext | None:
    """TLS from an MQTT connection (`mqtts://`, or extra `tls: true` with `ca_certs`, `certfile`,
    `keyfile`): the server's certificate and host name checked, as paho's `tls_set` does."""
    extra = c.extra or {}
    if not (str(extra.get("tls", "")).lower() in ("1", "true", "yes") or c.conn_type == "mqtts"):
        return None
    ctx = ssl.create_default_context(cafile=extra.get("ca_certs"))
    if extra.get("certfile"):
        ctx.load_cert_chain(extra["certfile"], extra.get("keyfile"))
    return ctx


def authenticate(client: Any, c: Any) -> None:
    """A paho client's login and TLS from an MQTT connection: the MQTT 3.1.1 session's and discovery's."""
    if c.login:
        client.username_pw_set(c.login, c.password)
    ctx = tls_context(c)
    if ctx is not None:
        client.tls_set_context(ctx)


def frame(buf: bytearray) -> tuple[list[Any], ValueError | None]:
    """The complete MQTT 5 packets at the start of `buf`, taken out of it (a packet not complete yet
    stays for the next read), and the error of a malformed packet that stopped the framing."""
    import mqtt5

    view, off, packets, malformed = memoryview(buf), 0, [], None
    try:
        while True:
            packet, n = mqtt5.read(view[off:])
            packets.append(packet)
            off += n
    except IndexError:  # not enough bytes for the next packet
        pass
    except ValueError as exc:
        malformed = exc
    view.release()
    del buf[:off]
    return packets, malformed


class Mqtt5Session:
    """An MQTT 5 session on the `mqtt5` codec over a blocking socket with timeouts."""

    KEEPALIVE_S = 30
    #: a broker that closes QUICK_DROPS connections in a row within QUICK_S of connecting is handing the
    #: session to another client with the same id (Mosquitto 2.0 closes without saying why): stop
    QUICK_S, QUICK_DROPS = 5.0, 3
    BLOCK = 1 << 20  # bytes read from the socket at a time

    def __init__(self, source: Any, c: Any, subscriptions: list[str], stats: dict[str, Any]) -> None:
        self.source, self.c, self.subscriptions, self.stats = source, c, subscriptions, stats
        self.client_id = source.client_id or f"plantlake-{source.name}"
        self.sock: socket.socket | None = None
        self.generation = 0  # which connection a message came on
        self.buf = bytearray()
        self.present = False
        self.pending: deque = deque()  # packets read while waiting for a CONNACK or SUBACK
        self.sent_at = 0.0
        self.retry_at = 0.0
        self.live = False  # connected and subscribed
        self.live_since = 0.0
        self.quick_drops = 0  # connections in a row the broker closed within QUICK_S
        self._connect()

    # ---- connection ----------------------------------------------------------------------

    def _connect(self) -> None:
        import mqtt5

        src, c = self.source, self.c
        port = c.port or 1883
        try:
            sock = socket.create_connection((c.host, port), timeout=15)
            ctx = tls_context(c)
            if ctx is not None:
                sock = ctx.wrap_socket(sock, server_hostname=c.host)
        except (OSError, ssl.SSLError) as exc:
            raise _unavailable(src, c, f"unreachable ({exc.__class__.__name__}: {exc})") from exc
        self.sock, self.buf = sock, bytearray()
        self.generation += 1
        self._send(mqtt5.ConnectPacket(
            self.client_id, username=c.login or None, password=c.password.encode() if c.password else None,
            clean_start=False, keep_alive=self.KEEPALIVE_S, session_expiry_interval=src.session_expiry_s,
            receive_max=65535, topic_alias_max=0).write())
        connack = self._expect(mqtt5.ConnAckPacket)
        if connack is None:
            self._drop()
            raise _unavailable(src, c, "refused the session (no CONNACK; a broker that speaks MQTT 3.1.1 only closes "
                                       "an MQTT 5 connection like this: set the source's `protocol: v311`)")
        if connack.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
            self._drop()
            raise _unavailable(src, c, f"refused the session ({connack.reason_code.name})")
        self.present = bool(connack.session_present)
        self._send(mqtt5.SubscribePacket(1, [mqtt5.TopicFilter(s, max_qos=mqtt5.QoS(src.qos))
                                             for s in self.subscriptions]).write())
        suback = self._expect(mqtt5.SubAckPacket)
        if suback is None:
            self._drop()
            raise _unavailable(src, c, "did not acknowledge the subscriptions")
        if self.sock is None:
            raise _unavailable(src, c, "closed the connection right after subscribing")
        failed = [int(code) >= 0x80 for code in suback.reason_codes]
        if any(failed):
            self.close()
            _refused(src, c, self.subscriptions, failed, self.client_id)
        self.live, self.live_since = True, time.monotonic()
        log.debug("source %s: MQTT 5 session %r connected (session present: %s)", src.name, self.client_id,
                  self.present)

    def _expect(self, kind: type) -> Any:
        """Read until a packet of `kind` arrives (PUBLISHes before it are kept); None if the broker closes."""
        deadline = time.monotonic() + 15
        found = None
        while found is None and self.sock is not None and time.monotonic() < deadline:
            for packet in self._read(max(0.01, deadline - time.monotonic())):
                if found is None and isinstance(packet, kind):
                    found = packet
                else:
                    self.pending.append(packet)
        return found

    def _drop(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def _send(self, data: bytes) -> bool:
        """Write to the broker; False (and the connection given up) when it is gone."""
        if self.sock is None:
            return False
        try:
            self.sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            self._broken(f"{exc.__class__.__name__}: {exc}")
            return False
        self.sent_at = time.monotonic()
        return True

    def _broken(self, why: str) -> None:
        """The connection is gone. During a drain that is said once, and the next receive reconnects;
        while connecting, the caller raises."""
        self._drop()
        if self.live:
            self.live = False
            _lost(self.source, self.stats, why)
            self.quick_drops = self.quick_drops + 1 if time.monotonic() - self.live_since < self.QUICK_S else 0
            if self.quick_drops >= self.QUICK_DROPS:
                self._contested()

    def _read(self, timeout: float) -> list[Any]:
        """Packets from one socket read (none on timeout); the socket is dropped when the broker closes."""

        if self.sock is None:
            return []
        self.sock.settimeout(max(timeout, 0.001))  # 0 would make it non-blocking
        try:
            data = self.sock.recv(self.BLOCK)
        except TimeoutError:
            return []
        except (OSError, ssl.SSLError) as exc:
            self._broken(f"{exc.__class__.__name__}: {exc}")
            return []
        if not data:
            self._broken("the broker closed the connection")
            return []
        self.buf += data
        packets, malformed = frame(self.buf)
        if malformed is not None:  # nothing after it can be framed
            self._broken(f"malformed packet from the broker ({malformed})")
        return packets

    # ---- the drain's side ----------------------------------------------------------------

    def receive(self, timeout: float) -> list[Message]:
        import mqtt5

        if self.sock is None and not self.pending and not self._reconnect():
            time.sleep(min(timeout, 0.2))
            return []
        if self.sock is not None and time.monotonic() - self.sent_at > self.KEEPALIVE_S / 2:
            self._send(mqtt5.PingReqPacket().write())
        packets = list(self.pending) if self.pending else self._read(timeout)
        self.pending.clear()
        now = time.time_ns() // 1000
        out: list[Message] = []
        gen = self.generation
        Publish, Disconnect, PubRel = mqtt5.PublishPacket, mqtt5.DisconnectPacket, mqtt5.PubRelPacket
        for p in packets:
            if type(p) is Publish:
                out.append((p.topic, p.payload, int(p.qos), p.retain, p.duplicate, now, (gen, p.packet_id or 0)))
            elif type(p) is PubRel:  # QoS 2: the PUBREC went after landing; complete the handshake
                self._send(mqtt5.PubCompPacket(p.packet_id).write())
            elif type(p) is Disconnect:
                if int(p.reason_code) == SESSION_TAKEN_OVER:
                    _taken_over(self.source, self.stats, self.client_id)
                    self.live, self.retry_at = False, float("inf")  # the other client has it: do not fight over it
                self._broken(f"the broker sent DISCONNECT {p.reason_code.name}")
        return out

    def _contested(self) -> None:
        self.retry_at = float("inf")
        self.stats["session_contested"] = True
        log.warning("source %s: the broker closed plantlake's connection %d times in a row within %.0f s of "
                    "connecting: another client is probably using client id %r and takes the session back each time; "
                    "plantlake stops reconnecting for this run. Bind client ids to users (deploy/mosquitto/acl)",
                    self.source.name, self.quick_drops, self.QUICK_S, self.client_id)

    def _reconnect(self) -> bool:
        """Connect again to the durable session, at most once a second."""
        if time.monotonic() < self.retry_at:
            return False
        try:
            self._connect()
            return True
        except (SourceUnavailable, PermissionError) as exc:
            log.info("source %s: reconnecting: %s", self.source.name, exc)
            self.retry_at = time.monotonic() + 1.0
            return False

    def ack(self, ids: list[tuple[int, int, int]]) -> int:
        import mqtt5

        gen = self.generation
        now = [(mid, qos) for g, mid, qos in ids if g == gen and qos]
        if self.sock is not None and now:
            data = b"".join((mqtt5.PubAckPacket if qos == 1 else mqtt5.PubRecPacket)(mid).write() for mid, qos in now)
            if self._send(data):
                return sum(1 for g, _, qos in ids if g != gen and qos)
        return sum(1 for _, _, qos in ids if qos)

    def close(self) -> None:
        import mqtt5

        self.live, self.retry_at = False, float("inf")  # a broken pipe now is no lost broker
        self._send(mqtt5.DisconnectPacket().write())  # the session and what is not acknowledged stay on the broker
        self._drop()


class PahoSession:
    """An MQTT 3.1.1 session on paho's network loop (manual acknowledgement)."""

    def __init__(self, source: Any, c: Any, subscriptions: list[str], stats: dict[str, Any]) -> None:
        import paho.mqtt.client as mqtt

        self.source, self.stats, self.closing = source, stats, False
        self.client_id = source.client_id or f"plantlake-{source.name}"
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311,
                             clean_session=False, manual_ack=True)
        authenticate(client, c)
        self.inbox: deque = deque()
        self.cond = threading.Condition()
        self.generation = 0
        connected: dict[str, Any] = {}

        def on_connect(cl: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            connected["rc"], connected["present"] = rc, getattr(flags, "session_present", None)
            if not rc.is_failure:
                self.generation += 1
                cl.subscribe([(s, source.qos) for s in subscriptions])
            with self.cond:
                self.cond.notify_all()

        def on_subscribe(cl: Any, userdata: Any, mid: int, codes: list, props: Any) -> None:
            connected["granted"] = codes
            with self.cond:
                self.cond.notify_all()

        def on_disconnect(cl: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            if not self.closing:  # not ours: the broker went away (paho reconnects to the same session)
                _lost(source, stats, rc)

        def on_message(cl: Any, userdata: Any, msg: Any) -> None:
            with self.cond:
                self.inbox.append((msg.topic, msg.payload, msg.qos, msg.retain, msg.dup, time.time_ns() // 1000,
                                   (self.generation, msg.mid)))
                self.cond.notify_all()

        client.on_connect, client.on_disconnect = on_connect, on_disconnect
        client.on_message, client.on_subscribe = on_message, on_subscribe
        try:
            client.connect(c.host, c.port or 1883, keepalive=30)
        except OSError as exc:
            raise _unavailable(source, c, f"unreachable ({exc.__class__.__name__}: {exc})") from exc
        client.loop_start()
        with self.cond:
            self.cond.wait_for(lambda: "rc" in connected, timeout=15)
        if "rc" not in connected or connected["rc"].is_failure:
            client.loop_stop()
            raise _unavailable(source, c, f"refused the session ({connected.get('rc', 'no CONNACK')})")
        with self.cond:
            self.cond.wait_for(lambda: "granted" in connected, timeout=15)
        self.client = client
        if "granted" not in connected:
            self.close()
            raise _unavailable(source, c, "did not acknowledge the subscriptions")
        failed = [code.is_failure for code in connected["granted"]]
        if any(failed):
            self.close()
            _refused(source, c, subscriptions, failed, self.client_id)
        self.present = bool(connected["present"])

    def receive(self, timeout: float) -> list[Message]:
        with self.cond:
            if not self.inbox:
                self.cond.wait(timeout)
            out = list(self.inbox)
            self.inbox.clear()
        return out

    def ack(self, ids: list[tuple[int, int, int]]) -> int:
        gen = self.generation if self.client.is_connected() else -1
        for g, mid, qos in ids:
            if g == gen:
                self.client.ack(mid, qos)
        return sum(1 for g, _, qos in ids if g != gen and qos)

    def close(self) -> None:
        self.closing = True
        self.client.disconnect()  # unacknowledged messages stay queued in the session
        self.client.loop_stop()
