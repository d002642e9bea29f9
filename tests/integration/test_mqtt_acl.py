"""The broker session is plantlake's alone: with the shipped ACL and client ids bound to user
names, another broker user connecting with plantlake's client id gets nothing, and plantlake's
next drain reads every message; a session plantlake left and the broker lost is reported."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantlake.config import load_config
from plantlake.runner import run_source
from simulators.broker import Mosquitto
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 1, 6, tzinfo=UTC)
TOPIC = "acme/shenzhen/assembly/line1/press1/telemetry"
USERS = {"plantlake": "pl-Pw-1", "press1": "press-Pw-2", "linepc": "linepc-Pw-3"}


def client(user: str, client_id: str, port: int, inbox: list | None = None) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, USERS[user])
    if inbox is not None:
        c.on_message = lambda cl, ud, msg: inbox.append(msg.payload)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    return c


def test_another_user_cannot_take_plantlakes_session(tmp_path, monkeypatch):
    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    with Mosquitto(data_dir=tmp_path / "mq", users=USERS, acl_file=ROOT / "deploy" / "mosquitto" / "acl",
                   username_as_clientid=True) as broker:
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtt://plantlake:{USERS['plantlake']}@127.0.0.1:{broker.port}")
        cfg = load_config(tmp_path / "plant.yaml")
        run_source("mqtt_plant", START - timedelta(hours=1), START, config=cfg)  # opens the durable session
        pub = client("press1", "press1", broker.port)
        for i in range(10):
            body = {"msg_id": f"m{i}", "ts": f"2026-01-01T06:00:{i:02d}Z", "values": {"roll_force": 1800.0 + i}}
            pub.publish(TOPIC, json.dumps(body), qos=1).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()
        # a line PC's user connects with plantlake's client id and asks for the plant's topics
        got: list = []
        thief = client("linepc", "plantlake-mqtt-plant", broker.port, got)
        thief.subscribe("acme/#", qos=1)
        time.sleep(2)
        thief.loop_stop()
        thief.disconnect()
        assert got == []
        s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
        assert s.raw_rows == 10 and s.published == 10
        assert s.stats["session_present"] is True and s.stats["session_lost"] is False


def test_a_session_the_broker_lost_is_reported(tmp_path, monkeypatch, caplog):
    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    with Mosquitto(data_dir=tmp_path / "mq", persistence=False) as broker:
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtt://127.0.0.1:{broker.port}")
        cfg = load_config(tmp_path / "plant.yaml")
        first = run_source("mqtt_plant", START - timedelta(hours=1), START, config=cfg)
        assert first.stats["session_lost"] is False
        broker.restart()  # no persistence: the queue and the session are gone
        s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
        assert s.stats["session_present"] is False and s.stats["session_lost"] is True
        assert "the broker had no session for client id 'plantlake-mqtt-plant' although plantlake left one" in caplog.text
