"""The source kinds: plugins the site model, the runner and the DAGs find in one registry.

A kind is a folder (`connectors/<kind>/`) whose `__init__.py` declares a `SourceKind` — its
config model (a `SourceBase` with `kind: Literal["<kind>"]`), its connector class and the
curated tables it feeds — and one line in pyproject.toml that names it:

    [project.entry-points."plantlake.sources"]
    opcua = "connectors.opcua:KIND"

The site config's `sources` union, the ingest DAGs' outlets and the runner's connector all come
from these declarations (Python's entry points, as Airflow finds its providers: a package
installed beside plantlake can add a kind the same way). Loading a declaration imports the
kind's config model only; its protocol library loads with the connector, when a run needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any

from plantlake.core.errors import ConfigError

GROUP = "plantlake.sources"


@dataclass(frozen=True)
class SourceKind:
    name: str
    #: the kind's config model: a SourceBase subclass whose `kind` field is Literal[name]
    config: type
    #: "module:Class" of the connector, imported by `load()`
    connector: str
    #: the curated tables the kind feeds, in publish order (a referenced table first)
    tables: tuple[str, ...]
    #: "module:function" of the kind's discovery (`plantlake discover`), if it has one:
    #: discover(target, connection, *, name, plant, **options) -> list[connectors.discovery.Draft]
    discover: str | None = None

    def load(self) -> type:
        """The connector class (imports the kind's protocol library)."""
        return _attr(self.connector)

    def discoverer(self) -> Any:
        """The kind's discovery function (imports its protocol library)."""
        if self.discover is None:
            raise ConfigError(f"source kind {self.name!r} has no discovery; write its source block by hand "
                              "(docs/configuration.md)")
        return _attr(self.discover)


def _attr(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(import_module(module), name)


@cache
def source_kinds() -> dict[str, SourceKind]:
    """Every installed kind by name, from the `plantlake.sources` entry points."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=GROUP), key=lambda ep: ep.name)
    if not found:
        raise ConfigError(f"no source kinds installed: plantlake's pyproject.toml declares them as "
                          f"{GROUP!r} entry points; install the project (make venv, or pip install -e .)")
    kinds: dict[str, SourceKind] = {}
    for ep in found:
        kind = ep.load()
        if not isinstance(kind, SourceKind) or kind.name != ep.name:
            raise ConfigError(f"entry point {ep.name} = {ep.value!r} in {GROUP!r} is not the SourceKind {ep.name!r}")
        kinds[kind.name] = kind
    return kinds


def source_kind(name: str) -> SourceKind:
    try:
        return source_kinds()[name]
    except KeyError:
        raise ConfigError(f"unknown source kind {name!r}; known: {', '.join(source_kinds())}") from None


def kinds_feeding(table: str) -> tuple[str, ...]:
    """The kinds whose sources write `table` (the values its `source` column may hold)."""
    return tuple(k.name for k in source_kinds().values() if table in k.tables)

