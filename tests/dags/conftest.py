from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the test Airflow metadata DB (SQLite) once per session."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, cwd=ROOT,
                   env=os.environ.copy(), capture_output=True, timeout=300)


@pytest.fixture
def dagbag(airflow_db, monkeypatch, plant_dir):
    """The project's real DAG folder parsed against a temp copy of the site config."""
    from airflow.dag_processing.dagbag import DagBag

    # tests fail fast: the retries stay (the DagBag test checks them) but wait one second
    cfg = plant_dir / "plant.yaml"
    cfg.write_text(cfg.read_text().replace("    schedule:", "    retry_delay_s: 1\n    schedule:"))
    monkeypatch.setenv("PLANTLAKE_CONFIG", str(cfg))
    return DagBag(dag_folder=str(ROOT / "dags"))
