"""Image ingestion against the camera simulator's drop folder: rows and copies match its ground truth."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from plantlake.core.config import load_config, parse_config, with_source
from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from schemas import get_table
from simulators import truth
from simulators.camera import Camera
from simulators.story import Plant
from tests.conftest import ROOT, lake_content
from tests.conftest import quarantined as quarantined_rows

pytestmark = pytest.mark.integration

IMAGES = get_table("inspection_images")
START = datetime(2026, 1, 1, 6, tzinfo=UTC)
PLANT = Plant(seed=42)


@pytest.fixture
def site(tmp_path):
    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    return load_config(tmp_path / "plant.yaml"), tmp_path


def curated_files(lake: Path) -> dict[str, list[dict]]:
    return lake_content(lake)


def test_rows_and_copies_match_the_cameras_ground_truth_and_a_rerun_adds_nothing(site):
    cfg, tmp = site
    end = START + timedelta(hours=2)
    Camera(PLANT, tmp / "drop" / "images").shots(START, end)
    exp = truth.images(PLANT, START, end).to_pylist()
    intact = {e["sha256"]: e for e in exp if not e["corrupt"]}
    corrupt = sorted(e["file"] for e in exp if e["corrupt"])
    assert len(intact) > 150 and corrupt  # the simulator's 2 % of broken files are in the window

    summaries = [run_source("camera_images", START + timedelta(hours=h), START + timedelta(hours=h + 1), config=cfg)
                 for h in (0, 1)]
    lake = Lake(tmp / "lake")
    rows = lake.read(IMAGES).to_pylist()
    assert sorted(r["image_id"] for r in rows) == sorted(intact)
    for r in rows:
        e = intact[r["image_id"]]
        assert (r["asset_id"], r["part_serial"], r["format"]) == (e["station"], e["part_serial"], e["format"])
        # line 1's sidecar carries the order; line 2's file name does not
        assert r["order_id"] == (e["order_id"] if e["sidecar"] else None)
        assert r["captured_at"] == e["captured_at"].replace(microsecond=e["captured_at"].microsecond // 1000 * 1000)
        assert r["source_file"] == f"drop/images/{e['file']}"
        copy = (tmp / "lake" / r["uri"]).read_bytes()
        assert r["uri"] == f"images/{r['image_id'][:2]}/{r['image_id']}{'.jpg' if e['format'] == 'JPEG' else '.png'}"
        assert hashlib.sha256(copy).hexdigest() == r["image_id"] and len(copy) == r["bytes"]
        assert (r["width"], r["height"], r["mode"]) == (320, 240, "RGB")
        assert r["camera_model"].startswith("EOL-Cam") and r["exposure_time_s"] == pytest.approx(0.004)
        assert r["exif_datetime"] == e["captured_at"].replace(microsecond=0)  # EXIF keeps whole seconds, local time
        assert 0 < r["brightness"] < 255 and r["contrast"] > 0 and r["sharpness"] > 0
    # corrupt files are quarantined by name, with their bytes kept for a look
    quarantined = quarantined_rows(tmp / "lake", "inspection_images")
    assert sorted(json.loads(q["record"])["file"] for q in quarantined) == corrupt
    assert all(q["reason"].startswith("image: cannot be decoded (") for q in quarantined)
    # a reason names the file and Pillow's complaint, never the address of the buffer it read
    assert not any(re.search(r"0x[0-9a-f]{6,}", q["reason"]) for q in quarantined), quarantined
    for q in quarantined:
        kept = tmp / "lake" / json.loads(q["record"])["uri"]
        assert kept.read_bytes() == (tmp / "drop" / "images" / json.loads(q["record"])["file"]).read_bytes()
    # the operator's files are untouched
    assert len(list((tmp / "drop" / "images").glob("*.jpg"))) + len(list((tmp / "drop" / "images").glob("*.png"))) \
        == len(exp)

    before = curated_files(tmp / "lake")
    again = run_source("camera_images", START, START + timedelta(hours=1), config=cfg)
    assert again.published == summaries[0].published and again.stats["files"] == summaries[0].stats["files"]
    after = curated_files(tmp / "lake")
    assert after.keys() == before.keys()
    assert lake.read(IMAGES).num_rows == len(intact)


def test_each_capture_is_a_row_even_when_its_bytes_repeat(site):
    """A row per capture (station, part, time, file); identical bytes for another part are another
    row, sharing the blob, counted as repeated frames — never a silent drop."""
    cfg, tmp = site
    drop = tmp / "drop" / "images"
    shots = Camera(PLANT, drop).shots(START, START + timedelta(hours=1))
    first = run_source("camera_images", START, START + timedelta(hours=1), config=cfg)
    # an operator copies an image again, under a new name with its own sidecar, an hour later ...
    shot = next(s for s in shots if s.sidecar and not s.corrupt)
    shutil.copy(drop / shot.name, drop / "again.jpg")
    meta = json.loads((drop / shot.sidecar).read_text())
    (drop / "again.json").write_text(json.dumps({**meta, "captured_at": "2026-01-01T07:30:00Z"}))
    # ... and within one interval a frozen camera sends the same bytes for another part
    later = START + timedelta(hours=1, minutes=10)
    png = next(s for s in Camera(PLANT, drop).shots(START + timedelta(hours=1), START + timedelta(hours=2))
               if s.format == "PNG" and not s.corrupt)
    twin = drop / png.name.replace(png.part.serial, "TWIN-1")
    shutil.copy(drop / png.name, twin)
    for p in (drop / "again.jpg", drop / "again.json", twin):
        os.utime(p, (later.timestamp(), later.timestamp()))
    second = run_source("camera_images", START + timedelta(hours=1), START + timedelta(hours=2), config=cfg)
    assert second.tables["inspection_images"].duplicates == 0
    assert second.stats["repeated_frames"] == 2  # the png and its twin (the copy an hour later: another run)
    rows = Lake(tmp / "lake").read(IMAGES)
    assert rows.num_rows == len(set(rows["capture_id"].to_pylist())) == first.published + second.published
    same = [r for r in rows.to_pylist() if r["image_id"] == hashlib.sha256((drop / png.name).read_bytes()).hexdigest()]
    assert sorted(r["part_serial"] for r in same) == sorted([png.part.serial, "TWIN-1"])
    assert len({r["uri"] for r in same}) == 1  # one blob
    again = [r for r in rows.to_pylist() if r["source_file"] == "drop/images/again.jpg"]
    assert len(again) == 1 and again[0]["captured_at"] == datetime(2026, 1, 1, 7, 30, tzinfo=UTC)
    # a rerun of the interval keeps one row per capture
    run_source("camera_images", START + timedelta(hours=1), START + timedelta(hours=2), config=cfg)
    assert Lake(tmp / "lake").read(IMAGES).num_rows == rows.num_rows


def _bad_site(tmp: Path) -> tuple:
    """A folder that takes every file, with sidecars, next to the shipped config's hierarchy."""
    cfg = load_config(ROOT / "plant.yaml")
    data = cfg.model_dump(exclude={"base_dir"}, by_alias=True, exclude_none=True)
    data["sources"] = [{"name": "cams", "kind": "images", "schedule": "0 * * * *", "settle_s": 0,
                        "folders": [{"path": "in", "pattern": "*", "sidecar": {"suffix": ".json"}},
                                    {"path": "named", "pattern": "*", "name_pattern": "cam{n}_{part_serial}_{captured_at}.png",
                                     "asset": "assembly/line{n}/camera{n}", "captured_at_format": "%Y%m%dT%H%M%S%fZ"}]}]
    return parse_config(data, base_dir=tmp), tmp / "in", tmp / "named"


