"""The contract between the runner and a connector."""

from __future__ import annotations

import functools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, ValidationError

from plantlake.core.config import PlantConfig
from plantlake.core.connections import Connection
from plantlake.core.errors import StateInvalid
from plantlake.core.kinds import source_kind
from plantlake.core.lake import FileStores, Interval
from schemas.conform import TagRule, UnitRule
from schemas.rejects import Rejects
from schemas.units import canonical_unit


@functools.lru_cache(maxsize=1 << 16)  # per reading in decoders: the same few hundred names again and again
def tag_name(name: str) -> str:
    """A canonical tag name from a source's name for it: 'CoolantFlow/Temp' -> 'coolant_flow_temp'."""
    return re.sub(r"[^a-z0-9_]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()).strip("_")


@functools.lru_cache(maxsize=1 << 16)
def slug(name: str) -> str:
    """An asset id segment from a source's name for it (the documented slug rule): CamelCase split by
    '_', lower case, runs of characters other than a-z, 0-9, '_' and '-' made one '_'
    ('LabelPrinter2' -> 'label_printer2', 'Line 1' -> 'line_1', 'press-1' -> 'press-1')."""
    return re.sub(r"[^a-z0-9_-]+", "_", re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()).strip("_-")


def fill(template: str, captures: dict[str, str]) -> str:
    """An asset template filled with slugged captures ('{area}/{line}' with Line='Line1' -> 'line1')."""
    return template.format(**{k: slug(v) for k, v in captures.items()})


def capture_regex(template: str) -> str:
    """The regex of a template with `{name}` captures ('cam{n}_{serial}.png'): literal text escaped,
    each capture a named group of one or more characters other than '/'."""
    out, pos = "", 0
    for m in re.finditer(r"{(\w+)}", template):
        out += re.escape(template[pos:m.start()]) + f"(?P<{m.group(1)}>[^/]+?)"
        pos = m.end()
    return out + re.escape(template[pos:])


#: the name of a source's raw table when it lands one (raw/<source>/date=…/…); sources with
#: several (an ERP's tables) name each (raw/<source>/<name>/date=…/…)
RAW = ""
#: landed raw rows per stream name, as decode receives them
Raw = dict[str, pa.Table]


@dataclass
class Stream:
    """One raw table a connector read for an interval: its rows exactly as they came in."""

    batches: Iterable[pa.RecordBatch | pa.Table]
    #: None: taken from the first batch (a query runs only when the batches are consumed)
    schema: pa.Schema | None = None
    #: Called with i once batch i is on disk: each batch then lands as its own raw chunk, and the
    #: chunks of earlier runs of the interval are kept (MQTT acknowledges the batch's messages then).
    on_landed: Callable[[int], None] | None = None


@dataclass
class Extract:
    """What a connector read for one interval."""

    #: the raw tables, by name (`RAW` for a source with one); landed one after the other
    streams: dict[str, Stream]
    #: The connector's new state, committed by the runner only after a successful publish.
    state: dict[str, Any] | None = None
    #: Counters the run summary reports (files read, nodes missing, ...); a stream's batches
    #: may fill them in as they are read, so the runner takes them once everything is landed.
    stats: dict[str, Any] = field(default_factory=dict)
    #: Curated tables this extract read whole: their upsert replaces what the source had.
    full_refresh: frozenset[str] = frozenset()

    @classmethod
    def one(cls, schema: pa.Schema, batches: Iterable[pa.RecordBatch | pa.Table], *,
            on_landed: Callable[[int], None] | None = None, **kwargs: Any) -> Extract:
        """The extract of a source with one raw table."""
        return cls({RAW: Stream(batches, schema, on_landed)}, **kwargs)


@dataclass
class Decoded:
    """Raw rows decoded into the input of each curated table, plus what could not be decoded,
    what the decode counted and the state it moved on (MQTT's Sparkplug aliases and sequences)."""

    tables: dict[str, pa.Table]
    rejects: dict[str, Rejects] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    #: the state to commit instead of the extract's, when the decode changed it
    state: dict[str, Any] | None = None


class State(BaseModel):
    """What a connector keeps between runs (`_state/<source>.json`), committed after a successful
    publish. Typed: a stored state that is not what the connector writes fails the run loudly
    instead of being misread. Versioned: `version` is the shape's number, raised with a
    migration when the shape changes (a file without one is version 1)."""

    model_config = ConfigDict(extra="forbid")
    version: int = 1


@dataclass(frozen=True)
class Finding:
    """What `plantlake config check --probe` found for one configured thing: a nodes rule, a tag
    mapping, a topic pattern, an ERP table or a drop folder."""

    #: the setting, as the config names it (`nodes[0] Plant/{line}/{cell}`, `tags[2] L1.PRESS.FORCE`)
    place: str
    matched: bool
    #: what it resolved to (count, unit, a sample value, rows a window reads) or why nothing
    detail: str


class Connector(ABC):
    """Reads one configured source; its kind's declaration (plantlake.core.kinds) names the tables."""

    #: the connector's state model (a State subclass); the base holds nothing but its version
    State: type[State] = State

    #: a raw column whose value decides the series of a row's key, when decode treats each
    #: row on its own: the runner may then decode a large interval in slices of whole series
    slice_column: str | None = None

    def __init__(self, source: Any, plant: PlantConfig, connection: Connection | None) -> None:
        self.source = source
        self.plant = plant
        self.connection = connection
        #: the lake's blob stores, given by the runner: connectors that keep copies of files
        #: (images) write them there and touch nothing else of the lake
        self.files: FileStores | None = None

    @abstractmethod
    def extract(self, interval: Interval, state: dict[str, Any]) -> Extract:
        """Read the source for `interval`. Retriable failures raise (Airflow retries)."""

    @abstractmethod
    def decode(self, raw: Raw) -> Decoded:
        """Turn landed raw rows (per stream; `raw[RAW]` for a source with one) into table input;
        undecodable rows become rejects."""

    def probe(self, interval: Interval, *, listen_s: float = 5.0) -> list[Finding]:
        """Connect and say, per configured rule and mapping, whether it matches something live (and
        what), for `interval` the window the next run would read (`listen_s`: how long a broker is
        listened to). Reads only; changes nothing, and never touches the source's session or state."""
        return [Finding("source", True, f"kind {self.kind}: no probe (the configuration validated)")]

    def load_state(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The stored state, checked against the connector's model, as extract receives it."""
        where = f"source {self.source.name}: its state (_state/{self.source.name}.json)"
        try:
            state = self.State.model_validate(stored or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise StateInvalid(f"{where} is not a {self.kind} state ({'.'.join(map(str, first['loc']))}: "
                               f"{first['msg']}); move the file aside to start the source afresh") from None
        current = self.State.model_fields["version"].default
        if state.version > current:
            raise StateInvalid(f"{where} is version {state.version}, written by a newer plantlake (this one "
                               f"reads up to {current})")
        return state.model_dump(mode="json", exclude={"version"})

    def dump_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The state to commit, checked against the connector's model, with its version."""
        return self.State.model_validate({k: v for k, v in state.items() if k != "version"}).model_dump(mode="json")

    def tag_rules(self) -> dict[str, TagRule]:
        """The site config's tag mappings for this source, keyed by source reference."""
        return {
            t.ref: TagRule(
                asset_id=t.asset,
                tag=t.tag,
                unit=t.unit,
                # without a declared unit, the unit the source sends decides the canonical one
                canonical_unit=t.canonical_unit or (canonical_unit(t.unit, t.quantity)
                                                    if t.unit and t.type == "number" else None),
                type=t.type,
                quantity=t.quantity,
            )
            for t in self.source.tags
        }

    def lineage(self) -> tuple[str, list[str]]:
        """Where the source reads, for lineage: the source system as a URI without credentials
        (`file://<host>` for folders, else the connection's `<type>://<host>:<port>[/<schema>]`) and
        the references the site config reads there (folders, tables, node selectors, topics)."""
        import socket

        folders = [str(self.plant.path(p)) for _, p in self.source.file_folders()]
        refs = folders or [t.ref for t in self.source.tags]  # a file source's tag refs are columns in them
        c = self.connection
        if c is not None and c.host:
            origin = f"{c.conn_type or self.kind}://{c.host}" + (f":{c.port}" if c.port else "") + (
                f"/{c.schema}" if c.schema else "")
        elif c is not None and c.conn_type and c.schema:  # a file database (sqlite:///path)
            origin = f"{c.conn_type}:///{c.schema.lstrip('/')}"
        else:
            origin = f"file://{socket.gethostname()}"
        return origin, refs

    def unmatched(self) -> list[str]:
        """The source's own selectors (node paths, topic rules) that matched nothing in this run."""
        return []

    def unit_rules(self) -> list[UnitRule]:
        """The source's unit rules by pattern (first match wins), for readings no tag mapping sets."""
        return [UnitRule(tag=u.tag, asset=u.asset, ref=u.ref, unit=u.unit, quantity=u.quantity,
                         canonical_unit=u.canonical_unit) for u in self.source.units]

    @property
    def kind(self) -> str:
        return self.source.kind

    @property
    def tables(self) -> tuple[str, ...]:
        """The curated tables the source feeds, in publish order."""
        return self.source.feeds(source_kind(self.source.kind).tables)

    @property
    def timezone(self) -> str:
        return getattr(self.source, "timezone", None) or self.plant.site.timezone

    def after_publish(self) -> dict[str, Any]:
        """Called after the publish and the state commit (e.g. remove files the source may delete);
        returns what it counted for the run summary."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook, most connectors hold nothing open
        """Release connections; called by the runner whatever happened."""
