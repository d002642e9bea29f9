"""`make demo`: run the pipeline end to end on the embedded defaults (plant.yaml).

Starts the virtual plant's OPC UA server in-process (history for the past hours) and an
embedded MQTT broker (Mosquitto; `make demo` installs it as root) holding the past hours'
telemetry for plantlake's durable session, a camera drop folder and an ERP database
(SQLite), and drops hourly historian CSV exports (European dialect, one line in °F, a few broken rows
as real exports have) into the configured drop folder; then runs every source that
has a connector for each of the past hours, and says what it published, what it
quarantined and where. On a machine without Mosquitto (not root, no package) the MQTT
sources are left out and named, loudly, with what would bring them in (`not_run`).
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from plantlake.app.lineage_file import FILE_ENV, airflow_settings
from plantlake.core.config import PlantConfig, default_config_path, load_config
from plantlake.pipeline.runner import RunSummary

log = logging.getLogger(__name__)

HOURS = 3
STEP_S = 10
DAGS = Path(__file__).resolve().parents[2] / "dags"


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


def airflow_env(workdir: Path, lineage: Path | None = None) -> None:
    """An Airflow home for the demo (SQLite metadata under the demo folder), unless one is set,
    and the tasks' OpenLineage events into the file `lineage`. Must run before Airflow is imported."""
    home = workdir / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    if lineage is not None:  # this demo's lake, whatever process ran the demo before
        os.environ[FILE_ENV] = str(lineage)
    for key, value in {**airflow_settings(), "AIRFLOW_HOME": str(home),
                       "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
                       "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                       "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                       "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}.items():
        os.environ.setdefault(key, value)


def _migrate() -> Any:
    """`airflow db migrate` started in its own process (3 s): it runs while the virtual plant produces."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-m", "airflow", "db", "migrate"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=os.environ.copy())


def _dagbag(config_path: Path, migrate: Any) -> Any:
    """The project's DAG folder parsed against the demo's site config, on the metadata DB `migrate`
    (the process from `_migrate`) migrated."""
    out, _ = migrate.communicate(timeout=600)
    if migrate.returncode:
        raise RuntimeError(f"airflow db migrate failed ({migrate.returncode}): {out.decode(errors='replace')[-2000:]}")
    os.environ["PLANTLAKE_CONFIG"] = str(config_path)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag


def _summary(run: Any) -> RunSummary:
    """The ingest task's return value (its run summary) from Airflow's XCom."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids="ingest",
                                                 key="return_value")).first()
        if row is None:
            raise RuntimeError(f"{run.dag_id} {run.run_id} ended {run.state} without a run summary")
        return RunSummary.from_dict(XComModel.deserialize_value(row))


NO_BROKER = ("not run: this machine has no MQTT broker (Mosquitto). `make demo` as root installs it "
             "(apt-get install mosquitto); or point $PLANTLAKE_MOSQUITTO at a mosquitto binary")


def not_run(cfg: PlantConfig) -> dict[str, str]:
    """The enabled sources the demo cannot run on this machine, each with why and the fix."""
    from simulators.broker import mosquitto_binary

    if mosquitto_binary() is not None:
        return {}
    return {s.name: NO_BROKER for s in cfg.sources if s.enabled and s.kind == "mqtt"}


