"""A GX batch failure: the publish is blocked, nothing is committed (every table keeps its version
and rows; on local disk its files stay byte for byte), no staged file is left behind — on a local
lake and on one in an S3 bucket (and, in Airflow, the failed task emits no Asset event: tests/dags)."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from plantlake.core.config import load_config, with_source
from plantlake.pipeline.runner import run_source
from quality.audit import AuditFailed
from schemas import get_table
from tests.conftest import ROOT, lake_content, lake_on_s3
from tests.integration.test_audit import T0, _break_order
from tests.integration.test_audit import site as erp_site  # noqa: F401 - fixture

pytestmark = pytest.mark.faults
TABLES = ("materials", "production_orders", "quality_inspections")


@pytest.fixture(params=["local", "s3"])
def site(request, erp_site, monkeypatch):  # noqa: F811
    from tests.servers import s3_server

    cfg, tmp, erp = erp_site
    with s3_server() if request.param == "s3" else contextlib.nullcontext() as s3:
        if s3 is not None:
            monkeypatch.setenv("AIRFLOW_CONN_PLANTLAKE_LAKE", s3.connection_uri)
            (tmp / "plant.yaml").write_text(lake_on_s3((ROOT / "plant.yaml").read_text(), s3, "erp", tmp / "local"))
            cfg = load_config(tmp / "plant.yaml")
        yield cfg, tmp, erp


def test_too_many_bad_rows_block_the_publish_and_leave_the_lake_as_it_was(site, reliability):
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
    reliability(f"GX batch failure (bad-row policy) blocks a publish{' (lake on S3)' if lake.remote else ''}",
                data_in=rows_before, data_out=rows_after, lost=rows_before - rows_after, duplicates=0,
                unit="curated ERP rows", note="AuditFailed names the check; no commit, every table's version "
                "and rows as they were; no staged file left")
