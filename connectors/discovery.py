"""What every kind's discovery shares: the draft it returns, and the mapping of a source's own
names (OPC UA browse paths, MQTT topic levels) to assets of the site hierarchy.

A kind's `discover.py` looks at a live source and returns `Draft`s: a source block as plain
data, the comments a person must read (keyed by their place in the block), the assets the block
uses that the site hierarchy lacks, and the figures of the look. `plantlake discover` (the app)
writes them into a site config.

Names to assets: each name is split into segments (`Plant/Line1/Press1`, `acme/shenzhen/assembly/
line1/press1/telemetry`). A segment matches an asset id when its slug (the documented rule:
`connectors.base.slug`) equals it. An object's asset is the hierarchy asset whose own id is the
deepest matched segment, its parents' ids matching earlier segments where they appear (a tie
between two assets is no match). A group of names of one shape becomes one pattern: segments that
vary become `{captures}`, and the asset a template over the captures (`{area}/{line}/{cell}`)
when every asset of the group is that template filled — otherwise one rule per name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.base import fill, slug

LEVELS = ("area", "line", "cell")


@dataclass
class Draft:
    """A discovered source block and what a person must know about it."""

    source: dict[str, Any]
    #: comment by place in `source`: ("nodes", 0, "asset") -> "…"; () is the block's own comment
    notes: dict[tuple, str] = field(default_factory=dict)
    #: assets (relative to the site: area[/line[/cell]]) the block uses and the hierarchy lacks, with why
    new_assets: dict[str, str] = field(default_factory=dict)
    #: figures of the look (nodes browsed, seconds, topics seen), printed by the command
    figures: dict[str, Any] = field(default_factory=dict)


class Hierarchy:
    """The site's assets as id chains relative to the site: ('assembly', 'line1', 'press1')."""

    def __init__(self, plant: Any | None) -> None:
        self.assets: list[tuple[str, ...]] = []
        if plant is not None:
            prefix = f"{plant.enterprise.id}/{plant.site.id}/"
            for a in plant.assets():
                path = a["asset_id"] if isinstance(a, dict) else a
                if path.startswith(prefix) and path != prefix.rstrip("/"):
                    self.assets.append(tuple(path[len(prefix):].split("/")))

    def match(self, segments: Sequence[str]) -> tuple[str, ...] | None:
        """The asset these segments name, or None (no asset, or two equally good ones)."""
        slugs = [slug(s) for s in segments]
        best: tuple[int, int, int] | None = None
        found: list[tuple[str, ...]] = []
        for asset in self.assets:
            if asset[-1] not in slugs:
                continue
            last = max(i for i, s in enumerate(slugs) if s == asset[-1])
            pos, prev, ok = 0, -1, True
            for ident in asset[:-1]:
                hits = [i for i, s in enumerate(slugs[:last]) if s == ident and i > prev]
                if hits:
                    prev, pos = hits[0], pos + 1
                elif ident in slugs:
                    ok = False  # named, but in the wrong order
            if not ok:
                continue
            score = (last, pos + 1, len(asset))
            if best is None or score > best:
                best, found = score, [asset]
            elif score == best:
                found.append(asset)
        return found[0] if len(found) == 1 else None


@dataclass
class Named:
    """One thing a source names by segments (an OPC UA object's browse path, a topic's levels)."""

    segments: tuple[str, ...]
    payload: Any = None


@dataclass
class Rule:
    """A pattern over a group of names: `{capture}` segments, and the asset template."""

    pattern: tuple[str, ...]
    asset: str
    members: list[Named]
    #: assets relative to the site that the rule names and the hierarchy lacks
    new_assets: list[str] = field(default_factory=list)


def group_rules(names: list[Named], hierarchy: Hierarchy, *, keep: Sequence[int] = ()) -> list[Rule]:
    """One rule per group of names of one shape (same depth, same constant segments), or one rule per
    name where the group's assets follow no template. `keep`: segment positions that stay literal
    (e.g. an MQTT topic's last level, its message kind)."""
    by_depth: dict[int, list[Named]] = {}
    for n in names:
        by_depth.setdefault(len(n.segments), []).append(n)
    rules: list[Rule] = []
    for depth, group in sorted(by_depth.items()):
        for sub in _split_by_kept(group, keep):
            rule = _rule(sub, hierarchy, depth)
            rules += [rule] if rule else [r for n in sub for r in [_rule([n], hierarchy, depth)] if r]
    return rules


