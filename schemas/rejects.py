"""Rejects: rows that will not be published, each with its stage, column and reason.

Every stage (a connector's decode, conform, the audit) collects them the same way, and
`record_json` is the one encoding of the rejected row the quarantine keeps.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Rejected rows: what the quarantine stores for each row (the runner adds lineage).
REJECT_SCHEMA = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("column", pa.string()),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("record", pa.string(), nullable=False),
    ]
)

#: A quarantine table's rows: the rejected row and the run that set it aside (schemas.lineage.quarantined).
QUARANTINE_SCHEMA = pa.schema([
    *REJECT_SCHEMA,
    pa.field("source", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("interval_start", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("quarantined_at", pa.timestamp("us", tz="UTC"), nullable=False),
])

#: A reject reason: fixed text, or built from the rejected record.
Reason = Callable[[dict], str] | str


@dataclass
class Rejects:
    """Collects rejected rows as JSON records with a reason."""

    stage: str = "conform"
    rows: list[dict[str, Any]] = field(default_factory=list)

    def record(self, data: pa.Table, mask: pa.Array | np.ndarray, column: str | None, reason: Reason) -> bool:
        """Record the rows of `data` selected by `mask`; True when there were any."""
        mask = pc.fill_null(pa.array(mask, pa.bool_()) if isinstance(mask, np.ndarray) else mask, False)
        if not pc.any(mask).as_py():
            return False
        for rec in data.filter(mask).to_pylist():
            text = reason(rec) if callable(reason) else reason
            self.rows.append({"stage": self.stage, "column": column, "reason": text, "record": record_json(rec)})
        return True

    def add(self, data: pa.Table, mask: pa.Array | np.ndarray, column: str | None, reason: Reason) -> pa.Table:
        """Move the rows selected by `mask` out of `data` into the rejects; return the rest."""
        mask = pc.fill_null(pa.array(mask, pa.bool_()) if isinstance(mask, np.ndarray) else mask, False)
        if not self.record(data, mask, column, reason):
            return data
        return data.filter(pc.invert(mask))

    def __len__(self) -> int:
        return len(self.rows)

    def table(self) -> pa.Table:
        rows = [{**r, "reason": r["reason"][:MAX_REASON]} if len(r["reason"]) > MAX_REASON else r for r in self.rows]
        return pa.Table.from_pylist(rows, schema=REJECT_SCHEMA)

    def reasons(self) -> Counter:
        """Reject counts per kind of reason (see `reason_kind`)."""
        return Counter(reason_kind(r["reason"]) for r in self.rows)

    def examples(self) -> dict[str, str]:
        """The first full reason of each kind."""
        out: dict[str, str] = {}
        for r in self.rows:
            out.setdefault(reason_kind(r["reason"]), r["reason"])
        return out


#: a quarantine reason is at most this long, a kind of reason in a summary at most MAX_KIND
MAX_REASON, MAX_KIND = 1000, 240
_QUOTED = re.compile(r"(?<![\w\[])(?<!, )'[^']*'(?![,\]])")


def reason_kind(reason: str) -> str:
    """A reason without its offending value, so reasons group with counts: the parenthesised tail
    goes and a quoted value becomes '…' ("ts: '3.2.' is not a time in …" -> "ts: … is not a time in …");
    quoted names inside a list stay (they name settings, not values)."""
    head = _QUOTED.sub("…", reason.split(" (")[0])
    return head if len(head) <= MAX_KIND else head[:MAX_KIND] + "…"


def record_json(record: dict) -> str:
    """A rejected row as the quarantine's `record`: JSON with sorted keys; bytes as hex, times and
    other values as their text, NaN and infinities as text (JSON has none), internal `__` columns
    left out. Every stage and connector encodes its rejects with this one function."""
    def default(v: Any) -> Any:
        return v.hex() if isinstance(v, bytes) else str(v)

    clean = {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in record.items() if not k.startswith("__")}
    return json.dumps(clean, default=default, sort_keys=True)
