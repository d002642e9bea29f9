"""ERP faults (site fixture and simulator from tests/integration/test_erp.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plantlake.config import with_source
from plantlake.lake import Lake
from plantlake.runner import run_source
from tests.integration.test_erp import INSPECTIONS, SITE_TZ, T0, site  # noqa: F401 - fixture

pytestmark = pytest.mark.faults


def test_a_late_commit_is_picked_up_by_the_lookback_and_lost_without_it(site, reliability):  # noqa: F811
    cfg, tmp, erp = site
    erp.sync(T0 + timedelta(hours=1))
    run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    # a transaction that started at 06:50 commits after the 06:00-07:00 run: its change time is in the past
    late = {"result_id": "QR-LATE-1", "order_no": "PO1000016", "serial_no": "PO1000016-9999", "station": "L1-EOL",
            "inspected_at": (T0 + timedelta(minutes=50)).astimezone(SITE_TZ).replace(tzinfo=None),
            "characteristic": "weld_resistance", "measured": 0.5, "lsl": 0.3, "usl": 0.9, "uom": "mOhm",
            "verdict": "OK", "defect_code": None,
            "changed_at": (T0 + timedelta(minutes=50)).astimezone(SITE_TZ).replace(tzinfo=None)}
    erp.commit_late(late)
    no_lookback = with_source(cfg, "erp", lookback_minutes=0)
    blind = run_source("erp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), config=no_lookback,
                       lake=Lake(tmp / "lake-blind"))
    assert blind.tables["quality_inspections"].published == 0
    s = run_source("erp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), config=cfg)
    assert s.tables["quality_inspections"].published >= 1
    rows = {r["inspection_id"]: r for r in Lake(tmp / "lake").read(INSPECTIONS).to_pylist()}
    assert rows["QR-LATE-1"]["inspected_at"] == T0 + timedelta(minutes=50)
    reliability("ERP row committed late with an older updated_at", data_in=1, data_out=int("QR-LATE-1" in rows),
                lost=int("QR-LATE-1" not in rows), duplicates=0, unit="ERP keys (the late row)",
                note="the look-back window picks it up; without it the row is missed (asserted)")
