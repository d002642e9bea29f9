"""Credentials come from AIRFLOW_CONN_* (URI or JSON) without Airflow running, and never show."""

from __future__ import annotations

import logging

import pytest

from plantlake.core.connections import Connection, ConnectionNotFound, get_connection

pytestmark = pytest.mark.unit


def test_uri_form(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", "opcua://op%40plant:s3cr%2Ft@10.0.0.5:4840/ns?security_policy=Basic256Sha256")
    c = get_connection("plant_opcua")
    assert (c.conn_type, c.host, c.port, c.login, c.password, c.schema) == ("opcua", "10.0.0.5", 4840, "op@plant", "s3cr/t", "ns")
    assert c.extra == {"security_policy": "Basic256Sha256"}


def test_json_form(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ERP", '{"conn_type": "postgres", "host": "erp", "port": 5432, "login": "u", "password": "pw", "schema": "erp", "extra": {"sslmode": "require"}}')
    c = get_connection("erp")
    assert (c.host, c.port, c.password, c.extra["sslmode"]) == ("erp", 5432, "pw", "require")


def test_password_never_in_repr_or_logs(monkeypatch, caplog):
    c = Connection.from_uri("x", "mqtt://user:topsecret@broker:1883")
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("using %r", c)
    assert "topsecret" not in repr(c) and "topsecret" not in str(c) and "topsecret" not in caplog.text
    assert "***" in repr(c)


def test_unknown_connection_says_which_variable_to_set(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_NOWHERE", raising=False)
    with pytest.raises(ConnectionNotFound, match="connection 'nowhere' not found: set AIRFLOW_CONN_NOWHERE"):
        get_connection("nowhere")


@pytest.mark.parametrize("uri", ["mqtt://plantlake:S3cr3t#HASH@broker:1883", "mqtt://plantlake:S3cr3t/HASH@broker:1883",
                                 "mqtt://plantlake:S3cr3t?HASH@broker:1883"])
def test_an_unencoded_character_in_a_password_names_the_connection_never_its_text(monkeypatch, uri):
    from plantlake.core.connections import ConnectionInvalid

    monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", uri)
    with pytest.raises(ConnectionInvalid) as err:
        get_connection("plant_mqtt")
    msg = str(err.value)
    assert msg.startswith("connection 'plant_mqtt' (AIRFLOW_CONN_PLANT_MQTT): not a valid connection URI")
    assert "percent-encode" in msg and "S3cr3t" not in msg and "HASH" not in msg


def test_secrets_are_masked_in_every_log_record_even_a_protocol_librarys_debug(monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_OPCUA", "opcua://plantlake:t0p%23secret@10.0.0.5:4840/x")
    with caplog.at_level(logging.DEBUG):
        c = get_connection("plant_opcua")
        # what asyncua logs at DEBUG when it activates a session
        logging.getLogger("asyncua.client.ua_client").debug("ActivateSessionRequest(UserIdentityToken=UserNameIdentityToken("
                                                            "UserName='plantlake', Password=b'%s'))", c.password)
        logging.getLogger("t").warning("dsn postgresql://plantlake:%s@erp/erp", "t0p%23secret")
    assert c.password == "t0p#secret"
    assert "t0p#secret" not in caplog.text and "t0p%23secret" not in caplog.text
    assert caplog.text.count("***") == 2


def test_config_check_reads_each_connection_it_can_see(tmp_path, monkeypatch, capsys):
    import shutil

    from plantlake.app.cli import main
    from tests.conftest import ROOT

    shutil.copy(ROOT / "plant.yaml", tmp_path / "plant.yaml")
    monkeypatch.setenv("AIRFLOW_CONN_PLANT_MQTT", "mqtt://plantlake:pa#ss@broker:1883")
    assert main(["--config", str(tmp_path / "plant.yaml"), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "source mqtt_plant: connection 'plant_mqtt' (AIRFLOW_CONN_PLANT_MQTT): not a valid connection URI" in err
    assert "pa#ss" not in err and "ss@broker" not in err


def test_reading_a_connection_leaves_the_callers_logging_alone(tmp_path):
    """The URI is parsed by Airflow's Connection; the first Airflow import of a process sets up
    Airflow's logging on the root logger, and the caller's handlers and level come back."""
    import os
    import subprocess
    import sys

    code = ("import logging; logging.basicConfig(level=logging.DEBUG); h = logging.getLogger().handlers[:];"
            "from plantlake.core.connections import get_connection; c = get_connection('plant_mqtt');"
            "print(c.host, logging.getLogger().handlers == h, logging.getLogger().level)")
    env = {**os.environ, "AIRFLOW_CONN_PLANT_MQTT": "mqtt://u:p@broker:1883", "AIRFLOW_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["broker", "True", "10"], out.stdout + out.stderr[-2000:]
