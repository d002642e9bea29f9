"""The deployment files, checked without a Docker engine: docker-compose.yml against the Compose
specification, every service's command against the CLIs that run it, volumes, settings and
connections against .env.example and plant.yaml, and the image against pyproject.toml."""

from __future__ import annotations

import json
import re
import shlex
import tomllib

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV_EXAMPLE = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line.strip() and not line.startswith("#"))
#: created by plant IT on the host (documented in the README and passwd.example), not committed
HOST_FILES = {"deploy/mosquitto/passwd"}
AIRFLOW_SERVICES = ("airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-triggerer", "airflow-worker")


def test_the_compose_file_is_valid_against_the_compose_specification():
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.validate(COMPOSE, schema)  # raises with the offending path


def test_it_has_the_official_shape_on_celery_with_health_checks_and_start_order():
    services = COMPOSE["services"]
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis", "mosquitto", "erp-db", "opcua-sim", "mqtt-sim",
                                    "camera-sim", "erp-sim", "proxy", "metrics", "airflow-edge-worker"} == set(services)
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor,airflow.providers.edge3.executors.EdgeExecutor"
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis") and env["AIRFLOW__EDGE__API_ENABLED"] == "true"
    for name in (*AIRFLOW_SERVICES[1:], "postgres", "redis", "mosquitto", "erp-db"):
        assert "healthcheck" in services[name], name
    for name in AIRFLOW_SERVICES[1:]:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert deps["postgres"] == {"condition": "service_healthy"} and deps["redis"] == {"condition": "service_healthy"}
    assert "container_name" not in services["airflow-worker"]  # `--scale airflow-worker=N` needs that
    for sim in ("opcua-sim", "mqtt-sim", "camera-sim", "erp-sim", "erp-db"):
        assert services[sim]["profiles"] == ["demo"], sim
    assert services["proxy"]["profiles"] == ["tls"]
    assert services["airflow-init"]["environment"]["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in COMPOSE_TEXT + DOCKERFILE


def _commands(service: dict) -> list[list[str]]:
    """A service's command as argument lists (a `bash -c "a && b"` gives one list per step)."""
    cmd = service.get("command")
    if cmd is None:
        return []
    args = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if args[:2] == ["bash", "-c"]:
        return [shlex.split(step.strip().removeprefix("exec ")) for step in args[2].split("&&")]
    return [["airflow", *args]]  # the official image's entrypoint runs other commands with airflow


AIRFLOW_PARSE = """
import json, sys
from airflow.cli.cli_parser import get_parser
bad = []
for args in json.loads(sys.argv[1]):
    try:
        get_parser().parse_args(args)
    except SystemExit:
        bad.append(args)
print(json.dumps(bad))
"""


def test_every_service_command_exists_in_airflow_or_plantlake():
    import os
    import subprocess
    import sys

    from plantlake.app.cli import build_parser

    airflow_args, checked = [], 0
    for name, service in COMPOSE["services"].items():
        if service.get("image", "").startswith("plantlake") or "build" in service:
            for args in _commands(service):
                assert args[0] in ("airflow", "plantlake"), (name, args)
                checked += 1
                if args[0] == "airflow":
                    airflow_args.append(args[1:])
                    continue
                try:
                    build_parser().parse_args(args[1:])
                except SystemExit as exc:
                    pytest.fail(f"service {name}: `{' '.join(args)}` is not a plantlake command ({exc})")
    # Airflow's CLI as the image has it: CeleryExecutor configured, the Celery provider installed
    env = {**os.environ, "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    out = subprocess.run([sys.executable, "-c", AIRFLOW_PARSE, json.dumps(airflow_args)], env=env,
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert json.loads(out.strip().splitlines()[-1]) == [], "not Airflow commands"
    assert checked >= 12 and ["celery", "worker"] in airflow_args


def test_volumes_are_declared_used_and_bind_mounts_exist():
    declared = set(COMPOSE["volumes"])
    used = set()
    for name, service in COMPOSE["services"].items():
        for vol in service.get("volumes", []):
            source = re.match(r"(\$\{\w+:-[^}]*\}|[^:]+):", vol).group(1)
            default = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", source)
            if default:
                assert ENV_EXAMPLE.get(default.group(1)) == default.group(2), f"{name}: {source} vs .env.example"
                source = default.group(2)
            if source.startswith("."):
                rel = source.removeprefix("./")
                assert (ROOT / rel).exists() or rel in HOST_FILES, f"{name}: {source} is not in the project"
            else:
                used.add(source)
    assert used == declared


def test_every_setting_is_in_env_example_and_no_secret_is_committed():
    referenced = set(re.findall(r"(?<!\$)\$\{(\w+)", COMPOSE_TEXT))
    assert referenced == set(ENV_EXAMPLE), (sorted(referenced - set(ENV_EXAMPLE)), sorted(set(ENV_EXAMPLE) - referenced))
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE_TEXT))
    assert {"AIRFLOW_DB_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY", "AIRFLOW_ADMIN_PASSWORD"} <= required
    for key, value in ENV_EXAMPLE.items():
        if re.search(r"PASSWORD|SECRET|FERNET|_CONN_PLANT_(MQTT|ERP)", key):
            assert value == "", f".env.example commits a value for {key}"


