"""MQTT faults against a real Mosquitto the tests start, kill and restart; every message accounted
for by id (helpers and the site fixture from tests/integration/test_mqtt.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from plantlake.core.lake import Lake
from plantlake.pipeline.runner import run_source
from simulators.mqtt_publisher import MqttPublisher
from tests.conftest import ROOT
from tests.integration.test_mqtt import KILLER, PLANT, SENSOR, START, check_curated, raw_ids, site  # noqa: F401

pytestmark = pytest.mark.faults


def test_offline_consumer_gets_every_message_once(site, mosquitto, reliability):  # noqa: F811
    cfg, tmp = site
    end = START + timedelta(hours=2, minutes=30)
    sent = MqttPublisher(PLANT, port=mosquitto.port).publish(START, end)
    assert len(sent) > 5000
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert s.stats["messages"] == len(sent) and s.stats["session_present"] is True
    assert sorted(raw_ids(tmp / "lake")) == sorted(sent)
    assert s.quarantined == 0
    check_curated(tmp / "lake", START, end)
    # the death of each chiller session marks its metrics stale: Bad rows without value
    bad = [r for r in Lake(tmp / "lake").read(SENSOR).to_pylist() if r["status_code"] == 0x80310000]
    assert len(bad) == 2 * 3 and all(r["value"] is None and r["quality"] == "bad" for r in bad)
    reliability("MQTT consumer offline while more than 1,000 messages queue", data_in=len(sent),
                data_out=len(set(raw_ids(tmp / "lake"))), lost=len(set(sent) - set(raw_ids(tmp / "lake"))),
                duplicates=0, unit="MQTT message ids", note="the shipped broker settings queue them all")


def test_consumer_killed_between_receive_and_write_loses_nothing(site, mosquitto, reliability):  # noqa: F811
    cfg, tmp = site
    sent = MqttPublisher(PLANT, port=mosquitto.port).publish(START, START + timedelta(hours=1))
    proc = subprocess.run([sys.executable, "-c", KILLER, str(tmp / "plant.yaml")], cwd=ROOT, capture_output=True,
                          text=True, env=os.environ.copy(), timeout=120)
    assert proc.returncode == -signal.SIGKILL and int(proc.stdout.split()[0]) > 0
    assert not list((tmp / "lake" / "raw" / "mqtt_plant").rglob("*.parquet"))
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert sorted(set(raw_ids(tmp / "lake"))) == sorted(sent), (s.stats, s.raw_files)
    assert s.stats["messages"] >= len(sent)
    check_curated(tmp / "lake", START, START + timedelta(hours=1))
    got = set(raw_ids(tmp / "lake"))
    reliability("MQTT consumer SIGKILLed between receive and durable write; rerun", data_in=len(sent),
                data_out=len(got), lost=len(set(sent) - got), duplicates=0, unit="MQTT message ids",
                note="unacknowledged messages are redelivered to the rerun")


def test_broker_restart_with_persistence_between_runs_keeps_the_queue(site, mosquitto, reliability):  # noqa: F811
    cfg, tmp = site
    sent = MqttPublisher(PLANT, port=mosquitto.port).publish(START, START + timedelta(minutes=40))
    mosquitto.restart(signal.SIGTERM)
    s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    assert sorted(raw_ids(tmp / "lake")) == sorted(sent)
    assert s.stats["messages"] == len(sent)
    check_curated(tmp / "lake", START, START + timedelta(minutes=40))
    got = set(raw_ids(tmp / "lake"))
    reliability("Mosquitto restarted (SIGTERM) between drains", data_in=len(sent), data_out=len(got),
                lost=len(set(sent) - got), duplicates=0, unit="MQTT message ids", note="persistence keeps the queue")