def _split_by_kept(group: list[Named], keep: Sequence[int]) -> list[list[Named]]:
    out: dict[tuple, list[Named]] = {}
    for n in group:
        out.setdefault(tuple(n.segments[i] for i in keep if i < len(n.segments)), []).append(n)
    return list(out.values())


def _rule(group: list[Named], hierarchy: Hierarchy, depth: int) -> Rule | None:
    varying = [i for i in range(depth) if len({n.segments[i] for n in group}) > 1]
    matched = {id(n): hierarchy.match(n.segments) for n in group}
    deepest = max((len(a) for a in matched.values() if a), default=0)
    for n in group:  # siblings of one shape name assets of one level: a shallower match is a new asset
        if matched[id(n)] and len(matched[id(n)]) < deepest:
            matched[id(n)] = None
    known = [n for n in group if matched[id(n)]]
    basis = known or group
    assets = {id(n): matched[id(n)] or _guess(n.segments) for n in basis}
    if len({len(a) for a in assets.values()}) != 1:
        return None
    length = len(next(iter(assets.values())))
    names: dict[int, str] = {}
    template: list[str] = []
    for j in range(length):
        values = {id(n): assets[id(n)][j] for n in basis}
        pos = next((i for i in varying if all(slug(n.segments[i]) == values[id(n)] for n in basis)), None)
        if pos is not None:
            names[pos] = LEVELS[len(LEVELS) - length + j] if length <= len(LEVELS) else f"level{j}"
            template.append("{" + names[pos] + "}")
        elif len(set(values.values())) == 1:
            template.append(next(iter(values.values())))
        else:
            return None
    used = set(names.values())
    for i in varying:
        if i not in names:
            name = f"level{i + 1}"
            names[i] = name if name not in used else f"{name}_"
    pattern = tuple("{" + names[i] + "}" if i in names else group[0].segments[i] for i in range(depth))
    asset = "/".join(template)
    new: list[str] = []
    for n in group:
        if matched[id(n)] is None:
            filled = fill(asset, {names[i]: n.segments[i] for i in names})
            if filled not in new:
                new.append(filled)
    return Rule(pattern, asset, group, new)


def _guess(segments: Sequence[str]) -> tuple[str, ...]:
    """An asset for a name the hierarchy does not know: its last segments as area/line/cell."""
    useful = [slug(s) for s in segments if slug(s)]
    return tuple(useful[-len(LEVELS):]) or ("unnamed",)


def add_assets(site: Any, paths: dict[str, str], mapping: type = dict, sequence: type = list) -> list[str]:
    """Add relative asset paths (area[/line[/cell]]) to a site's `areas` in place (new nodes made with
    `mapping`/`sequence`, e.g. ruamel's commented types); returns the paths of the topmost nodes added
    (a new line with its new cells: the line)."""
    added = []
    for path in paths:
        ids = path.split("/")[:len(LEVELS)]
        children = site.get("areas")
        if children is None:
            children = site["areas"] = sequence()
        new = False
        for depth, ident in enumerate(ids):
            node = next((x for x in children if x.get("id") == ident), None)
            if node is None:
                node = mapping()
                node["id"] = ident
                children.append(node)
                if not new:
                    added.append("/".join(ids[:depth + 1]))
                new = True
            if depth == len(ids) - 1:
                break
            key = ("lines", "cells")[depth]
            if node.get(key) is None:
                node[key] = sequence()
            children = node[key]
    return added


def folder_setting(folder: Any, base_dir: Any) -> str:
    """A drop folder as the config writes it: relative to the config's folder when inside it."""
    import os
    from pathlib import Path

    folder, base = Path(folder).resolve(), Path(base_dir).resolve()
    return Path(os.path.relpath(folder, base)).as_posix() if folder.is_relative_to(base) else str(folder)


def field_named(fields: Sequence[str], names: Sequence[str]) -> str | None:
    """The first of `fields` whose name, lower case without separators, is one of `names`."""
    import re

    def norm(x: str) -> str:
        return re.sub(r"[^a-z0-9äöü]", "", x.lower())

    wanted = [norm(n) for n in names]
    for n in wanted:
        for f in fields:
            if norm(f) == n:
                return f
    return None


def parses_as(value: str, fmt: str) -> bool:
    """Whether `value` is a time in strptime format `fmt`."""
    from datetime import datetime

    try:
        datetime.strptime(value, fmt)
        return True
    except ValueError:
        return False
