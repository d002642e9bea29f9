"""The Data Docs as a person opens them on a plant network without internet: headless Chromium
with every request refused. The index lists every suite and validation, a failed expectation's
values and the rows the audit set aside are on its page, and no request leaves the machine."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.app.demo import write_historian_export
from plantlake.core.config import load_config
from plantlake.core.lake import Interval
from plantlake.pipeline.runner import run_source
from quality.cross_source import run_checks
from quality.docs import _suites, build_data_docs
from tests.browser import offline

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 2, 6, tzinfo=UTC)


def test_the_check_sees_a_page_that_loads_from_a_cdn(tmp_path):
    page = tmp_path / "cdn.html"
    page.write_text('<!doctype html><html><head><script src="https://cdn.jsdelivr.net/npm/vega@5"></script>'
                    '</head><body>x</body></html>')
    _, requests = offline(tmp_path, page.as_uri(), "--dump-dom")
    assert any("cdn.jsdelivr.net" in r for r in requests), requests


def test_data_docs_work_offline_with_every_suite_validation_and_set_aside_row(plant_dir, tmp_path):
    cfg = load_config(plant_dir / "plant.yaml")
    write_historian_export(cfg.path(cfg.source("historian_export").path), START, hours=1)
    summary = run_source("historian_export", START, START + timedelta(hours=1), config=cfg)
    assert summary.quarantined > 0  # the export's sensor glitch (65535) and broken lines
    run_checks(cfg.open_lake(), cfg, Interval(START, START + timedelta(hours=1)), "r1")
    index = build_data_docs(cfg.open_lake(), cfg)

    dom, requests = offline(tmp_path, index.as_uri(), "--dump-dom")
    assert requests == [], requests
    dom = dom.stdout
    suites = [s.name for s in _suites(cfg)]
    assert len(suites) > 10 and all(f">{name}</a>" in dom for name in suites)
    links = re.findall(r'<a href="(validations/[^"]+)">', dom)
    assert len(links) == 2  # the historian export's audit and the cross-source checks
    assert "<script" not in dom and "cdn" not in dom.lower()

    page = next(index.parent / link for link in links if "sensor_readings" in link)
    text, requests = offline(tmp_path, page.as_uri(), "--dump-dom")
    assert requests == [], requests
    text = text.stdout
    failed = text.split("<h2>Expectations</h2>", 1)[1].split("<h2>", 1)[0]
    assert re.search(r'class="failed">FAILED</span></td><td><code>expect_tag_values_to_be_within_physical_range'
                     r"</code>", failed)
    assert "unexpected values" in failed
    aside = text.split("<h2>Rows set aside (quarantine)</h2>", 1)[1]
    assert "65535" in aside and "outside the physical range" in aside
