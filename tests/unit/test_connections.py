"""Credentials come from AIRFLOW_CONN_* (URI or JSON) without Airflow running, and never show."""

from __future__ import annotations

import logging

import pytest

from plantlake.connections import Connection, ConnectionNotFound, get_connection

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
