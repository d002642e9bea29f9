"""Credentials from Airflow Connections, never from the site config.

`get_connection(conn_id)` reads `AIRFLOW_CONN_<ID>` (URI or JSON form, as Airflow
does) so the CLI and tests work without Airflow running; inside an Airflow task it
falls back to Airflow's own lookup (UI, secrets backends). Passwords never appear in
`repr()` or logs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

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
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        bad = ConnectionInvalid(
            f"connection {conn_id!r} ({env_var(conn_id)}): not a valid connection URI — percent-encode "
            "'#', '/', '?', '@' and ':' in the login and password (e.g. '#' as %23)")
        try:
            parts = urlsplit(uri)
            port = parts.port
            extra = {k: v for k, v in parse_qsl(parts.query)}
            if "__extra__" in extra:
                extra = json.loads(extra["__extra__"])
        except ValueError:  # urllib names the text it could not read, a piece of the password among it
            raise bad from None
        if parts.fragment or not parts.scheme:  # an unencoded '#' cut the URI short
            raise bad
        c = cls(
            conn_id=conn_id,
            conn_type=parts.scheme.replace("-", "_"),
            host=unquote(parts.hostname) if parts.hostname else None,
            port=port,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            schema=unquote(parts.path[1:]) or None,  # as Airflow does: sqlite:////abs/path keeps its root
            extra=extra,
        )
        c.register()
        return c

    def register(self) -> None:
        """Mask this connection's secrets in every log from now on."""
        register_secret(self.password)
        for key in SECRET_EXTRAS:
            if isinstance(self.extra.get(key), str):
                register_secret(self.extra[key])

    @classmethod
    def from_json(cls, conn_id: str, text: str) -> Connection:
        try:
            d = json.loads(text)
        except ValueError:
            raise ConnectionInvalid(f"connection {conn_id!r} ({env_var(conn_id)}): not valid JSON") from None
        extra = d.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        c = cls(conn_id=conn_id, conn_type=d.get("conn_type", ""), host=d.get("host"),
                port=int(d["port"]) if d.get("port") is not None else None, login=d.get("login"),
                password=d.get("password"), schema=d.get("schema"), extra=extra)
        c.register()
        return c


def env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def get_connection(conn_id: str) -> Connection:
    """Resolve a connection id: AIRFLOW_CONN_<ID> first, then Airflow's own lookup."""
    value = os.environ.get(env_var(conn_id))
    if value:
        value = value.strip()
        return Connection.from_json(conn_id, value) if value.startswith("{") else Connection.from_uri(conn_id, value)
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # pragma: no cover - airflow is a dependency
        BaseHook = None  # noqa: N806
    if BaseHook is not None:
        try:
            c = BaseHook.get_connection(conn_id)
        except Exception as exc:  # Airflow raises its own not-found type
            raise ConnectionNotFound(
                f"connection {conn_id!r} not found: set {env_var(conn_id)} or define it in Airflow ({exc.__class__.__name__})"
            ) from None
        conn = Connection(conn_id=conn_id, conn_type=c.conn_type or "", host=c.host, port=c.port, login=c.login,
                          password=c.password, schema=c.schema, extra=c.extra_dejson)
        conn.register()
        return conn
    raise ConnectionNotFound(f"connection {conn_id!r} not found: set {env_var(conn_id)}")
