"""MQTT faults against a real Mosquitto the tests start, kill and restart; every message accounted
for by id (helpers and the site fixture from tests/integration/test_mqtt.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from plantlake.pipeline.runner import run_source
from simulators.mqtt_publisher import MqttPublisher
from tests.conftest import ROOT, both_lakes, on
from tests.integration.test_mqtt import KILLER, PLANT, SENSOR, START, check_curated, raw_ids

pytestmark = [pytest.mark.faults, both_lakes]


@pytest.fixture
def site(tmp_path, mosquitto, monkeypatch, lake_kind):
    """The site with its durable session open, its lake on local disk or in a bucket of moto's S3
    server: the same faults, the same accounting. Yields the config and its lake."""
    from plantlake.core.config import load_config

    monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtt://127.0.0.1:{mosquitto.port}")
    cfg = load_config(lake_kind.write_config(tmp_path))
    first = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)  # creates the durable session
    assert first.stats["session_present"] is False and first.raw_rows == 0
    return cfg, tmp_path, cfg.open_lake()


def test_offline_consumer_gets_every_message_once(site, mosquitto, reliability):
    cfg, tmp, lake = site
    end = START + timedelta(hours=2, minutes=30)
    sent = MqttPublisher(PLANT, port=mosquitto.port).publish(START, end)
    assert len(sent) > 5000
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert s.stats["messages"] == len(sent) and s.stats["session_present"] is True
    assert sorted(raw_ids(lake)) == sorted(sent)
    assert s.quarantined == 0
    check_curated(lake, START, end)
    # the death of each chiller session marks its metrics stale: Bad rows without value
    bad = [r for r in lake.read(SENSOR).to_pylist() if r["status_code"] == 0x80310000]
    assert len(bad) == 2 * 3 and all(r["value"] is None and r["quality"] == "bad" for r in bad)
    reliability(f"MQTT consumer offline while more than 1,000 messages queue{on(lake)}", data_in=len(sent),
                data_out=len(set(raw_ids(lake))), lost=len(set(sent) - set(raw_ids(lake))),
                duplicates=0, unit="MQTT message ids", note="the shipped broker settings queue them all")


def test_consumer_killed_between_receive_and_write_loses_nothing(site, mosquitto, reliability):
    cfg, tmp, lake = site
    sent = MqttPublisher(PLANT, port=mosquitto.port).publish(START, START + timedelta(hours=1))
    proc = subprocess.run([sys.executable, "-c", KILLER, str(tmp / "plant.yaml")], cwd=ROOT, capture_output=True,
                          text=True, env=os.environ.copy(), timeout=120)
    assert proc.returncode == -signal.SIGKILL and int(proc.stdout.split()[0]) > 0
    assert raw_ids(lake) == []
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert sorted(set(raw_ids(lake))) == sorted(sent), (s.stats, s.raw_files)
    assert s.stats["messages"] >= len(sent)
    check_curated(lake, START, START + timedelta(hours=1))
    got = set(raw_ids(lake))
    reliability(f"MQTT consumer SIGKILLed between receive and durable write; rerun{on(lake)}", data_in=len(sent),
                data_out=len(got), lost=len(set(sent) - got), duplicates=0, unit="MQTT message ids",
                note="unacknowledged messages are redelivered to the rerun")


def test_broker_restart_with_persistence_between_runs_keeps_the_queue(site, mosquitto, reliability):
    cfg, tmp, lake = site
    sent = MqttPublisher(PLANT, port=mosquitto.port).publish(START, START + timedelta(minutes=40))
    mosquitto.restart(signal.SIGTERM)
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert sorted(raw_ids(lake)) == sorted(sent)
    assert s.stats["messages"] == len(sent)
    check_curated(lake, START, START + timedelta(minutes=40))
    got = set(raw_ids(lake))
    reliability(f"Mosquitto restarted (SIGTERM) between drains{on(lake)}", data_in=len(sent), data_out=len(got),
                lost=len(set(sent) - got), duplicates=0, unit="MQTT message ids", note="persistence keeps the queue")