def run_demo(config: PlantConfig | None = None, *, config_path: Path | None = None, now: datetime | None = None,
             progress: Callable[[str], None] | None = None) -> list[RunSummary]:
    """Start the virtual plant, then run every enabled source's ingest DAG with `dag.test()` for each
    of the past HOURS hours, the quality DAG for each hour, the products DAG, and the report."""
    from plantlake.core.connections import get_connection
    from plantlake.core.kinds import source_kind
    from simulators.run import VirtualPlant
    from simulators.story import Plant

    config_path = Path(config_path or default_config_path()).resolve()
    cfg = config or load_config(config_path)
    lake = cfg.open_lake().ensure()
    now = now or datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=HOURS)
    skipped = not_run(cfg)
    runnable = [s for s in cfg.sources if s.enabled and s.name not in skipped]
    steps = 1 + 1 + len(runnable) * HOURS + HOURS + 1 + 1 + 1
    done, began = [0], time.monotonic()

    def say(message: str) -> None:
        done[0] += 1
        (progress or log.info)(f"[{done[0]:>2}/{steps} {time.monotonic() - began:5.1f}s] {message}")

    airflow_env(cfg.path("demo-plant"), lake.lineage_file)
    migrate = _migrate()
    write_historian_export(cfg.path(cfg.source("historian_export").path), start)
    story = Plant(seed=42, start=(start - timedelta(days=1)).replace(hour=0))
    summaries = []
    # the ERP books 2 % of verdicts and finishes wrongly, as people do: the audit must catch them
    with VirtualPlant(story, cfg.path("demo-plant"), image_dir=cfg.path("drop/images"),
                      erp_mistake_rate=0.02) as plant:
        os.environ.update(plant.connections())

        def open_mqtt_sessions() -> None:
            """The broker queues for a durable session only once it exists: open it before the plant publishes."""
            for src in runnable:
                if src.kind == "mqtt":
                    source_kind("mqtt").load()(src, cfg, get_connection(src.connection_id)).open_session()

        counts = plant.produce(start, end, mqtt_before_publish=open_mqtt_sessions)
        broker = (f"Mosquitto on 127.0.0.1:{plant.broker.port} holding {counts['mqtt_messages']} queued MQTT messages"
                  if plant.broker else "NO MQTT broker (Mosquitto is not installed)")
        say(f"virtual plant: OPC UA server at {plant.opcua.endpoint} with history for {start:%H:%M}–{end:%H:%M} UTC; "
            f"{broker}; camera wrote {counts['images']} images to "
            f"{plant.image_dir}; ERP database {plant.erp_url.removeprefix('sqlite:///')}")
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")  # inside dag.test
        bag = _dagbag(config_path, migrate)
        say(f"Airflow: {len(bag.dags)} DAGs parsed from {DAGS}; metadata in {os.environ['AIRFLOW_HOME']}")
        for name, why in skipped.items():
            log.warning("demo: source %s %s", name, why)
        for src in runnable:
            dag = bag.dags[f"plantlake_ingest_{src.name}"]
            for h in range(HOURS):
                s = start + timedelta(hours=h)
                run = dag.test(logical_date=s + timedelta(hours=1))  # the run whose data interval is this hour
                summary = _summary(run)
                say(f"{dag.dag_id} {s:%H:%M}: {run.state}, {summary.published} rows published, "
                    f"{summary.quarantined} quarantined")
                summaries.append(summary)
        window = {"start": start.isoformat(), "end": end.isoformat()}
        for h in range(HOURS):
            s = start + timedelta(hours=h)
            run = bag.dags["plantlake_quality"].test(run_conf={  # the freshness check as of the demo's clock
                "start": s.isoformat(), "end": (s + timedelta(hours=1)).isoformat(), "as_of": now.isoformat()})
            say(f"plantlake_quality {s:%H:%M}: {run.state} (cross-source checks, sources' freshness, Data Docs)")
        run = bag.dags["plantlake_products"].test(run_conf=window)
        say(f"plantlake_products: {run.state} (order_context, image_training_set, catalog)")
    from plantlake.pipeline.report import build_report
    from plantlake.pipeline.train import train_baseline

    card = train_baseline(lake, cfg.products.image_sensor_window_s)
    say(f"baseline model on image_training_set: held-out base rate {card.base_rate:.2f}, ROC AUC {card.roc_auc:.2f}, "
        f"average precision {card.average_precision:.2f} ({card.key})")
    say(f"report: {build_report(lake)}")
    return summaries