def _png(color: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (color, color, color)).save(buf, "PNG")
    return buf.getvalue()


def test_bad_files_and_metadata_are_quarantined_with_reasons_and_the_run_goes_on(tmp_path):
    cfg, inbox, named = _bad_site(tmp_path)
    inbox.mkdir()
    named.mkdir()
    station = "acme/shenzhen/assembly/line1/camera1"

    def put(folder: Path, name: str, data: bytes, sidecar: object = None) -> None:
        (folder / name).write_bytes(data)
        if sidecar is not None:
            text = sidecar if isinstance(sidecar, str) else json.dumps(sidecar)
            (folder / name).with_suffix(".json").write_text(text)

    ok = {"station": station, "part_serial": "P-1", "captured_at": "2026-01-01T06:10:00Z"}
    put(inbox, "good.png", _png(100), ok)
    put(inbox, "empty.png", b"", ok)
    put(inbox, "notes.txt", b"operator notes", ok)
    put(inbox, "truncated.png", _png(120)[:60], ok)
    put(inbox, "no-sidecar.png", _png(130))
    put(inbox, "bad-sidecar.png", _png(140), "{station: line1")
    put(inbox, "traversal.png", _png(150), {**ok, "part_serial": "../../../etc/passwd"})
    put(inbox, "elsewhere.png", _png(160), {**ok, "station": "../../../../etc"})
    put(inbox, "when.png", _png(170), {**ok, "captured_at": "yesterday"})
    put(named, "cam1_P-2_20260101T061500000Z.png", _png(180))
    put(named, "cam1-P-3.png", _png(190))
    put(named, "cam9_P-4_20260101T061500000Z.png", _png(200))
    put(inbox, "vanishing.png", _png(210), ok)
    for p in [*inbox.iterdir(), *named.iterdir()]:
        os.utime(p, (START.timestamp() + 60, START.timestamp() + 60))

    # a file that vanishes between the scan and the read
    from plantlake.core.kinds import source_kind

    real_claim = source_kind("images").load().extract

    def extract_then_vanish(self, interval, state):
        out = real_claim(self, interval, state)
        (inbox / "vanishing.png").unlink()
        return out

    mp = pytest.MonkeyPatch()
    mp.setattr(source_kind("images").load(), "extract", extract_then_vanish)
    try:
        s = run_source("cams", START, START + timedelta(hours=1), config=cfg)
    finally:
        mp.undo()
    t = s.tables["inspection_images"]
    assert t.reasons == {
        "file: empty, 0 bytes": 1,
        "file: unknown extension, expected one of .jpg, .jpeg, .png, .bmp, .tif, .tiff, .webp": 1,
        "image: cannot be decoded": 1,
        "sidecar: missing": 1,
        "sidecar: not valid JSON": 1,
        "part_serial: not an identifier of letters, digits and ._:#-": 1,
        "asset_id: station is not an asset of the site hierarchy": 2,  # '../../etc' and camera 9
        "captured_at: not a time in ISO 8601": 1,
        "file: name does not match …": 1,  # e.g. "… does not match 'cam{n}_{part_serial}_{captured_at}.png'"
        "file: vanished before it could be read": 1,
    }
    assert t.published == 2 and t.quarantined == 11 and s.raw_rows == 13
    rows = {r["part_serial"]: r for r in Lake(tmp_path / "lake").read(IMAGES).to_pylist()}
    assert rows["P-1"]["captured_at"] == START + timedelta(minutes=10)
    assert rows["P-2"]["asset_id"] == station and rows["P-2"]["captured_at"] == START + timedelta(minutes=15)
    # nothing escaped the lake: every file plantlake wrote is under its root
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(tmp_path / "lake")]
    assert {p.parent for p in written} == {inbox, named}


