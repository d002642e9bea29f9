"""Running the virtual plant: in-process for tests and the demo, standalone for compose.

`VirtualPlant` starts the simulators on free loopback ports and fills a past window
(OPC UA history, MQTT messages queued at the broker, camera files, ERP rows), so a
pipeline run for that window has something real to read. `serve()` runs one or all
simulators live until interrupted; it is what `plantlake simulate …` and the compose
services run.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from simulators.broker import Mosquitto, embedded_broker
from simulators.camera import Camera
from simulators.erp import ErpSimulator
from simulators.mqtt_publisher import MqttPublisher, messages
from simulators.opcua_server import OpcUaSimulator
from simulators.story import Plant

log = logging.getLogger(__name__)


@dataclass
class VirtualPlant:
    """All four silos of one plant, started in-process on free ports."""

    plant: Plant
    workdir: Path
    #: the camera's drop folder (default <workdir>/drop/images)
    image_dir: Path | None = None
    #: share of ERP bookings entered wrongly (see ErpSimulator.mistake_rate)
    erp_mistake_rate: float = 0.0
    opcua: OpcUaSimulator | None = field(default=None, init=False)
    broker: Mosquitto | None = field(default=None, init=False)
    erp: ErpSimulator | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.image_dir = Path(self.image_dir or self.workdir / "drop" / "images")

    @property
    def erp_url(self) -> str:
        return f"sqlite:///{self.workdir / 'erp.sqlite'}"

    camera: bool = field(default=True, init=False)

    def start(self, *, opcua: bool = True, mqtt: bool = True, erp: bool = True, camera: bool = True) -> VirtualPlant:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.camera = camera
        if opcua:
            self.opcua = OpcUaSimulator(self.plant).start_in_thread()
        if mqtt:
            self.broker = embedded_broker()
        if erp:
            self.erp = ErpSimulator(self.plant, self.erp_url, mistake_rate=self.erp_mistake_rate)
            self.erp.create()
        return self

    def produce(self, start: datetime, end: datetime, *, mqtt_before_publish: Any = None) -> dict[str, int]:
        """Make the plant have run during [start, end): every silo gets that window's data."""
        counts: dict[str, int] = {}
        if self.opcua:
            counts["opcua_values"] = self.opcua.call(self.opcua.prefill(start, end))
        if self.broker:
            if mqtt_before_publish:
                mqtt_before_publish()
            counts["mqtt_messages"] = len(MqttPublisher(self.plant, port=self.broker.port).publish(start, end))
        if self.camera:
            counts["images"] = len(Camera(self.plant, Path(self.image_dir)).shots(start, end))
        if self.erp:
            counts.update({f"erp_{k}": v for k, v in self.erp.sync(end).items()})
        return counts

    def connections(self) -> dict[str, str]:
        """AIRFLOW_CONN_* values pointing at the running simulators."""
        out = {}
        if self.opcua:
            out["AIRFLOW_CONN_PLANT_OPCUA"] = f"opcua://{self.opcua.host}:{self.opcua.port}/plantsim"
        if self.broker:
            out["AIRFLOW_CONN_PLANT_MQTT"] = f"mqtt://127.0.0.1:{self.broker.port}"
        if self.erp:
            out["AIRFLOW_CONN_PLANT_ERP"] = self.erp_url
        return out

    def stop(self) -> None:
        if self.opcua:
            self.opcua.stop_thread()
            self.opcua = None
        if self.broker:
            self.broker.cleanup()
            self.broker = None

    def __enter__(self) -> VirtualPlant:
        started = self.opcua or self.broker or self.erp
        return self if started else self.start()  # `with VirtualPlant(...).start()` must not start twice

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def serve(component: str, plant: Plant, *, host: str = "0.0.0.0", port: int = 4840, speed: float = 1.0,
          broker: str = "127.0.0.1:1883", folder: Path = Path("drop/images"), erp_url: str = "sqlite:///erp.sqlite",
          prefill_hours: float = 24.0, secure_dir: Path | None = None) -> None:
    """Run simulators live until SIGINT/SIGTERM. Credentials come from the environment:
    PLANTSIM_OPCUA_USERS ("user:password,…"), PLANTSIM_MQTT_USERNAME / PLANTSIM_MQTT_PASSWORD."""
    stop = _stop_event()
    now = datetime.now(UTC).replace(microsecond=0)
    threads: list[threading.Thread] = []
    sim = None

    def loop(step_s: float, fn: Any) -> None:
        sim_t = now
        while not stop.is_set():
            nxt = sim_t + timedelta(seconds=step_s * speed)
            try:
                fn(sim_t, nxt)
            except Exception:  # a broker or database blip: log it and keep the plant running
                log.exception("simulator step failed; retrying next step")
            sim_t = nxt
            stop.wait(step_s)

    if component in ("opcua", "all"):
        users = dict(u.split(":", 1) for u in os.environ.get("PLANTSIM_OPCUA_USERS", "").split(",") if ":" in u)
        sim = OpcUaSimulator(plant, host=host, port=port, users=users or None, secure_dir=secure_dir).start_in_thread(
            prefill=(now - timedelta(hours=prefill_hours), now))
        threads.append(threading.Thread(target=loop, args=(plant.sample_s, lambda a, b: sim.call(sim.advance(a, b))), daemon=True))
    if component in ("mqtt", "all"):
        h, _, p = broker.partition(":")
        pub = MqttPublisher(plant, host=h, port=int(p or 1883), username=os.environ.get("PLANTSIM_MQTT_USERNAME"),
                            password=os.environ.get("PLANTSIM_MQTT_PASSWORD"))
        threads.append(threading.Thread(target=loop, args=(plant.sample_s, lambda a, b: pub.send(messages(plant, a, b))),
                                        daemon=True))
    if component in ("camera", "all"):
        cam = Camera(plant, folder)
        threads.append(threading.Thread(target=loop, args=(plant.cycle_s, cam.shots), daemon=True))
    if component in ("erp", "all"):
        erp = ErpSimulator(plant, erp_url)
        erp.sync(now)
        threads.append(threading.Thread(target=loop, args=(60.0, lambda a, b: erp.sync(b, since=a)), daemon=True))
    for t in threads:
        t.start()
    log.info("virtual plant running (%s, speed %.1fx); Ctrl-C stops it", component, speed)
    while not stop.is_set():
        time.sleep(0.5)
    if sim:
        sim.stop_thread()
