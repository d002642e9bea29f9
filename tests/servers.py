"""Real servers the tests start and stop themselves: PostgreSQL (as the postgres user), and
shipped server configs rewritten for loopback."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulators.net import free_port, wait_port


def shipped_config(path: Path, replacements: dict[str, str]) -> str:
    """A shipped config file with container paths, hosts and ports replaced for a test; each
    replacement must match, so a changed shipped file fails here instead of testing defaults."""
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text, f"{path.name} no longer holds {old!r}: update the test's rewrite"
        text = text.replace(old, new)
    return text


def pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is not installed (`make test` installs the postgresql package)")
    return found


@contextmanager
def database(server_url: str, name: str) -> Iterator:
    """A database of its own on a PostgreSQL server (its SQLAlchemy URL), dropped afterwards."""
    import sqlalchemy as sa

    server = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(sa.text(f'create database "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name)
    try:
        yield url
    finally:
        with server.connect() as conn:
            conn.execute(sa.text(f'drop database "{name}" with (force)'))
        server.dispose()


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1; yields a SQLAlchemy URL for database 'postgres'."""
    tmp = Path(tempfile.mkdtemp(prefix="plantlake-pg-"))
    port = free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_postgres:
        shutil.chown(tmp, "postgres", "postgres")
    data = tmp / "data"
    subprocess.run([*as_postgres, pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    ctl = [*as_postgres, pg_bin("pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-w",
           "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c fsync=off"]
    subprocess.run([*ctl, "start"], check=True, capture_output=True)
    try:
        wait_port("127.0.0.1", port)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "stop", "-m", "fast"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
