"""A GX batch failure: the publish is blocked, nothing is committed (every table keeps its version
and rows; on local disk its files stay byte for byte), no staged file is left behind — on a local
lake and on one in an S3 bucket (and, in Airflow, the failed task emits no Asset event: tests/dags)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plantlake.core.config import with_source
from plantlake.pipeline.runner import run_source
from quality.audit import AuditFailed
from schemas import get_table
from tests.conftest import both_lakes, lake_content, on
from tests.integration.test_audit import (
    T0,
    _break_order,
    site,  # noqa: F401 - fixture
)

pytestmark = pytest.mark.faults
TABLES = ("materials", "production_orders", "quality_inspections")


@both_lakes
def test_too_many_bad_rows_block_the_publish_and_leave_the_lake_as_it_was(site, reliability, lake_kind):  # noqa: F811
    cfg, tmp, erp = site
    lake = cfg.open_lake()
    run_source("erp", T0, T0 + timedelta(hours=1), config=cfg)
    files = {p: p.read_bytes() for p in (tmp / "lake" / "curated").rglob("*.parquet")} if not lake.remote else {}
    versions = {t: lake.version(get_table(t)) for t in TABLES}
    content = lake_content(lake)
    rows_before = sum(lake.read(get_table(t)).num_rows for t in TABLES)
    _break_order(erp, T0 + timedelta(hours=1, minutes=10))
    strict = with_source(cfg, "erp", max_bad_share=0.0)
    with pytest.raises(AuditFailed, match=r"production_orders: publish blocked, 1 failed check\(s\): share of rows "
                                          r"failing row-level expectations <= 0 \(observed 1 of \d+ rows"):
        run_source("erp", T0 + timedelta(hours=1), T0 + timedelta(hours=2), config=strict)
    assert {t: lake.version(get_table(t)) for t in TABLES} == versions  # no commit
    assert {t: rows for t, rows in lake_content(lake).items() if t in TABLES} == {
        t: rows for t, rows in content.items() if t in TABLES}
    if not lake.remote:
        assert {p: p.read_bytes() for p in (tmp / "lake" / "curated").rglob("*.parquet")} == files
    assert not list((lake.root / "_staging").rglob("*.parquet"))
    rows_after = sum(lake.read(get_table(t)).num_rows for t in TABLES)
    reliability(f"GX batch failure (bad-row policy) blocks a publish{on(lake)}",
                data_in=rows_before, data_out=rows_after, lost=rows_before - rows_after, duplicates=0,
                unit="curated ERP rows", note="AuditFailed names the check; no commit, every table's version "
                "and rows as they were; no staged file left")
