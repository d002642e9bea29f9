"""The plant's ERP: materials, production orders and inspection results, with `changed_at`.

Tables use the ERP's own vocabulary (order_no, line_code, numeric status codes, OK/NOK
verdicts, local site time without zone), so plantlake's column and code mappings have
real work to do. `sync(as_of)` brings the database to what the ERP knows at `as_of`:
orders appear a day before they start, change status as they are released, run and
complete, count good parts as they finish; each part gets an inspection result 30 s
after it is finished. `export_csv(folder, as_of)` writes the same data the way ERP
exports look: semicolons, decimal comma, German headers, Windows-1252.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa

from simulators.story import MATERIALS, Order, Part, Plant, uniform

SITE_TZ = ZoneInfo("Asia/Shanghai")
STATUS_CODES = {"planned": 10, "released": 20, "running": 30, "completed": 40, "cancelled": 90}
INSPECTION_DELAY = timedelta(seconds=30)

metadata = sa.MetaData()
materials = sa.Table(
    "materials", metadata,
    sa.Column("material_no", sa.String(40), primary_key=True),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("material_type", sa.String(4)),
    sa.Column("base_uom", sa.String(3)),
    sa.Column("changed_at", sa.DateTime, nullable=False, index=True),
)
orders = sa.Table(
    "orders", metadata,
    sa.Column("order_no", sa.String(20), primary_key=True),
    sa.Column("material_no", sa.String(40), sa.ForeignKey("materials.material_no"), nullable=False),
    sa.Column("line_code", sa.String(8), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("qty_planned", sa.Integer, nullable=False),
    sa.Column("qty_good", sa.Integer),
    sa.Column("qty_scrap", sa.Integer),
    sa.Column("planned_start", sa.DateTime),
    sa.Column("planned_finish", sa.DateTime),
    sa.Column("actual_start", sa.DateTime),
    sa.Column("actual_finish", sa.DateTime),
    sa.Column("changed_at", sa.DateTime, nullable=False, index=True),
)
inspection_results = sa.Table(
    "inspection_results", metadata,
    sa.Column("result_id", sa.String(40), primary_key=True),
    sa.Column("order_no", sa.String(20), nullable=False),
    sa.Column("serial_no", sa.String(40), nullable=False),
    sa.Column("station", sa.String(16)),
    sa.Column("inspected_at", sa.DateTime, nullable=False),
    sa.Column("characteristic", sa.String(40)),
    sa.Column("measured", sa.Numeric(10, 4)),
    sa.Column("lsl", sa.Numeric(10, 4)),
    sa.Column("usl", sa.Numeric(10, 4)),
    sa.Column("uom", sa.String(8)),
    sa.Column("verdict", sa.String(3), nullable=False),
    sa.Column("defect_code", sa.String(20)),
    sa.Column("changed_at", sa.DateTime, nullable=False, index=True),
)


def local(dt: datetime | None) -> datetime | None:
    """UTC -> naive site-local time, the way the ERP stores it."""
    return dt.astimezone(SITE_TZ).replace(tzinfo=None) if dt else None


def line_code(line: str) -> str:
    return f"L{line.removeprefix('line')}"


def station_code(line: str) -> str:
    return f"{line_code(line)}-EOL"


@dataclass
class ErpSimulator:
    plant: Plant
    url: str = "sqlite:///erp.sqlite"
    #: share of ERP bookings entered wrongly: an inspection verdict against its own measurement,
    #: an order's actual finish typed before its start (the audit must quarantine exactly these)
    mistake_rate: float = 0.0

    def __post_init__(self) -> None:
        self.engine = sa.create_engine(self.url)

    def create(self) -> None:
        metadata.create_all(self.engine)

    # ------------------------------------------------------------------ what the ERP knows

    def order_rows(self, as_of: datetime, since: datetime | None = None) -> list[dict[str, Any]]:
        """Orders the ERP knows at `as_of` (those still changing after `since`, when given)."""
        rows = []
        for o in self._known_orders(as_of):
            if since is not None and o.actual_end < since:
                continue
            status, changed = o.status_at(as_of)
            done = [p for p in self.plant.order_parts(o) if p.finished_at <= as_of]
            if done:
                changed = max(changed, done[-1].finished_at)
            rows.append({
                "order_no": o.order_id, "material_no": o.material_id, "line_code": line_code(o.line),
                "status_code": STATUS_CODES[status], "qty_planned": o.quantity_planned,
                "qty_good": sum(p.passed for p in done) if status != "planned" else None,
                "qty_scrap": sum(not p.passed for p in done) if status != "planned" else None,
                "planned_start": local(o.planned_start), "planned_finish": local(o.planned_end),
                "actual_start": local(o.actual_start) if as_of >= o.actual_start else None,
                "actual_finish": local(o.actual_end) if as_of >= o.actual_end else None,
                "changed_at": local(changed),
            })
            if rows[-1]["actual_finish"] is not None and self.mistaken(o.order_id):
                rows[-1]["actual_finish"] = local(o.actual_start - timedelta(days=1))
        return rows

    def mistaken(self, key: str) -> bool:
        """Whether the booking of this order or part serial was entered wrongly (deterministic)."""
        if self.mistake_rate <= 0:
            return False
        digits = int("".join(c for c in key if c.isdigit()) or 0)
        return bool(uniform(self.plant.seed, "erp/mistake/" + key[:2], np.array([digits]))[0] < self.mistake_rate)

    def _known_orders(self, as_of: datetime) -> list[Order]:
        horizon = as_of + timedelta(days=1, hours=6)
        return [o for o in self.plant.orders(self.plant.start, horizon) if o.created_at <= as_of]

    def inspection_rows(self, as_of: datetime, since: datetime | None = None) -> list[dict[str, Any]]:
        start = since or self.plant.start
        parts = self.plant.parts(start - INSPECTION_DELAY, as_of - INSPECTION_DELAY + timedelta(microseconds=1))
        return [self._inspection(p) for p in parts]

    def _inspection(self, p: Part) -> dict[str, Any]:
        at = p.finished_at + INSPECTION_DELAY
        return {"result_id": f"QR-{p.serial}", "order_no": p.order_id, "serial_no": p.serial,
                "station": station_code(p.line), "inspected_at": local(at), "characteristic": "weld_resistance",
                "measured": p.measured, "lsl": self.plant.LSL, "usl": self.plant.USL, "uom": "mOhm",
                "verdict": "OK" if p.passed != self.mistaken(p.serial) else "NOK", "defect_code": p.defect_code,
                "changed_at": local(at)}

    def material_rows(self) -> list[dict[str, Any]]:
        created = local(self.plant.start - timedelta(days=30))
        return [{"material_no": m, "description": d, "material_type": t, "base_uom": u, "changed_at": created}
                for m, d, t, u in MATERIALS]

    # ------------------------------------------------------------------ writing

    def sync(self, as_of: datetime, since: datetime | None = None) -> dict[str, int]:
        """Upsert what the ERP knows at `as_of`; with `since`, only what changed after it.
        Returns rows offered per table (unchanged rows are not rewritten)."""
        self.create()
        counts = {}
        with self.engine.begin() as conn:
            for table, rows in ((materials, self.material_rows()), (orders, self.order_rows(as_of, since)),
                                (inspection_results, self.inspection_rows(as_of, since))):
                counts[table.name] = self._upsert(conn, table, rows)
        return counts

    def _upsert(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        pk = [c.name for c in table.primary_key.columns]
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        written = 0
        for i in range(0, len(rows), 2000):
            chunk = rows[i:i + 2000]
            stmt = insert(table).values(chunk)
            changed = table.c.changed_at != stmt.excluded.changed_at
            update = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in pk}
            conn.execute(stmt.on_conflict_do_update(index_elements=pk, set_=update, where=changed))
            written += len(chunk)
        return written

    def commit_late(self, row: dict[str, Any]) -> None:
        """Insert an inspection row the way a late-committing transaction does (old changed_at)."""
        with self.engine.begin() as conn:
            self._upsert(conn, inspection_results, [row])

    # ------------------------------------------------------------------ CSV exports

    def export_csv(self, folder: Path, as_of: datetime) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        stamp = local(as_of).strftime("%Y%m%d_%H%M")
        out = []
        for name, header, rows in (
            ("Auftraege", ORDER_HEADERS, self.order_rows(as_of)),
            ("Pruefergebnisse", INSPECTION_HEADERS, self.inspection_rows(as_of)),
            ("Material", MATERIAL_HEADERS, self.material_rows()),
        ):
            path = folder / f"{name}_{stamp}.csv"
            with open(path, "w", encoding="cp1252", newline="") as fh:
                w = csv.writer(fh, delimiter=";", lineterminator="\r\n")
                w.writerow(header.values())
                for r in rows:
                    w.writerow([_german(r[k]) for k in header])
            out.append(path)
        return out


def _german(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.strftime("%d.%m.%Y %H:%M:%S")
    if isinstance(v, float):
        return f"{v:,.4f}".replace(",", "X").replace(".", ",").replace("X", ".")
    return str(v)


ORDER_HEADERS = {"order_no": "Auftragsnummer", "material_no": "Material", "line_code": "Linie",
                 "status_code": "Status", "qty_planned": "Sollmenge", "qty_good": "Gutmenge",
                 "qty_scrap": "Ausschuss", "planned_start": "Start geplant", "planned_finish": "Ende geplant",
                 "actual_start": "Start ist", "actual_finish": "Ende ist", "changed_at": "Geändert am"}
INSPECTION_HEADERS = {"result_id": "Prüfergebnis", "order_no": "Auftragsnummer", "serial_no": "Seriennummer",
                      "station": "Prüfplatz", "inspected_at": "Prüfzeitpunkt", "characteristic": "Merkmal",
                      "measured": "Messwert", "lsl": "UGW", "usl": "OGW", "uom": "Einheit",
                      "verdict": "Bewertung", "defect_code": "Fehlercode", "changed_at": "Geändert am"}
MATERIAL_HEADERS = {"material_no": "Materialnummer", "description": "Materialkurztext", "material_type": "Materialart",
                    "base_uom": "Basismengeneinheit", "changed_at": "Geändert am"}
