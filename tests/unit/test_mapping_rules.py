"""The documented mapping rules: asset slugs from browse names and topic levels, reference policies."""

from __future__ import annotations

import pytest

from connectors.base import fill, slug
from plantlake.core.config import ConfigError, parse_config

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


def _site(tmp_path, **source):
    return {"enterprise": {"id": "e", "sites": [{"id": "s", "areas": [{"id": "a", "lines": [{"id": "l"}]}]}]},
            "sources": [{"name": "x", "kind": "csv", "path": "drop", **source}]}


@pytest.mark.parametrize("path", ["/etc", "../../../../etc", "linked"])
def test_source_folders_stay_under_the_data_roots(tmp_path, path):
    import os

    os.symlink("/etc", tmp_path / "linked")
    with pytest.raises(ConfigError, match=r"sources\[0\]\.path: got .* it resolves to /etc, outside the data roots"):
        parse_config(_site(tmp_path, path=path), base_dir=tmp_path)
    data = _site(tmp_path, path=path)
    data["data_roots"] = [".", "/etc"]  # meant: the operator says so
    assert parse_config(data, base_dir=tmp_path).sources[0].path == path


@pytest.mark.parametrize("pattern", ["/etc/*", "../*.csv", "a/../../b.csv", "x\0.csv"])
def test_file_patterns_stay_inside_their_folder(tmp_path, pattern):
    with pytest.raises(ConfigError, match="expected a pattern relative to the folder"):
        parse_config(_site(tmp_path, pattern=pattern), base_dir=tmp_path)


def test_sql_names_with_control_characters_are_refused(tmp_path):
    data = _site(tmp_path)
    data["sources"] = [{"name": "erp", "kind": "erp", "connection_id": "c", "tables": [
        {"target": "materials", "table": "mat\0erial", "mode": "full", "columns": {"material_id": "id"}}]}]
    with pytest.raises(ConfigError, match="without control characters"):
        parse_config(data, base_dir=tmp_path)


def test_a_lake_root_that_is_a_file_says_so(tmp_path):
    from plantlake.core.lake import Lake

    (tmp_path / "lake").write_text("oops")
    with pytest.raises(NotADirectoryError, match="lake root .* is a file, not a folder: set lake.root"):
        Lake(tmp_path / "lake").ensure()
