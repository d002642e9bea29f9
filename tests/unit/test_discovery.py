"""Discovery's guesses from data as other tools write it: names to assets, JSON payloads of common
gateways, historian time formats, camera file names."""

from __future__ import annotations

import json

import pytest

from connectors.csv.discover import _glob, _time_format
from connectors.discovery import Hierarchy, Named, add_assets, group_rules
from connectors.images.discover import _names
from connectors.mqtt.discover import Seen, draft
from plantlake.core.config import parse_config

pytestmark = pytest.mark.unit

SITE = {"enterprise": {"id": "acme", "sites": [{"id": "plant1", "areas": [
    {"id": "packaging", "lines": [{"id": "line1", "cells": [{"id": "filler"}, {"id": "capper"}]},
                                  {"id": "line2", "cells": [{"id": "filler"}, {"id": "camera2"}]}]}]}]},
    "lake": {"root": "./lake"}}


@pytest.fixture
def plant(tmp_path):
    return parse_config(SITE, base_dir=tmp_path)


def test_a_name_matches_the_deepest_asset_its_segments_spell(plant):
    h = Hierarchy(plant)
    assert h.match(["Objects", "Packaging", "Line1", "Filler"]) == ("packaging", "line1", "filler")
    assert h.match(["Site", "Line2", "Filler"]) == ("packaging", "line2", "filler")  # the line tells the fillers apart
    assert h.match(["Filler"]) is None  # two fillers: no guess
    assert h.match(["Line1"]) == ("packaging", "line1")
    assert h.match(["Filler", "Line1"]) == ("packaging", "line1")  # a filler before its line names no cell
    assert h.match(["Warehouse", "Crane"]) is None


def test_a_group_of_one_shape_becomes_one_pattern_with_captures(plant):
    names = [Named(("Plant", line, cell)) for line, cell in (("Line1", "Filler"), ("Line1", "Capper"), ("Line2", "Filler"))]
    rules = group_rules(names, Hierarchy(plant))
    assert [(r.pattern, r.asset, r.new_assets) for r in rules] == [
        (("Plant", "{line}", "{cell}"), "packaging/{line}/{cell}", [])]


def test_names_the_hierarchy_lacks_follow_the_known_ones_and_are_proposed(plant):
    names = [Named(("Plant", "Line1", "Filler")), Named(("Plant", "Line1", "Labeler"))]
    (rule,) = group_rules(names, Hierarchy(plant))
    assert rule.pattern == ("Plant", "Line1", "{cell}") and rule.asset == "packaging/line1/{cell}"
    assert rule.new_assets == ["packaging/line1/labeler"]
    site = json.loads(json.dumps(SITE["enterprise"]["sites"][0]))
    assert add_assets(site, {"packaging/line1/labeler": "", "packaging/line3/oven": "", "storage/rack1": ""}) == [
        "packaging/line1/labeler", "packaging/line3", "storage"]
    assert parse_config({**SITE, "enterprise": {"id": "acme", "sites": [site]}}).resolve_asset("storage/rack1")


def test_without_a_hierarchy_the_last_segments_become_area_line_cell():
    names = [Named(("Factory", "Hall A", f"Line {n:02d}", f"Machine{m}")) for n in (1, 2) for m in (1, 2)]
    (rule,) = group_rules(names, Hierarchy(None))
    # one hall: its segment stays literal (the area), lines and machines vary
    assert rule.pattern == ("Factory", "Hall A", "{line}", "{cell}") and rule.asset == "hall_a/{line}/{cell}"
    assert sorted(rule.new_assets) == ["hall_a/line_01/machine1", "hall_a/line_01/machine2", "hall_a/line_02/machine1",
                                       "hall_a/line_02/machine2"]


def payloads(topic_bodies: dict[str, list[dict]]) -> dict[str, Seen]:
    return {t: Seen(len(bs), [json.dumps(b).encode() for b in bs]) for t, bs in topic_bodies.items()}


