"""The broker session is plantlake's alone: with the shipped ACL and client ids bound to user
names, another broker user connecting with plantlake's client id gets nothing, and plantlake's
next drain reads every message; a session plantlake left and the broker lost is reported."""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from plantlake.core.config import load_config
from plantlake.pipeline.runner import run_source
from simulators.broker import Mosquitto
from tests.conftest import ROOT
from tests.servers import shipped_config

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


def test_the_shipped_broker_config_with_its_tls_listener_serves_plantlake_over_tls_only(tmp_path, monkeypatch):
    """deploy/mosquitto/mosquitto.conf as shipped, with MOSQUITTO_CONF_D=./deploy/mosquitto/tls:
    only the container paths and ports are rewritten. plantlake drains over mqtts:// with the
    site's CA; a plain MQTT client on the TLS port gets no session, and the ACL holds there too."""
    import getpass
    import subprocess

    from simulators.broker import MOSQUITTO, write_test_ca
    from simulators.mqtt_publisher import MqttPublisher
    from simulators.net import free_port, wait_port
    from simulators.story import Plant

    conf_d, data = tmp_path / "conf.d", tmp_path / "data"
    conf_d.mkdir()
    data.mkdir()
    write_test_ca(conf_d, hosts=("127.0.0.1", "localhost"))
    (conf_d / "passwd").write_text("".join(f"{u}:{p}\n" for u, p in {**USERS, "plantsim": "sim-Pw-4"}.items()))
    subprocess.run(["mosquitto_passwd", "-U", str(conf_d / "passwd")], check=True)
    plain, tls = free_port(), free_port()
    shipped = ROOT / "deploy" / "mosquitto"
    for src, dst, rewrite in (
            (shipped / "mosquitto.conf", tmp_path / "mosquitto.conf", {
                "/mosquitto/data/": f"{data}/", "/mosquitto/config/passwd": str(conf_d / "passwd"),
                "/mosquitto/config/acl": str(shipped / "acl"), "include_dir /mosquitto/config/conf.d": f"include_dir {conf_d}",
                "listener 1883": f"listener {plain} 127.0.0.1"}),
            (shipped / "tls" / "listener-8883.conf", conf_d / "listener-8883.conf", {
                "/mosquitto/config/conf.d/": f"{conf_d}/", "listener 8883": f"listener {tls} 127.0.0.1"})):
        text = shipped_config(src, rewrite)
        assert not re.search(r"(?m)^[^#]* /mosquitto/", text), src  # every container path rewritten
        dst.write_text(text)
    (tmp_path / "mosquitto.conf").write_text(f"user {getpass.getuser()}\n" + (tmp_path / "mosquitto.conf").read_text())
    proc = subprocess.Popen([MOSQUITTO, "-c", str(tmp_path / "mosquitto.conf")], stderr=subprocess.PIPE)
    try:
        wait_port("127.0.0.1", tls)
        shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
        cfg = load_config(tmp_path / "plant.yaml")
        ca = conf_d / "ca.pem"
        monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtts://plantlake:{USERS['plantlake']}@127.0.0.1:{tls}?ca_certs={ca}")
        assert run_source("mqtt_plant", START - timedelta(hours=1), START, config=cfg).raw_rows == 0  # the session
        sent = MqttPublisher(Plant(seed=42), port=tls, username="plantsim", password="sim-Pw-4",
                             ca_certs=str(ca)).publish(START, START + timedelta(minutes=5))
        # a plain MQTT client on the TLS port: no CONNACK
        raw = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="plantlake", protocol=mqtt.MQTTv5)
        raw.username_pw_set("plantlake", USERS["plantlake"])
        with pytest.raises((OSError, ConnectionError)):
            raw.connect("127.0.0.1", tls)
            for _ in range(20):
                raw.loop(0.1)
            raise ConnectionError("no CONNACK") if not raw.is_connected() else AssertionError("plain MQTT got a session")
        s = run_source("mqtt_plant", START, START + timedelta(hours=1), config=cfg)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert s.stats["session_present"] is True and s.quarantined == 0
    assert s.stats["messages"] == len(sent) > 0
