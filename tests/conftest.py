"""Test-wide setup: an isolated Airflow home (set before anything imports Airflow) and
helpers shared by every slice (unit, integration, dags, faults)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="plantlake-airflow-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(_AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME}/airflow.db",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
)
os.environ.pop("LAKE_ROOT", None)
os.environ.pop("PLANTLAKE_CONFIG", None)


def files_holding(root: Path, *secrets: str) -> list[str]:
    """Every file under root that holds one of the secrets, searched decoded: Parquet as its rows
    (it is compressed), every other file as bytes; [] when none does."""
    import json

    import pyarrow.parquet as pq

    found = []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.is_symlink():
            continue
        text = p.read_bytes().decode("latin-1")
        if p.suffix == ".parquet":
            text += json.dumps(pq.read_table(p).to_pylist(), default=str)
        found += [f"{p.relative_to(root)}: {s[:3]}…" for s in secrets if s in text]
    return found


def quarantined(lake, table: str, summary=None) -> list[dict]:
    """The quarantined rows of a table in the lake's current snapshot (a `Lake` or its root), of one
    run's source and interval when `summary` (a RunSummary) is given."""
    from plantlake.core.lake import Lake

    lake = lake if isinstance(lake, Lake) else Lake(lake)
    rows = lake.read_quarantine(table).to_pylist()
    if summary is not None:
        rows = [r for r in rows if r["source"] == summary.source
                and r["interval_start"].isoformat() == summary.interval_start]
    return rows


def lake_content(lake) -> dict[str, list[dict]]:
    """Every table's rows in its current snapshot (a `Lake` or its root), lineage left out, in key
    order: what a rerun of the same input must leave exactly as it was."""
    from plantlake.core.lake import Lake
    from schemas.tables import TABLES

    lake = lake if isinstance(lake, Lake) else Lake(lake)
    out = {}
    for name, table in TABLES.items():
        rows = lake.read(table).drop_columns(list(table.lineage)).to_pylist()
        if rows:
            out[name] = sorted(rows, key=lambda r: [str(r.get(k)) for k in (*table.primary_key, *table.data_columns)])
    return out


def lake_on_s3(config_text: str, s3, prefix: str, local_dir: Path) -> str:
    """A site config's text with its lake moved into the S3 server's bucket (`s3://<bucket>/<prefix>`,
    reached through the connection `plantlake_lake`, which the test sets to `s3.connection_uri`)."""
    local = "lake:\n  root: ./lake\n"
    assert local in config_text, "plant.yaml's lake section changed: update tests/conftest.lake_on_s3"
    return config_text.replace(local, f"lake:\n  root: {s3.uri(prefix)}\n  connection_id: plantlake_lake\n"
                                      f"  local_dir: {local_dir}\n")


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def plant_dir(tmp_path: Path) -> Path:
    """A copy of the embedded site config in a temp folder, with its own lake and drop folder."""
    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    return tmp_path


@pytest.fixture
def plant(plant_dir: Path):
    from plantlake.core.config import load_config

    return load_config(plant_dir / "plant.yaml")


@pytest.fixture
def mosquitto(tmp_path):
    """A Mosquitto of the test's own (persistence on), which the test may SIGTERM, SIGKILL and restart."""
    from simulators.broker import Mosquitto

    with Mosquitto(data_dir=tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture(scope="session")
def postgres_url():
    """A PostgreSQL server for the session (as the postgres user); its URL for database 'postgres'."""
    from tests.servers import postgres_server

    with postgres_server() as url:
        yield url
