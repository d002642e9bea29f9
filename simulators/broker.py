"""An MQTT broker the tests and the demo start, stop, kill and restart themselves.

Mosquitto (Debian package) with a temp config: loopback listener on a free port,
persistence on, and the queue limits raised the way the shipped deployment config
raises them. There is no pure-Python stand-in: plantlake drains an MQTT 5 persistent session
with QoS 1 and manual acknowledgement, which the pure-Python brokers on PyPI do not keep
(amqtt speaks 3.1.1 and delivers nothing queued for an absent client; mqttools knows QoS 0
only). `make demo` and `make test` install Debian's mosquitto; where it cannot be had, the
demo runs without its MQTT source and says so.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulators.net import free_port, wait_port

log = logging.getLogger(__name__)

#: names the mosquitto binary; empty (or `none`) means "no broker on this machine" (the bare-machine demo test)
MOSQUITTO_ENV = "PLANTLAKE_MOSQUITTO"


def mosquitto_binary() -> str | None:
    """The mosquitto binary: $PLANTLAKE_MOSQUITTO when set, else on PATH, else Debian's /usr/sbin one."""
    if MOSQUITTO_ENV in os.environ:
        chosen = os.environ[MOSQUITTO_ENV].strip()
        return chosen if chosen and chosen.lower() != "none" and os.access(chosen, os.X_OK) else None
    return shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None)


MOSQUITTO = mosquitto_binary()


@dataclass
class Mosquitto:
    """A Mosquitto process on 127.0.0.1 with its own config and persistence folder."""

    port: int = 0
    data_dir: Path | None = None
    max_queued_messages: int = 2_000_000
    #: seconds between saves of the in-memory store (tests: 1, so a SIGTERM loses nothing queued;
    #: the shipped deploy/mosquitto/mosquitto.conf: 30)
    autosave_interval: int = 1
    persistence: bool = True
    users: dict[str, str] | None = None
    #: serve TLS only, with a certificate for 127.0.0.1/localhost signed by a throwaway CA (`ca_cert`)
    tls: bool = False
    #: an ACL file (e.g. the shipped deploy/mosquitto/acl) and the client id bound to the user name
    acl_file: Path | None = None
    username_as_clientid: bool = False
    proc: subprocess.Popen | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self.data_dir = Path(self.data_dir or tempfile.mkdtemp(prefix="plantlake-mosquitto-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @property
    def conf(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "mosquitto.conf"

    @property
    def ca_cert(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "tls" / "ca.pem"

    def _write_conf(self) -> None:
        import getpass

        lines = [
            # run as whoever started it: as root, Mosquitto would switch to the `mosquitto` user and
            # could not write its persistence file into our folder
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.data_dir}/",
            f"autosave_interval {self.autosave_interval}",
            f"max_queued_messages {self.max_queued_messages}",
            "max_queued_bytes 0",
            "max_inflight_messages 100",
            "persistent_client_expiration 1d",
            "message_size_limit 1048576",
            f"log_dest file {self.data_dir}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if self.tls:
            folder = self.ca_cert.parent
            if not self.ca_cert.exists():
                write_test_ca(folder, hosts=("127.0.0.1", "localhost"))
            lines += [f"cafile {self.ca_cert}", f"certfile {folder / 'server.pem'}", f"keyfile {folder / 'server.key'}",
                      "tls_version tlsv1.2"]
        if self.users:
            pw = self.data_dir / "passwd"
            pw.write_text("".join(f"{u}:{p}\n" for u, p in self.users.items()))
            pw.chmod(0o600)
            subprocess.run(["mosquitto_passwd", "-U", str(pw)], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
            if self.acl_file:
                lines.append(f"acl_file {self.acl_file}")
            if self.username_as_clientid:
                lines.append("use_username_as_clientid true")
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        binary = mosquitto_binary()
        if binary is None:
            raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto; `make demo` and "
                                    "`make test` do it as root)")
        self._write_conf()
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_port("127.0.0.1", self.port)
        except TimeoutError:
            err = self.proc.stderr.read().decode() if self.proc.poll() is not None and self.proc.stderr else ""
            raise RuntimeError(f"mosquitto did not start on port {self.port}: {err}") from None
        log.info("Mosquitto %s on 127.0.0.1:%d (persistence in %s)", binary, self.port, self.data_dir)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM lets Mosquitto save its persistence file; SIGKILL does not."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self, sig: int = signal.SIGTERM) -> Mosquitto:
        self.stop(sig)
        return self.start()

    def cleanup(self) -> None:
        self.stop()
        if self.data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def write_test_ca(folder: Path, hosts: tuple[str, ...]) -> None:
    """A throwaway CA (ca.pem) and a server certificate it signed (server.pem/server.key) for `hosts`."""
    import ipaddress
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)

    def cert(subject: str, key: Any, issuer: x509.Name | None, issuer_key: Any, ca: bool) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name).public_key(key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
             .not_valid_after(now + timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            alt = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h) for h in hosts]
            b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = cert("plantlake test CA", ca_key, None, ca_key, ca=True)
    server = cert(hosts[0], key, ca.subject, ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem))
    (folder / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                                          serialization.NoEncryption()))
    (folder / "server.key").chmod(0o600)


def embedded_broker() -> Mosquitto | None:
    """Mosquitto when this machine has it, else None (the caller says what it leaves out)."""
    if mosquitto_binary() is None:
        log.warning("no MQTT broker: Mosquitto is not installed (apt-get install mosquitto, or $%s)", MOSQUITTO_ENV)
        return None
    return Mosquitto().start()
