"""Site config: the embedded defaults load; bad files fail fast naming field, value and expectation."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from plantlake.core.config import ConfigError, load_config, parse_config
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def test_embedded_defaults_load_with_the_isa95_hierarchy():
    cfg = load_config(ROOT / "plant.yaml")
    ids = cfg.asset_ids()
    assert "acme/shenzhen/assembly/line1/press1" in ids
    assert {r["level"] for r in cfg.assets()} == {"enterprise", "site", "area", "line", "cell"}
    src = cfg.source("historian_export")
    # relative asset paths resolve to full ISA-95 paths
    assert src.tags[0].asset == "acme/shenzhen/assembly/line1/coater1"
    assert cfg.line_of("acme/shenzhen/assembly/line1/press1") == "acme/shenzhen/assembly/line1"


def _base() -> dict:
    return yaml.safe_load((ROOT / "plant.yaml").read_text())


def _with(path: str, value) -> dict:
    data = _base()
    node = data
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if k.isdigit() else node[k]
    last = keys[-1]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


_DELETE = object()

BAD = [
    ("sources.0.schedule", "every hour", "sources[0].schedule: got 'every hour'", "cron expression"),
    ("sources.0.kind", "ftp", "sources[0]", "'csv'"),
    ("sources.0.retries", 0, "sources[0].retries: got 0", "greater than or equal to 2"),
    ("sources.0.name", "Bad Name!", "sources[0].name: got 'Bad Name!'", "pattern"),
    ("sources.0.tags.0.unit", "furlongs per fortnight per bogus", "sources[0].tags[0].unit", "unit plantlake reads"),
    ("sources.0.tags.0.asset", "assembly/line9/press9", "sources[0].tags[0].asset: got 'assembly/line9/press9'", "asset of the hierarchy"),
    ("sources.0.tags.0.type", "complex", "sources[0].tags[0].type: got 'complex'", "'number', 'text' or 'bool'"),
    ("sources.0.tags.0.min", 500, "sources[0].tags[0]", "min (500.0) is greater than max (250.0)"),
    ("sources.0.delimiter", ";;", "sources[0].delimiter: got ';;'", "at most 1 character"),
    ("sources.0.encoding", "ebcdic", "sources[0].encoding: got 'ebcdic'", "'utf-8'"),
    ("enterprise.sites.0.timezone", "Mars/Olympus", "enterprise.sites[0].timezone: got 'Mars/Olympus'", "IANA time zone"),
    ("enterprise.sites", [], "enterprise.sites: got 'list'", "at least 1 item"),
    ("enterprise.id", _DELETE, "enterprise.id: missing", "required"),
    ("sources.0.decimal", ";", "sources[0].decimal: got ';'", "'.' or ','"),
    ("sources.0.colour", "blue", "sources[0].colour: unknown field", "check the spelling"),
    ("sources.0.tags.1.ref", "L1.COAT.DRYER_TEMP", "sources[0].tags[1].ref: got 'L1.COAT.DRYER_TEMP'", "already mapped by tags[0]"),
    ("sources.0.tags.2.canonical_unit", "degC", "sources[0].tags[2].canonical_unit: got 'degC'", "different quantities"),
    ("sources.3.folders.1.asset", "assembly/line{x}/camera{x}", "sources[3].folders[1]", "name_pattern does not capture"),
    ("sources.3.folders.0.name_pattern", "{part_serial}.jpg", "sources[3].folders[0]", "either sidecar or name_pattern"),
    ("sources.3.folders", [], "sources[3].folders: got 'list'", "at least 1 item"),
    ("sources.3.copy_mode", "move", "sources[3].copy_mode: got 'move'", "'copy' or 'link'"),
    ("sources.3.folders.0.sidecar.suffix", "../x", "sources[3].folders[0].sidecar.suffix: got '../x'", "pattern"),
]


@pytest.mark.parametrize(("path", "value", "where", "expected"), BAD, ids=[b[0] + "=" + str(b[1])[:12] for b in BAD])
def test_bad_config_names_field_value_and_expectation(path, value, where, expected):
    with pytest.raises(ConfigError) as err:
        parse_config(_with(path, value), source="plant.yaml")
    msg = str(err.value)
    assert msg.startswith("plant.yaml: ")
    assert where in msg, msg
    assert expected in msg, msg


def test_secrets_are_refused_with_their_path():
    data = _with("sources.0.password", "hunter2")
    with pytest.raises(ConfigError) as err:
        parse_config(data, source="plant.yaml")
    assert "sources[0].password: secrets do not belong in the site config" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_duplicate_source_names_fail():
    data = _base()
    data["sources"].append(dict(data["sources"][0]))
    with pytest.raises(ConfigError, match="source names must be unique; repeated: historian_export"):
        parse_config(data)


def test_yaml_syntax_error_names_line(tmp_path):
    p = tmp_path / "plant.yaml"
    p.write_text(textwrap.dedent("""
        enterprise:
          id: acme
          sites: [ {id: x
    """))
    with pytest.raises(ConfigError, match=r"plant.yaml: line \d+, column \d+: not valid YAML"):
        load_config(p)


def test_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match="site config not found .*PLANTLAKE_CONFIG"):
        load_config(tmp_path / "nope.yaml")


def test_lake_root_env_overrides_config(monkeypatch, tmp_path):
    cfg = load_config(ROOT / "plant.yaml")
    assert cfg.lake_root() == (ROOT / "lake").resolve()
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path / "elsewhere"))
    assert cfg.lake_root() == tmp_path / "elsewhere"


def test_unknown_source_lists_configured_ones():
    cfg = load_config(ROOT / "plant.yaml")
    with pytest.raises(ConfigError, match="no source named 'nope'.*configured: historian_export"):
        cfg.source("nope")


def test_configuration_reference_is_generated_from_the_models():
    from plantlake.app.config_docs import reference

    committed = (ROOT / "docs" / "configuration.md").read_text()
    assert committed == reference(), "run: plantlake config docs"
    for kind in ("csv", "opcua", "mqtt", "images"):
        assert f"## sources[] kind: {kind}\n" in committed
