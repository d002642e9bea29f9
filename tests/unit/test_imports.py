"""The top-level packages import from this project, not from anything else installed."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["connectors", "schemas", "quality", "plantlake", "simulators"])
def test_package_comes_from_this_project(name):
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == ROOT / name


def test_the_kind_registry_comes_from_the_entry_points_and_loads_connectors_lazily():
    import subprocess
    import sys

    from plantlake.core.kinds import source_kind, source_kinds

    assert {k: v.tables for k, v in source_kinds().items()} == {
        "csv": ("sensor_readings",), "erp": ("materials", "production_orders", "quality_inspections"),
        "images": ("inspection_images",), "mqtt": ("sensor_readings",), "opcua": ("sensor_readings", "events")}
    assert source_kind("csv").load().__name__ == "CsvExportConnector"
    with pytest.raises(ValueError, match="unknown source kind 'ftp'; known: csv, erp, images, mqtt, opcua"):
        source_kind("ftp")
    # a site config is read without importing a protocol library or Arrow
    code = ("import sys; from plantlake.core.config import load_config; load_config('plant.yaml');"
            "print([m for m in ('asyncua', 'paho', 'sqlalchemy', 'PIL', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_an_opcua_source_feeds_events_only_when_it_names_a_notifier():
    from plantlake.core.config import load_config, with_source
    from plantlake.core.kinds import source_kind
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "plant.yaml")
    declared = source_kind("opcua").tables
    assert cfg.source("opcua_plant").feeds(declared) == ("sensor_readings", "events")
    quiet = with_source(cfg, "opcua_plant", events=[]).source("opcua_plant")
    assert quiet.feeds(declared) == ("sensor_readings",)
