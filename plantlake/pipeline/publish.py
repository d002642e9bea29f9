"""Write → audit → publish: the one path by which rows become visible in the lake.

A source run and a product build both stage their rows under `_staging/` (in any number of
tables and slices), audit each staged batch with its table's suite, and only then publish:
each table's quarantined rows are committed (replacing the interval's earlier ones, or removing
them when this run has none), then each table's staged rows in one Delta commit
(`plantlake.core.tables`). A failed batch-level check discards everything staged so far and
raises `AuditFailed`; nothing already published changes.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from plantlake.core.lake import Interval, Lake, Staged
from schemas.lineage import quarantined

#: rows of an audited table after which the cyclic garbage collector runs at once (see `stage`)
COLLECT_AFTER_ROWS = 200_000


@dataclass
class Published:
    """What a publish made visible for one table."""

    rows: int = 0
    quarantined: int = 0
    set_aside: int = 0  # of the quarantined: rows the audit's row-level expectations took out
    superseded: int = 0  # older versions of keys the rows replaced (upserted tables)
    #: the table's Delta version that made the rows visible (None: nothing committed)
    version: int | None = None
    #: the quarantine table's version holding this run's rejected rows (None: none)
    quarantine_version: int | None = None


class WriteAuditPublish:
    """Staged batches of one source and interval, published together by `publish()`."""

    def __init__(self, lake: Lake, source: str, interval: Interval, run_id: str, tables: Iterable[str]) -> None:
        """`tables`: what the run writes; each one's quarantine file for the interval is replaced on
        publish (removed when the run has no rejects), so a rerun never keeps a stale one."""
        self.lake, self.source, self.interval, self.run_id = lake, source, interval, run_id
        self.staged: dict[str, Staged] = {}
        self.rejects: dict[str, list[Any]] = {t: [] for t in tables}
        self.set_aside: dict[str, int] = {}
        self.rows_in: dict[str, int] = {}  # rows staged per table (before the audit set any aside)
        self.timings_s: dict[str, float] = {"stage": 0.0, "audit": 0.0}

    def reject(self, table: str, rejects: Any) -> None:
        """Rows of `table` that will not be published (a `REJECT_SCHEMA` table): quarantined on publish."""
        self.rejects.setdefault(table, []).append(rejects)

    def stage(self, table: Any, data: Any, *, slice_label: str = "", replace_all: bool = False,
              rules: Any = None, max_bad_share: float = 0.5) -> Any:
        """Stage `data` (upserted for key_scope 'latest' tables), audit it, keep the audit's
        results and set its bad rows aside; returns the audit. A failed batch-level check
        discards every batch staged so far and raises `AuditFailed`."""
        from quality.audit import audit_staged
        from quality.results import keep_audit

        t0 = time.perf_counter()
        if table.key_scope == "latest":
            staged = self.lake.stage_merge(table, self.source, self.interval, data, replace_all=replace_all)
        else:
            before = self.staged.get(table.name)
            staged = self.lake.stage(table, self.source, self.interval, data, slice_label=slice_label,
                                     token=before.token if before else None)
        self.rows_in[table.name] = self.rows_in.get(table.name, 0) + data.num_rows
        t1 = time.perf_counter()
        audit = audit_staged(table, staged, source=rules, max_bad_share=max_bad_share)
        keep_audit(self.lake, self.source, self.interval, self.run_id, audit, slice_label=slice_label)
        # GX's validation objects hold the audited frame in reference cycles: collected only when
        # the cyclic collector next runs, a slice's rows stayed alive through the next slice's
        # decode and conform (+600 MiB peak at 5M rows in slices of 2M). A full collection walks
        # every object of a process that has Airflow and GX loaded (0.3 to 0.5 s): only worth it
        # after a large audit (in the demo's small runs it was a quarter of the wall time)
        if data.num_rows >= COLLECT_AFTER_ROWS:
            gc.collect()
        self.timings_s["stage"] += t1 - t0
        self.timings_s["audit"] += time.perf_counter() - t1
        if audit.rejects is not None:
            self.reject(table.name, audit.rejects)
            self.set_aside[table.name] = self.set_aside.get(table.name, 0) + audit.set_aside
        if not audit.passed:
            self.lake.discard(staged)
            self.discard()
            audit.raise_for_failures()
        if table.name in self.staged:
            self.staged[table.name].files.extend(staged.files)
        else:
            self.staged[table.name] = staged
        return audit

    def discard(self) -> None:
        for staged in self.staged.values():
            self.lake.discard(staged)
        self.staged.clear()

    def publish(self) -> dict[str, Published]:
        """Quarantine then publish every table this run touched; per table what became visible."""
        out: dict[str, Published] = {}
        for name, parts in self.rejects.items():
            rejects = quarantined(parts, self.source, self.interval.start, self.run_id)
            version = self.lake.write_quarantine(name, self.source, self.interval, rejects, self.run_id)
            out[name] = Published(quarantined=rejects.num_rows, set_aside=self.set_aside.get(name, 0),
                                  quarantine_version=version if rejects.num_rows else None)
        for name, staged in self.staged.items():
            p = out.setdefault(name, Published())
            p.rows = self.rows_in[name] - p.set_aside if staged.merge else staged.rows
            version = self.lake.publish(staged, self.run_id)
            p.version = None if version < 0 else version
            p.superseded = staged.superseded
        self.staged.clear()
        return out
