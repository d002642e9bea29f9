"""A large interval is conformed, audited and staged in slices of whole series, and publishes
exactly what a run of the whole interval at once publishes."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.app.demo import write_historian_export
from plantlake.core.config import with_source
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from quality.audit import AuditFailed
from schemas import get_table

pytestmark = pytest.mark.integration

SENSOR = get_table("sensor_readings")
START = datetime(2026, 3, 1, 9, tzinfo=UTC)
END = START + timedelta(hours=1)


def _content(lake: Lake):
    t = lake.read(SENSOR).drop_columns(list(SENSOR.lineage))
    return t.sort_by([(k, "ascending") for k in SENSOR.primary_key])


def _quarantine(lake: Lake):
    rows = lake.read_quarantine("sensor_readings").to_pylist()
    return sorted((r["stage"], r["column"], r["reason"], r["record"]) for r in rows if r["stage"] != "audit") + \
        sorted((r["stage"], r["column"], r["reason"], json.loads(r["record"])["value"]) for r in rows
               if r["stage"] == "audit")


@pytest.fixture
def export(plant_dir):
    (path,) = write_historian_export(plant_dir / "drop" / "historian", START, hours=1)
    stamp = path.stat()
    lines = path.read_text(encoding="utf-8").splitlines()
    press = next(line for line in lines if ";L2.PRESS.FORCE;" in line)
    path.write_text("\n".join([*lines, press]) + "\n", encoding="utf-8")  # a duplicate, 2,000 lines later
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the file's time places it in its interval
    return path


def test_slices_publish_and_quarantine_exactly_what_one_pass_does(plant, plant_dir, export, tmp_path):
    whole_lake, sliced_lake = Lake(tmp_path / "whole"), Lake(tmp_path / "sliced")
    whole = run_source("historian_export", START, END, config=plant, lake=whole_lake)
    small = with_source(plant, "historian_export", slice_rows=1000)
    sliced = run_source("historian_export", START, END, config=small, lake=sliced_lake)

    # 2,188 raw rows: references packed in sorted order into slices of at most 1,000 rows
    assert whole.raw_rows == sliced.raw_rows == 2188
    assert whole.stats["slices"] == 1 and sliced.stats["slices"] == 3
    w, s = whole.tables["sensor_readings"], sliced.tables["sensor_readings"]
    assert (s.published, s.quarantined, s.duplicates) == (w.published, w.quarantined, w.duplicates) == (2183, 4, 1)
    assert s.reasons == w.reasons and s.conversions == w.conversions
    assert _content(sliced_lake).equals(_content(whole_lake))
    assert _quarantine(sliced_lake) == _quarantine(whole_lake)  # incl. the glitch the audit set aside
    # the three slices in one commit (the table's first version), and one kept audit result per slice
    from deltalake import DeltaTable

    assert (s.version, w.version) == (0, 0)
    assert len(DeltaTable(sliced_lake.table_uri(SENSOR)).history()) == 1
    results = sorted(p.name for p in (sliced_lake.root / "_quality" / "results" / "sensor_readings").glob("*.json"))
    assert len(results) == 3 and all("__p000" in name for name in results)


def test_a_rerun_in_one_pass_replaces_the_slices(plant, plant_dir, export, tmp_path):
    lake = Lake(tmp_path / "lake")
    small = with_source(plant, "historian_export", slice_rows=1000)
    first = run_source("historian_export", START, END, config=small, lake=lake)
    content = _content(lake)
    again = run_source("historian_export", START, END, config=plant, lake=lake)  # the claimed file, read again

    assert again.stats["slices"] == 1 and again.published == first.published == 2183
    assert len(lake.files(SENSOR)) == 1 and again.tables["sensor_readings"].version == 1  # the three slices' rows replaced
    assert _content(lake).equals(content)


def test_a_required_tag_is_checked_over_the_interval_not_per_slice(plant, plant_dir, export, tmp_path):
    tags = [t.model_dump(exclude_none=True) for t in plant.source("historian_export").tags]
    for t in tags:
        t["required"] = t["ref"] in ("L1.COAT.DRYER_TEMP", "L2.PRESS.FORCE")  # in the first and the last slice
    lake = Lake(tmp_path / "lake")
    ok = run_source("historian_export", START, END, lake=lake,
                    config=with_source(plant, "historian_export", slice_rows=1000, tags=tags))
    assert ok.stats["slices"] == 3 and ok.published == 2183

    missing = [*tags, {"ref": "L2.COAT.SPEED", "asset": "assembly/line2/coater2", "tag": "coater_speed",
                       "required": True}]  # mapped, required, absent from the export
    other = Lake(tmp_path / "other")
    with pytest.raises(AuditFailed, match="coater_speed"):
        run_source("historian_export", START, END, lake=other,
                   config=with_source(plant, "historian_export", slice_rows=1000, tags=missing))
    assert not list((other.root / "curated").rglob("*.parquet"))  # no slice was published
    assert not [p for p in (other.root / "_staging").rglob("*") if p.is_file()]  # staged files and raw slices gone
