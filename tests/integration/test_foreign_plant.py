"""A plant shaped unlike ours, configured from the docs only, run through the CLI: every value,
unit and count in the lake equals the plant's own ground truth (simulators/foreign_plant.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from plantlake.core.config import load_config
from plantlake.core.lake import Lake
from schemas import get_table
from simulators import foreign_plant
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

START = datetime(2026, 11, 20, 7, tzinfo=UTC)
END = START + timedelta(hours=1)


def cli(tmp, env, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "plantlake", "--config", str(tmp / "plant.yaml"), *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout) if "--json" in args else {}


def test_the_foreign_plant_lands_exactly_its_ground_truth(tmp_path, mosquitto):
    shutil.copy(ROOT / "tests" / "data" / "foreign_plant.yaml", tmp_path / "plant.yaml")
    truth = foreign_plant.write(tmp_path, START, END)
    with foreign_plant.ForeignOpcUa(START, END) as opcua:
        env = {**os.environ,
               "AIRFLOW_CONN_NORDWERK_OPCUA": f"opcua://127.0.0.1:{opcua.port}/nordwerk",
               "AIRFLOW_CONN_NORDWERK_MQTT": f"mqtt://127.0.0.1:{mosquitto.port}",
               "AIRFLOW_CONN_NORDWERK_ERP": f"sqlite:///{tmp_path / 'erp.sqlite'}"}
        window = ["--start", START.isoformat(), "--end", END.isoformat(), "--json"]
        # the first drain opens plantlake's durable session; the devices publish into it
        first = cli(tmp_path, env, "run", "geraete", "--start", (START - timedelta(hours=1)).isoformat(),
                    "--end", START.isoformat(), "--json")
        assert first["raw_rows"] == 0
        assert foreign_plant.publish(mosquitto.port, START, END) == 120
        runs = {name: cli(tmp_path, env, "run", name, *window) for name in ("anlage", "geraete", "kamera", "erp",
                                                                            "historian")}
    for name, s in runs.items():
        assert s["quarantined"] == 0, (name, {t: v["reasons"] for t, v in s["tables"].items()})
        assert s["unmatched"] == [], (name, s["unmatched"])
    lake = Lake(load_config(tmp_path / "plant.yaml").lake_root())

    assert_ground_truth(lake, truth)
    assert runs["geraete"]["stats"]["fields_excluded"] == 120  # the device ids
    assert runs["kamera"]["stats"]["repeated_frames"] == 6  # parts 4..9 got one frame
    assert runs["erp"]["stats"]["rows"] == {"materials": 1, "production_orders": 6}


def assert_ground_truth(lake: Lake, truth: dict) -> None:
    """The lake holds exactly the foreign plant's ground truth: readings, images, orders."""
    # sensor readings: every one, on its asset and tag, in its kind's canonical unit, nothing else
    rows = lake.read(get_table("sensor_readings")).to_pylist()
    got = {(r["asset_id"], r["tag"], r["ts"]): r for r in rows}
    assert len(got) == len(rows) == len(truth["readings"])
    assert Counter(r["source"] for r in rows) == Counter(e["source"] for e in truth["readings"]) == \
        {"opcua": 8 * 360, "mqtt": 2 * 60, "csv": 3 * 60}
    for e in truth["readings"]:
        r = got[(e["asset_id"], e["tag"], datetime.fromisoformat(e["ts"]))]
        assert r["unit"] == e["unit"], e
        # to the precision of Rec 20's factors (6 significant digits, e.g. lbf·in = 1,129 85 × 10⁻¹ N·m)
        assert r["value"] == pytest.approx(e["value"], rel=1e-5, abs=1e-9), e
        if e["source"] == "mqtt":
            assert (r["quality"], r["message_id"]) == (e["quality"], e["message_id"])

    # images: a row per capture, the frozen frame counted, the station code mapped
    images = {r["part_serial"]: r for r in lake.read(get_table("inspection_images")).to_pylist()}
    assert sorted(images) == sorted(e["part_serial"] for e in truth["images"])
    for e in truth["images"]:
        r = images[e["part_serial"]]
        assert (r["image_id"], r["captured_at"], r["source_file"], r["asset_id"]) == (
            e["image_id"], datetime.fromisoformat(e["captured_at"]), e["source_file"],
            "nordwerk/werk1/abfuellung/linie1/kamera1")

    # ERP: each order at its change instant, with its codes mapped
    orders = {r["order_id"]: r for r in lake.read(get_table("production_orders")).to_pylist()}
    assert sorted(orders) == [e["order_id"] for e in truth["orders"]]
    for e in truth["orders"]:
        r = orders[e["order_id"]]
        assert (r["status"], r["quantity_planned"], r["quantity_produced"], r["line_id"]) == (
            e["status"], e["quantity_planned"], e["quantity_produced"], "nordwerk/werk1/abfuellung/linie1")
        assert r["updated_at"] == datetime.fromisoformat(e["updated_at"])
        assert r["actual_start"] == datetime.fromisoformat(e["actual_start"])
