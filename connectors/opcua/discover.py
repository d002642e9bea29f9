"""`plantlake discover opcua`: browse a live server and draft its source blocks.

Breadth-first from the Objects folder (standard namespace-0 nodes such as `Server` are left
out), a level a request batch, within the server's own operation limits (MaxNodesPerBrowse,
MaxNodesPerRead, MaxNodesPerTranslateBrowsePathsToNodeIds) and every continuation point
followed; `max_nodes` and `max_depth` bound the look, and the draft says when one stopped it.
An Object with Variables below it is an asset; its browse path, read by meaning (namespace
URI, never the index), is grouped with its siblings of the same shape into one `nodes` rule
(`connectors.discovery`). Per variable the DataType, ValueRank, AccessLevel, Historizing,
EngineeringUnits (UNECE code to unit) and EURange are read: HistoryRead access chooses history
or poll (two source blocks when a server has both), EURange becomes min/max, and what
plantlake does not decode (structures, arrays) or must not read as a reading (an object's
properties: nameplates, serial numbers) is excluded, each with a comment.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from connectors.base import tag_name
from connectors.discovery import Draft, Hierarchy, Named, group_rules
from connectors.opcua.connector import _ref, browse, connect
from schemas.units import from_eu_information

HAS_PROPERTY = 46
HISTORY_READ = 0x04
NUMERIC = {1: "Boolean", 2: "SByte", 3: "Byte", 4: "Int16", 5: "UInt16", 6: "Int32", 7: "UInt32", 8: "Int64",
           9: "UInt64", 10: "Float", 11: "Double", 26: "Number", 27: "Integer", 28: "UInteger"}
TEXT = {12: "String", 21: "LocalizedText"}


@dataclass
class Variable:
    name: str
    node_id: Any
    property: bool  # a HasProperty of its object (nameplate data, not a reading)
    data_type: str = "?"
    decodable: bool = True
    type: str = "number"
    history: bool = False
    unit: str | None = None
    range: tuple[float, float] | None = None


@dataclass
class Obj:
    path: tuple[str, ...]
    namespaces: set[int]
    variables: list[Variable] = field(default_factory=list)


async def _limits(client: Any) -> dict[str, int]:
    from asyncua import ua

    ids = {"browse": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
           "read": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
           "translate": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds}
    values = await client.uaclient.read_attributes([ua.NodeId(i) for i in ids.values()], ua.AttributeIds.Value)
    out = {}
    for key, dv in zip(ids, values, strict=True):
        limit = dv.Value.Value if dv.StatusCode.is_good() and dv.Value is not None else 0
        out[key] = int(limit) if limit else 0
    return out


def _batch(limit: int, default: int = 1000) -> int:
    return min(limit, default) if limit else default


async def _walk(client: Any, limits: dict[str, int], max_nodes: int, max_depth: int) -> tuple[list[Obj], dict[str, Any]]:
    """Objects that hold variables, with their variables (names, ids, property or not)."""
    from asyncua import ua

    batch = _batch(limits["browse"])
    level: list[tuple[Any, tuple[str, ...], set[int]]] = [(ua.NodeId(ua.ObjectIds.ObjectsFolder), (), set())]
    seen: set[Any] = set()
    objects: list[Obj] = []
    browsed, depth, stopped = 0, 0, None
    mask = ua.NodeClass.Object | ua.NodeClass.Variable
    while level:
        if depth >= max_depth:
            stopped = f"depth {max_depth} reached (--max-depth): {len(level)} objects below it not browsed"
            break
        found = await browse(client, [n for n, _, _ in level], mask, batch, max_refs=1000)
        nxt = []
        for (_, path, nss), refs in zip(level, found, strict=True):
            obj = Obj(path, nss)
            for r in refs:
                nid = ua.NodeId(r.NodeId.Identifier, r.NodeId.NamespaceIndex)
                if nid in seen or (not path and nid.NamespaceIndex == 0):
                    continue  # a second way to a node; the standard objects (Server, …)
                seen.add(nid)
                browsed += 1
                if r.NodeClass == ua.NodeClass.Variable:
                    is_prop = r.ReferenceTypeId == ua.NodeId(HAS_PROPERTY)
                    obj.variables.append(Variable(r.BrowseName.Name, nid, is_prop))
                else:
                    nxt.append((nid, (*path, r.BrowseName.Name), nss | {r.BrowseName.NamespaceIndex}))
            if obj.variables and path:
                objects.append(obj)
        if browsed >= max_nodes:
            stopped = f"{browsed} nodes browsed (--max-nodes {max_nodes}): the rest of the address space not browsed"
            break
        level, depth = nxt, depth + 1
    return objects, {"nodes_browsed": browsed, "objects_with_variables": len(objects),
                     "variables": sum(len(o.variables) for o in objects), "stopped": stopped}


async def _describe(client: Any, variables: list[Variable], limits: dict[str, int]) -> None:
    from asyncua import ua

    read = _batch(limits["read"])
    attrs = {"dt": ua.AttributeIds.DataType, "rank": ua.AttributeIds.ValueRank,
             "access": ua.AttributeIds.AccessLevel, "hist": ua.AttributeIds.Historizing}
    for i in range(0, len(variables), read):
        chunk = variables[i:i + read]
        got = {k: await client.uaclient.read_attributes([v.node_id for v in chunk], a) for k, a in attrs.items()}
        for j, v in enumerate(chunk):
            dt = got["dt"][j].Value.Value if got["dt"][j].StatusCode.is_good() else None
            rank = got["rank"][j].Value.Value if got["rank"][j].StatusCode.is_good() else -1
            access = got["access"][j].Value.Value if got["access"][j].StatusCode.is_good() else 0
            ident = dt.Identifier if dt is not None and dt.NamespaceIndex == 0 and isinstance(dt.Identifier, int) else None
            v.data_type = NUMERIC.get(ident) or TEXT.get(ident) or (f"ns={dt.NamespaceIndex};i={dt.Identifier}"
                                                                     if dt is not None else "?")
            # ValueRank (Part 3): -1 scalar, -2 any, -3 scalar or one dimension; 0 and n >= 1 arrays
            v.decodable = (ident in NUMERIC or ident in TEXT) and rank < 0
            if rank >= 0:
                v.data_type += "[]"
            v.type = "bool" if ident == 1 else "text" if ident in TEXT else "number"
            v.history = bool(int(access or 0) & HISTORY_READ) or bool(got["hist"][j].Value.Value)
    translate = _batch(limits["translate"])
    for prop, apply in (("EngineeringUnits", _apply_unit), ("EURange", _apply_range)):
        wanted = [v for v in variables if v.decodable and v.type == "number"]
        for i in range(0, len(wanted), translate):
            chunk = wanted[i:i + translate]
            paths = [ua.BrowsePath(StartingNode=v.node_id, RelativePath=ua.RelativePath(Elements=[ua.RelativePathElement(
                ReferenceTypeId=ua.NodeId(HAS_PROPERTY), IsInverse=False, IncludeSubtypes=True,
                TargetName=ua.QualifiedName(prop, 0))])) for v in chunk]
            targets = await client.uaclient.translate_browsepaths_to_nodeids(paths)
            hits = [(v, r.Targets[0].TargetId) for v, r in zip(chunk, targets, strict=True)
                    if r.StatusCode.is_good() and r.Targets]
            for k in range(0, len(hits), read):
                part = hits[k:k + read]
                values = await client.uaclient.read_attributes(
                    [ua.NodeId(t.Identifier, t.NamespaceIndex) for _, t in part], ua.AttributeIds.Value)
                for (v, _), dv in zip(part, values, strict=True):
                    if dv.StatusCode.is_good() and dv.Value is not None:
                        apply(v, dv.Value.Value)


def _apply_unit(v: Variable, eu: Any) -> None:
    if eu is not None and hasattr(eu, "UnitId"):
        v.unit = from_eu_information(eu.NamespaceUri, eu.UnitId, eu.DisplayName.Text if eu.DisplayName else None)


def _apply_range(v: Variable, rng: Any) -> None:
    if rng is not None and hasattr(rng, "Low") and rng.Low is not None and rng.High is not None and rng.Low <= rng.High:
        v.range = (float(rng.Low), float(rng.High))


def discover(endpoint: str, connection: Any, *, name: str, plant: Any | None, max_nodes: int = 200_000,
             max_depth: int = 12, timeout_s: float = 30.0, **_: Any) -> list[Draft]:
    """Drafts for the server at `endpoint` (`opc.tcp://host:port/path`, or an Airflow connection id whose
    connection names the server as the source's does)."""
    if not endpoint.startswith("opc.tcp://"):
        if connection is None or not connection.host:
            raise ValueError(f"{endpoint}: no OPC UA server (give opc.tcp://host:port/path or a connection id)")
        endpoint = f"opc.tcp://{connection.host}:{connection.port or 4840}" + (
            f"/{connection.schema}" if connection.schema else "")
    from connectors.opcua.connector import _run

    return _run(_discover(connection, endpoint, name, plant, max_nodes, max_depth, timeout_s))


async def _discover(connection: Any, endpoint: str, name: str, plant: Any | None, max_nodes: int, max_depth: int,
                    timeout_s: float) -> list[Draft]:
    began = time.monotonic()
    client = await connect(connection, endpoint, name, timeout_s)
    try:
        ns_array: list[str] = await client.get_namespace_array()
        limits = await _limits(client)
        objects, figures = await _walk(client, limits, max_nodes, max_depth)
        await _describe(client, [v for o in objects for v in o.variables], limits)
    finally:
        await client.disconnect()
    figures.update({"seconds": round(time.monotonic() - began, 1), "server_limits": limits})
    if not objects:
        raise ValueError(f"{endpoint}: no object with variables below Objects ({figures['nodes_browsed']} nodes "
                         "browsed; standard namespace-0 objects are left out)")
    return _drafts(objects, ns_array, endpoint, name, Hierarchy(plant), figures)


def _drafts(objects: list[Obj], ns_array: list[str], endpoint: str, name: str, hierarchy: Hierarchy,
            figures: dict[str, Any]) -> list[Draft]:
    """A history block for what the server keeps history of, a poll block for the rest."""
    mixed = [o for o in objects if len(o.namespaces) > 1]
    usable = [o for o in objects if len(o.namespaces) == 1]
    by_mode: dict[str, list[tuple[Obj, list[Variable]]]] = {"history": [], "poll": []}
    for o in usable:
        for mode in by_mode:  # properties and what plantlake does not decode choose no block (each excludes them)
            vs = [v for v in o.variables if v.history == (mode == "history") and v.decodable and not v.property]
            if vs:
                by_mode[mode].append((o, vs))
    drafts = []
    for mode, members in by_mode.items():
        if not members:
            continue
        block_name = name if mode == "history" or not by_mode["history"] else f"{name}_poll"
        drafts.append(_block(members, ns_array, endpoint, block_name, mode, hierarchy, figures, connection_id=name))
    if drafts and mixed:
        drafts[0].notes[()] += (f"; {len(mixed)} object(s) whose browse path crosses namespaces were left out "
                                f"(e.g. {'/'.join(mixed[0].path)}): map their variables as tags (nsu=…;s=…)")
    return drafts


def _block(members: list[tuple[Obj, list[Variable]]], ns_array: list[str], endpoint: str, name: str, mode: str,
           hierarchy: Hierarchy, figures: dict[str, Any], connection_id: str) -> Draft:
    named = [Named(o.path, (o, vs)) for o, vs in members]
    by_ns: dict[int, list[Named]] = {}
    for n in named:
        by_ns.setdefault(next(iter(n.payload[0].namespaces)), []).append(n)
    nodes: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    notes: dict[tuple, str] = {}
    new_assets: dict[str, str] = {}
    for ns, group in sorted(by_ns.items()):
        for rule in group_rules(group, hierarchy):
            k = len(nodes)
            variables = [v for m in rule.members for v in m.payload[1]]
            mine = {id(v) for v in variables}
            everything = [v for m in rule.members for v in m.payload[0].variables]
            unread = {v.name for v in everything if v.property or not v.decodable}
            other = {v.name for v in everything if id(v) not in mine} - unread
            exclude = sorted(unread | other)
            # a name excluded on one object only would also leave out a reading elsewhere: keep it, and say so
            readings = {v.name for v in variables}
            clash = sorted((set(exclude) & readings) | (other & {v.name for v in variables}))
            exclude = [x for x in exclude if x not in readings]
            entry: dict[str, Any] = {"namespace": ns_array[ns], "path": "/".join(rule.pattern), "asset": rule.asset}
            if len(readings) == 1 and exclude:  # one variable of many: name it rather than exclude the rest
                entry["variables"], exclude = next(iter(readings)), []
            if exclude:
                entry["exclude"] = exclude
            nodes.append(entry)
            kinds = Counter(v.data_type for v in variables if v.name not in exclude)
            units = sorted({v.unit for v in variables if v.unit and v.name not in exclude})
            notes[("nodes", k)] = (f"{len(rule.members)} object(s), {sum(kinds.values())} variables: "
                                   + ", ".join(f"{n} {t}" for t, n in kinds.most_common())
                                   + (f"; units {', '.join(units)}" if units else "; no EngineeringUnits"))
            why = {n: f"read by the {'poll' if mode == 'history' else 'history'} block" for n in other}
            why |= {v.name: ("a property of the object (nameplate data), not a reading" if v.property else
                            f"DataType {v.data_type}: not a value plantlake decodes") for v in everything if v.name in unread}
            if exclude:
                notes[("nodes", k, "exclude")] = "; ".join(f"{n}: {w}" for n, w in sorted(why.items()))[:600]
            if clash:
                notes[("nodes", k, "path")] = (f"{', '.join(clash)}: history on some objects and not on others, or a "
                                               "reading on some and a property on others: check them")
            if rule.new_assets:
                notes[("nodes", k, "asset")] = (f"{len(rule.new_assets)} asset(s) not in the site hierarchy before; "
                                                "added below it: name and place them")
                for a in rule.new_assets:
                    new_assets[a] = f"discovered on {endpoint}"
            for m in rule.members:
                obj, vs = m.payload
                asset = _fill(rule, obj.path)
                for v in vs:
                    if v.range is not None and v.name not in exclude:
                        tags.append({"ref": _ref(v.node_id, ns_array), "asset": asset, "tag": tag_name(v.name),
                                     "min": v.range[0] + 0.0, "max": v.range[1] + 0.0})
    source: dict[str, Any] = {"name": name, "kind": "opcua", "description": f"Discovered on {endpoint}",
                              "connection_id": connection_id, "schedule": "0 * * * *", "mode": mode, "nodes": nodes}
    if tags:
        source["tags"] = tags
        notes[("tags",)] = ("min/max from each variable's EURange, which OPC UA Part 8 defines as the range of normal "
                            "operation: plantlake quarantines values outside it — widen to the physical limits where "
                            "excursions are real")
    notes[()] = (f"discovered {figures['variables']} variables on {figures['objects_with_variables']} objects "
                 f"({figures['nodes_browsed']} nodes browsed)"
                 + (f"; STOPPED: {figures['stopped']}" if figures.get("stopped") else ""))
    notes[("mode",)] = ("the server keeps history of these variables (AccessLevel HistoryRead)" if mode == "history"
                        else "no history on the server for these variables: read current values each run")
    notes[("connection_id",)] = f"set AIRFLOW_CONN_{connection_id.upper()}=opcua://<host>:<port>/<path> (login in the URI)"
    return Draft(source, notes, new_assets, figures)


def _fill(rule: Any, path: tuple[str, ...]) -> str:
    from connectors.base import fill

    caps = {seg[1:-1]: path[i] for i, seg in enumerate(rule.pattern) if seg.startswith("{")}
    return fill(rule.asset, caps)
