"""Credentials from Airflow Connections, never from the site config.

`get_connection(conn_id)` reads `AIRFLOW_CONN_<ID>` (URI or JSON form, as Airflow
does) so the CLI and tests work without Airflow running; inside an Airflow task it
falls back to Airflow's own lookup (UI, secrets backends). Passwords never appear in
`repr()` or logs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit


class ConnectionNotFound(LookupError):
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
        parts = urlsplit(uri)
        extra = {k: v for k, v in parse_qsl(parts.query)}
        if "__extra__" in extra:
            extra = json.loads(extra["__extra__"])
        return cls(
            conn_id=conn_id,
            conn_type=parts.scheme.replace("-", "_"),
            host=unquote(parts.hostname) if parts.hostname else None,
            port=parts.port,
            login=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            schema=unquote(parts.path[1:]) or None,  # as Airflow does: sqlite:////abs/path keeps its root
            extra=extra,
        )

    @classmethod
    def from_json(cls, conn_id: str, text: str) -> Connection:
        d = json.loads(text)
        extra = d.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra)
        return cls(conn_id=conn_id, conn_type=d.get("conn_type", ""), host=d.get("host"),
                   port=int(d["port"]) if d.get("port") is not None else None, login=d.get("login"),
                   password=d.get("password"), schema=d.get("schema"), extra=extra)


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
        return Connection(conn_id=conn_id, conn_type=c.conn_type or "", host=c.host, port=c.port, login=c.login,
                          password=c.password, schema=c.schema, extra=c.extra_dejson)
    raise ConnectionNotFound(f"connection {conn_id!r} not found: set {env_var(conn_id)}")
