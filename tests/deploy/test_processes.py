"""The compose topology without containers: PostgreSQL (Airflow's metadata and the ERP), Mosquitto,
the simulators and the real Airflow components (api-server, scheduler, dag-processor,
triggerer) as processes configured the way docker-compose.yml configures the services — with
LocalExecutor and a local lake, and with CeleryExecutor, a Redis broker, a Celery worker as in
the compose file and the lake in a bucket of an S3 server. The DAGs are unpaused and triggered
through Airflow's REST API with the admin login the init job writes for the FAB auth manager (a
wrong password, a request without a token and a viewer's trigger are refused); the curated
tables are then checked, and the data-aware products DAG must have run on its own. Every process
the test starts is stopped."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from plantlake.app.demo import write_historian_export
from plantlake.core.config import load_config
from schemas import get_table
from simulators.broker import Mosquitto
from simulators.net import free_port, wait_port
from tests.conftest import ROOT, files_holding
from tests.servers import postgres_server, shipped_config

pytestmark = pytest.mark.deploy

COMPOSE_ENV = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["x-airflow-common"]["environment"]
INGEST = ("plantlake_ingest_historian_export", "plantlake_ingest_opcua_plant", "plantlake_ingest_erp")


class Api:
    """Airflow's public REST API with a JWT from the FAB auth manager's token endpoint."""

    def __init__(self, base: str, user: str, password: str, context: ssl.SSLContext | None = None) -> None:
        self.base, self.user, self.password, self.token, self.context = base, user, password, None, context

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        if self.token is None:
            self.token = self._request("POST", "/auth/token", {"username": self.user, "password": self.password},
                                       auth=False)["access_token"]
        return self._request(method, path, body)

    def _request(self, method: str, path: str, body: dict | None, auth: bool = True) -> dict:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {self.token}"} if auth else {})})
        with urllib.request.urlopen(req, timeout=30, context=self.context) as resp:  # noqa: S310 - our own local server
            return json.loads(resp.read() or b"{}")


def _status(call) -> int:
    try:
        call()
    except urllib.error.HTTPError as e:
        return e.code
    return 200


def refused_as_it_should(api: Api, viewer_password: str) -> None:
    """The FAB auth manager: a wrong password gets no token, the API answers nothing without one,
    and a Viewer reads DAGs but can neither trigger nor unpause one."""
    wrong = Api(api.base, api.user, "not-" + api.password)
    assert _status(lambda: wrong.call("GET", "/api/v2/dags")) == 401
    assert _status(lambda: api._request("GET", "/api/v2/dags", None, auth=False)) == 401
    viewer = Api(api.base, "line-viewer", viewer_password)
    assert viewer.call("GET", "/api/v2/dags?limit=100")["total_entries"] >= 0
    dag = "plantlake_ingest_erp"
    assert _status(lambda: viewer.call("POST", f"/api/v2/dags/{dag}/dagRuns", {"logical_date": None})) == 403
    assert _status(lambda: viewer.call("PATCH", f"/api/v2/dags/{dag}", {"is_paused": False})) == 403


def edge_worker(tmp: Path, central: dict, url: str, ca: Path, logs: Path) -> subprocess.Popen:
    """`airflow edge worker` as the compose file's edge profile runs it at a site: the central
    Airflow reached at `url` (HTTPS, through the TLS proxy, the site's CA in SSL_CERT_FILE) and
    nothing else of it — its metadata database is given as an address where nothing listens."""
    keep = ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__CORE__EXECUTOR",
            "AIRFLOW__API_AUTH__JWT_SECRET", "PLANTLAKE_CONFIG", "LAKE_ROOT", "AIRFLOW_CONN_PLANTLAKE_LAKE",
            "AIRFLOW_CONN_PLANT_OPCUA", "AIRFLOW_CONN_PLANT_MQTT", "PLANTLAKE_LINEAGE_FILE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({k: central[k] for k in keep if k in central})
    env.update({k: v for k, v in central.items() if k.startswith(("AIRFLOW__METRICS__", "AIRFLOW__OPENLINEAGE__"))})
    env.update({
        "AIRFLOW_HOME": str(tmp / "edge-home"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": "postgresql+psycopg://nobody@127.0.0.1:1/none",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__EDGE__API_URL": f"{url}/edge_worker/v1/rpcapi",
        "AIRFLOW__EDGE__JOB_POLL_INTERVAL": "1",
        "SSL_CERT_FILE": str(ca),
    })
    return subprocess.Popen([sys.executable, "-m", "airflow", "edge", "worker", "--queues", "site-plant-a",
                             "--edge-hostname", "edge-plant-a", "--concurrency", "2"],
                            env=env, cwd=tmp, stdout=open(logs / "edge-worker.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """The exporter's /metrics, parsed by prometheus_client: {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:  # noqa: S310 - loopback
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _wait(what: str, check, timeout: float, procs: dict) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise AssertionError(f"{name} exited with {proc.returncode} while waiting for {what}")
        try:
            result = check()
            if result:
                return result
        except (OSError, KeyError):  # not up yet (URLError and TimeoutError are OSErrors)
            pass
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextmanager
def redis_server(tmp: Path):
    """A throwaway Redis on 127.0.0.1 (the Celery broker); yields its port."""
    exe = shutil.which("redis-server")
    assert exe, "redis-server is not installed: make test installs it (Debian package redis-server)"
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port("127.0.0.1", port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def tls_proxy(tmp: Path, api_port: int):
    """deploy/proxy/nginx.conf as shipped, with only the upstream, the ports and the certificate
    paths rewritten, in front of the api-server; yields (https port, http port, the CA's path)."""
    from simulators.broker import write_test_ca

    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(exe).exists(), "nginx is not installed: make test installs it (Debian package nginx)"
    certs = tmp / "proxy-tls"
    write_test_ca(certs, hosts=("127.0.0.1", "localhost"))
    https, http = free_port(), free_port()
    conf = shipped_config(ROOT / "deploy" / "proxy" / "nginx.conf", {
        "airflow-apiserver:8080": f"127.0.0.1:{api_port}", "listen 443 ssl;": f"listen 127.0.0.1:{https} ssl;",
        "listen 80;": f"listen 127.0.0.1:{http};", "/etc/nginx/tls/": f"{certs}/", "/tmp/nginx.pid": str(tmp / "nginx.pid")})
    (tmp / "nginx.conf").write_text(conf)
    (tmp / "nginx").mkdir()
    proc = subprocess.Popen([exe, "-p", str(tmp / "nginx"), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "nginx.log", "w"))
    try:
        wait_port("127.0.0.1", https)
        yield https, http, certs / "ca.pem"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def through_the_proxy(tmp: Path, api_port: int, password: str) -> None:
    """The UI and API over TLS: a token and the DAG list through nginx with the site's CA; plain
    HTTP only redirects to HTTPS; a client that does not trust the certificate gets nothing."""
    with tls_proxy(tmp, api_port) as (https, http, ca):
        api = Api(f"https://localhost:{https}", "admin", password, ssl.create_default_context(cafile=str(ca)))
        assert api.call("GET", "/api/v2/dags?limit=100")["total_entries"] >= 0
        assert _status(lambda: Api(api.base, "admin", "not-" + password, api.context).call("GET", "/api/v2/dags")) == 401
        redirect = urllib.request.Request(f"http://127.0.0.1:{http}/api/v2/dags")

        class NoFollow(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):  # noqa: ARG002
                return None

        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.build_opener(NoFollow).open(redirect, timeout=30)
        assert e.value.code == 301 and e.value.headers["Location"].startswith("https://")
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            Api(api.base, "admin", password, ssl.create_default_context()).call("GET", "/api/v2/version")


@pytest.mark.parametrize(("executor", "lake_kind"), [("LocalExecutor", "local"), ("CeleryExecutor", "s3")],
                         indirect=["lake_kind"])
def test_the_compose_services_as_processes_ingest_publish_and_trigger_the_products(tmp_path, executor, lake_kind):
    """The LocalExecutor deployment keeps its lake in a local folder (the compose volume); the
    Celery one, whose workers could be on other hosts, in a bucket of the S3 server
    (LAKE_ROOT=s3://…, the connection `plantlake_lake` from the environment)."""
    celery = executor == "CeleryExecutor"
    # the Celery deployment has a plant site: its OPC UA source is collected by the site's edge worker
    text = (ROOT / "plant.yaml").read_text()
    config = lake_kind.write_config(tmp_path, text.replace("    kind: opcua\n", "    kind: opcua\n    site: plant-a\n", 1)
                                    if celery else text)
    # LAKE_ROOT as the compose file sets it: the volume's folder, or the bucket's prefix
    lake_root = str(tmp_path / "lake") if lake_kind.s3 is None else load_config(config).lake.root
    logs = tmp_path / "logs"
    logs.mkdir()
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)  # the last full hour
    write_historian_export(tmp_path / "drop" / "historian", hour, hours=1)
    procs: dict[str, subprocess.Popen] = {}
    with ExitStack() as stack:
        pg = stack.enter_context(postgres_server())
        broker = stack.enter_context(Mosquitto(data_dir=tmp_path / "mosquitto"))
        redis_port = stack.enter_context(redis_server(tmp_path)) if celery else None
        pg_url = pg.removesuffix("/postgres")
        with psycopg.connect(pg.replace("+psycopg", ""), autocommit=True) as con:
            con.execute("create database airflow")
            con.execute("create database erp")
        api_port, opcua_port, health_port = free_port(), free_port(), free_port()
        statsd_port, metrics_port = free_port(), free_port()
        password, viewer_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{pg_url}/airflow",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"{pg_url}/airflow",  # psycopg 3 does async too
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": "",
            "AIRFLOW__CORE__AUTH_MANAGER": COMPOSE_ENV["AIRFLOW__CORE__AUTH_MANAGER"],
            "AIRFLOW__FAB__CONFIG_FILE": str(ROOT / "deploy" / "airflow" / "webserver_config.py"),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health_port),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "AIRFLOW_ADMIN_USER": "admin",
            "AIRFLOW_ADMIN_PASSWORD": password,
            "AIRFLOW_USERS": "line-viewer:Viewer",
            "AIRFLOW_PASSWORD_LINE_VIEWER": viewer_password,
            "PLANTLAKE_CONFIG": str(tmp_path / "plant.yaml"),
            "LAKE_ROOT": lake_root,
            # the compose file's OpenLineage settings, the events file in this test's folder
            **{k: v for k, v in COMPOSE_ENV.items() if k.startswith("AIRFLOW__OPENLINEAGE__")},
            "PLANTLAKE_LINEAGE_FILE": str(tmp_path / "lineage" / "events.jsonl"),
            # the compose file's metrics settings: StatsD to the exporter the test starts
            **{k: v for k, v in COMPOSE_ENV.items() if k.startswith("AIRFLOW__METRICS__")},
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd_port),
            "AIRFLOW_CONN_PLANT_OPCUA": f"opcua://127.0.0.1:{opcua_port}/plantsim",
            "AIRFLOW_CONN_PLANT_MQTT": f"mqtt://127.0.0.1:{broker.port}",
            "AIRFLOW_CONN_PLANT_ERP": f"postgresql://postgres@127.0.0.1:{pg_url.rsplit(':', 1)[1]}/erp",
        }
        if celery:  # as in docker-compose.yml: Celery and the Edge executor, with the edge API on
            env["AIRFLOW__CORE__EXECUTOR"] = COMPOSE_ENV["AIRFLOW__CORE__EXECUTOR"]
            env["AIRFLOW__EDGE__API_ENABLED"] = COMPOSE_ENV["AIRFLOW__EDGE__API_ENABLED"]
            env["AIRFLOW__EDGE__JOB_SUCCESS_PURGE"] = "600"  # the test reads the edge jobs afterwards
        if celery:  # as in docker-compose.yml: Redis as the broker, results in the metadata database
            env["AIRFLOW__CELERY__BROKER_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = f"db+{pg_url}/airflow"
            env["AIRFLOW__CELERY__WORKER_CONCURRENCY"] = "2"
        # the init job: migrate, check the site config, write the admin's password
        for cmd in (["airflow", "db", "migrate"], ["plantlake", "config", "check"],
                    ["plantlake", "deploy", "users"]):
            done = subprocess.run([sys.executable, "-m", *cmd], env=env, cwd=tmp_path, capture_output=True,
                                  text=True, timeout=600)
            assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr[-2000:]}"
            assert password not in done.stdout + done.stderr and viewer_password not in done.stdout + done.stderr
        try:
            # the simulators, as the compose services run them
            procs["simulators"] = subprocess.Popen(
                [sys.executable, "-m", "plantlake", "simulate", "all", "--host", "127.0.0.1", "--port", str(opcua_port),
                 "--broker", f"127.0.0.1:{broker.port}", "--folder", str(tmp_path / "drop" / "images"),
                 "--erp-url", env["AIRFLOW_CONN_PLANT_ERP"].replace("postgresql://", "postgresql+psycopg://"),
                 "--prefill-hours", "3"],
                env=env, cwd=tmp_path, stdout=open(logs / "simulators.log", "w"), stderr=subprocess.STDOUT)
            # the metrics service, as the compose file runs it
            procs["metrics"] = subprocess.Popen(
                [sys.executable, "-m", "plantlake", "metrics", "serve", "--statsd-host", "127.0.0.1", "--statsd-port",
                 str(statsd_port), "--host", "127.0.0.1", "--port", str(metrics_port)],
                env=env, cwd=tmp_path, stdout=open(logs / "metrics.log", "w"), stderr=subprocess.STDOUT)
            components = [("api-server", ["--port", str(api_port)]), ("scheduler", []), ("dag-processor", []),
                          ("triggerer", [])] + ([("celery", ["worker"])] if celery else [])
            for component, args in components:
                procs[component] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", component, *args], env=env, cwd=tmp_path,
                    stdout=open(logs / f"{component}.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
            _wait("the OPC UA simulator", lambda: wait_port("127.0.0.1", opcua_port, timeout=1) or True, 120, procs)
            api = Api(f"http://127.0.0.1:{api_port}", "admin", password)
            version = _wait("the api-server", lambda: api.call("GET", "/api/v2/version"), 180, procs)
            assert version["version"].startswith("3.")
            if celery:  # the site's edge worker, through the TLS proxy only
                https, _, ca = stack.enter_context(tls_proxy(tmp_path, api_port))
                procs["edge-worker"] = edge_worker(tmp_path, env, f"https://localhost:{https}", ca, logs)
            dags = _wait("the dag-processor to parse the DAGs", lambda: {
                d["dag_id"] for d in api.call("GET", "/api/v2/dags?limit=100")["dags"]} >= {
                *INGEST, "plantlake_products", "plantlake_quality"} and api.call("GET", "/api/v2/dags?limit=100"), 240, procs)
            assert all(d["is_paused"] for d in dags["dags"])  # paused at creation, like the compose setting
            refused_as_it_should(api, viewer_password)
            if not celery:  # the TLS proxy once, in front of the LocalExecutor deployment
                through_the_proxy(tmp_path, api_port, password)
            for dag_id in (*INGEST, "plantlake_products"):
                api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
            runs = {}
            for dag_id in INGEST:
                run = api.call("POST", f"/api/v2/dags/{dag_id}/dagRuns",
                               {"logical_date": (hour + timedelta(hours=1)).isoformat(), "conf": {}})
                runs[dag_id] = run["dag_run_id"]
            states = {}
            for dag_id, run_id in runs.items():
                states[dag_id] = _wait(f"{dag_id} to finish", lambda d=dag_id, r=run_id: (
                    s := api.call("GET", f"/api/v2/dags/{d}/dagRuns/{r}")["state"]) in ("success", "failed") and s,
                    600, procs)
            assert states == dict.fromkeys(INGEST, "success"), states
            # the publishes' Asset events trigger the data-aware products DAG on their own
            products = _wait("the products DAG, triggered by the Asset events", lambda: [
                r for r in api.call("GET", "/api/v2/dags/plantlake_products/dagRuns")["dag_runs"]
                if r["state"] in ("success", "failed")], 600, procs)
            assert products[0]["state"] == "success" and products[0]["run_type"] == "asset_triggered"
            # unpaused, the scheduler may run the latest interval itself too: every run of the OPC UA DAG counts
            ended = {d: _wait(f"every run of {d} to end", lambda d=d: (
                r := api.call("GET", f"/api/v2/dags/{d}/dagRuns")["dag_runs"]) and all(
                x["state"] in ("success", "failed") for x in r) and r, 300, procs) for d in INGEST}
            time.sleep(2)  # the last task's datagrams
            metrics = scrape(metrics_port)
            ingest_tis = {d: (ti["queue"], ti.get("executor")) for d, r in runs.items()
                          for ti in [api.call("GET", f"/api/v2/dags/{d}/dagRuns/{r}/taskInstances/ingest")]}
            with psycopg.connect(f"{pg_url.replace('+psycopg', '')}/airflow") as con:
                edge_jobs = con.execute("select dag_id, task_id, state, queue, edge_worker from edge_job order by run_id"
                                        ).fetchall() if celery else []
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    try:
                        os.killpg(proc.pid, signal.SIGTERM)
                    except (ProcessLookupError, PermissionError):
                        proc.terminate()
            for proc in procs.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
    assert all(p.poll() is not None for p in procs.values())

    # the exporter holds the runs' own counters, and Airflow's
    opcua = (("source", "opcua_plant"),)
    n, csv_runs = (sum(r["state"] == "success" for r in ended[f"plantlake_ingest_{s}"])
                   for s in ("opcua_plant", "historian_export"))
    assert metrics[("plantlake_runs_total", (("outcome", "success"), *opcua))] == n >= 1
    assert metrics[("plantlake_rows_published_total", (*opcua, ("table", "sensor_readings")))] == n * 86 * 360
    assert metrics[("plantlake_raw_rows_total", opcua)] >= n * 86 * 360 and metrics[("plantlake_raw_bytes_total", opcua)] > 0
    assert metrics[("plantlake_rows_quarantined_total", (("reason", "expect_tag_values_to_be_within_physical_range"),
                                                         ("source", "historian_export"), ("table", "sensor_readings")))] == csv_runs
    assert 0 < metrics[("plantlake_lag_seconds", opcua)] < 2 * 3600  # the last full hour, published minutes after it ended
    assert metrics[("plantlake_step_duration_count", (*opcua, ("step", "extract")))] == n
    finished = sum(v for (name, labels), v in metrics.items() if name == "airflow_ti_finish_total" and {
        ("dag_id", "plantlake_ingest_opcua_plant"), ("task_id", "ingest"), ("state", "success")} <= set(labels))
    assert finished == n, sorted(k for k in metrics if k[0] == "airflow_ti_finish_total")

    # no file the deployment wrote (lake, logs, Airflow's home, the broker's data) holds a password
    assert files_holding(tmp_path, password, viewer_password) == []
    lake = load_config(config).open_lake()
    assert lake.remote == (lake_kind.s3 is not None)
    readings = lake.read(get_table("sensor_readings")).to_pylist()
    by_source = {}
    for r in readings:
        by_source[r["source"]] = by_source.get(r["source"], 0) + 1
    assert by_source["opcua"] == 86 * 360  # every OPC UA variable, every 10 s of the hour, from history
    assert by_source["csv"] == 360 * 6 + 24 - 1  # the historian export (one glitch set aside)
    assert all(hour <= r["ts"] < hour + timedelta(hours=1) for r in readings)
    assert {r["run_id"] for r in readings} == {runs["plantlake_ingest_opcua_plant"], runs["plantlake_ingest_historian_export"]}
    assert lake.read(get_table("production_orders")).num_rows > 0
    assert lake.read(get_table("order_context")).num_rows > 0
    # the workers' tasks emitted their OpenLineage events through the provider into the file
    events = [json.loads(line) for line in (tmp_path / "lineage" / "events.jsonl").read_text().splitlines()]
    ingest = [e for e in events if e["eventType"] == "COMPLETE"
              and e["job"]["name"] == "plantlake_ingest_opcua_plant.ingest"]
    assert ingest and ingest[0]["inputs"][0]["namespace"] == f"opc.tcp://127.0.0.1:{opcua_port}"
    assert runs["plantlake_ingest_opcua_plant"] in {e["run"]["facets"]["plantlake_run"]["run_id"] for e in ingest}
    assert any(e["job"]["name"] == "plantlake_products.build_products" and e["eventType"] == "COMPLETE"
               for e in events)
    assert (lake.root / "catalog.duckdb").exists()
    if celery:  # the OPC UA ingest ran on the site's edge worker, everything else centrally
        assert edge_jobs == [("plantlake_ingest_opcua_plant", "ingest", "success", "site-plant-a", "edge-plant-a")
                             for _ in range(n)], edge_jobs
        assert ingest_tis["plantlake_ingest_opcua_plant"] == ("site-plant-a", "EdgeExecutor")
        assert ingest_tis["plantlake_ingest_erp"][0] == "default" and ingest_tis["plantlake_ingest_erp"][1] != "EdgeExecutor"
        edge_log = (logs / "edge-worker.log").read_text()
        assert "plantlake_ingest_opcua_plant" in edge_log and "plantlake_ingest_erp" not in edge_log
    if lake.remote:  # nothing of the lake on the workers' disk but the catalog, staging and the cache
        assert not (tmp_path / "lake").exists()
        assert lake_kind.s3.keys(f"{lake.uri.split('/', 3)[3]}/curated/sensor_readings/_delta_log/")
