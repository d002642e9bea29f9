"""A GX batch failure: the publish is blocked, the previous curated files stay byte for byte, no
staged file is left behind (and, in Airflow, the failed task emits no Asset event: tests/dags)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plantlake.core.config import with_source
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from quality.audit import AuditFailed
from schemas import get_table
from tests.integration.test_audit import T0, _break_order, site  # noqa: F401 - fixture

pytestmark = pytest.mark.faults


def test_too_many_bad_rows_block_the_publish_and_leave_the_lake_as_it_was(site, reliability):  # noqa: F811
    cfg, tmp, erp = site
    run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    before = {p: p.read_bytes() for p in (tmp / "lake" / "curated").rglob("*.parquet")}
    rows_before = sum(Lake(tmp / "lake").read(get_table(t)).num_rows
                      for t in ("materials", "production_orders", "quality_inspections"))
    _break_order(erp, T0 + timedelta(hours=1, minutes=10))
    strict = with_source(cfg, "erp", max_bad_share=0.0)
    with pytest.raises(AuditFailed, match=r"production_orders: publish blocked, 1 failed check\(s\): share of rows "
                                          r"failing row-level expectations <= 0 \(observed 1 of \d+ rows"):
        run_source("erp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), config=strict)
    after = {p: p.read_bytes() for p in (tmp / "lake" / "curated").rglob("*.parquet")}
    assert after == before
    assert not list((tmp / "lake" / "_staging").rglob("*.parquet"))
    rows_after = sum(Lake(tmp / "lake").read(get_table(t)).num_rows
                     for t in ("materials", "production_orders", "quality_inspections"))
    reliability("GX batch failure (bad-row policy) blocks a publish", data_in=rows_before, data_out=rows_after,
                lost=rows_before - rows_after, duplicates=0, unit="curated ERP rows",
                note="AuditFailed names the check; curated files byte-identical; no staged file left")
