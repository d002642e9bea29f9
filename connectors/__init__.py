"""Source connectors: one folder per source kind (connectors/<kind>/), shared helpers beside them.

A connector knows its protocol and nothing about Parquet paths or GX: it reads a
source for one data interval and returns raw Arrow rows plus a cursor, and decodes
raw rows into the input of a curated table. This module stays light: a connector's
protocol library is imported only when `load()` is called.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connectors.base import Connector

#: kind -> (module, curated tables it feeds)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "csv": ("connectors.csv.connector", ("sensor_readings",)),
    "opcua": ("connectors.opcua.connector", ("sensor_readings",)),
    "mqtt": ("connectors.mqtt.connector", ("sensor_readings",)),
    "images": ("connectors.images.connector", ("inspection_images",)),
    # materials first: orders reference them
    "erp": ("connectors.erp.connector", ("materials", "production_orders", "quality_inspections")),
}


def tables_for(kind: str) -> tuple[str, ...]:
    return KINDS[kind][1]


def load(kind: str) -> type[Connector]:
    """The connector class for a source kind."""
    try:
        module = KINDS[kind][0]
    except KeyError:
        raise ValueError(f"unknown source kind {kind!r}; known: {', '.join(KINDS)}") from None
    return import_module(module).CONNECTOR
