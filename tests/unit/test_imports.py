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


def test_connector_registry_loads_lazily():
    import connectors

    cls = connectors.load("csv")
    assert cls.kind == "csv" and cls.tables == ("sensor_readings",)
    with pytest.raises(ValueError, match="unknown source kind 'ftp'"):
        connectors.load("ftp")
