"""The baseline's features from image_training_set rows, computed by hand, and its refusals."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.core.errors import ConfigError
from plantlake.core.lake import Lake
from plantlake.pipeline.train import features, train_baseline

pytestmark = pytest.mark.unit

AT = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _row(**kw) -> dict:
    return {"brightness": 120.0, "contrast": 30.0, "sharpness": 5.0, "captured_at": AT, "sensor_features": [],
            "alarms": [], **kw}


def test_features_name_machines_alike_across_lines_and_measure_alarm_time_in_the_window():
    agg = {"mean": 330.0, "min": 320.0, "max": 365.0, "last": 321.0}
    rows = [
        _row(sensor_features=[{"asset_id": "acme/s/a/line1/welder1", "tag": "weld_temp", **agg}],
             alarms=[{"severity": 700, "active_from": AT - timedelta(seconds=150), "active_to": AT - timedelta(seconds=90)},
                     {"severity": 300, "active_from": AT - timedelta(seconds=10), "active_to": None}]),
        _row(sensor_features=[{"asset_id": "acme/s/a/line2/welder2", "tag": "weld_temp", **agg, "max": None}]),
    ]
    names, x = features(rows, window_s=120)
    assert names == ["alarms.active_s", "alarms.count", "alarms.max_severity", "brightness", "contrast", "sharpness",
                     "welder.weld_temp.last", "welder.weld_temp.max", "welder.weld_temp.mean", "welder.weld_temp.min"]
    first, second = (dict(zip(names, v, strict=True)) for v in x)
    # the first alarm overlaps the window's first 30 s (it opened 120 s before capture), the second
    # is still active at capture: 10 s
    assert (first["alarms.active_s"], first["alarms.count"], first["alarms.max_severity"]) == (40.0, 2.0, 700.0)
    assert first["welder.weld_temp.max"] == 365.0 and second["welder.weld_temp.mean"] == 330.0
    assert math.isnan(second["welder.weld_temp.max"]) and second["alarms.count"] == 0.0


def test_training_without_a_set_or_with_too_few_verdicts_says_what_to_do(tmp_path):
    lake = Lake(tmp_path / "lake").ensure()
    with pytest.raises(ConfigError, match=r"no image_training_set yet; build the products first"):
        train_baseline(lake, 120)
