"""Nothing matches, and nothing looks green: a mapping that matches nothing is listed in the run
summary and logged; a run whose every input was quarantined fails naming the reasons (unless the
source says warn); reference checks are enforce, warn or off."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.core.config import parse_config
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import NothingPublished, run_source
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
                          "and none published — 20 quarantined (20 x source_ref: no tag mapping "
                          "(e.g. source_ref: no tag mapping ('FL1.TEMP')))")
    assert "matched nothing: tags[0].ref 'FL1.PRESS' matched no input" in msg
    assert "or set on_nothing_published: warn for source export" in msg
    q = Lake(tmp_path / "lake").read_quarantine("sensor_readings")
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


def test_a_file_in_another_encoding_is_quarantined_naming_the_file_and_the_setting(tmp_path):
    cfg = site(tmp_path, TAGS[:1])
    good = tmp_path / "drop" / "export_0800.csv"
    good.write_text("Zeit;Tag;Wert;Einheit\n04.05.2026 10:00:00;FL1.TEMP;21,5;°C\n", encoding="utf-8")
    bad = tmp_path / "drop" / "export_0830.csv"  # a line PC that writes Windows-1252
    bad.write_bytes("Zeit;Tag;Wert;Einheit\n04.05.2026 10:30:00;FL1.TEMP;22,5;°C Fühler\n".encode("cp1252"))
    for f in (good, bad):
        os.utime(f, (START.timestamp() + 600, START.timestamp() + 600))
    s = run_source("export", START, END, config=cfg)
    assert s.published == 1 and s.quarantined == 1
    (kind, n), = s.tables["sensor_readings"].reasons.items()
    assert n == 1 and kind == "file: export_0830.csv is not utf-8 text; it reads as cp1252: set encoding of source export: cp1252"
    assert s.tables["sensor_readings"].examples[kind].startswith(
        "file: export_0830.csv is not utf-8 text; it reads as cp1252: set encoding of source export: cp1252 (byte 0x")


def test_reasons_group_by_kind_with_a_count_and_an_example(tmp_path):
    cfg = site(tmp_path, TAGS[:1])
    drop(tmp_path, [f"2026-05-04 10:{m:02d}:00;FL1.TEMP;{m};°C" for m in range(50)])  # ISO, not the declared format
    with pytest.raises(NothingPublished) as err:
        run_source("export", START, END, config=cfg)
    assert ("50 quarantined (50 x Zeit: … is not a time in timestamp_format … of source export (e.g. Zeit: "
            "'2026-05-04 10:00:00' is not a time in timestamp_format '%d.%m.%Y %H:%M:%S' of source export))") in str(err.value)


def cli_run(tmp_path, tags):
    """`plantlake run export` in a fresh process on the export of LINES, mapped by `tags`."""
    import subprocess
    import sys

    import yaml

    cfg = site(tmp_path, tags)
    drop(tmp_path, LINES)
    data = cfg.model_dump(exclude={"base_dir"}, by_alias=True, exclude_none=True, mode="json")
    (tmp_path / "plant.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "plantlake", "--config", str(tmp_path / "plant.yaml"), "run", "export",
                           "--start", START.isoformat(), "--end", END.isoformat()],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def test_the_cli_prints_the_run_summary_once(tmp_path):
    done = cli_run(tmp_path, TAGS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("export (csv) 2026-05-04T08:00:00+00:00 .. 2026-05-04T09:00:00+00:00") == 1
    assert "quarantined 10: source_ref: no tag mapping  (e.g. source_ref: no tag mapping ('FL1.PRESSURE'))" in done.stdout
    assert "export (csv)" not in done.stderr and "quarantined 10" not in done.stderr
    assert "matched no input" in done.stderr  # the warning, once, in the log


def test_an_expected_failure_is_one_line_not_a_traceback(tmp_path):
    done = cli_run(tmp_path, [TAGS[1]])
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "plantlake: NothingPublished: source export: 20 input row(s)" in done.stderr
