"""Each source's freshness and incidents, on a hand-made lake (local, and on the S3 server): the
last published interval, its lag against the source's `freshness`, and incidents opened once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from plantlake.core.config import ConfigError, load_config
from plantlake.core.lake import Interval
from plantlake.pipeline.health import check_freshness
from schemas import get_table
from tests.conftest import both_lakes

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 8, 12, 20, tzinfo=UTC)


def _hour(h: int) -> Interval:
    start = datetime(2026, 12, 8, h, tzinfo=UTC)
    return Interval(start, start + timedelta(hours=1))


@both_lakes
def test_lag_state_and_one_stale_incident_per_episode(lake_kind, tmp_path):
    cfg = load_config(lake_kind.write_config(tmp_path / "site"))
    lake = cfg.open_lake().ensure()
    lake.record_published("historian_export", _hour(11), "run-11", 2183)
    lake.record_published("historian_export", _hour(8), "backfill-8", 2183)  # a backfill does not move it back
    lake.record_published("erp", _hour(9), "run-9", 0)  # nothing changed in the ERP: still published
    lake.record_published("opcua_plant", _hour(11), "run-11", 30960)
    lake.open_incident("opcua_plant", "failed", {"message": "SchemaDrift: node gone"})
    raised = []
    result = check_freshness(lake, cfg, "check-1", NOW, raise_incident=lambda *a: raised.append(a) or
                             lake.open_incident(*a))
    by = {h.source: h for h in result.sources}
    assert {s: h.state for s, h in by.items()} == {
        "historian_export": "fresh",  # ended 12:00, 20 min ago
        "erp": "stale",  # ended 10:00, 2 h 20 min ago
        "opcua_plant": "failed",  # fresh, but its last run failed for good
        "mqtt_plant": "stale", "camera_images": "stale"}  # nothing published yet
    assert by["historian_export"].lag == timedelta(minutes=20)
    assert by["erp"].problem == ("last published interval ended 2026-12-08T10:00:00+00:00, 2 h 20 min ago "
                                 "(freshness 2 h 00 min)")
    assert by["mqtt_plant"].problem == "no interval published yet (freshness 2 h 00 min)"
    assert by["opcua_plant"].problem == "failed: SchemaDrift: node gone"
    assert sorted(s for s, k, _ in raised) == ["camera_images", "erp", "mqtt_plant"]
    assert set(lake.open_incidents("erp")) == {"stale"}

    # a second check: the same incidents stay open (the raiser is called, nothing new is opened)
    opened = []
    check_freshness(lake, cfg, "check-2", NOW + timedelta(minutes=15),
                    raise_incident=lambda *a: opened.append(lake.open_incident(*a)))
    assert opened == [False, False, False]
    # the ERP publishes again: its stale incident closes; the table kept both checks
    lake.record_published("erp", _hour(11), "run-11", 12)
    third = check_freshness(lake, cfg, "check-3", NOW + timedelta(minutes=30))
    assert {h.source: h.state for h in third.sources}["erp"] == "fresh"
    assert lake.open_incidents("erp") == {}
    rows = lake.read(get_table("source_freshness")).to_pylist()
    erp = sorted((r for r in rows if r["source"] == "erp"), key=lambda r: r["checked_at"])
    assert [(r["state"], r["lag_s"], r["run_id"]) for r in erp] == [
        ("stale", 8400.0, "check-1"), ("stale", 9300.0, "check-2"), ("fresh", 3000.0, "check-3")]
    assert erp[0]["freshness_s"] == 7200 and erp[0]["last_interval_start"] == _hour(9).start
    assert len(rows) == 15


@both_lakes
def test_an_incident_is_opened_once(lake_kind, tmp_path):
    lake = load_config(lake_kind.write_config(tmp_path / "site")).open_lake().ensure()
    assert lake.open_incident("erp", "failed", {"message": "first"}) is True
    assert lake.open_incident("erp", "failed", {"message": "second"}) is False
    assert lake.open_incidents("erp") == {"failed": {"message": "first"}}
    lake.close_incident("erp", "failed")
    assert lake.open_incident("erp", "failed", {"message": "third"}) is True


def test_without_freshness_the_lag_is_recorded_not_held(tmp_path):
    import re

    from tests.conftest import ROOT

    (tmp_path / "plant.yaml").write_text(re.sub(r"\n    freshness: 2h[^\n]*", "", (ROOT / "plant.yaml").read_text()))
    cfg = load_config(tmp_path / "plant.yaml")
    lake = cfg.open_lake().ensure()
    lake.record_published("erp", _hour(1), "run-1", 3)
    result = check_freshness(lake, cfg, "check", NOW)
    assert {h.source: (h.state, h.lag) for h in result.sources}["erp"] == ("unchecked", timedelta(hours=10, minutes=20))
    assert result.failing == []


@pytest.mark.parametrize(("text", "expected"), [("2h", timedelta(hours=2)), ("90m", timedelta(minutes=90)),
                                                ("30 min", timedelta(minutes=30)), ("1d", timedelta(days=1)),
                                                ("PT2H", timedelta(hours=2)), (3600, timedelta(hours=1))])
def test_freshness_reads_durations(tmp_path, text, expected):
    from tests.conftest import ROOT

    (tmp_path / "plant.yaml").write_text((ROOT / "plant.yaml").read_text().replace("freshness: 2h", f"freshness: {text}", 1))
    assert load_config(tmp_path / "plant.yaml").source("historian_export").freshness == expected


@pytest.mark.parametrize("text", ["soon", "-1h", "0s"])
def test_a_freshness_that_is_no_duration_names_the_field(tmp_path, text):
    from tests.conftest import ROOT

    (tmp_path / "plant.yaml").write_text((ROOT / "plant.yaml").read_text().replace("freshness: 2h", f"freshness: {text}", 1))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.freshness"):
        load_config(tmp_path / "plant.yaml")
