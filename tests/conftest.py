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


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.fixture
def plant_dir(tmp_path: Path) -> Path:
    """A copy of the embedded site config in a temp folder, with its own lake and drop folder."""
    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    return tmp_path


@pytest.fixture
def plant(plant_dir: Path):
    from plantlake.config import load_config

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
