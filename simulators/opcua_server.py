"""The plant's OPC UA server (asyncua): address space per line and machine, engineering
units, status codes from sensor-fault episodes, history for HistoryRead, and the weld alarms'
events (Alarms & Conditions) in the event history of the Server object and of each line.

History lives in an in-memory store with sorted per-node series (binary search per
request, 10,000 values per response with continuation points). `prefill(start, end)`
writes a past range straight into it, so tests and backfills need not wait for time
to pass; `run_live()` writes current values (optionally accelerated) through the
server, which historizes them as data changes.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.history import HistoryStorageInterface
from asyncua.server.user_managers import UserManager

from simulators.net import free_port
from simulators.story import NAMESPACE_URI, Alarm, Machine, Plant, TagSpec

log = logging.getLogger(__name__)

VARIANT = {"double": ua.VariantType.Double, "int": ua.VariantType.Int32, "counter": ua.VariantType.UInt32,
           "bool": ua.VariantType.Boolean, "string": ua.VariantType.String}
UNITS_NS = "http://www.opcfoundation.org/UA/units/un/cefact"
EVENT_NOTIFIER = 0x05  # SubscribeToEvents | HistoryRead (OPC UA Part 3, EventNotifier)


def node_key(machine: Machine, tag: TagSpec) -> str:
    """The string identifier of a tag's variable: stable across restarts (nsu=…;s=<key>)."""
    return f"{machine.line}.{machine.id}.{tag.name}"


class HistoryStore(HistoryStorageInterface):
    """Per-node time series kept sorted by source timestamp."""

    def __init__(self, max_history_data_response_size: int = 10000) -> None:
        self.max_history_data_response_size = max_history_data_response_size
        self.max_events_response_size = 1000
        self._event_ts: dict[ua.NodeId, list[datetime]] = {}
        self._events: dict[ua.NodeId, list[Any]] = {}
        self._ts: dict[ua.NodeId, list[datetime]] = {}
        self._values: dict[ua.NodeId, list[ua.DataValue]] = {}

    async def init(self) -> None:
        pass

    async def new_historized_node(self, node_id: ua.NodeId, period: timedelta | None, count: int = 0) -> None:
        self._ts.setdefault(node_id, [])
        self._values.setdefault(node_id, [])

    async def save_node_value(self, node_id: ua.NodeId, datavalue: ua.DataValue) -> None:
        if datavalue.StatusCode is not None and datavalue.StatusCode.value == ua.StatusCodes.BadWaitingForInitialData:
            return  # the placeholder a variable holds before its first sample is not history
        self.add(node_id, [datavalue])

    def add(self, node_id: ua.NodeId, values: Iterable[ua.DataValue]) -> None:
        ts, vals = self._ts.setdefault(node_id, []), self._values.setdefault(node_id, [])
        for dv in values:
            t = dv.SourceTimestamp
            if not ts or t > ts[-1]:
                ts.append(t)
                vals.append(dv)
            else:
                i = bisect.bisect_left(ts, t)
                if i < len(ts) and ts[i] == t:
                    vals[i] = dv
                else:
                    ts.insert(i, t)
                    vals.insert(i, dv)

    async def read_node_history(self, node_id: ua.NodeId, start: datetime | None, end: datetime | None,
                                nb_values: int) -> tuple[list[ua.DataValue], datetime | None]:
        ts, vals = self._ts.get(node_id), self._values.get(node_id)
        if ts is None:
            return [], None
        epoch = ua.get_win_epoch()
        start = start if start not in (None, epoch) else None
        end = end if end not in (None, epoch) else None
        lo = bisect.bisect_left(ts, start) if start else 0
        hi = bisect.bisect_right(ts, end) if end else len(ts)
        limit = min(x for x in (nb_values, self.max_history_data_response_size) if x) if (nb_values or self.max_history_data_response_size) else hi - lo
        out = vals[lo:min(hi, lo + limit)]
        cont = ts[lo + limit] if lo + limit < hi and (not nb_values or limit < nb_values) else None
        return out, cont

    def add_events(self, notifier: ua.NodeId, events: Iterable[Any]) -> None:
        """Events (asyncua `Event`s with a `Time`) into a notifier's history, kept sorted by time."""
        times, evs = self._event_ts.setdefault(notifier, []), self._events.setdefault(notifier, [])
        for ev in events:
            i = bisect.bisect_right(times, ev.Time)
            times.insert(i, ev.Time)
            evs.insert(i, ev)

    async def new_historized_event(self, *args: Any, **kwargs: Any) -> None:
        pass

    async def save_event(self, event: Any) -> None:
        pass

    async def read_event_history(self, source_id: ua.NodeId, start: datetime | None, end: datetime | None,
                                 nb_values: int, evfilter: Any) -> tuple[list, datetime | None]:
        """A notifier's events with start <= Time <= end (the end inclusive, as HistoryRead's),
        at most 1,000 an answer with the next event's time as the continuation point."""
        times, evs = self._event_ts.get(source_id, []), self._events.get(source_id, [])
        lo = bisect.bisect_left(times, start) if start else 0
        hi = bisect.bisect_right(times, end) if end else len(times)
        limit = min(x for x in (nb_values, self.max_events_response_size) if x)
        out = evs[lo:min(hi, lo + limit)]
        return out, (times[lo + limit] if lo + limit < hi and limit < (nb_values or hi) else None)

    async def stop(self) -> None:
        pass


