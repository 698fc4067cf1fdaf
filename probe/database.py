"""The local database: its connection (opened when needed, dropped when it breaks) and the heartbeat statements."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from probe import TABLE, credentials
from probe.config import Config
from probe.log import Log, State, first_line

# Seconds: a writer that hangs (a network partition, a failover in progress) fails the tick fast.
TIMEOUT = 3
# After an authentication failure the secret is read again (the password rotates), at most this often.
REREAD_SECRET_SECONDS = 1.0
APPLICATION_NAME = "replication-probe"

CREATE = (f"CREATE TABLE IF NOT EXISTS {TABLE} (region text NOT NULL, seq bigint NOT NULL, "
          "written_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (region, seq))")
_SELECT = f"SELECT seq, extract(epoch FROM written_at) FROM {TABLE}"

T = TypeVar("T")


class DatabaseError(Exception):
    """A tick's work on the database failed; the message is one line."""


@dataclass(frozen=True)
class Heartbeat:
    seq: int
    written_at: float  # epoch seconds, the writer's clock (it replicates with the row)


def _heartbeat(row: tuple[Any, ...] | None) -> Heartbeat | None:
    return None if row is None else Heartbeat(int(row[0]), float(row[1]))


def prepare(conn: psycopg.Connection, region: str) -> int:
    """Creates the table if absent; returns the region's highest seq (0 for none), where the writer goes on."""
    if conn.execute("SELECT to_regclass(%s) IS NULL", (TABLE,)).fetchone()[0]:
        conn.execute(CREATE)
    return conn.execute(f"SELECT coalesce(max(seq), 0) FROM {TABLE} WHERE region = %s", (region,)).fetchone()[0]


def insert(conn: psycopg.Connection, region: str, seq: int) -> Heartbeat:
    """Writes heartbeat `seq`; a row already there (a commit whose acknowledgement was lost, or another writer
    task) is durable on the writer, so it is the acknowledgement."""
    row = conn.execute(f"INSERT INTO {TABLE} (region, seq) VALUES (%s, %s) ON CONFLICT (region, seq) DO NOTHING "
                       "RETURNING seq, extract(epoch FROM written_at)", (region, seq)).fetchone()
    if row is None:
        row = conn.execute(f"{_SELECT} WHERE region = %s AND seq = %s", (region, seq)).fetchone()
    heartbeat = _heartbeat(row)
    if heartbeat is None:  # deleted between the two statements: only by hand
        raise DatabaseError(f"heartbeat {seq} of {region} conflicted but is not there")
    return heartbeat


def newest(conn: psycopg.Connection, region: str) -> Heartbeat | None:
    """The region's newest heartbeat on this database; None without any (or without the table)."""
    if conn.execute("SELECT to_regclass(%s) IS NULL", (TABLE,)).fetchone()[0]:
        return None
    return _heartbeat(conn.execute(f"{_SELECT} WHERE region = %s ORDER BY seq DESC LIMIT 1", (region,)).fetchone())


def prune(conn: psycopg.Connection, region: str, hours: float) -> int:
    """Deletes the region's rows older than `hours`, always keeping its newest; returns how many."""
    return conn.execute(f"DELETE FROM {TABLE} WHERE region = %s AND written_at < now() - %s * interval '1 hour' "
                        f"AND seq < (SELECT max(seq) FROM {TABLE} WHERE region = %s)", (region, hours, region)).rowcount


def connect(config: Config, login: credentials.Credentials) -> psycopg.Connection:
    tls = ({"sslmode": "verify-full", "sslrootcert": config.database_ca_bundle} if config.verify_server
           else {"sslmode": "require"})
    return psycopg.connect(host=config.database_host, port=config.database_port, dbname=config.database_name,
                           user=login.username, password=login.password, autocommit=True,
                           application_name=APPLICATION_NAME, connect_timeout=TIMEOUT,
                           options=f"-c statement_timeout={TIMEOUT * 1000}", tcp_user_timeout=TIMEOUT * 1000,
                           keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=2, **tls)


def _authentication_failed(exc: psycopg.OperationalError) -> bool:
    # libpq reports it only in the message (no SQLSTATE on a failed connection).
    return "authentication failed" in str(exc)


class Database:
    """The connection to the local database. The credentials are read from the secret at the first connection
    and again after an authentication failure, because the password rotates."""

    def __init__(self, config: Config, secrets: Any, log: Log):
        self._config, self._secrets = config, secrets
        self._conn: psycopg.Connection | None = None
        self._login: credentials.Credentials | None = None
        self._read_at = 0.0
        self._state = State(log)

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """`work` on the connection (opened if needed); any failure is a DatabaseError."""
        conn = self._connection()
        try:
            return work(conn)
        except psycopg.Error as exc:
            # A statement refused on a sound connection (read-only, say) keeps it; timeouts and breaks drop it.
            if conn.broken or conn.closed or isinstance(exc, psycopg.OperationalError):
                self._drop("database_lost", exc)
            raise DatabaseError(first_line(exc)) from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None:
            try:
                self._conn = self._open()
                recovery = self._conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            except (psycopg.Error, credentials.SecretError) as exc:
                self._drop("database_unavailable", exc)
                raise DatabaseError(first_line(exc)) from None
            self._state.set("up", "database_connected", host=self._config.database_host,
                            role="replica" if recovery else "writer", verified=self._config.verify_server)
        return self._conn

    def _open(self) -> psycopg.Connection:
        try:
            return connect(self._config, self._credentials())
        except psycopg.OperationalError as exc:
            if not _authentication_failed(exc) or time.monotonic() - self._read_at < REREAD_SECRET_SECONDS:
                raise
        self._login = None  # the password rotated: read the secret again and retry at once
        return connect(self._config, self._credentials())

    def _credentials(self) -> credentials.Credentials:
        if self._login is None:
            self._login = credentials.read(self._secrets, self._config.database_secret_arn)
            self._read_at = time.monotonic()
        return self._login

    def _drop(self, event: str, exc: BaseException) -> None:
        self.close()
        self._state.set("down", event, host=self._config.database_host, error=first_line(exc))
