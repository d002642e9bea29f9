"""The documented mapping rules: asset slugs from browse names and topic levels, reference policies."""

from __future__ import annotations

import pytest

from connectors.base import fill, slug
from plantlake.config import ConfigError, parse_config

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name,expected", [
    ("Filler", "filler"), ("LabelPrinter2", "label_printer2"), ("Line 1", "line_1"), ("press-1", "press-1"),
    ("line1", "line1"), ("CAPPER", "capper"), ("Füller", "f_ller"), ("  Zone.A  ", "zone_a"),
])
def test_browse_names_become_asset_slugs(name, expected):
    assert slug(name) == expected


def test_templates_fill_with_slugged_captures():
    assert fill("packaging/{line}/{machine}", {"line": "Line1", "machine": "LabelPrinter"}) == \
        "packaging/line1/label_printer"


def test_reference_policies_name_declared_references_only():
    base = {"enterprise": {"id": "e", "sites": [{"id": "s", "areas": [{"id": "a", "lines": [{"id": "l"}]}]}]},
            "sources": [{"name": "erp", "kind": "erp", "connection_id": "x", "tables": [
                {"target": "materials", "table": "m", "mode": "full", "columns": {"material_id": "id"}}]}]}
    base["sources"][0]["references"] = {"production_orders.material_id": "warn"}
    assert parse_config(base).sources[0].references == {"production_orders.material_id": "warn"}
    base["sources"][0]["references"] = {"production_orders.materialid": "off"}
    with pytest.raises(ConfigError, match=r"no declared reference \['production_orders.materialid'\]; "
                                          r"references are \['production_orders.material_id'"):
        parse_config(base)
