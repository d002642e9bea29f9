"""Disk full during a run: a clean failure, nothing partial visible, and the next run succeeds."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.app.demo import write_historian_export
from plantlake.core.config import load_config
from plantlake.pipeline.runner import run_source
from tests.conftest import ROOT, both_lakes, lake_content, lake_on_s3

pytestmark = pytest.mark.faults

START = datetime(2026, 3, 1, 9, tzinfo=UTC)


@pytest.fixture
def small_lake(tmp_path):
    """A 3 MiB tmpfs as the lake root (mounting needs root, which `make test` and CI run as)."""
    lake = tmp_path / "lake"
    lake.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(lake)], check=True)
    try:
        yield lake
    finally:
        subprocess.run(["umount", "-l", str(lake)], check=False)


def _snapshot(lake) -> dict[str, object]:
    """What readers see: each Delta table's version and rows, and every other file's bytes (raw,
    state, results); data files no version lists are no one's to read."""
    from deltalake import DeltaTable

    tables = {p.parent for p in lake.rglob("_delta_log")}
    seen: dict[str, object] = {}
    for t in sorted(tables):
        dt = DeltaTable(t)
        seen[t.relative_to(lake).as_posix()] = (dt.version(), dt.to_pyarrow_table().to_pylist())
    for p in lake.rglob("*"):
        if p.is_file() and not p.name.startswith(".") and p.name != "filler" and not any(t in p.parents for t in tables):
            seen[p.relative_to(lake).as_posix()] = p.read_bytes()
    return seen


def _snapshot_s3(lake) -> dict[str, object]:
    """What readers of a lake on S3 see: every table's version and rows, and the cursor state (the
    failed hour's raw landing may be in the bucket already: its rerun lands it again)."""
    from schemas.tables import TABLES

    seen: dict[str, object] = {name: (lake.version(TABLES[name]), rows) for name, rows in lake_content(lake).items()}
    for key in lake.storage.list("_state"):
        seen[key] = lake.storage.get(key)
    return seen


@both_lakes
def test_a_full_disk_fails_the_run_cleanly_and_the_next_run_succeeds(tmp_path, small_lake, reliability, lake_kind):
    """The full disk is the lake's own (a local lake) or the worker's staging disk (a lake on S3,
    whose `local_dir` is the small filesystem)."""
    text = (ROOT / "plant.yaml").read_text()
    if lake_kind.s3 is not None:
        text = lake_on_s3(text, lake_kind.s3, "diskfull", small_lake)
    (tmp_path / "plant.yaml").write_text(text)
    cfg = load_config(tmp_path / "plant.yaml")
    lake = cfg.open_lake()
    snapshot = (lambda: _snapshot_s3(lake)) if lake.remote else (lambda: _snapshot(small_lake))
    write_historian_export(tmp_path / "drop" / "historian", START, hours=2)
    first = run_source("historian_export", START, START + timedelta(hours=1), config=cfg)
    assert first.published > 0
    before = snapshot()
    # the disk fills up: leave a few KiB, less than an hour of data needs
    free = shutil.disk_usage(small_lake).free
    with open(small_lake / "filler", "wb") as fh:
        fh.write(b"\0" * (free - 8 * 1024))
    with pytest.raises(OSError) as err:
        run_source("historian_export", START + timedelta(hours=1), START + timedelta(hours=2), config=cfg)
    assert err.value.errno == errno.ENOSPC or "No space left" in str(err.value), err.value
    # nothing partial became visible (no version lists it), nothing already published changed, no
    # temp file stayed behind
    assert snapshot() == before
    assert not [p for p in small_lake.rglob(".*.tmp")]
    # space returns: the rerun of the failed hour publishes it
    (small_lake / "filler").unlink()
    second = run_source("historian_export", START + timedelta(hours=1), START + timedelta(hours=2), config=cfg)
    assert second.published == first.published
    from schemas import get_table

    assert [f.split("/")[-2] for f in lake.files(get_table("sensor_readings"))] == ["date=2026-03-01"] * 2
    where = " (lake on S3, 3 MiB tmpfs staging)" if lake.remote else " (3 MiB tmpfs lake)"
    reliability(f"disk full{where} during a publish", data_in=2 * first.published,
                data_out=first.published + second.published, lost=2 * first.published - first.published - second.published,
                duplicates=0, unit="sensor rows", note="ENOSPC fails the run; nothing partial or changed; the rerun publishes")