def test_a_thousand_images_stream_through_the_pool_in_batches(tmp_path):
    """Files are read by a process pool and landed batch by batch, so memory does not grow with the folder."""
    cfg, inbox, _ = _bad_site(tmp_path)
    cfg = with_source(cfg, "cams", batch_files=100, workers=2)
    inbox.mkdir()
    (tmp_path / "named").mkdir()
    for i in range(1000):
        (inbox / f"img{i:04d}.png").write_bytes(_png(i % 256))
        (inbox / f"img{i:04d}.json").write_text(json.dumps({"station": "assembly/line2/camera2", "part_serial": f"S{i}",
                                                            "captured_at": "2026-01-01T06:30:00Z"}))
    for p in inbox.iterdir():
        os.utime(p, (START.timestamp() + 60, START.timestamp() + 60))
    s = run_source("cams", START, START + timedelta(hours=1), config=cfg)
    assert s.stats["workers"] == 2 and s.stats["files"] == 1000
    # 256 distinct grey levels for 1000 parts: 1000 captures, every one sharing its bytes with another part
    assert s.published == 1000 and s.tables["inspection_images"].duplicates == 0
    assert s.stats["repeated_frames"] == 1000
    raw = pq.ParquetFile(tmp_path / "lake" / s.raw_files[0])
    assert raw.metadata.num_rows == 1000 and raw.metadata.num_row_groups == 10


