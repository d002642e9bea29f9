"""The runner end to end on real files: CLI run, rerun idempotency, file claiming, quarantine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.app.demo import write_historian_export
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from schemas import get_table
from tests.conftest import ROOT, lake_content, quarantined

pytestmark = pytest.mark.integration

SENSOR = get_table("sensor_readings")
START = datetime(2026, 3, 1, 9, tzinfo=UTC)


def _content(lake: Lake):
    t = lake.read(SENSOR).drop_columns(list(SENSOR.lineage))
    return t.sort_by([(k, "ascending") for k in SENSOR.primary_key])


def test_cli_run_publishes_and_a_rerun_is_identical(plant, plant_dir):
    write_historian_export(plant_dir / "drop" / "historian", START, hours=1)
    env = {**os.environ, "PLANTLAKE_CONFIG": str(plant_dir / "plant.yaml")}
    cmd = [sys.executable, "-m", "plantlake", "run", "historian_export",
           "--start", "2026-03-01T09:00Z", "--end", "2026-03-01T10:00Z", "--json"]
    first = json.loads(subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert first["published"] == 360 * 6 + 24 - 1 and first["quarantined"] == 3 + 1  # + the glitch the audit sets aside
    assert first["tables"]["sensor_readings"]["conversions"] == {"W -> kW": 720, "°F -> degC": 360}

    lake = Lake(plant_dir / "lake")
    everything_before = lake_content(lake)
    content_before = _content(lake)
    second = json.loads(subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout)
    assert lake_content(lake) == everything_before  # every table, quarantine and quality results alike
    assert _content(lake).equals(content_before)
    assert second["published"] == first["published"]
    assert second["run_id"] != first["run_id"]


def test_each_export_is_read_by_exactly_one_interval(plant, plant_dir):
    write_historian_export(plant_dir / "drop" / "historian", START, hours=3)
    lake = Lake(plant_dir / "lake")
    counts = []
    for h in range(4):
        s = START + timedelta(hours=h)
        counts.append(run_source("historian_export", s, s + timedelta(hours=1), config=plant, lake=lake).stats["files"])
    assert counts == [1, 1, 1, 0]
    data = lake.read(SENSOR)
    assert data.num_rows == 3 * (360 * 6 + 24 - 1)
    # exactly the values the export held: line 2's dryer is exported in degF, stored in degC
    l2 = data.filter((data["tag"].to_numpy(zero_copy_only=False) == "dryer_temperature")
                     & (data["asset_id"].to_numpy(zero_copy_only=False) == "acme/shenzhen/assembly/line2/coater2"))
    first = l2.sort_by("ts").slice(0, 1).to_pylist()[0]
    assert first["ts"] == START and first["unit"] == "degC"
    assert first["value"] == pytest.approx((248.0 - 32) * 5 / 9)
    assert first["quality"] == "uncertain" and first["status_code"] == 0x40000000


def test_quarantine_keeps_each_bad_row_with_its_reason(plant, plant_dir):
    write_historian_export(plant_dir / "drop" / "historian", START, hours=1)
    summary = run_source("historian_export", START, START + timedelta(hours=1), config=plant)
    q = quarantined(plant_dir / "lake", "sensor_readings", summary)
    reasons = sorted(r["reason"] for r in q)
    assert reasons == [
        "Zeitstempel: '31.02.2026 00:00:00' is not a time in timestamp_format '%d.%m.%Y %H:%M:%S' of source historian_export",
        "expect_tag_values_to_be_within_physical_range(asset_id, tag, value): "
        "outside the physical range the site config gives the tag (historian_export)",
        "source_ref: no tag mapping ('L3.UNKNOWN.TAG')",
        "value: not a number as mapped for tag nip_force ('n/a')",
    ]
    assert {r["source"] for r in q} == {"historian_export"}
    assert all(r["run_id"] == summary.run_id for r in q)
    assert json.loads(next(r["record"] for r in q if "n/a" in r["reason"]))["source_ref"] == "L1.PRESS.FORCE"


def test_missing_drop_folder_fails_with_the_folder_named(plant):
    with pytest.raises(FileNotFoundError, match="source historian_export: drop folder .*drop/historian does not exist"):
        run_source("historian_export", START, START + timedelta(hours=1), config=plant)
