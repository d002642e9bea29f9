"""Mosquitto restarted (SIGTERM, persistence on) while plantlake drains its session: the run either
completes or fails for Airflow to retry, and after the reruns every message sent is in the lake
exactly once, accounted for by message id."""

from __future__ import annotations

import signal
import threading
import time
from datetime import timedelta

import pytest

from plantlake.core.config import load_config, with_source
from plantlake.pipeline.runner import run_source
from simulators.mqtt_publisher import MqttPublisher
from tests.conftest import both_lakes, on
from tests.integration.test_mqtt import PLANT, START, check_curated, raw_ids

pytestmark = pytest.mark.faults


@both_lakes
def test_broker_restart_during_a_drain_loses_and_doubles_nothing(tmp_path, mosquitto, monkeypatch, reliability,
                                                                 caplog, lake_kind):
    lake_kind.write_config(tmp_path)
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", f"mqtt://127.0.0.1:{mosquitto.port}")
    # small chunks: many durable writes and acks, so the restart lands in the middle of the drain
    cfg = with_source(load_config(tmp_path / "plant.yaml"), "mqtt_plant", chunk_messages=200, idle_s=1.0)
    iv = (START, START + timedelta(hours=1))
    run_source("mqtt_plant", *iv, config=cfg)  # the durable session exists from here on
    end = START + timedelta(hours=3)
    sent = MqttPublisher(PLANT, port=mosquitto.port).publish(START, end)
    assert len(sent) > 5000

    lake = cfg.open_lake()
    outcome: dict = {}

    def drain() -> None:
        try:
            outcome["summary"] = run_source("mqtt_plant", *iv, config=cfg)
        except Exception as exc:  # noqa: BLE001 - a failed run is a legal outcome: Airflow retries it
            outcome["error"] = exc

    thread = threading.Thread(target=drain)
    thread.start()
    deadline = time.monotonic() + 60
    while len(lake.storage.list("raw/mqtt_plant")) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    landed_before = len(set(raw_ids(lake)))
    mosquitto.restart(signal.SIGTERM)
    thread.join(timeout=300)
    assert not thread.is_alive()
    assert 0 < landed_before < len(sent), "the restart did not land inside the drain"
    # the lost broker is said, not silent: in the summary of a run that completed, and in the log
    if "summary" in outcome:
        assert outcome["summary"].stats.get("connection_lost", 0) >= 1, outcome["summary"].stats
    assert "lost the broker during the drain" in caplog.text or "error" in outcome

    # Airflow's retries: rerun the interval until the session is empty
    runs = 1
    while runs < 6:
        runs += 1
        if run_source("mqtt_plant", *iv, config=cfg).stats["messages"] == 0:
            break
    got = raw_ids(lake)
    assert sorted(set(got)) == sorted(sent)  # none lost
    check_curated(lake, START, end)  # every reading once, values exact
    reliability(f"Mosquitto restarted (SIGTERM) during a drain{on(lake)}", data_in=len(sent), data_out=len(set(got)),
                lost=len(set(sent) - set(got)), duplicates=0, unit="MQTT message ids",
                note="unacknowledged messages are redelivered after the restart and dropped by key; "
                     "reruns until the session is empty")
