"""`plantlake discover <kind> <target>`: look at a live source and write a draft site config.

The kind's discovery (`connectors/<kind>/discover.py`) returns drafts (`connectors.discovery.
Draft`); this module writes them into a site config with ruamel.yaml, so a base config given
with `--config` keeps its own comments: its hierarchy gains the assets the drafts use and lacks
(each marked), a source of the same name is replaced, any other appended. Every place a person
must decide carries a comment. The result is validated like `plantlake config check` before it
is written; discovery never writes a file the pipeline would refuse.
"""

from __future__ import annotations

import io
import os
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.discovery import Draft, add_assets
from plantlake.core.config import ConfigError, PlantConfig, parse_config, read_yaml
from plantlake.core.connections import Connection, get_connection

SKELETON = """\
# plantlake site config drafted by `plantlake discover`: read every comment, then
# `plantlake config check --probe` and run. Secrets never live here (AIRFLOW_CONN_<ID>).
enterprise:
  id: my-enterprise   # name it: your company (a slug: a-z, 0-9, '_', '-')
  sites:
    - id: my-site     # name it: this plant
      timezone: UTC   # the plant's IANA time zone (e.g. Europe/Berlin): local times in exports and ERPs
      areas: []
lake:
  root: ./lake
sources: []
"""


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 4096  # a tag mapping stays on its line
    y.preserve_quotes = True
    return y


def connection_for(target: str, name: str, scheme: str) -> tuple[Connection, str]:
    """A target is a URL (`opc.tcp://host:4840/path`, `mqtt://host:1883`, a database URL) or an Airflow
    connection id; returns the connection and a printable form of the target (never a password)."""
    if "://" not in target:
        c = get_connection(target)
        return c, f"{c.conn_type or scheme}://{c.host}:{c.port}" if c.host else target
    parts = urlsplit(target)
    shown = f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"
    return Connection.from_uri(name, target), shown  # Airflow's own parser, as AIRFLOW_CONN_<ID> is read


def base_document(path: Path | None) -> Any:
    y = _yaml()
    if path is not None and path.exists():
        return y.load(path.read_text(encoding="utf-8"))
    return y.load(SKELETON)


def merge(doc: Any, drafts: list[Draft]) -> list[str]:
    """Put the drafts into the document; returns what was added to the hierarchy."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    site = doc["enterprise"]["sites"][0]
    if "areas" not in site or site["areas"] is None:
        site["areas"] = CommentedSeq()
    added: list[str] = []
    if doc.get("sources") is None:
        doc["sources"] = CommentedSeq()
    for d in drafts:
        for path in add_assets(site, d.new_assets, CommentedMap, CommentedSeq):
            added.append(path)
        block = _commented(d.source)
        _annotate(block, d.notes, depth=4)
        names = [s.get("name") for s in doc["sources"]]
        if d.source["name"] in names:
            doc["sources"][names.index(d.source["name"])] = block
        else:
            doc["sources"].append(block)
    added = [p for p in added if not any(p.startswith(q + "/") for q in added)]
    _mark_new(site, added)
    return added


#: where a mapping is written on one line, as plant.yaml writes tag mappings and column maps
FLOW = {"tags", "columns", "codes", "sidecar", "units"}


def _commented(value: Any, parent: str | None = None) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if isinstance(value, dict):
        m = CommentedMap((k, _commented(v, k)) for k, v in value.items())
        if parent in FLOW and all(not isinstance(v, (dict, list)) for v in value.values()):
            m.fa.set_flow_style()
        return m
    if isinstance(value, list):
        s = CommentedSeq(_commented(v, parent) for v in value)
        if value and all(isinstance(v, str) for v in value) and len(str(value)) < 100:
            s.fa.set_flow_style()
        return s
    return value


def _annotate(block: Any, notes: dict[tuple, str], depth: int) -> None:
    """Each note as comment lines above its place (the block's own note above its first key)."""
    for place, text in notes.items():
        node, col = block, depth
        for key in place[:-1]:
            node = node[key]
            col += 2 if isinstance(key, str) else 2
        key = place[-1] if place else None
        if key is None or isinstance(key, int):
            target = node if key is None else node[key]
            if not hasattr(target, "keys") or not target:
                continue
            first = next(iter(target.keys()))
            target.yaml_set_comment_before_after_key(first, before=_wrap(text), indent=col + (2 if key is not None else 0))
        elif key in node:
            node.yaml_set_comment_before_after_key(key, before=_wrap(text), indent=col)


def _wrap(text: str) -> str:
    return "\n".join(textwrap.wrap(text, 96, break_long_words=False, break_on_hyphens=False)) or text


def _mark_new(site: Any, added: list[str]) -> None:
    """The topmost new node of each added branch carries the comment (a new line's cells do not)."""
    for path in added:
        ids = path.split("/")
        node = site
        for depth, ident in enumerate(ids):
            level = node["areas" if depth == 0 else ("lines" if depth == 1 else "cells")]
            idx = next(i for i, x in enumerate(level) if x.get("id") == ident)
            node = level[idx]
        node.yaml_add_eol_comment("discovered: not in the hierarchy before; name and place it", "id")


def render(doc: Any) -> str:
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def write(doc: Any, out: Path) -> PlantConfig:
    """Validate the document as `plantlake config check` does, then write it (atomically)."""
    text = render(doc)
    try:
        cfg = parse_config(read_yaml(text), source=str(out), base_dir=out.resolve().parent)
    except ConfigError as exc:
        raise ConfigError(f"the drafted config does not validate (nothing written to {out}): {exc}") from None
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return cfg


def discover_folder(folder: Path, *, name: str, plant: PlantConfig | None, **options: Any) -> list[Draft]:
    """A drop folder: historian exports (kind csv) and camera images (kind images), as many as it holds."""
    from plantlake.core.kinds import source_kind

    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder")
    drafts = [d for kind in ("csv", "images")
              for d in source_kind(kind).discoverer()(str(folder), None, name=name, plant=plant, **options)]
    if len(drafts) > 1:  # exports and images in one folder: two sources
        for d in drafts:
            d.source["name"] = f"{name}_{d.source['kind']}"
    if not drafts:
        raise ConfigError(f"{folder}: holds no historian exports (.csv, .txt) and no images "
                          f"({', '.join(('.jpg', '.png', '.tif', '.bmp', '.webp'))})")
    return drafts
