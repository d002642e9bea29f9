"""OPC UA (asyncua): history-backed, restart-proof, quality-preserving.

After every connect the connector resolves its nodes by meaning — namespace URI plus
browse path, or `nsu=…;s=…` ids — so a server that reorders its namespace array does
not move values to another tag. In history mode it reads the data interval with
ReadRawModified, many nodes per request and several requests in flight, following
continuation points; in poll mode it reads current values in batches. Raw StatusCodes,
source and server timestamps and EngineeringUnits are kept.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import RAW, Connector, Decoded, Extract, Finding, Raw, Stream, fill, tag_name
from plantlake.core.errors import HistoryRefused, SourceUnavailable
from plantlake.core.lake import Interval
from schemas.rejects import Rejects
from schemas.units import from_eu_information

log = logging.getLogger(__name__)

TS = pa.timestamp("us", tz="UTC")
RAW_SCHEMA = pa.schema([
    ("source_ref", pa.string()), ("node", pa.string()), ("asset_id", pa.string()), ("tag", pa.string()),
    ("type", pa.string()), ("ts", TS), ("server_ts", TS), ("value", pa.float64()), ("value_text", pa.string()),
    ("variant", pa.string()), ("status_code", pa.int64()), ("unit", pa.string()), ("error", pa.string()),
])
NUMERIC = {"Boolean", "SByte", "Byte", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float", "Double"}
TEXT = {"String", "LocalizedText", "ByteString", "XmlElement", "Guid", "NodeId", "QualifiedName", "DateTime"}
HISTORY_REFUSED = {"BadHistoryOperationUnsupported", "BadHistoryOperationInvalid", "BadNotReadable",
                   "BadUserAccessDenied", "BadNotSupported", "BadNotImplemented"}


@dataclass
class ResolvedNode:
    source_ref: str  # nsu=<namespace uri>;<id> — stable across restarts
    node_id: Any  # ua.NodeId with the index valid for this session
    asset_id: str | None
    tag: str | None
    type: str | None  # number | text | bool, from the variable's DataType
    unit: str | None
    error: str | None = None
    rule: int | None = None  # the nodes rule that selected it (None: a tags mapping)


async def connect(connection: Any, endpoint: str, name: str, timeout_s: float) -> Any:
    """An asyncua client connected to `endpoint` with the connection's security and login."""
    from asyncua import Client

    c = connection
    # the liveness probe waits as long as a request may: asyncua's default (1 s) gives up on a server
    # still answering a large Browse or HistoryRead, and tears the session down mid-request
    client = Client(endpoint, timeout=timeout_s, watchdog_intervall=timeout_s)
    client.session_timeout = 600_000
    extra = c.extra if c else {}
    policy = extra.get("security_policy")
    if policy:
        mode = extra.get("security_mode", "SignAndEncrypt")
        parts = [policy, mode, extra["certificate"], extra["private_key"]]
        if extra.get("server_certificate"):
            parts.append(extra["server_certificate"])
        await client.set_security_string(",".join(parts))
    if c and c.login:
        client.set_user(c.login)
        client.set_password(c.password or "")
    try:
        await asyncio.wait_for(client.connect(), timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        raise SourceUnavailable(f"source {name}: OPC UA server {endpoint} unreachable "
                                f"({exc.__class__.__name__}: {exc})") from exc
    return client


async def browse(client: Any, node_ids: list[Any], node_class: Any, batch: int, *, max_refs: int = 0) -> list[list[Any]]:
    """The forward hierarchical references (ReferenceDescriptions) of many nodes, `batch` nodes a
    request, each node's list followed through its continuation points to the end."""
    from asyncua import ua

    results: list[list[Any]] = []
    for i in range(0, len(node_ids), batch):
        params = ua.BrowseParameters(View=ua.ViewDescription(), RequestedMaxReferencesPerNode=max_refs, NodesToBrowse=[
            ua.BrowseDescription(NodeId=n, BrowseDirection=ua.BrowseDirection.Forward,
                                 ReferenceTypeId=ua.NodeId(ua.ObjectIds.HierarchicalReferences), IncludeSubtypes=True,
                                 NodeClassMask=node_class, ResultMask=ua.BrowseResultMask.All)
            for n in node_ids[i:i + batch]])
        for res in await client.uaclient.browse(params):
            refs = list(res.References or [])
            cp = res.ContinuationPoint
            while cp:
                more = (await client.uaclient.browse_next(ua.BrowseNextParameters(ContinuationPoints=[cp])))[0]
                refs += more.References or []
                cp = more.ContinuationPoint
            results.append(refs)
    return results


def _run(coro: Any) -> Any:
    """Run a coroutine to completion on an event loop of its own thread (asyncua's ThreadLoop), so
    extract works the same from a plain task and from code already inside an event loop. No
    timeout here: each request has its own (`timeout_s`)."""
    from asyncua.sync import ThreadLoop

    with ThreadLoop(timeout=None) as loop:
        return loop.post(coro)


class OpcUaConnector(Connector):
    slice_column = "source_ref"  # decode is per row; a reference is one series

    # ---- connection --------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        c = self.connection
        if c is None or not c.host:
            raise ValueError(f"source {self.source.name}: connection {self.source.connection_id!r} has no host")
        path = f"/{c.schema}" if c.schema else ""
        return f"opc.tcp://{c.host}:{c.port or 4840}{path}"

    async def _client(self) -> Any:
        return await connect(self.connection, self.endpoint, self.source.name, self.source.timeout_s)

    # ---- node resolution -----------------------------------------------------------------

    async def resolve(self, client: Any) -> list[ResolvedNode]:
        """Resolve the configured nodes against this session's namespace array.

        Each level of a browse path is one batched Browse request for all nodes at that
        level, so resolving a whole plant costs a handful of round trips.
        """
        from asyncua import ua

        ns_array: list[str] = await client.get_namespace_array()
        index = {uri: i for i, uri in enumerate(ns_array)}
        out: list[ResolvedNode] = []
        self._unmatched = []
        for k, sel in enumerate(self.source.nodes):
            if sel.namespace not in index:
                raise ValueError(f"source {self.source.name}: the server has no namespace {sel.namespace!r} "
                                 f"(it has {ns_array})")
            ns = index[sel.namespace]
            level: list[tuple[Any, dict[str, str]]] = [(ua.NodeId(ua.ObjectIds.ObjectsFolder), {})]
            for seg in sel.path.split("/"):
                capture = re.fullmatch(r"{(\w+)}", seg)
                children = await self._browse(client, [n for n, _ in level], ua.NodeClass.Object)
                nxt = []
                for (_, captures), refs in zip(level, children, strict=True):
                    for name, bns, node_id in refs:
                        if bns != ns:
                            continue
                        if capture:
                            nxt.append((node_id, {**captures, capture.group(1): name}))
                        elif name == seg:
                            nxt.append((node_id, captures))
                level = nxt
            if not level:
                log.warning("source %s: browse path %r matches nothing on %s", self.source.name, sel.path, self.endpoint)
            variables = await self._browse(client, [n for n, _ in level], ua.NodeClass.Variable)
            before = len(out)
            for (_, captures), refs in zip(level, variables, strict=True):
                for name, _, node_id in refs:
                    if not fnmatch.fnmatch(name, sel.variables) or any(fnmatch.fnmatch(name, x) for x in sel.exclude):
                        continue
                    rel = fill(sel.asset, captures)
                    asset = self.plant.resolve_asset(rel)
                    out.append(ResolvedNode(_ref(node_id, ns_array), node_id, asset, tag_name(name), None, None,
                                            None if asset else f"asset {rel!r} is not in the site hierarchy", k))
            if len(out) == before:
                self._unmatched.append(f"nodes[{k}] {sel.path}/{sel.variables} in {sel.namespace} matched no "
                                       f"variable on {self.endpoint}")
        seen = {n.source_ref for n in out}
        for rule in self.source.tags:  # explicitly mapped nodes: nsu=…;s=… ids
            if rule.ref in seen:
                continue
            try:
                out.append(ResolvedNode(rule.ref, _parse_ref(rule.ref, index), None, None, None, None))
            except KeyError as exc:
                out.append(ResolvedNode(rule.ref, None, None, None, None, None, f"namespace {exc.args[0]!r} not on the server"))
        await self._describe(client, out)
        return out

    async def _browse(self, client: Any, node_ids: list[Any], node_class: Any) -> list[list[tuple[str, int, Any]]]:
        """Hierarchical children (browse name, its namespace index, node id) of many nodes, batched. An
        object's properties (HasProperty: serial number, manufacturer, nameplate data) are never
        readings and are left out; its components and organized variables are kept."""
        from asyncua import ua

        found = await browse(client, node_ids, node_class, self.source.batch_nodes)
        prop = ua.NodeId(ua.ObjectIds.HasProperty)
        return [[(r.BrowseName.Name, r.BrowseName.NamespaceIndex, ua.NodeId(r.NodeId.Identifier, r.NodeId.NamespaceIndex))
                 for r in refs if r.ReferenceTypeId != prop] for refs in found]

    async def _describe(self, client: Any, nodes: list[ResolvedNode]) -> None:
        """DataType and EngineeringUnits of every resolved node, in batched reads."""
        from asyncua import ua

        live = [n for n in nodes if n.node_id is not None and n.error is None]
        for i in range(0, len(live), self.source.batch_nodes):
            batch = live[i:i + self.source.batch_nodes]
            types = await client.uaclient.read_attributes([n.node_id for n in batch], ua.AttributeIds.DataType)
            for n, dv in zip(batch, types, strict=True):
                if not dv.StatusCode.is_good():
                    n.error = f"node not found on the server ({dv.StatusCode.name})"
                    continue
                dt = dv.Value.Value
                n.type = "bool" if dt == ua.NodeId(ua.ObjectIds.Boolean) else (
                    "text" if dt in (ua.NodeId(ua.ObjectIds.String), ua.NodeId(ua.ObjectIds.LocalizedText)) else "number")
            paths = [ua.BrowsePath(StartingNode=n.node_id, RelativePath=ua.RelativePath(Elements=[ua.RelativePathElement(
                ReferenceTypeId=ua.NodeId(ua.ObjectIds.HasProperty), IsInverse=False, IncludeSubtypes=True,
                TargetName=ua.QualifiedName("EngineeringUnits", 0))])) for n in batch if n.error is None]
            targets = await client.uaclient.translate_browsepaths_to_nodeids(paths) if paths else []
            with_eu = [(n, r) for n, r in zip([n for n in batch if n.error is None], targets, strict=True)
                       if r.StatusCode.is_good() and r.Targets]
            if with_eu:
                eu_ids = [ua.NodeId(r.Targets[0].TargetId.Identifier, r.Targets[0].TargetId.NamespaceIndex) for _, r in with_eu]
                eus = await client.uaclient.read_attributes(eu_ids, ua.AttributeIds.Value)
                for (n, _), dv in zip(with_eu, eus, strict=True):
                    eu = dv.Value.Value if dv.StatusCode.is_good() else None
                    if isinstance(eu, ua.EUInformation):  # the UNECE code first, the display text last
                        n.unit = from_eu_information(eu.NamespaceUri, eu.UnitId,
                                                     eu.DisplayName.Text if eu.DisplayName else None)

    def probe(self, interval: Interval, *, listen_s: float = 5.0) -> list[Finding]:
        return _run(self._probe())

    async def _probe(self) -> list[Finding]:
        from asyncua import ua

        client = await self._client()
        try:
            try:
                nodes = await self.resolve(client)
            except ValueError as exc:  # a namespace the server does not have
                return [Finding("nodes", False, str(exc))]
            by_ref = {n.source_ref: n for n in nodes}
            shown = [n for n in nodes if n.error is None and n.node_id is not None]
            first = {}
            for n in shown:
                first.setdefault(n.rule, n)
            sample = list(first.values()) + [by_ref[t.ref] for t in self.source.tags if by_ref[t.ref] in shown]
            values = await client.uaclient.read_attributes([n.node_id for n in sample[:500]], ua.AttributeIds.Value)
            seen = {n.source_ref: (dv.Value.Value if dv.StatusCode.is_good() and dv.Value else dv.StatusCode.name)
                    for n, dv in zip(sample, values, strict=False)}
        finally:
            await client.disconnect()
        out = []
        for k, sel in enumerate(self.source.nodes):
            mine = [n for n in nodes if n.rule == k]
            bad = [n for n in mine if n.error]
            place = f"nodes[{k}] {sel.path}/{sel.variables}"
            if not mine:
                out.append(Finding(place, False, f"matches no variable in {sel.namespace} on {self.endpoint}"))
                continue
            units = sorted({n.unit for n in mine if n.unit})
            e = first.get(k)
            example = f"; e.g. {e.asset_id}/{e.tag} = {seen.get(e.source_ref)!r} {e.unit or ''}".rstrip() if e else ""
            out.append(Finding(place, not bad or len(bad) < len(mine),
                               f"{len(mine)} variables on {len({n.asset_id for n in mine})} assets; units "
                               f"{', '.join(units) or 'none'}{example}"
                               + (f"; {len(bad)} not usable: {bad[0].error}" if bad else "")))
        for k, t in enumerate(self.source.tags):
            n = by_ref[t.ref]
            if n.error or n.node_id is None:
                out.append(Finding(f"tags[{k}] {t.ref}", False, n.error or "not on the server"))
            else:
                out.append(Finding(f"tags[{k}] {t.ref}", True, f"{n.type}, unit {n.unit or 'none'}, "
                                   f"value {seen.get(t.ref)!r}"))
        return out

    def lineage(self) -> tuple[str, list[str]]:
        refs = [f"nsu={n.namespace};{n.path}/{n.variables}" for n in self.source.nodes]
        return self.endpoint, refs + [t.ref for t in self.source.tags] + [f"events {e}" for e in self.source.events]

    def unmatched(self) -> list[str]:
        return list(getattr(self, "_unmatched", []))

    # ---- extract ---------------------------------------------------------------------------

    def extract(self, interval: Interval, state: dict[str, Any]) -> Extract:
        from connectors.opcua import events

        cols, nodes, found = _run(self._extract(interval))
        table = cols.table()
        missing = sum(1 for n in nodes if n.error)
        stats = {"nodes": len(nodes), "nodes_missing": missing, "values": table.num_rows - missing,
                 "mode": self.source.mode}
        if found is None:
            return Extract.one(RAW_SCHEMA, [table], stats=stats)
        table_events, event_stats = found
        return Extract({RAW: Stream([table], RAW_SCHEMA), events.STREAM: Stream([table_events], events.RAW_SCHEMA)},
                       stats={**stats, **event_stats})

    async def _events(self, client: Any, nodes: list[ResolvedNode], interval: Interval) -> Any:
        from connectors.opcua import events

        ns_array: list[str] = await client.get_namespace_array()
        index = {uri: i for i, uri in enumerate(ns_array)}
        notifiers = []
        for ref in self.source.events:
            try:
                notifiers.append((ref, _parse_ref(ref, index)))
            except KeyError as exc:
                raise ValueError(f"source {self.source.name}: events notifier {ref}: the server has no namespace "
                                 f"{exc.args[0]!r} (it has {ns_array})") from None
        mapped = {n.source_ref: (n.asset_id, n.tag) for n in nodes if n.error is None and n.asset_id}
        for t in self.source.tags:  # nodes mapped one by one: their asset and tag from the mapping
            mapped[t.ref] = (self.plant.resolve_asset(t.asset), t.tag)
        return await events.read_events(client, notifiers, interval, source=self.source.name, endpoint=self.endpoint,
                                        timeout_s=self.source.timeout_s, ref=lambda n: _ref(n, ns_array), mapped=mapped)

    async def _extract(self, interval: Interval) -> tuple[Columns, list[ResolvedNode], Any]:
        client = await self._client()
        try:
            nodes = await self.resolve(client)
            cols = Columns()
            for n in nodes:
                if n.error is not None:
                    cols.error(n)
            ok = [n for n in nodes if n.error is None]
            if self.source.mode == "history":
                await self._history(client, ok, interval, cols)
            else:
                await self._poll(client, ok, cols)
            found = await self._events(client, nodes, interval) if self.source.events else None
            return cols, nodes, found
        except (OSError, TimeoutError) as exc:
            raise SourceUnavailable(f"source {self.source.name}: lost {self.endpoint} during the read "
                                    f"({exc.__class__.__name__}: {exc})") from exc
        finally:
            try:
                await asyncio.wait_for(client.disconnect(), timeout=5)
            except Exception:  # the connection may already be gone; nothing to release
                log.debug("disconnect from %s failed", self.endpoint, exc_info=True)

    async def _history(self, client: Any, nodes: list[ResolvedNode], interval: Interval, cols: Columns) -> None:
        from asyncua import ua

        from connectors.opcua.binary import NodeHistory, history_read

        # HistoryRead's end is inclusive; the interval is half-open
        end = interval.end - timedelta(microseconds=1)
        details = ua.ReadRawModifiedDetails(IsReadModified=False, StartTime=interval.start, EndTime=end,
                                            NumValuesPerNode=0, ReturnBounds=False)
        sem = asyncio.Semaphore(self.source.parallel_requests)
        batches = [nodes[i:i + self.source.batch_nodes] for i in range(0, len(nodes), self.source.batch_nodes)]
        lo, hi = _epoch_us(interval.start), _epoch_us(interval.end)

        async def read_batch(batch: list[ResolvedNode]) -> None:
            pending = {i: b"" for i in range(len(batch))}
            while pending:
                params = ua.HistoryReadParameters(
                    HistoryReadDetails=details, TimestampsToReturn=ua.TimestampsToReturn.Both,
                    ReleaseContinuationPoints=False,
                    NodesToRead=[ua.HistoryReadValueId(NodeId=batch[i].node_id, ContinuationPoint=cp or None)
                                 for i, cp in pending.items()])
                async with sem:
                    results = await asyncio.wait_for(history_read(client, params), self.source.timeout_s)
                nxt = {}
                for i, res in zip(list(pending), results, strict=True):
                    n = batch[i]
                    h = res if isinstance(res, NodeHistory) else _from_result(res)
                    status = ua.StatusCode(h.status_code)
                    if not status.is_good():
                        if status.name in HISTORY_REFUSED:
                            raise HistoryRefused(
                                f"source {self.source.name}: {self.endpoint} refuses HistoryRead for {n.source_ref} "
                                f"({status.name}); set `mode: poll` for this source if the server keeps no history")
                        cols.error(ResolvedNode(**{**n.__dict__, "error": f"HistoryRead failed ({status.name})"}))
                        continue
                    cols.add(n, h, lo, hi)
                    if h.continuation_point:
                        nxt[i] = h.continuation_point
                pending = nxt

        await asyncio.gather(*(read_batch(b) for b in batches))

    async def _poll(self, client: Any, nodes: list[ResolvedNode], cols: Columns) -> None:
        from asyncua import ua

        for k in range(self.source.poll_samples):
            for i in range(0, len(nodes), self.source.batch_nodes):
                batch = nodes[i:i + self.source.batch_nodes]
                params = ua.ReadParameters(TimestampsToReturn=ua.TimestampsToReturn.Both, NodesToRead=[
                    ua.ReadValueId(NodeId=n.node_id, AttributeId=ua.AttributeIds.Value) for n in batch])
                dvs = await asyncio.wait_for(client.uaclient.read(params), self.source.timeout_s)
                for n, dv in zip(batch, dvs, strict=True):
                    cols.add(n, _from_datavalues(0, [dv]), None, None)
            if k + 1 < self.source.poll_samples:
                await asyncio.sleep(self.source.poll_interval_s)

    # ---- decode ----------------------------------------------------------------------------

    def decode(self, raw: Raw) -> Decoded:
        from connectors.opcua import events

        tables, rejected = {}, {}
        if raw.get(events.STREAM) is not None:
            tables["events"], rejected["events"] = events.decode(raw[events.STREAM], "opcua", self.source.name)
        raw = raw[RAW]
        rejects = Rejects(stage="decode")
        failed = pc.is_valid(raw["error"])
        data = rejects.add(raw, failed, "source_ref", lambda r: f"source_ref: {r['error']} ({r['source_ref']})")
        data = rejects.add(data, pc.is_null(data["ts"]), "ts", lambda r: f"ts: the server sent no timestamp ({r['source_ref']})")
        data = data.drop_columns(["node", "variant", "error"])
        data = data.append_column("source", pa.array(["opcua"] * data.num_rows, pa.string()))
        return Decoded({"sensor_readings": data, **tables}, {"sensor_readings": rejects, **rejected})


class Columns:
    """Raw rows accumulated column by column (no per-value dicts)."""

    def __init__(self) -> None:
        self.parts: list[pa.Table] = []

    def add(self, n: ResolvedNode, h: Any, lo: int | None, hi: int | None) -> None:
        ts = [s if s is not None else v for s, v in zip(h.source_us, h.server_us, strict=True)]
        keep = None
        if lo is not None:  # keep the half-open interval; servers answer with an inclusive end
            keep = [t is not None and lo <= t < hi for t in ts]
        count = len(ts)
        table = pa.table({
            "source_ref": _const(n.source_ref, count), "node": _const(n.node_id.to_string(), count),
            "asset_id": _const(n.asset_id, count), "tag": _const(n.tag, count), "type": _const(n.type, count),
            "ts": pa.array(ts, pa.int64()).cast(TS), "server_ts": pa.array(h.server_us, pa.int64()).cast(TS),
            "value": pa.array(h.value, pa.float64()), "value_text": pa.array(h.value_text, pa.string()),
            "variant": pa.array(h.variant, pa.string()), "status_code": pa.array(h.status, pa.int64()),
            "unit": _const(n.unit, count), "error": pa.nulls(count, pa.string()),
        }, schema=RAW_SCHEMA)
        self.parts.append(table.filter(pa.array(keep)) if keep is not None and not all(keep) else table)

    def error(self, n: ResolvedNode) -> None:
        row = {f.name: None for f in RAW_SCHEMA}
        row.update(source_ref=n.source_ref, node=n.node_id.to_string() if n.node_id is not None else None,
                   asset_id=n.asset_id, tag=n.tag, type=n.type, error=n.error)
        self.parts.append(pa.Table.from_pylist([row], schema=RAW_SCHEMA))

    def table(self) -> pa.Table:
        return pa.concat_tables(self.parts) if self.parts else RAW_SCHEMA.empty_table()


def _const(value: str | None, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, pa.string())
    return pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()), pa.array([value])).cast(pa.string())


