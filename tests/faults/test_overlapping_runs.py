"""A backfill overlapping a scheduled run of the same interval: identical output, no duplicates."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.app.demo import write_historian_export
from tests.conftest import ROOT, both_lakes

pytestmark = pytest.mark.faults

START = datetime(2026, 3, 1, 9, tzinfo=UTC)


def _run(folder, n: int) -> list[subprocess.Popen]:
    env = {**os.environ, "PLANTLAKE_CONFIG": str(folder / "plant.yaml")}  # with the lake's connection, if any
    cmd = [sys.executable, "-m", "plantlake", "run", "historian_export",
           "--start", START.isoformat(), "--end", (START + timedelta(hours=1)).isoformat()]
    return [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(n)]


def _curated(folder) -> dict[str, list[dict]]:
    """Each curated table's rows in its current snapshot (lineage left out)."""
    from plantlake.core.config import load_config
    from schemas.tables import TABLES

    lake, out = load_config(folder / "plant.yaml").open_lake(), {}
    for name, table in TABLES.items():
        rows = lake.read(table).drop_columns(list(table.lineage)).to_pylist()
        if rows and table.layer == "curated":
            out[name] = sorted(rows, key=lambda r: tuple(str(r[k]) for k in table.primary_key))
    return out


@both_lakes
def test_two_runs_of_one_interval_at_once_publish_what_one_run_does(tmp_path, lake_kind, reliability):
    for name in ("alone", "together"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "plant.yaml").write_text(lake_kind.config((ROOT / "plant.yaml").read_text(), name))
        write_historian_export(tmp_path / name / "drop" / "historian", START, hours=1)
    (alone,) = _run(tmp_path / "alone", 1)
    assert alone.wait(180) == 0, alone.stderr.read()
    procs = _run(tmp_path / "together", 3)  # a backfill, a scheduled run and a manual rerun, all at once
    for p in procs:
        assert p.wait(180) == 0, p.stderr.read()
    reference, overlapped = _curated(tmp_path / "alone"), _curated(tmp_path / "together")
    assert set(reference) == set(overlapped) == {"sensor_readings"}
    (rows,) = overlapped.values()
    assert rows == next(iter(reference.values())) and len(rows) == 360 * 6 + 12 * 2 - 1
    staging = (tmp_path / "together" / "lake" if lake_kind.s3 is None else tmp_path / "together-local") / "_staging"
    assert not list(staging.rglob("*.parquet"))
    if lake_kind.s3 is not None:  # on the bucket: no file of the lake on the worker's disk but staging and the cache
        assert not (tmp_path / "together" / "lake").exists()
        assert lake_kind.s3.keys("together/_state/historian_export/")
    keys = {(r["asset_id"], r["tag"], r["ts"]) for r in rows}
    expected = next(iter(reference.values()))
    where = "" if lake_kind.s3 is None else " on S3"
    reliability(f"three runs of one interval at once (backfill over a scheduled run){where}", data_in=len(expected),
                data_out=len(keys), lost=len(expected) - len(keys), duplicates=len(rows) - len(keys),
                unit="sensor rows (asset, tag, ts)", note="identical to one run alone")
