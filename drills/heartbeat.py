"""The database probe: heartbeat rows written to the writer during a drill and looked for on the replica, so that
the data a failover lost is measured through the database itself rather than estimated from ReplicaLag.

One row a second (by default) goes into `drill_heartbeat` on the writer; every acknowledged write (committed: the
INSERT returned) is appended to a file beside the journal at once, so a crash loses none of them. After the
promotion, RPO = the last acknowledged write on the old writer - the newest heartbeat on the new one. Both
times are the old writer's clock (`written_at` replicates with the row), so no clock skew enters.
"""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

TABLE = "drill_heartbeat"
CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigserial PRIMARY KEY, drill_id text NOT NULL, "
          "written_at timestamptz NOT NULL DEFAULT clock_timestamp())")
SECRET_KEYS = ("username", "password", "dbname")


class DatabaseError(Exception):
    """A database the drill reads or writes could not be used: the step fails (resume tries again)."""


@dataclass(frozen=True)
class Target:
    """Where and as whom to connect: the endpoint from the stack outputs, the rest from the secret."""

    host: str
    port: int
    dbname: str
    user: str
    password: str
    # verify-full against this bundle (RDS's CA bundle); without it TLS is required but the server unverified.
    ca_bundle: str | None = None

    def __str__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.dbname}"

    def connect(self) -> psycopg.Connection:
        tls = {"sslmode": "verify-full", "sslrootcert": self.ca_bundle} if self.ca_bundle else {"sslmode": "require"}
        try:
            return psycopg.connect(host=self.host, port=self.port, dbname=self.dbname, user=self.user,
                                   password=self.password, connect_timeout=5, autocommit=True,
                                   application_name="drills-heartbeat", options="-c statement_timeout=5000",
                                   # A writer that stops answering fails the write in seconds, not minutes.
                                   tcp_user_timeout=5000, keepalives_idle=5, keepalives_interval=2,
                                   keepalives_count=2, **tls)
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot connect to {self}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def target(secret_string: str, endpoint: str, source: str, ca_bundle: str | None) -> Target:
    """`endpoint` is the stack's `db_endpoint` (host:port); the secret is the database-credentials secret."""
    try:
        secret = json.loads(secret_string)
    except json.JSONDecodeError:
        raise DatabaseError(f"{source}: not JSON") from None
    missing = [k for k in SECRET_KEYS if not isinstance(secret, dict) or not isinstance(secret.get(k), str)]
    if missing:
        raise DatabaseError(f"{source}: no {', '.join(missing)} in it")
    host, _, port = endpoint.rpartition(":")
    if not host or not port.isdigit():
        raise DatabaseError(f"db_endpoint {endpoint!r} is not host:port")
    if ca_bundle is None and not _loopback(host):
        # The probe logs in as the master user: never to a server it has not verified.
        raise DatabaseError(f"{host}: give --db-ca-bundle (RDS's global-bundle.pem from https://truststore.pki.rds."
                            "amazonaws.com/global/global-bundle.pem) so the probe verifies the server before sending "
                            "the master user's password")
    return Target(host, int(port), secret["dbname"], secret["username"], secret["password"], ca_bundle)


def check(where: Target) -> tuple[str, bool]:
    """Connect and read what the server is; changes nothing. Returns (what was found, whether it is a replica)."""
    with where.connect() as conn:
        try:
            recovery, table, ssl = conn.execute(
                "SELECT pg_is_in_recovery(), to_regclass(%s) IS NOT NULL, "
                "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())", (TABLE,)).fetchone()
        except psycopg.Error as exc:
            raise DatabaseError(f"{where}: {_first_line(exc)}") from None
    return (f"{where}: {'a replica' if recovery else 'a writer'}, TLS {'on' if ssl else 'OFF'}"
            f"{', verified' if where.ca_bundle else ' (server not verified: --db-ca-bundle)'}, "
            f"{TABLE} {'present' if table else 'absent (created at the start)'}"), recovery


def present(where: Target, drill_id: str) -> list[tuple[int, float]]:
    """The drill's heartbeats on a database, (id, written_at epoch) in id order; none when the table never
    reached it."""
    try:
        with where.connect() as conn:
            if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]:
                return []
            return [(i, float(at)) for i, at in conn.execute(
                f"SELECT id, extract(epoch FROM written_at) FROM {TABLE} WHERE drill_id = %s ORDER BY id",
                (drill_id,)).fetchall()]
    except psycopg.Error as exc:
        raise DatabaseError(f"{where}: {_first_line(exc)}") from None


