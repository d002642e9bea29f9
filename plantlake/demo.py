"""`make demo`: run the pipeline end to end on the embedded defaults (plant.yaml).

Starts the virtual plant's OPC UA server in-process (history for the past hours) and an
embedded MQTT broker (Mosquitto when installed, amqtt otherwise) holding the past hours'
telemetry for plantlake's durable session, a camera drop folder and an ERP database
(SQLite), and drops hourly historian CSV exports (European dialect, one line in °F, a few broken rows
as real exports have) into the configured drop folder; then runs every source that
has a connector for each of the past hours, and says what it published, what it
quarantined and where.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from plantlake.config import PlantConfig, load_config
from plantlake.lake import Lake
from plantlake.runner import RunSummary, run_source

log = logging.getLogger(__name__)

HOURS = 3
STEP_S = 10


def write_historian_export(folder: Path, start: datetime, hours: int = HOURS) -> list[Path]:
    """Deterministic hourly exports: ';' separated, decimal comma, local time stamps, German headers."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    tz_offset = timedelta(hours=8)  # Asia/Shanghai, the site's time zone
    for h in range(hours):
        hour = start + timedelta(hours=h)
        lines = ["Zeitstempel;Messstelle;Wert;Einheit;Status"]
        for s in range(0, 3600, STEP_S):
            t = hour + timedelta(seconds=s)
            local = (t + tz_offset).strftime("%d.%m.%Y %H:%M:%S")
            k = (h * 3600 + s) / 600
            rows = [
                ("L1.COAT.DRYER_TEMP", f"{120 + 5 * math.sin(k):.2f}", "°C", "0"),
                ("L1.PRESS.FORCE", f"{1800 + 40 * math.cos(k):.1f}", "kN", "0"),
                ("L1.WELD.POWER", f"{2500 + 100 * math.sin(2 * k):.0f}", "W", "0"),
                ("L2.COAT.DRYER_TEMP", f"{248 + 9 * math.sin(k):.2f}", "°F", "1073741824" if s % 600 == 0 else "0"),
                ("L2.PRESS.FORCE", f"{1750 + 35 * math.cos(k):.1f}", "kN", "0"),
                ("L2.WELD.POWER", f"{2400 + 90 * math.sin(2 * k):.0f}", "W", "0"),
            ]
            if s == 1800:  # a 16-bit sensor glitch, far outside the press's physical range (0..5000 kN)
                rows[1] = ("L1.PRESS.FORCE", "65535.0", "kN", "0")
            if s % 300 == 0:
                rows += [("L1.WELD.STATE", "WELDING" if s % 600 else "IDLE", "", "0"),
                         ("L2.WELD.STATE", "WELDING", "", "0")]
            lines += [f"{local};{ref};{v.replace('.', ',')};{u};{st}" for ref, v, u, st in rows]
        # what real exports contain now and then
        lines.append(f"{(hour + tz_offset):%d.%m.%Y %H:%M:%S};L1.PRESS.FORCE;n/a;kN;0")
        lines.append(f"{(hour + tz_offset):%d.%m.%Y %H:%M:%S};L3.UNKNOWN.TAG;1,0;bar;0")
        lines.append(f"31.02.{hour:%Y} 00:00:00;L1.PRESS.FORCE;1,0;kN;0")
        path = folder / f"export_{hour:%Y%m%d_%H}00.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        arrived = (hour + timedelta(hours=1, seconds=-30)).timestamp()
        os.utime(path, (arrived, arrived))  # the export arrived at the end of its hour
        files.append(path)
    return files


def run_demo(config: PlantConfig | None = None, *, now: datetime | None = None,
             progress: Callable[[str], None] | None = None) -> list[RunSummary]:
    """Run every source with a connector for the past HOURS hours against the virtual plant."""
    import connectors
    from plantlake.connections import get_connection
    from simulators.run import VirtualPlant
    from simulators.story import Plant

    cfg = config or load_config()
    lake = Lake(cfg.lake_root()).ensure()
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=HOURS)
    say = progress or log.info
    write_historian_export(cfg.path(cfg.source("historian_export").path), start)
    story = Plant(seed=42, start=(start - timedelta(days=1)).replace(hour=0))
    summaries = []
    # the ERP books 2 % of verdicts and finishes wrongly, as people do: the audit must catch them
    with VirtualPlant(story, cfg.path("demo-plant"), image_dir=cfg.path("drop/images"),
                      erp_mistake_rate=0.02).start() as plant:
        os.environ.update(plant.connections())

        def open_mqtt_sessions() -> None:
            """The broker queues for a durable session only once it exists: open it before the plant publishes."""
            for src in cfg.sources:
                if src.kind == "mqtt":
                    connectors.load("mqtt")(src, cfg, get_connection(src.connection_id)).open_session()

        counts = plant.produce(start, end, mqtt_before_publish=open_mqtt_sessions)
        say(f"virtual plant: OPC UA server at {plant.opcua.endpoint} with history for {start:%H:%M}–{end:%H:%M} UTC; "
            f"{type(plant.broker).__name__} broker on 127.0.0.1:{plant.broker.port} holding "
            f"{counts['mqtt_messages']} queued MQTT messages; camera wrote {counts['images']} images to "
            f"{plant.image_dir}; ERP database {plant.erp_url.removeprefix('sqlite:///')}")
        for src in (s for s in cfg.sources if s.enabled):
            for h in range(HOURS):
                s = start + timedelta(hours=h)
                summary = run_source(src.name, s, s + timedelta(hours=1), config=cfg, lake=lake,
                                     run_id=f"demo__{s:%Y%m%dT%H%M}")
                say(f"{src.name} {s:%H:%M}: {summary.published} rows published, {summary.quarantined} quarantined")
                summaries.append(summary)
    from plantlake.lake import Interval
    from quality.cross_source import run_checks
    from quality.docs import build_data_docs

    for h in range(HOURS):
        s = start + timedelta(hours=h)
        checked = run_checks(lake, cfg, Interval(s, s + timedelta(hours=1)), f"demo__{s:%Y%m%dT%H%M}")
        failed = ", ".join(f"{n} {check}" for check, n in checked.failures().items() if n) or "none failed"
        say(f"cross-source checks {s:%H:%M}: {checked.rows.num_rows} checked, {failed}")
    say(f"Data Docs: {build_data_docs(lake, cfg)}")
    return summaries
