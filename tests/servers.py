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
from dataclasses import dataclass
from pathlib import Path

from simulators.net import free_port, wait_port
from simulators.object_store import S3Server, s3_server  # noqa: F401 - the tests' S3 server lives with the plant


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


# ---------------------------------------------------------------- an OPC UA server shaped by Part 8

#: UNECE Rec 20 codes (UnitId is the code's ASCII bytes, Part 8 §5.6.3) the Part 8 server's
#: analog items report, with the symbol plantlake's unit table gives each
PART8_UNITS = (("CEL", "°C"), ("BAR", "bar"), ("KWT", "kW"), ("MTS", "m/s"), ("NU", "N·m"), ("RPM", "r/min"))


@dataclass(frozen=True)
class Part8Shape:
    """The address space: Objects/Factory/Hall <a>/Line <nn>/Machine <nnn>, each machine with two
    properties (SerialNumber, Manufacturer), `analog` AnalogItems (EngineeringUnits from Rec 20,
    EURange, HistoryRead access), a Boolean, an Int32 and a String (history), one Double without
    history (`Setpoint`) and one Double array (`Spectrum`)."""

    halls: int = 2
    lines: int = 2
    machines: int = 3
    analog: int = 4

    @property
    def objects(self) -> int:
        return self.halls * self.lines * self.machines

    @property
    def nodes(self) -> int:
        per_machine = 1 + 2 + self.analog * 3 + 3 + 2
        return 1 + self.halls + self.halls * self.lines + self.objects * per_machine

    def unit(self, k: int) -> tuple[str, str]:
        return PART8_UNITS[k % len(PART8_UNITS)]

    def eu_range(self, k: int) -> tuple[float, float]:
        return (-10.0 * k, 100.0 + 10 * k)


@contextmanager
def part8_opcua(shape: Part8Shape) -> Iterator[str]:
    """The server on a free loopback port, run on its own loop in a thread; yields its endpoint."""
    import asyncio
    import threading

    from asyncua import Server, ua

    port = free_port()
    endpoint = f"opc.tcp://127.0.0.1:{port}/part8"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="part8-opcua", daemon=True)
    thread.start()
    server = Server()

    async def start() -> None:
        await server.init()
        server.set_endpoint(endpoint)
        for uri in ("urn:example:vendor", "urn:example:diagnostics"):
            await server.register_namespace(uri)
        ns = await server.register_namespace("urn:example:widgets")
        aspace = server.iserver.aspace
        history = ua.DataValue(ua.Variant(ua.AccessLevel.CurrentRead.mask | ua.AccessLevel.HistoryRead.mask,
                                          ua.VariantType.Byte))
        historizing = ua.DataValue(ua.Variant(True, ua.VariantType.Boolean))
        factory = await server.nodes.objects.add_folder(ua.NodeId("Factory", ns), ua.QualifiedName("Factory", ns))
        for h in range(shape.halls):
            hall = await factory.add_object(ua.NodeId(f"H{h}", ns), ua.QualifiedName(f"Hall {chr(65 + h)}", ns))
            for li in range(shape.lines):
                line = await hall.add_object(ua.NodeId(f"H{h}.L{li}", ns), ua.QualifiedName(f"Line {li + 1:02d}", ns))
                for m in range(shape.machines):
                    key = f"H{h}.L{li}.M{m}"
                    obj = await line.add_object(ua.NodeId(key, ns), ua.QualifiedName(f"Machine{m + 1:03d}", ns))
                    await obj.add_property(ua.NodeId(f"{key}.SerialNumber", ns), ua.QualifiedName("SerialNumber", ns),
                                           f"SN-{h}{li:02d}{m:03d}")
                    await obj.add_property(ua.NodeId(f"{key}.Manufacturer", ns), ua.QualifiedName("Manufacturer", ns),
                                           "Example GmbH")
                    hist = []
                    for k in range(shape.analog):
                        var = await obj.add_variable(ua.NodeId(f"{key}.A{k}", ns), ua.QualifiedName(f"Analog{k}", ns),
                                                     ua.Variant(float(k), ua.VariantType.Double))
                        code, _ = shape.unit(k)
                        await var.add_property(ua.NodeId(f"{key}.A{k}.EU", ns), ua.QualifiedName("EngineeringUnits", 0),
                                               ua.EUInformation(NamespaceUri="http://www.opcfoundation.org/UA/units/un/cefact",
                                                                UnitId=int.from_bytes(code.encode(), "big"),
                                                                DisplayName=ua.LocalizedText(""), Description=ua.LocalizedText("")),
                                               datatype=ua.NodeId(ua.ObjectIds.EUInformation))
                        lo, hi = shape.eu_range(k)
                        await var.add_property(ua.NodeId(f"{key}.A{k}.Range", ns), ua.QualifiedName("EURange", 0),
                                               ua.Range(Low=lo, High=hi), datatype=ua.NodeId(ua.ObjectIds.Range))
                        hist.append(var)
                    hist.append(await obj.add_variable(ua.NodeId(f"{key}.Running", ns), ua.QualifiedName("Running", ns), True))
                    hist.append(await obj.add_variable(ua.NodeId(f"{key}.Count", ns), ua.QualifiedName("Count", ns),
                                                       ua.Variant(7, ua.VariantType.Int32)))
                    hist.append(await obj.add_variable(ua.NodeId(f"{key}.Recipe", ns), ua.QualifiedName("Recipe", ns), "R-1"))
                    await obj.add_variable(ua.NodeId(f"{key}.Setpoint", ns), ua.QualifiedName("Setpoint", ns), 1.5)
                    await obj.add_variable(ua.NodeId(f"{key}.Spectrum", ns), ua.QualifiedName("Spectrum", ns),
                                           ua.Variant([1.0, 2.0, 3.0], ua.VariantType.Double, Dimensions=[3]))
                    for var in hist:
                        await aspace.write_attribute_value(var.nodeid, ua.AttributeIds.AccessLevel, history)
                        await aspace.write_attribute_value(var.nodeid, ua.AttributeIds.Historizing, historizing)
        await server.start()

    asyncio.run_coroutine_threadsafe(start(), loop).result(600)
    try:
        yield endpoint
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


class MailSink:
    """What an SMTP server on loopback received: each message, parsed (`email.message.Message`)."""

    def __init__(self) -> None:
        self.messages: list = []
        self.port = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ARG002, N802 - aiosmtpd's hook
        import email

        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def bodies(self) -> list[str]:
        """Each message's text (its HTML part decoded)."""
        return [part.get_payload(decode=True).decode() for m in self.messages for part in m.walk()
                if part.get_content_type() == "text/html"]

    def connection(self) -> str:
        """An Airflow Connection (JSON) of type smtp pointing at this server, plain SMTP without TLS."""
        import json

        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
                           "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "plantlake@plant.test",
                                     "retry_limit": 0, "timeout": 10}})


@contextmanager
def smtp_server() -> Iterator[MailSink]:
    """An SMTP server (aiosmtpd) on a free loopback port for the test; yields what it receives."""
    from aiosmtpd.controller import Controller

    sink = MailSink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