def test_telegraf_json_fields_tags_and_epoch_seconds(plant):
    """Telegraf's JSON output: {fields: {...}, name, tags: {...}, timestamp: <epoch s>}."""
    bodies = [{"fields": {"temp": 21.5 + i, "rpm": 1400 + i}, "name": "filler", "tags": {"host": "gw1"},
               "timestamp": 1764680000 + 10 * i} for i in range(5)]
    d = draft(payloads({"plant1/packaging/line1/filler/metrics": bodies}), name="gw", plant=plant, target="t",
              figures={"listened_s": 5, "messages": 5, "topics": 1})
    (rule,) = d.source["json"]
    assert (rule["topic"], rule["asset"], rule["values"], rule["timestamp"], rule["epoch_unit"], rule["id"]) == (
        "plant1/packaging/line1/filler/metrics", "packaging/line1/filler", "fields", ["timestamp"], "s", None)
    assert "temp number" in d.notes[("json", 0)] and "no message id" in d.notes[("json", 0)]


def test_flat_json_with_unit_quality_and_a_device_id(plant):
    def bodies(line: int) -> list[dict]:
        return [{"id": f"m{line}-{i}", "ts": f"2026-11-20T08:0{i}:00.000+01:00", "unit": "bar", "q": "good",
                 "device": "GW-7", "pressure": 3.1 + i / 10} for i in range(4)]

    d = draft(payloads({"plant1/packaging/line2/filler/data": bodies(2), "plant1/packaging/line1/filler/data": bodies(1)}),
              name="gw", plant=plant, target="t", figures={"listened_s": 5, "messages": 8, "topics": 2})
    (rule,) = d.source["json"]
    assert rule["topic"] == "plant1/packaging/{line}/filler/data" and rule["asset"] == "packaging/{line}/filler"
    assert (rule["values"], rule["timestamp"], rule["id"], rule["units"], rule["quality"], rule["exclude"]) == (
        "", ["ts"], "id", "unit", "q", ["device"])
    assert "epoch_unit" not in rule


def test_not_json_is_kept_raw_and_said(plant):
    seen = {"plant1/line1/camera/trigger": Seen(3, [b"\x01\x02", b"\x01\x03", b"\x01\x04"])}
    d = draft(seen, name="gw", plant=plant, target="t", figures={"listened_s": 5, "messages": 3, "topics": 1})
    assert d.source["raw_topics"] == ["plant1/line1/camera/+"] and "json" not in d.source


@pytest.mark.parametrize(("stamps", "fmt", "ambiguous"), [
    (["20.11.2026 08:00:00", "20.11.2026 08:01:00"], "%d.%m.%Y %H:%M:%S", False),  # German historians
    (["2026-11-20 08:00:00.123", "2026-11-20 08:00:01.456"], "%Y-%m-%d %H:%M:%S.%f", False),
    (["11/20/2026 08:00:00", "11/21/2026 08:00:00"], "%m/%d/%Y %H:%M:%S", False),  # day 20 > 12: US order
    (["11/05/2026 08:00:00", "11/06/2026 08:00:00"], "%m/%d/%Y %H:%M:%S", True),  # no day above 12 seen
    (["11/20/2026 8:00:00 AM", "11/20/2026 1:15:00 PM"], "%m/%d/%Y %I:%M:%S %p", False),  # Excel's US export
])
def test_historian_time_formats(stamps, fmt, ambiguous):
    got, said = _time_format(stamps)
    assert got == fmt and ("ambiguous" in said) == ambiguous


def test_an_export_pattern_does_not_pin_the_date_in_its_name():
    assert _glob(["export_20260302_0900.csv", "export_20260302_1000.csv"]) == "export_*.csv"
    assert _glob(["Historian_20261120_0800.csv"]) == "Historian_*.csv"
    assert _glob(["20261120.csv", "20261121.csv"]) == "*.csv"


def test_camera_file_names_become_a_name_pattern(plant, tmp_path):
    entry, new = {}, {}
    stems = [f"cam2_PO10{i}-00{i}_20260302T1054{i}2000Z" for i in range(3)]
    said = _names(entry, stems, ".png", Hierarchy(plant), tmp_path / "images", new, "t")
    assert entry == {"pattern": "cam2_*_*.png", "name_pattern": "cam2_{part_serial}_{captured_at}.png",
                     "captured_at_format": "%Y%m%dT%H%M%S%fZ", "asset": "packaging/line2/camera2"}, said
    assert new == {}