class _Users(UserManager):
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


@dataclass
class OpcUaSimulator:
    """The plant's OPC UA server. Use `async with`, or `start_in_thread()` from sync code."""

    plant: Plant
    host: str = "127.0.0.1"
    port: int = 0
    #: namespaces registered before the plant's: changes its index, as a reconfigured server does
    namespaces_before: tuple[str, ...] = ()
    #: username -> password; when set, anonymous access is refused
    users: dict[str, str] | None = None
    #: folder with (or for) the server certificate; enables Basic256Sha256 SignAndEncrypt only
    secure_dir: Path | None = None
    history: bool = True
    server: Server | None = field(default=None, init=False)
    nodes: dict[str, Any] = field(default_factory=dict, init=False)
    ns: int = field(default=0, init=False)
    store: HistoryStore = field(default_factory=HistoryStore, init=False)

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}/plantsim"

    async def start(self) -> OpcUaSimulator:
        self.port = self.port or free_port()
        self.server = Server(user_manager=_Users(self.users) if self.users else None)
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_server_name("plantlake virtual plant")
        if self.secure_dir:
            cert, key = await server_certificate(self.secure_dir, self.host)
            await self.server.load_certificate(str(cert))
            await self.server.load_private_key(str(key))
            self.server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
        if self.users:
            self.server.set_identity_tokens([ua.UserNameIdentityToken])
        for uri in self.namespaces_before:
            await self.server.register_namespace(uri)
        self.ns = await self.server.register_namespace(NAMESPACE_URI)
        if self.history:
            self.server.iserver.history_manager.set_storage(self.store)
        else:  # like a PLC without a historian: HistoryRead is refused, node by node
            async def refuse(params: ua.HistoryReadParameters) -> list[ua.HistoryReadResult]:
                code = ua.StatusCode(ua.StatusCodes.BadHistoryOperationUnsupported)
                return [ua.HistoryReadResult(StatusCode=code) for _ in params.NodesToRead]

            self.server.iserver.history_manager.read_history = refuse
        await self._build()
        if self.history:  # the Server object: every event of the server, with history
            await self.server.nodes.server.write_attribute(ua.AttributeIds.EventNotifier, ua.DataValue(ua.Variant(
                EVENT_NOTIFIER, ua.VariantType.Byte)))
        await self.server.start()
        log.info("OPC UA simulator at %s (namespace %s = %d, %d variables)", self.endpoint, NAMESPACE_URI,
                 self.ns, len(self.nodes))
        return self

    async def _build(self) -> None:
        assert self.server is not None
        ns = self.ns
        plant_obj = await self.server.nodes.objects.add_folder(ua.NodeId("Plant", ns), ua.QualifiedName("Plant", ns))
        lines: dict[str, Any] = {}
        for m in self.plant.machines:
            if m.line not in lines:
                lines[m.line] = await plant_obj.add_object(ua.NodeId(m.line, ns), ua.QualifiedName(m.line, ns))
                if self.history:  # an area notifier: its line's alarms, subscribed to or read from history
                    await lines[m.line].write_attribute(ua.AttributeIds.EventNotifier, ua.DataValue(ua.Variant(
                        EVENT_NOTIFIER, ua.VariantType.Byte)))
            obj = await lines[m.line].add_object(ua.NodeId(f"{m.line}.{m.id}", ns), ua.QualifiedName(m.id, ns))
            for tag in m.tags("opcua"):
                key = node_key(m, tag)
                vt = VARIANT[tag.kind]
                initial = {"string": "", "bool": False}.get(tag.kind, 0)
                var = await obj.add_variable(ua.NodeId(key, ns), ua.QualifiedName(tag.name, ns), ua.Variant(initial, vt))
                # until the first sample a server reports "no value yet", not a Good zero
                await self.server.write_attribute_value(var.nodeid, ua.DataValue(
                    ua.Variant(initial, vt), StatusCode=ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData)))
                if tag.unit:
                    eu = ua.EUInformation(NamespaceUri=UNITS_NS, UnitId=-1, DisplayName=ua.LocalizedText(tag.unit),
                                          Description=ua.LocalizedText(tag.unit))
                    await var.add_property(ua.NodeId(f"{key}.EngineeringUnits", ns), ua.QualifiedName("EngineeringUnits", 0), eu,
                                           datatype=ua.NodeId(ua.ObjectIds.EUInformation))
                if self.history:
                    await self.server.historize_node_data_change(var, period=None)
                self.nodes[key] = var

    def _alarm_events(self, start: datetime, end: datetime) -> None:
        """The story's weld alarms' events with Time in [start, end) into the Server object's and
        the line's event history."""
        for alarm in self.plant.alarms(start, end):
            welder = self.plant.machine(alarm.line, "welder")
            evs = [e for e in alarm_events(alarm, welder, self.ns) if start <= e.Time < end]
            self.store.add_events(ua.NodeId(ua.ObjectIds.Server), evs)
            self.store.add_events(ua.NodeId(alarm.line, self.ns), evs)

    async def prefill(self, start: datetime, end: datetime) -> int:
        """Write the story's values (and alarm events) for [start, end) into history; returns values written."""
        self._alarm_events(start, end)
        n = 0
        for m in self.plant.machines:
            for tag in m.tags("opcua"):
                var = self.nodes[node_key(m, tag)]
                self.store.add(var.nodeid, datavalues(self.plant, m, tag, self.plant.grid(start, end)))
                n += len(self.plant.grid(start, end))
        return n

    async def advance(self, start: datetime, end: datetime) -> None:
        """The plant ran during [start, end): history gets every sample, variables the latest."""
        assert self.server is not None
        t_us = self.plant.grid(start, end)
        self._alarm_events(start, end)
        if len(t_us) == 0:
            return
        for m in self.plant.machines:
            for tag in m.tags("opcua"):
                var = self.nodes[node_key(m, tag)]
                dvs = datavalues(self.plant, m, tag, t_us)
                self.store.add(var.nodeid, dvs[:-1])
                await self.server.write_attribute_value(var.nodeid, dvs[-1])  # historized as a data change

    async def run_live(self, speed: float = 1.0, start: datetime | None = None) -> None:
        """Follow the story in real time (speed 1) or accelerated (speed > 1) until cancelled."""
        sim_t = start or datetime.now(UTC)
        step = timedelta(seconds=self.plant.sample_s)
        while True:
            await self.advance(sim_t, sim_t + step)
            sim_t += step
            await asyncio.sleep(self.plant.sample_s / speed)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def __aenter__(self) -> OpcUaSimulator:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ---- sync use (tests, CLI): the server runs on its own event loop in a thread -------------

    def start_in_thread(self, prefill: tuple[datetime, datetime] | None = None) -> OpcUaSimulator:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="opcua-sim", daemon=True)
        self._thread.start()
        self.call(self.start())
        if prefill:
            self.call(self.prefill(*prefill))
        return self

    def call(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop_thread(self) -> None:
        self.call(self.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def alarm_events(alarm: Alarm, welder: Machine, ns: int) -> list[Any]:
    """An alarm episode as OPC UA Part 9 events of an ExclusiveLevelAlarm on the welder's weld_temp:
    activation (unacknowledged), the operator's acknowledgement, the return to normal. Every state
    change of the condition is a notification with a new EventId and the same ConditionId."""
    import hashlib

    from asyncua.common.events import Event

    source = ua.NodeId(node_key(welder, next(t for t in welder.tags("opcua") if t.name == "weld_temp")), ns)
    condition = ua.NodeId(f"{source.Identifier}.HighAlarm", ns)
    limit = f"{Plant.WELD_TEMP_HIGH:g} degC"
    states = ((alarm.active_from, True, False, True, f"Weld temperature above {limit}"),
              (alarm.acked_at, True, True, True, "Weld temperature alarm acknowledged by the operator"),
              (alarm.active_to, False, True, False, f"Weld temperature back below {limit}"))
    out = []
    for at, active, acked, retain, message in states:
        ev = Event(ua.NodeId(ua.ObjectIds.Server))
        key = f"{condition.Identifier}/{at.isoformat()}/{active}/{acked}"
        for name, value, vt in (
                ("EventId", hashlib.sha256(key.encode()).digest()[:16], ua.VariantType.ByteString),
                ("EventType", ua.NodeId(ua.ObjectIds.ExclusiveLevelAlarmType), ua.VariantType.NodeId),
                ("SourceNode", source, ua.VariantType.NodeId), ("SourceName", "weld_temp", ua.VariantType.String),
                ("Time", at, ua.VariantType.DateTime),
                ("ReceiveTime", at + timedelta(milliseconds=5), ua.VariantType.DateTime),
                ("Message", ua.LocalizedText(message), ua.VariantType.LocalizedText),
                ("Severity", 700, ua.VariantType.UInt16),
                ("NodeId", condition, ua.VariantType.NodeId),  # the ConditionId
                ("ConditionName", "WeldTempHigh", ua.VariantType.String), ("Retain", retain, ua.VariantType.Boolean),
                ("AckedState/Id", acked, ua.VariantType.Boolean), ("ActiveState/Id", active, ua.VariantType.Boolean)):
            ev.add_property(name, value, vt)
        out.append(ev)
    return out


def datavalues(plant: Plant, m: Machine, tag: TagSpec, t_us: np.ndarray) -> list[ua.DataValue]:
    values, status = plant.values(m, tag, t_us)
    vt = VARIANT[tag.kind]
    py = values.tolist()
    out = []
    for t, v, s in zip(t_us.tolist(), py, status.tolist(), strict=True):
        ts = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=t)
        out.append(ua.DataValue(Value=ua.Variant(bool(v) if vt == ua.VariantType.Boolean else v, vt),
                                StatusCode=ua.StatusCode(s), SourceTimestamp=ts,
                                ServerTimestamp=ts + timedelta(milliseconds=20)))
    return out


async def server_certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """A self-signed application certificate for the server (created once per folder)."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "server-cert.der", folder / "server-key.pem"
    await setup_self_signed_certificate(key, cert, "urn:acme:shenzhen:plantsim:server", host,
                                        [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                                        {"countryName": "CN", "organizationName": "ACME plantsim"})
    return cert, key
