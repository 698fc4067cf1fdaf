"""Two PostgreSQL servers on loopback with streaming replication: the sandbox's and the tests' stand-ins for the
RDS writer and its cross-region read replica.

The binaries are Debian's (`/usr/lib/postgresql/<major>/bin`; `make` installs them when missing). The server
refuses to run as root, so as root every server command runs as the `postgres` user. Both servers require
TLS with a certificate made here for 127.0.0.1, as the stacks' parameter group forces it (rds.force_ssl).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from drills.loopback import free_port

SUPERUSER = "postgres"
REPLICATION_USER = "replicator"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def binaries() -> Path:
    """The newest installed major's bin directory."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise PostgresMissing("no PostgreSQL server binaries in /usr/lib/postgresql/<major>/bin: `make postgres` "
                              "installs Debian's (apt-get install postgresql)")
    return found[-1].parent


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *command] if os.geteuid() == 0 else command


class Server:
    """One PostgreSQL server: its data directory and port."""

    def __init__(self, name: str, data: Path, port: int, superuser_password: str):
        self.name, self.data, self.port = name, data, port
        self._password = superuser_password

    def pg_ctl(self, *args: str) -> None:
        _run([str(binaries() / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *args])

    def start(self, any_port: bool = False) -> None:
        """Start on its port; with `any_port`, on another free one when that was taken meanwhile (free_port only
        says it was free a moment ago, and the tests start servers in several processes at once)."""
        for attempt in range(3):
            try:
                self.pg_ctl("-l", str(self.data / "server.log"), "-o", f"-p {self.port}", "start")
                return
            except RuntimeError as exc:
                log = self.data / "server.log"
                said = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
                taken = any("could not create listen socket" in line for line in said)
                if not (any_port and attempt < 2 and taken):
                    raise RuntimeError(f"{exc}; {self.name}'s log: {' / '.join(said) or 'empty'}") from None
                self.port = free_port()

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self.pg_ctl("-m", mode, "stop")

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, dbname=dbname, user=SUPERUSER,
                               password=self._password, sslmode="require", connect_timeout=5, autocommit=True)

    def query(self, sql: str, *params: object, dbname: str = "postgres") -> list[tuple]:
        with self.connect(dbname) as conn:
            cursor = conn.execute(sql, params or None)
            return cursor.fetchall() if cursor.description else []

    def in_recovery(self) -> bool:
        return self.query("SELECT pg_is_in_recovery()")[0][0]