def test_the_connections_plant_yaml_names_are_provided_as_airflow_conn_variables():
    plant = yaml.safe_load((ROOT / "plant.yaml").read_text())
    ids = {s["connection_id"] for s in plant["sources"] if s.get("connection_id") and s.get("enabled", True)}
    env = COMPOSE["services"]["airflow-worker"]["environment"]
    assert ids and {f"AIRFLOW_CONN_{i.upper()}" for i in ids} <= set(env)


def test_the_image_installs_this_project_on_the_pinned_airflow_and_python():
    pins = dict(re.split(r"==", d, maxsplit=1) for d in PYPROJECT["project"]["dependencies"])
    airflow = re.search(r"^ARG AIRFLOW_VERSION=(\S+)$", DOCKERFILE, re.M).group(1)
    python = re.search(r"^ARG PYTHON_VERSION=(\S+)$", DOCKERFILE, re.M).group(1)
    assert pins["apache-airflow"] == airflow
    assert tuple(map(int, python.split("."))) >= (3, 11)
    assert re.search(r"^FROM apache/airflow:\$\{AIRFLOW_VERSION\}-python\$\{PYTHON_VERSION\}$", DOCKERFILE, re.M)
    install = re.search(r"pip install (.+?)\\\n\s+--constraint (\S+)", DOCKERFILE, re.S)
    assert install and install.group(1).split() == ['--no-cache-dir', '"apache-airflow[celery,postgres,redis]==${AIRFLOW_VERSION}"',
                                                    "/opt/plantlake"]
    copied = set(re.findall(r"^COPY --chown=\S+ (\w+) /opt/plantlake/\1$", DOCKERFILE, re.M))
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied
    assert "COPY --chown=airflow:root dags /opt/airflow/dags" in DOCKERFILE