def test_a_file_still_being_written_waits_for_a_later_run(tmp_path):
    cfg, inbox, named = _bad_site(tmp_path)
    inbox.mkdir()
    named.mkdir()
    meta = {"station": "assembly/line1/camera1", "part_serial": "P-9", "captured_at": "2026-01-01T06:10:00Z"}
    (inbox / "fresh.png").write_bytes(_png(90)[:40])  # the camera is still writing it
    (inbox / "fresh.json").write_text(json.dumps(meta))
    cfg = with_source(cfg, "cams", settle_s=30)
    now = datetime.now(UTC).replace(microsecond=0)
    first = run_source("cams", now - timedelta(hours=1), now + timedelta(minutes=1), config=cfg)
    assert first.stats["files"] == 0 and first.stats["files_waiting"] == 1 and first.raw_rows == 0
    (inbox / "fresh.png").write_bytes(_png(90))  # finished, and settled by the next run
    settled = (now - timedelta(minutes=5)).timestamp()
    os.utime(inbox / "fresh.png", (settled, settled))
    second = run_source("cams", now + timedelta(minutes=1), now + timedelta(minutes=2), config=cfg)
    assert second.stats["files"] == 1 and second.published == 1


def test_delete_after_publish_removes_only_what_was_published(tmp_path):
    cfg, inbox, named = _bad_site(tmp_path)
    cfg = with_source(cfg, "cams", delete_after_publish=True)
    inbox.mkdir()
    named.mkdir()
    meta = {"station": "assembly/line1/camera1", "part_serial": "P-5", "captured_at": "2026-01-01T06:10:00Z"}
    (inbox / "ok.png").write_bytes(_png(77))
    (inbox / "ok.json").write_text(json.dumps(meta))
    (inbox / "broken.png").write_bytes(_png(78)[:50])
    (inbox / "broken.json").write_text(json.dumps(meta))
    for p in inbox.iterdir():
        os.utime(p, (START.timestamp() + 60, START.timestamp() + 60))
    s = run_source("cams", START, START + timedelta(hours=1), config=cfg)
    assert s.published == 1 and s.quarantined == 1 and s.stats["files_deleted"] == 2
    assert sorted(p.name for p in inbox.iterdir()) == ["broken.json", "broken.png"]  # kept for the operator
    row = Lake(tmp_path / "lake").read(IMAGES).to_pylist()[0]
    assert (tmp_path / "lake" / row["uri"]).read_bytes() == _png(77)


def test_content_decides_the_format_station_codes_map_and_rejected_bytes_leave_images(tmp_path):
    cfg, inbox, named = _bad_site(tmp_path)
    data = cfg.model_dump(exclude={"base_dir"}, by_alias=True, exclude_none=True)
    data["sources"][0]["folders"][0]["codes"] = {"EOL-2": "assembly/line2/camera2"}
    cfg = parse_config(data, base_dir=tmp_path)
    inbox.mkdir()
    named.mkdir()
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(jpeg, "JPEG")
    (inbox / "shot1.png").write_bytes(jpeg.getvalue())  # a JPEG named .png
    (inbox / "shot1.json").write_text(json.dumps({"station": "EOL-2", "part_serial": "P-1",
                                                  "captured_at": "2026-01-01T06:10:00Z"}))
    bad = _png(77)
    (inbox / "shot2.png").write_bytes(bad)
    (inbox / "shot2.json").write_text(json.dumps({"station": "EOL-9", "part_serial": "P-2",
                                                  "captured_at": "2026-01-01T06:11:00Z"}))
    for p in inbox.iterdir():
        os.utime(p, (START.timestamp() + 60, START.timestamp() + 60))
    s = run_source("cams", START, START + timedelta(hours=1), config=cfg)
    rows = Lake(tmp_path / "lake").read(IMAGES).to_pylist()
    digest = hashlib.sha256(jpeg.getvalue()).hexdigest()
    assert [(r["asset_id"], r["format"], r["uri"]) for r in rows] == [
        ("acme/shenzhen/assembly/line2/camera2", "JPEG", f"images/{digest[:2]}/{digest}.jpg")]
    assert s.stats["format_mismatch"] == 1
    # the unknown station is quarantined with the setting that fixes it, and its bytes are in quarantine/
    q = quarantined_rows(tmp_path / "lake", "inspection_images")
    assert len(q) == 1 and "station is not an asset of the site hierarchy" in q[0]["reason"]
    assert "map station codes under folders[0].codes" in q[0]["reason"]
    bad_digest = hashlib.sha256(bad).hexdigest()
    assert json.loads(q[0]["record"])["uri"] == f"quarantine/_files/{bad_digest[:2]}/{bad_digest}.png"
    assert (tmp_path / "lake" / "quarantine" / "_files" / bad_digest[:2] / f"{bad_digest}.png").read_bytes() == bad
    assert not list((tmp_path / "lake" / "images").rglob(f"{bad_digest}*"))