def _run(command: list[str], **kwargs: object) -> None:
    # A group of its own, killed whole when this process is stopped meanwhile: as root the command runs under
    # runuser, and killing runuser alone would leave initdb or pg_basebackup writing into a folder being removed.
    with subprocess.Popen(_as_owner(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, **kwargs) as process:
        try:
            out, err = process.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {(err or out).strip()}")


def _owned_folder(prefix: str) -> Path:
    """A new temporary folder the servers' user owns alone."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(root, SUPERUSER)
    root.chmod(0o700)
    return root


def _init_cluster(root: Path, data: Path, superuser_password: str) -> None:
    """A new cluster in `data`, and the certificate both servers present (root/server.crt, its key beside it)."""
    password_file = root / "superuser-password"
    password_file.write_text(superuser_password)
    _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
          "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(root / "server.key"),
          "-out", str(root / "server.crt")])
    _run([str(binaries() / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(password_file),
          "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-instructions", "--no-sync"])
    password_file.unlink()


class ClusterTemplate:
    """A new cluster and its certificate, made once and copied for each pair that names it: initdb and the key are
    most of a pair's start (about 1.4 s of 2.4 s), and the tests start dozens of pairs."""

    def __init__(self) -> None:
        self.superuser_password = secrets.token_urlsafe(18)
        self.root = _owned_folder("drill-postgres-template-")
        try:
            _init_cluster(self.root, self.root / "data", self.superuser_password)
        except BaseException:
            self.close()
            raise

    def copy_to(self, root: Path, data: Path) -> None:
        for name in ("server.key", "server.crt"):
            _run(["cp", "-p", str(self.root / name), str(root / name)])
        _run(["cp", "-a", str(self.root / "data"), str(data)])

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class PostgresPair:
    """A writer and a hot standby streaming from it, with an application database and its owner, as the
    stacks' database-credentials secret describes them. With a template, the writer starts as a copy of it."""

    def __init__(self, username: str = "trading_admin", dbname: str = "trading",
                 template: ClusterTemplate | None = None):
        self.username, self.dbname = username, dbname
        self.template = template
        self.password = secrets.token_urlsafe(18)
        self._superuser_password = template.superuser_password if template else secrets.token_urlsafe(18)
        self._replication_password = secrets.token_urlsafe(18)
        self.root = _owned_folder("drill-postgres-")
        self.writer = Server("writer", self.root / "writer", free_port(), self._superuser_password)
        self.standby = Server("standby", self.root / "standby", free_port(), self._superuser_password)

    @property
    def ca_bundle(self) -> Path:
        """The certificate both servers present: a client verifies them with it (sslmode=verify-full)."""
        return self.root / "server.crt"

    def start(self) -> PostgresPair:
        try:
            self._init_writer()
            self.writer.start(any_port=True)
            self._init_roles()
            self._clone_standby()
            self.standby.start(any_port=True)
            self.wait_streaming()
        except BaseException:
            self.close()
            raise
        return self

    def _init_writer(self) -> None:
        if self.template:
            self.template.copy_to(self.root, self.writer.data)
        else:
            _init_cluster(self.root, self.writer.data, self._superuser_password)
        with (self.writer.data / "postgresql.conf").open("a") as conf:
            conf.write(f"""
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.root}'
ssl = on
ssl_cert_file = '{self.ca_bundle}'
ssl_key_file = '{self.root / "server.key"}'
wal_level = replica
max_wal_senders = 5
hot_standby = on
""")
        # TLS only, as rds.force_ssl does; replication connections too.
        (self.writer.data / "pg_hba.conf").write_text(
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            f"hostssl replication {REPLICATION_USER} 127.0.0.1/32 scram-sha-256\n")

    def _init_roles(self) -> None:
        with self.writer.connect() as conn:
            conn.execute(f"CREATE ROLE {REPLICATION_USER} LOGIN REPLICATION PASSWORD "
                         f"'{self._replication_password}'")
            conn.execute(f"CREATE ROLE {self.username} LOGIN PASSWORD '{self.password}'")
            conn.execute(f"CREATE DATABASE {self.dbname} OWNER {self.username}")

    def _clone_standby(self, standby: Server | None = None, source: Server | None = None) -> None:
        standby, source = standby or self.standby, source or self.writer
        # A fast checkpoint: the default spreads it over minutes.
        _run([str(binaries() / "pg_basebackup"), "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
              "--no-sync", "-d", f"host=127.0.0.1 port={source.port} user={REPLICATION_USER} sslmode=require"],
             env={**os.environ, "PGPASSWORD": self._replication_password})

    @staticmethod
    def receiving(standby: Server) -> bool:
        return bool(standby.query("SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'"))

    def wait_streaming(self, standby: Server | None = None, timeout: float = 30) -> None:
        standby = standby or self.standby
        deadline = time.time() + timeout
        while not self.receiving(standby):
            if time.time() > deadline:
                raise RuntimeError(f"the standby on port {standby.port} is not streaming after {timeout:g} s")
            time.sleep(0.1)

    def rebuild(self, server: Server, source: Server) -> None:
        """What creating a read replica does to the engine: `server`, whatever it held, becomes a fresh standby
        of `source`, on the same port (the endpoint of an RDS identifier does not change)."""
        server.stop("immediate")
        shutil.rmtree(server.data)
        self._clone_standby(server, source)
        server.start()
        self.wait_streaming(server)

    def cut_stream(self) -> None:
        """Stop the standby's WAL receiver: what it has not received is lost at a promotion. (Pausing replay
        is not enough: a promotion applies the WAL already received and loses nothing.)"""
        with self.standby.connect() as conn:
            conn.execute("ALTER SYSTEM SET primary_conninfo = ''")
            conn.execute("SELECT pg_reload_conf()")
        deadline = time.time() + 30
        while self.receiving(self.standby):
            if time.time() > deadline:
                raise RuntimeError("the standby's WAL receiver did not stop")
            time.sleep(0.1)

    def promote(self, server: Server | None = None) -> None:
        """What RDS's promotion does to the replica's engine; a server already promoted stays as it is."""
        server = server or self.standby
        if server.in_recovery():
            server.query("SELECT pg_promote(true, 60)")

    def close(self) -> None:
        """Stop both servers and delete their files, whatever moment a stop interrupted their start."""
        for server in (self.standby, self.writer):
            try:
                server.stop("immediate")
            except RuntimeError:
                pass  # already gone: nothing to stop
        # A server pg_ctl had launched when it was killed runs in a session of its own, perhaps before writing the
        # pid file pg_ctl stops it by: every process started on this folder goes.
        subprocess.run(["pkill", "-KILL", "-f", f"{self.root}/"], check=False)
        deadline = time.time() + 10
        while self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
            if time.time() > deadline:
                break
            time.sleep(0.05)

    def __enter__(self) -> PostgresPair:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