def test_airflows_constraints_keep_everything_but_what_plantlake_pins():
    import importlib.util

    spec = importlib.util.spec_from_file_location("constraints", ROOT / "deploy" / "constraints.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    pinned = mod.pinned(ROOT / "pyproject.toml")
    assert {"pandas", "pyarrow", "great-expectations", "psycopg", "paho-mqtt"} <= pinned
    text = "# Airflow 3.3.2\npandas==2.2.3\nPyArrow==19.0.1\nredis==5.2.1\nparamiko==3.5.1\npaho_mqtt==2.1.0\n"
    assert mod.filtered(text, pinned - {"apache-airflow"}) == "# Airflow 3.3.2\nredis==5.2.1\nparamiko==3.5.1\n"


def test_the_shipped_broker_keeps_every_message_plantlake_can_quarantine():
    """A message over the broker's message_size_limit vanishes at the broker; plantlake's own limit
    must be lower, so an oversized message reaches quarantine instead."""
    import re

    from connectors.mqtt.config import MqttSource

    conf = (ROOT / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    limit = int(re.search(r"^message_size_limit (\d+)$", conf, re.M).group(1))
    assert MqttSource.model_fields["max_payload_bytes"].default <= limit
    assert "acl_file /mosquitto/config/acl" in conf and "use_username_as_clientid true" in conf


def test_published_ports_listen_on_loopback_unless_plant_it_says_otherwise():
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    ports = [p for s in compose["services"].values() for p in s.get("ports", [])]
    assert ports and all(str(p).startswith("${BIND_ADDRESS:-127.0.0.1}:") for p in ports), ports


@pytest.mark.parametrize("user,password,why", [
    ("admin", "admin", "at least 12 characters"), ("", "a-long-Passw0rd!", "user name is empty"),
    ("admin", "", "at least 12 characters"), ("plantlake-admin", "Plantlake-Admin", "default or the user name"),
])
def test_deploy_users_refuses_weak_or_empty_credentials(user, password, why, monkeypatch, capsys):
    from plantlake.app.cli import main

    monkeypatch.setenv("AIRFLOW_ADMIN_USER", user)
    monkeypatch.setenv("AIRFLOW_ADMIN_PASSWORD", password)
    assert main(["deploy", "users"]) == 2  # refused before FAB's tables are touched
    err = capsys.readouterr().err
    assert "AIRFLOW_ADMIN_USER / AIRFLOW_ADMIN_PASSWORD" in err and why in err
    assert not password or password not in err


def test_more_ui_users_come_with_a_role_and_their_own_password_variable():
    from plantlake.app.deploy import ui_users
    from plantlake.core.config import ConfigError

    env = {"AIRFLOW_ADMIN_USER": "plant-admin", "AIRFLOW_ADMIN_PASSWORD": "Adm1n-long-enough",
           "AIRFLOW_USERS": "line.viewer:Viewer, shift-op:Op, analyst", "AIRFLOW_PASSWORD_LINE_VIEWER": "V1ewer-long-enough",
           "AIRFLOW_PASSWORD_SHIFT_OP": "0perator-long-enough", "AIRFLOW_PASSWORD_ANALYST": "Analyst-long-enough"}
    assert [(u.name, u.role) for u in ui_users(env)] == [
        ("plant-admin", "Admin"), ("line.viewer", "Viewer"), ("shift-op", "Op"), ("analyst", "Viewer")]
    assert "long-enough" not in repr(ui_users(env))
    with pytest.raises(ConfigError) as e:
        ui_users({**env, "AIRFLOW_USERS": "boss:Superuser, shift-op:Op, plant-admin:Viewer",
                  "AIRFLOW_PASSWORD_SHIFT_OP": "short", "AIRFLOW_PASSWORD_PLANT_ADMIN": "Adm1n-long-enough"})
    msg = str(e.value)
    assert "role 'Superuser' of user 'boss' is not one of Admin, Op, User, Viewer" in msg
    assert "AIRFLOW_USERS / AIRFLOW_PASSWORD_SHIFT_OP: the password must be at least 12 characters" in msg
    assert "user 'plant-admin' is declared twice" in msg and "short" not in msg.replace("shift", "")


def test_the_ui_uses_the_fab_auth_manager_with_its_shipped_settings():
    env = COMPOSE["x-airflow-common"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"] == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    assert "SIMPLE_AUTH_MANAGER" not in COMPOSE_TEXT
    config = env["AIRFLOW__FAB__CONFIG_FILE"]
    assert config == "/opt/plantlake/deploy/airflow/webserver_config.py" and "COPY --chown=airflow:root deploy/airflow" in DOCKERFILE
    settings: dict = {}
    exec(compile((ROOT / "deploy" / "airflow" / "webserver_config.py").read_text(), "webserver_config.py", "exec"), settings)  # noqa: S102
    from flask_appbuilder.const import AUTH_DB

    assert settings["AUTH_TYPE"] == AUTH_DB and settings["AUTH_USER_REGISTRATION"] is False
    assert settings["AUTH_ROLE_PUBLIC"] is None and settings["AUTH_RATE_LIMITED"] is True
    assert "plantlake deploy users" in " ".join(COMPOSE["services"]["airflow-init"]["command"])
