"""Test-wide setup: an isolated Airflow home (set before anything imports Airflow) and
helpers shared by every slice (unit, integration, dags, faults)."""

from __future__ import annotations

import json
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
# Airflow's OpenLineage provider on, as a deployment runs it (plantlake's extractor; events kept
# where PLANTLAKE_LINEAGE_FILE names, which a demo sets to its lake's): its settings are read
# once per process, so they are made before Airflow loads
from plantlake.app.lineage_file import FILE_ENV, airflow_settings  # noqa: E402

os.environ.update(airflow_settings())
os.environ.pop(FILE_ENV, None)
os.environ.pop("LAKE_ROOT", None)
os.environ.pop("PLANTLAKE_CONFIG", None)


@pytest.fixture(autouse=True)
def _no_lineage_file_after():
    """A demo points the lineage events at its lake; the next test's tasks keep none unless it does too."""
    yield
    os.environ.pop(FILE_ENV, None)


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


class LakeKind:
    """Where a test's lake lives: a local folder (`s3` None), or a bucket of moto's S3 server the
    fixture started (`s3`; the connection `plantlake_lake` points at it)."""

    def __init__(self, s3, tmp: Path) -> None:
        self.s3, self.tmp = s3, tmp

    @property
    def name(self) -> str:
        return "s3" if self.s3 is not None else "local"

    def config(self, text: str, prefix: str) -> str:
        """A site config's text with its lake where this kind keeps it (`prefix`: its folder in the bucket)."""
        return lake_on_s3(text, self.s3, prefix, self.tmp / f"{prefix}-local") if self.s3 is not None else text

    def lake_settings(self, prefix: str) -> dict[str, str]:
        """The site config's `lake` section for this kind (a local lake: the default `./lake`)."""
        if self.s3 is None:
            return {"root": "./lake"}
        return {"root": self.s3.uri(prefix), "connection_id": "plantlake_lake", "local_dir": str(self.tmp / f"{prefix}-local")}

    def holding(self, lake, *secrets: str) -> list[str]:
        """`files_holding` over everything the lake keeps: its folder, or every object under its
        prefix in the bucket and its local folder."""
        import io

        found = files_holding(lake.root, *secrets) if lake.root.exists() else []
        if self.s3 is None:
            return found
        import pyarrow.parquet as pq

        prefix = lake.uri.split("/", 3)[3]
        for key in self.s3.keys(prefix + "/"):
            data = lake.storage.get(key.removeprefix(prefix + "/"))
            text = data.decode("latin-1")
            if key.endswith(".parquet"):
                text += json.dumps(pq.read_table(io.BytesIO(data)).to_pylist(), default=str)
            found += [f"s3:{key}: {s[:3]}…" for s in secrets if s in text]
        return found

    def write_config(self, folder: Path, text: str | None = None) -> Path:
        """`plant.yaml` (or `text`) written into `folder`, its lake moved when this kind is S3."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / "plant.yaml"
        target.write_text(self.config(text if text is not None else (ROOT / "plant.yaml").read_text(),
                                      f"{folder.name}-{os.urandom(3).hex()}"))
        return target


@pytest.fixture
def lake_kind(request, tmp_path: Path, monkeypatch):
    """'local' unless a test parametrizes it with `both_lakes`: then each scenario runs again with
    its lake on the S3 server, with the same accounting."""
    if getattr(request, "param", "local") == "local":
        yield LakeKind(None, tmp_path)
        return
    from tests.servers import s3_server

    with s3_server() as s3:
        monkeypatch.setenv("AIRFLOW_CONN_PLANTLAKE_LAKE", s3.connection_uri)
        yield LakeKind(s3, tmp_path)


def on(lake) -> str:
    """What a reliability row adds to a scenario's name when its lake is on object storage."""
    return " (lake on S3)" if lake.remote else ""


def pytest_collection_modifyitems(config, items):  # noqa: ARG001
    """The runs on the S3 server carry the marker `s3`: `-m "not s3"` leaves them out."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("lake_kind") == "s3":
            item.add_marker(pytest.mark.s3)


#: run a test on a local lake and on a lake on the S3 server (the `lake_kind` fixture)
both_lakes = pytest.mark.parametrize("lake_kind", ["local", "s3"], indirect=True)


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
