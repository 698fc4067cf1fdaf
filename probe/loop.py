"""The probe's loop: one tick per interval, as the writer (in the active region) or the reader (in the standby).

`run(config, stop)` is the in-process entry point (the sandbox can run the probe on a thread); `python -m probe`
runs it with the process's signals setting `stop`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import psycopg

from probe import (
    ENVIRONMENT_DIMENSION,
    LAST_ACKNOWLEDGED_SEQ,
    LAST_ACKNOWLEDGED_WRITE,
    NEWEST_REPLICATED_SEQ,
    NEWEST_REPLICATED_WRITE,
    REPLICATION_AGE,
    WRITER_DIMENSION,
)
from probe.aws import Clients
from probe.config import Config
from probe.database import Database, DatabaseError, Heartbeat, insert, newest, prepare, prune
from probe.log import Log, State
from probe.publisher import Publisher, RegionPublisher, datum

PRUNE_EVERY_SECONDS = 600
# On stop, how long the last values may take to reach CloudWatch (ECS allows 30 s between SIGTERM and SIGKILL).
DRAIN_SECONDS = 2
SUMMARY_EVERY_SECONDS = 60
# The local region may retry a little (its publisher has its own thread); the peer never: a region that is down
# would only make its thread later for the newest values.
LOCAL_ATTEMPTS, PEER_ATTEMPTS = 3, 1


def dimensions(config: Config) -> list[dict[str, str]]:
    """Both modes report under the writer's region: the reader measures how far it is behind that writer."""
    return [{"Name": ENVIRONMENT_DIMENSION, "Value": config.environment},
            {"Name": WRITER_DIMENSION, "Value": config.writer_region}]


class Role(Protocol):
    def tick(self) -> None: ...

    def summary(self) -> dict[str, Any]: ...


class Writer:
    """Each tick writes the next heartbeat of its region and publishes the acknowledgement."""

    def __init__(self, config: Config, database: Database, publisher: Publisher, log: Log):
        self._config, self._database, self._publisher, self._log = config, database, publisher, log
        self._dimensions = dimensions(config)
        self._next: int | None = None  # read from the table at the first connection: seqs go on across restarts
        self._state = State(log, initial="ok")
        self._prune_at = 0.0
        self._acknowledged = self._failures = 0
        self._last: Heartbeat | None = None

    def tick(self) -> None:
        try:
            heartbeat = self._database.run(self._write)
        except DatabaseError as exc:
            # The same seq again next tick: acknowledged seqs stay dense.
            self._failures += 1
            self._state.set("failing", "writes_failing", seq=self._next, error=str(exc))
            return
        acknowledged_at = time.time()
        self._next, self._last = heartbeat.seq + 1, heartbeat
        self._acknowledged += 1
        self._state.set("ok", "writes_resumed", seq=heartbeat.seq, failed_ticks=self._failures)
        self._publisher.publish([
            datum(LAST_ACKNOWLEDGED_WRITE, heartbeat.written_at, "None", self._dimensions, acknowledged_at),
            datum(LAST_ACKNOWLEDGED_SEQ, heartbeat.seq, "Count", self._dimensions, acknowledged_at)])
        self._prune_if_due()

    def _write(self, conn: psycopg.Connection) -> Heartbeat:
        if self._next is None:
            self._next = prepare(conn, self._config.region) + 1
            self._log.event("writing", region=self._config.region, next_seq=self._next)
        return insert(conn, self._config.region, self._next)

    def _prune_if_due(self) -> None:
        if time.monotonic() < self._prune_at:
            return
        self._prune_at = time.monotonic() + PRUNE_EVERY_SECONDS
        region, hours = self._config.region, self._config.retention_hours
        try:
            deleted = self._database.run(lambda conn: prune(conn, region, hours))
        except DatabaseError as exc:
            self._log.event("prune_failed", error=str(exc))
            return
        self._log.event("pruned", region=region, rows=deleted, older_than_hours=hours)

    def summary(self) -> dict[str, Any]:
        return {"acknowledged": self._acknowledged, "failed_ticks": self._failures,
                "last_seq": self._last.seq if self._last else None}


class Reader:
    """Each tick reads the writer region's newest heartbeat on the local database (a replica, or a writer once
    promoted: read the same way) and publishes it with its age."""

    def __init__(self, config: Config, database: Database, publisher: Publisher, log: Log):
        self._config, self._database, self._publisher = config, database, publisher
        self._dimensions = dimensions(config)
        self._state = State(log)
        self._reads = self._failures = 0
        self._last: Heartbeat | None = None

    def tick(self) -> None:
        region = self._config.writer_region
        try:
            heartbeat = self._database.run(lambda conn: newest(conn, region))
        except DatabaseError as exc:
            self._failures += 1
            self._state.set("failing", "reads_failing", error=str(exc))
            return
        if heartbeat is None:
            # Nothing published: the alarms treat missing data as breaching.
            self._state.set("absent", "no_heartbeat", writer_region=region)
            return
        now = time.time()
        age = max(0.0, now - heartbeat.written_at)  # clocks of two regions: never negative
        self._reads, self._last = self._reads + 1, heartbeat
        self._state.set("ok", "heartbeats_found", writer_region=region, seq=heartbeat.seq, age=round(age, 3))
        self._publisher.publish([
            datum(NEWEST_REPLICATED_WRITE, heartbeat.written_at, "None", self._dimensions, now),
            datum(NEWEST_REPLICATED_SEQ, heartbeat.seq, "Count", self._dimensions, now),
            datum(REPLICATION_AGE, age, "Seconds", self._dimensions, now)])

    def summary(self) -> dict[str, Any]:
        return {"reads": self._reads, "failed_ticks": self._failures,
                "newest_seq": self._last.seq if self._last else None}


def _publisher(config: Config, clients: Clients, log: Log) -> Publisher:
    return Publisher([
        RegionPublisher(config.region, clients.client("cloudwatch", config.region, LOCAL_ATTEMPTS),
                        config.namespace, log),
        RegionPublisher(config.peer_region, clients.client("cloudwatch", config.peer_region, PEER_ATTEMPTS),
                        config.namespace, log)])


def _beat(role: Role, interval: float, stop: threading.Event, log: Log, publisher: Publisher) -> None:
    summary_at = time.monotonic() + SUMMARY_EVERY_SECONDS
    while not stop.is_set():
        started = time.monotonic()
        role.tick()
        if started >= summary_at:
            summary_at = started + SUMMARY_EVERY_SECONDS
            log.event("summary", **role.summary(), publishing=publisher.summary())
        stop.wait(interval - (time.monotonic() - started))


def run(config: Config, stop: threading.Event, log: Log | None = None) -> None:
    """Runs the probe until `stop` is set; returns within about an interval, the database timeout and
    DRAIN_SECONDS, in which the last values still waiting are sent (the last acknowledgement is what a drill
    reads); a call still in flight then is abandoned with its daemon thread."""
    log = log or Log()
    log.event("started", **config.describe())
    clients = Clients(config.endpoints)
    publisher = _publisher(config, clients, log)
    database = Database(config, clients.client("secretsmanager", config.region, LOCAL_ATTEMPTS), log)
    role: Role = (Writer if config.mode == "writer" else Reader)(config, database, publisher, log)
    publisher.start()
    try:
        _beat(role, config.interval_seconds, stop, log, publisher)
    finally:
        publisher.close(DRAIN_SECONDS)
        database.close()
    log.event("stopped", **role.summary(), publishing=publisher.summary())
