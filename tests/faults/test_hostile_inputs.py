"""Hostile neighbours in shared drop folders: links to secrets are quarantined, never read; one
poison file never stops the good files beside it. A canary secret is searched, decoded, in every
file the lake holds."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from plantlake.core.config import load_config, parse_config
from plantlake.pipeline.runner import run_source
from schemas import get_table
from tests.conftest import ROOT, both_lakes, on

pytestmark = pytest.mark.faults

START = datetime(2026, 1, 1, 6, tzinfo=UTC)
END = START + timedelta(hours=1)
CANARY = "CANARY-s3cr3t-7f3a9"


def settle(*paths: Path) -> None:
    for p in paths:
        os.utime(p, (START.timestamp() + 60, START.timestamp() + 60), follow_symlinks=False)


def jpeg(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, shade, shade)).save(buf, "JPEG")
    return buf.getvalue()


def camera_site(tmp_path: Path, lake_kind=None):
    """A camera folder with sidecars beside the shipped hierarchy: the config and the folder."""
    data = load_config(ROOT / "plant.yaml").model_dump(exclude={"base_dir"}, by_alias=True, exclude_none=True)
    if lake_kind is not None:
        data["lake"] = lake_kind.lake_settings("cams")
    data["sources"] = [{"name": "cams", "kind": "images", "settle_s": 0,
                        "folders": [{"path": "in", "pattern": "*.jpg", "sidecar": {"suffix": ".json"}}]}]
    (tmp_path / "in").mkdir()
    return parse_config(data, base_dir=tmp_path), tmp_path / "in"


@pytest.fixture
def secret(tmp_path, monkeypatch):
    """A file outside every drop folder holding what an attacker wants (like /proc/self/environ)."""
    monkeypatch.setenv("AIRFLOW_CONN_CANARY", f"postgresql://plantlake:{CANARY}@erp:5432/erp")
    path = tmp_path / "outside" / "environ"
    path.parent.mkdir()
    path.write_text(f"AIRFLOW_CONN_ERP=postgresql://plantlake:{CANARY}@erp:5432/erp\n")
    return path


@both_lakes
def test_a_sidecar_that_links_to_a_secret_is_quarantined_unread(tmp_path, secret, reliability, lake_kind):
    cfg, inbox = camera_site(tmp_path, lake_kind)
    meta = {"station": "assembly/line1/camera1", "captured_at": "2026-01-01T06:10:00Z"}
    for i in range(3):
        (inbox / f"ok{i}.jpg").write_bytes(jpeg(40 * i))
        (inbox / f"ok{i}.json").write_text(json.dumps({**meta, "part_serial": f"P{i}"}))
    (inbox / "X.jpg").write_bytes(jpeg(200))
    os.symlink(secret, inbox / "X.json")  # ln -s /proc/self/environ X.json
    os.symlink(secret, inbox / "Y.jpg")   # and an "image" that is a link to it
    settle(*inbox.iterdir())
    s = run_source("cams", START, END, config=cfg)
    t = s.tables["inspection_images"]
    assert s.published == 3 and t.quarantined == 2
    assert t.examples["sidecar: X.json is a symbolic link; links in a drop folder are never followed"]
    assert t.examples["file: Y.jpg is a symbolic link; links in a drop folder are never followed"]
    lake = cfg.open_lake()
    assert lake.read(get_table("inspection_images")).num_rows == 3
    assert lake_kind.holding(lake, CANARY) == []
    reliability(f"drop folder: sidecar and image linked to a secret{on(lake)}", data_in=5, data_out=3, lost=0, duplicates=0,
                unit="files", note="2 links quarantined unread; canary absent from every lake file")


@both_lakes
def test_exports_that_are_links_or_poison_never_stop_the_good_ones(tmp_path, secret, reliability, lake_kind):
    data = load_config(ROOT / "plant.yaml").model_dump(exclude={"base_dir"}, by_alias=True, exclude_none=True)
    data["lake"] = lake_kind.lake_settings("exports")
    cfg = parse_config(data, base_dir=tmp_path)
    drop = tmp_path / "drop" / "historian"
    drop.mkdir(parents=True)
    good = "Zeitstempel;Messstelle;Wert;Einheit;Status\n01.01.2026 14:05:00;L1.PRESS.FORCE;12,5;kN;0\n"
    (drop / "good.csv").write_text(good, encoding="utf-8")
    os.symlink(secret, drop / "linked.csv")                                           # a link to a secret
    (drop / "utf16.csv").write_bytes(good.encode("utf-16"))                           # another encoding
    (drop / "nul.csv").write_bytes(b"\0" * 64 + b"\n")                                # a NUL-only line
    (drop / "long.csv").write_bytes(good.encode().replace(b"14:05", b"14:07")          # a 5 MiB value
                                    + b"01.01.2026 14:06:00;L1.PRESS.FORCE;" + b"9," * (5 << 19) + b";kN;0\n")
    (drop / "empty.csv").write_bytes(b"")                                             # nothing at all
    settle(*drop.iterdir())
    s = run_source("historian_export", START, END, config=cfg)
    t = s.tables["sensor_readings"]
    assert s.published == 2, t.reasons
    assert t.reasons == {
        "file: linked.csv is a symbolic link; links in a drop folder are never followed": 1,
        "file: utf16.csv is UTF-16 text, not utf-8; export it as UTF-8": 1,
        "file: nul.csv has no column …": 1, "file: empty.csv has no column …": 1,
        "value: not a number as mapped for tag nip_force": 1,  # the 5 MiB value, by row
    }, t.reasons
    lake = cfg.open_lake()
    assert lake_kind.holding(lake, CANARY) == []
    assert lake.read(get_table("sensor_readings"))["value"].to_pylist() == [12.5, 12.5]
    reliability(f"historian exports: a link to a secret, UTF-16, a NUL line, a 5 MiB line, an empty file{on(lake)}",
                data_in=7,
                data_out=2, lost=0, duplicates=0, unit="files",
                note="the good export and the long file's good row publish; 4 files and 1 row quarantined by name; "
                     "canary absent from every lake file")


def test_poison_messages_beside_good_ones_are_quarantined_by_name(reliability):
    """Each of these crashed a whole drain once; now each is one quarantined message and the good
    message beside it publishes."""
    from connectors.mqtt import sparkplug
    from tests.unit.test_mqtt_decode import DEV, NODE, T0, connector, raw

    topic = "acme/shenzhen/assembly/line1/press1/telemetry"
    good = json.dumps({"msg_id": "good", "ts": "2026-01-01T06:00:00Z", "values": {"roll_force": 1800.0}})
    poison = {
        "deep": "[" * 5000 + "]" * 5000,
        "digits": '{"msg_id": "d", "ts": "2026-01-01T06:00:00Z", "values": {"roll_force": ' + "9" * 5000 + "}}",
        "ts_1e30": '{"msg_id": "t30", "ts": 1e30, "values": {"roll_force": 1.0}}',
        "ts_1e400": '{"msg_id": "t400", "ts": 1e400, "values": {"roll_force": 1.0}}',
        "huge_int": '{"msg_id": "h", "ts": "2026-01-01T06:00:00Z", "values": {"roll_force": ' + "9" * 400 + "}}",
        "long_topic": good,
    }
    msgs = [(topic, good.encode())] + [(topic if k != "long_topic" else topic + "/x" * 20000, v.encode())
                                       for k, v in poison.items()]
    msgs += [(NODE.format("NBIRTH"), sparkplug.encode(timestamp=T0, seq=0, metrics=[])),
             (DEV.format("DBIRTH"), sparkplug.encode(timestamp=2**64 - 1, seq=1, uuid="b", metrics=[
                 {"name": "coolant_flow", "alias": 1, "datatype": "Double", "value": 40.0, "timestamp": 2**64 - 1}]))]
    c = connector()
    out = c.decode(raw(*msgs))
    rows = out.tables["sensor_readings"].to_pylist()
    assert [(r["message_id"], r["tag"], r["value"]) for r in rows] == [("good", "roll_force", 1800.0)]
    reasons = [r["reason"] for r in out.rejects["sensor_readings"].rows]
    assert len(reasons) == 7, reasons
    assert sum("payload: not JSON (RecursionError" in r for r in reasons) == 1
    assert sum("payload: not JSON (ValueError: Exceeds the limit" in r for r in reasons) == 1
    assert sum(r.startswith("timestamp: field 'ts' is not a time") for r in reasons) == 2
    assert sum("payload: cannot be decoded (OverflowError" in r for r in reasons) == 1
    assert sum("is outside the years 1..9999" in r for r in reasons) == 1  # the Sparkplug birth of 2^64-1
    assert sum(r.startswith("topic: no mapping") for r in reasons) == 1
    assert max(len(r) for r in out.rejects["sensor_readings"].table()["reason"].to_pylist()) <= 1000
    reliability("MQTT poison messages beside a good one", data_in=len(msgs), data_out=1, lost=0, duplicates=0,
                unit="messages", note="JSON 5,000 deep, a 5,000-digit number, ts 1e30 and 1e400, a 400-digit value, "
                                      "a 40,000-character topic, a Sparkplug birth at 2^64-1: each quarantined by name")


def test_a_sidecar_nested_100000_deep_is_quarantined_and_the_others_publish(tmp_path, reliability):
    cfg, inbox = camera_site(tmp_path)
    (inbox / "ok.jpg").write_bytes(jpeg(10))
    (inbox / "ok.json").write_text(json.dumps({"station": "assembly/line1/camera1", "part_serial": "P1",
                                               "captured_at": "2026-01-01T06:10:00Z"}))
    (inbox / "deep.jpg").write_bytes(jpeg(20))
    (inbox / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    name = "x" * 251 + ".jpg"  # 255 bytes; its sidecar's name is 256: too long for the filesystem
    (inbox / name).write_bytes(jpeg(30))
    settle(*inbox.iterdir())
    s = run_source("cams", START, END, config=cfg)
    t = s.tables["inspection_images"]
    assert s.published == 1 and t.quarantined == 2, t.reasons
    assert t.reasons["sidecar: not valid JSON"] == 1
    assert any("cannot be opened (ENAMETOOLONG)" in r for r in t.examples.values()), t.examples
    reliability("camera: a sidecar 100,000 deep and a 255-byte file name beside a good image", data_in=3,
                data_out=1, lost=0, duplicates=0, unit="files", note="2 quarantined by name")