def _epoch_us(dt: datetime) -> int:
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def _from_result(res: Any) -> Any:
    """asyncua's HistoryReadResult as the lean decoder's NodeHistory."""
    dvs = res.HistoryData.DataValues if res.HistoryData is not None else []
    h = _from_datavalues(res.StatusCode.value, dvs or [])
    h.continuation_point = res.ContinuationPoint or None
    return h


def _from_datavalues(status: int, dvs: list[Any]) -> Any:
    from connectors.opcua.binary import NodeHistory

    h = NodeHistory(status, None)
    for dv in dvs:
        v = dv.Value.Value if dv.Value is not None else None
        h.variant.append(dv.Value.VariantType.name if dv.Value is not None else None)
        if isinstance(v, bool):
            h.value.append(1.0 if v else 0.0)
            h.value_text.append(None)
        elif isinstance(v, int | float):
            h.value.append(float(v))
            h.value_text.append(None)
        else:
            h.value.append(None)
            h.value_text.append(None if v is None else (v.Text if hasattr(v, "Text") else str(v)))
        h.status.append(dv.StatusCode.value if dv.StatusCode is not None else 0)
        src, srv = _utc(dv.SourceTimestamp), _utc(dv.ServerTimestamp)
        h.source_us.append(_epoch_us(src) if src else None)
        h.server_us.append(_epoch_us(srv) if srv else None)
    return h


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)



def _ref(node_id: Any, ns_array: list[str]) -> str:
    """nsu=<namespace uri>;<identifier> — the node's name that survives a namespace reorder."""
    ident = node_id.to_string().split(";", 1)[-1] if ";" in node_id.to_string() else node_id.to_string()
    return f"nsu={ns_array[node_id.NamespaceIndex]};{ident}"


def _parse_ref(ref: str, index: dict[str, int]) -> Any:
    from asyncua import ua

    if ref.startswith("nsu="):
        uri, _, ident = ref[4:].partition(";")
        if uri not in index:
            raise KeyError(uri)
        return ua.NodeId.from_string(f"ns={index[uri]};{ident}")
    return ua.NodeId.from_string(ref)

