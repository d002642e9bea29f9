"""Credentials from Airflow Connections, never from the site config.

`get_connection(conn_id)` reads `AIRFLOW_CONN_<ID>` (URI or JSON form, parsed by Airflow's own
`Connection`) so the CLI and tests work without Airflow running; inside an Airflow task it
falls back to Airflow's own lookup (UI, secrets backends). Passwords never appear in
`repr()` or logs.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from plantlake.core import airflow_lib
from plantlake.core.errors import ConnectionInvalid, ConnectionNotFound

SECRET_EXTRAS = ("password", "passphrase", "private_key_password", "token", "secret", "api_key")


# ---- secrets never reach a log -----------------------------------------------------------------

_SECRETS: set[str] = set()


class SecretsFilter(logging.Filter):
    """Replaces every registered secret in a record's message with *** (protocol libraries log
    whole requests at DEBUG, asyncua's ActivateSessionRequest with the password among them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _SECRETS:
            return True
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format is left to logging's own handling
            return True
        if any(s in msg for s in _SECRETS):
            for s in sorted(_SECRETS, key=len, reverse=True):
                msg = msg.replace(s, "***")
            record.msg, record.args = msg, None
        return True


_FILTER = SecretsFilter()


def register_secret(value: str | None) -> None:
    """Mask `value` (and its percent-encoded form) in every log record from now on: plantlake's own
    filter on the root handlers, and Airflow's secrets masker inside an Airflow task."""
    if not value or len(value) < 3:
        return
    _SECRETS.update({value, quote(value, safe="")})
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
    if "airflow.sdk" in sys.modules:  # in a task: Airflow's masker covers its own handlers too
        try:
            from airflow.sdk.log import mask_secret

            mask_secret(value)
        except Exception:  # noqa: BLE001 - masking is best effort on top of our own filter
            pass


@dataclass(frozen=True)
class Connection:
    conn_id: str
    conn_type: str = ""
    host: str | None = None
    port: int | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        secret = "***" if self.password else None
        return (f"Connection(conn_id={self.conn_id!r}, conn_type={self.conn_type!r}, host={self.host!r}, "
                f"port={self.port!r}, login={self.login!r}, password={secret!r}, schema={self.schema!r})")

    @classmethod
    def from_airflow(cls, conn_id: str, c: Any) -> Connection:
        """From Airflow's own Connection (its URI and JSON parsers, its lookup); secrets registered."""
        conn = cls(conn_id=conn_id, conn_type=c.conn_type or "", host=c.host or None, port=c.port,
                   login=c.login or None, password=c.password or None, schema=c.schema or None,
                   extra=c.extra_dejson)
        conn.register()
        return conn

    @classmethod
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        """The URI form of AIRFLOW_CONN_<ID>, read by Airflow's parser. A URI it cannot read is
        refused naming the connection, never its text (the parser's message quotes a piece of it)."""
        from urllib.parse import urlsplit

        AirflowConnection = airflow_lib.load("airflow.sdk", "Connection")  # noqa: N806

        try:
            if urlsplit(uri).fragment:  # an unencoded '#' would cut the password short, silently
                raise ValueError
            parsed = AirflowConnection.from_uri(uri, conn_id=conn_id)
        except Exception:  # noqa: BLE001 - whatever the parser raises quotes the text
            raise ConnectionInvalid(
                f"connection {conn_id!r} ({env_var(conn_id)}): not a valid connection URI — percent-encode "
                "'#', '/', '?', '@' and ':' in the login and password (e.g. '#' as %23)") from None
        return cls.from_airflow(conn_id, parsed)

    def register(self) -> None:
        """Mask this connection's secrets in every log from now on."""
        register_secret(self.password)
        for key in SECRET_EXTRAS:
            if isinstance(self.extra.get(key), str):
                register_secret(self.extra[key])

    @classmethod
    def from_json(cls, conn_id: str, text: str) -> Connection:
        """The JSON form of AIRFLOW_CONN_<ID>, read by Airflow's parser."""
        AirflowConnection = airflow_lib.load("airflow.sdk", "Connection")  # noqa: N806

        try:
            parsed = AirflowConnection.from_json(text, conn_id=conn_id)
        except Exception:  # noqa: BLE001 - the parser's message may quote the text
            raise ConnectionInvalid(f"connection {conn_id!r} ({env_var(conn_id)}): not valid JSON") from None
        return cls.from_airflow(conn_id, parsed)


def env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def get_connection(conn_id: str) -> Connection:
    """Resolve a connection id: AIRFLOW_CONN_<ID> first, then Airflow's own lookup."""
    value = os.environ.get(env_var(conn_id))
    if value:
        value = value.strip()
        return Connection.from_json(conn_id, value) if value.startswith("{") else Connection.from_uri(conn_id, value)
    try:
        BaseHook = airflow_lib.load("airflow.sdk", "BaseHook")  # noqa: N806
    except ImportError:  # pragma: no cover - airflow is a dependency
        BaseHook = None  # noqa: N806
    if BaseHook is not None:
        try:
            c = BaseHook.get_connection(conn_id)
        except Exception as exc:  # Airflow raises its own not-found type
            raise ConnectionNotFound(
                f"connection {conn_id!r} not found: set {env_var(conn_id)} or define it in Airflow ({exc.__class__.__name__})"
            ) from None
        return Connection.from_airflow(conn_id, c)
    raise ConnectionNotFound(f"connection {conn_id!r} not found: set {env_var(conn_id)}")