def heartbeat_path(journal_dir: Path, drill_id: str) -> Path:
    """The record of a drill's acknowledged writes, beside its journal."""
    return journal_dir / f"drill-{drill_id}.heartbeat.jsonl"


class Record:
    """The acknowledged writes and the writer's failures, one JSON line each, appended as they happen."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, entry: dict[str, Any]) -> None:
        # A leading newline: a line a crash cut short stays a line of its own, not the start of this one.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, ("\n" + json.dumps(entry) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue  # cut short by a crash: not an acknowledgement
            if isinstance(entry, dict):
                found.append(entry)
        return found

    def summary(self) -> dict[str, Any]:
        entries = self.entries()
        # A write the writer acknowledged only after the drill had stopped the probe (a hung writer that came
        # back) came after the fence: it is not among the writes the promotion had to keep.
        acks = [e for e in entries if "id" in e and not e.get("after_stop")]
        failures = [e for e in entries if "error" in e]
        last = acks[-1] if acks else None
        # The writer went away when writes failed after the last acknowledged one and none succeeded since.
        gone = [f for f in failures if last is None or f["at"] > last["acked_at"]]
        return {"file": str(self.path), "acknowledged": len(acks), "acknowledged_ids": [a["id"] for a in acks],
                "first_written_at": acks[0]["written_at"] if acks else None,
                "last_written_at": last["written_at"] if last else None,
                "last_id": last["id"] if last else None,
                "writer_gone": {"at": gone[0]["at"], "error": gone[0]["error"]} if gone else None,
                "failures": len(failures)}


class Heartbeat:
    """Writes one row per interval to the writer from a background thread until stopped."""

    def __init__(self, writer: Target, drill_id: str, interval: float, record: Record):
        self.writer, self.drill_id, self.interval, self.record = writer, drill_id, interval, record
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        # Why the heartbeat stopped by itself, if it did.
        self.failure: str | None = None

    def start(self) -> None:
        """Creates the table if absent (a failure here is the caller's: nothing has been written yet)."""
        with self.writer.connect() as conn:
            try:
                conn.execute(CREATE)
            except psycopg.Error as exc:
                raise DatabaseError(f"{self.writer}: cannot create {TABLE}: {_first_line(exc)}") from None
        self._thread = threading.Thread(target=self._loop, name="drill-heartbeat", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _write(self) -> None:
        try:
            self._conn = self._conn or self.writer.connect()
            row_id, written_at = self._conn.execute(
                f"INSERT INTO {TABLE} (drill_id) VALUES (%s) RETURNING id, extract(epoch FROM written_at)",
                (self.drill_id,)).fetchone()
        except (psycopg.Error, DatabaseError) as exc:
            if not self._stop.is_set():
                self.record.append({"at": time.time(), "error": _first_line(exc)})
            if self._conn is not None:
                self._conn.close()
            self._conn = None  # reconnect on the next beat: the writer may come back
            return
        entry = {"id": row_id, "written_at": float(written_at), "acked_at": time.time()}
        self.record.append({**entry, "after_stop": True} if self._stop.is_set() else entry)

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self._write()
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        except OSError as exc:  # the record cannot be written: stop beating rather than beat unrecorded
            self.failure = f"the heartbeat record {self.record.path} cannot be written: {exc}"
        finally:
            if self._conn is not None:
                self._conn.close()

    def stop(self) -> None:
        """Stop beating; a write in flight on a writer that hangs is cancelled, and if it is acknowledged
        after all, it is recorded as after the stop."""
        self._stop.set()
        conn = self._conn
        if conn is not None and self._thread is not None and self._thread.is_alive():
            try:
                conn.cancel_safe(timeout=2)
            except (psycopg.Error, OSError):
                pass  # the writer is gone: the write fails by itself
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 3)


def behind(summary: dict[str, Any], found: list[tuple[int, float]]) -> dict[str, Any] | None:
    """How far a database's heartbeats are behind the acknowledged ones: seconds from the newest there to the
    last acknowledged (both the writer's clock), and the acknowledged rows not there. None before any write was
    acknowledged: nothing to compare. When none arrived, at least the span from the first to the last is missing."""
    if not summary["acknowledged"]:
        return None
    ids = {i for i, _ in found}
    missing = sum(1 for i in summary["acknowledged_ids"] if i not in ids)
    newest = max((at for _, at in found), default=None)
    since = summary["first_written_at"] if newest is None else newest
    return {"seconds": round(max(0.0, summary["last_written_at"] - since), 3), "rows_missing": missing,
            "acknowledged": summary["acknowledged"],
            "at_least": newest is None, "newest_present_written_at": newest,
            "last_acknowledged_written_at": summary["last_written_at"]}
