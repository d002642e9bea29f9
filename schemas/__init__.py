"""Shared table definitions, declared once, and the conform step (raw -> curated schema).

Submodules load on first use, so light users (the site config validating units at
DAG parse time) do not pay for pyarrow.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Column", "Table", "TABLES", "get_table"]


def __getattr__(name: str) -> Any:
    if name in ("Column", "Table"):
        from schemas import model

        return getattr(model, name)
    if name in ("TABLES", "get_table"):
        from schemas import tables

        return getattr(tables, name)
    raise AttributeError(f"module 'schemas' has no attribute {name!r}")
