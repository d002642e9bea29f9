"""Nothing matches, and nothing looks green: a mapping that matches nothing is listed in the run
summary and logged; a run whose every input was quarantined fails naming the reasons (unless the
source says warn); reference checks are enforce, warn or off."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from plantlake.config import parse_config
from plantlake.lake import Lake
from plantlake.runner import NothingPublished, run_source
from schemas import get_table

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 4, 8, tzinfo=UTC)
END = START + timedelta(hours=1)
SENSOR = get_table("sensor_readings")


def site(tmp_path, tags, **extra):
    """A line PC's export as a new user maps it from docs/configuration.md."""
    (tmp_path / "drop").mkdir(exist_ok=True)
    return parse_config({
        "enterprise": {"id": "nord", "sites": [{"id": "werk1", "timezone": "Europe/Berlin", "areas": [
            {"id": "abfuellung", "lines": [{"id": "linie1", "cells": [{"id": "fueller1"}]}]}]}]},
        "sources": [{"name": "export", "kind": "csv", "path": "drop", "delimiter": ";", "decimal": ",",
                     "timestamp_format": "%d.%m.%Y %H:%M:%S",
                     "columns": {"ts": "Zeit", "ref": "Tag", "value": "Wert", "unit": "Einheit"},
                     "tags": tags, **extra}]}, base_dir=tmp_path)


def drop(tmp_path, lines: list[str]) -> None:
    f = tmp_path / "drop" / "export_0800.csv"
    f.write_text("Zeit;Tag;Wert;Einheit\n" + "\n".join(lines) + "\n", encoding="utf-8")
    os.utime(f, (START.timestamp() + 600, START.timestamp() + 600))


LINES = [f"04.05.2026 10:{m:02d}:00;FL1.TEMP;{20 + m},5;°C" for m in range(10)] + \
        [f"04.05.2026 10:{m:02d}:00;FL1.PRESSURE;4,{m};bar" for m in range(10)]
TAGS = [{"ref": "FL1.TEMP", "asset": "abfuellung/linie1/fueller1", "tag": "temperature"},
        {"ref": "FL1.PRESS", "asset": "abfuellung/linie1/fueller1", "tag": "pressure"}]  # the export says PRESSURE


def test_a_mapping_that_matches_nothing_is_listed_and_its_rows_are_quarantined(tmp_path, caplog):
    cfg = site(tmp_path, TAGS, units=[{"tag": "humid*", "unit": "%"}])
    drop(tmp_path, LINES)
    s = run_source("export", START, END, config=cfg)
    assert s.published == 10 and s.quarantined == 10
    assert s.tables["sensor_readings"].reasons == {"source_ref: no tag mapping": 10}
    assert s.unmatched == ["tags[1].ref 'FL1.PRESS' matched no input",
                           "units[0] (tag 'humid*', asset '*', ref '*') matched no reading"]
    assert "matched nothing: tags[1].ref 'FL1.PRESS' matched no input" in s.describe()
    assert "source export: tags[1].ref 'FL1.PRESS' matched no input" in caplog.text


def test_a_run_whose_every_input_is_quarantined_fails_and_keeps_the_quarantine(tmp_path):
    cfg = site(tmp_path, [TAGS[1]])
    drop(tmp_path, LINES)
    with pytest.raises(NothingPublished) as err:
        run_source("export", START, END, config=cfg)
    msg = str(err.value)
    assert msg.startswith("source export: 20 input row(s) for 2026-05-04T08:00:00+00:00 .. 2026-05-04T09:00:00+00:00 "
                          "and none published — 20 quarantined (20 x source_ref: no tag mapping)")
    assert "matched nothing: tags[0].ref 'FL1.PRESS' matched no input" in msg
    assert "or set on_nothing_published: warn for source export" in msg
    q = pq.read_table(next((tmp_path / "lake" / "quarantine" / "sensor_readings").rglob("*.parquet")))
    assert q.num_rows == 20  # every row kept, with its reason
    assert Lake(tmp_path / "lake").read(SENSOR).num_rows == 0


def test_warn_lets_an_all_quarantined_run_pass_and_a_rerun_replaces_and_passes(tmp_path):
    cfg = site(tmp_path, [TAGS[1]], on_nothing_published="warn")
    drop(tmp_path, LINES)
    s = run_source("export", START, END, config=cfg)
    assert s.published == 0 and s.quarantined == 20
    # with the mapping fixed, a run and its rerun publish (the rerun replaces what the interval owns)
    cfg = site(tmp_path, TAGS)
    (tmp_path / "lake").rename(tmp_path / "old-lake")
    run_source("export", START, END, config=cfg)
    again = run_source("export", START, END, config=cfg)
    assert again.published == 10
