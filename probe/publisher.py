"""Publishing to CloudWatch in each region from its own thread through a mailbox where the latest values win, so
that a slow or dead region never holds up the heartbeats nor grows a queue: it gets the newest values when it
answers again."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from probe.log import Log, State, first_line

Batch = list[dict[str, Any]]


def datum(name: str, value: float, unit: str, dimensions: Sequence[dict[str, str]], at: float) -> dict[str, Any]:
    """One high-resolution datapoint at epoch seconds `at`."""
    return {"MetricName": name, "Dimensions": list(dimensions), "Value": value, "Unit": unit,
            "StorageResolution": 1, "Timestamp": datetime.fromtimestamp(at, UTC)}


class Mailbox:
    """Holds one batch: a newer one replaces the one not taken yet."""

    def __init__(self) -> None:
        self._ready = threading.Condition()
        self._batch: Batch | None = None
        self._closed = False

    def put(self, batch: Batch) -> None:
        with self._ready:
            self._batch = batch
            self._ready.notify()

    def take(self) -> Batch | None:
        """Waits for a batch; once closed, the one left (the last values) and then None."""
        with self._ready:
            self._ready.wait_for(lambda: self._batch is not None or self._closed)
            batch, self._batch = self._batch, None
            return batch

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()


class RegionPublisher:
    """Sends the batches for one region. Its failures are logged when they start and when they end."""

    def __init__(self, region: str, client: Any, namespace: str, log: Log):
        self.region, self._client, self._namespace = region, client, namespace
        self._mailbox = Mailbox()
        self._state = State(log, initial="ok")
        self.published = self.failed = 0
        # A daemon: at exit a call in flight to a dead region is abandoned, not waited for.
        self._thread = threading.Thread(target=self._run, name=f"publish-{region}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, batch: Batch) -> None:
        self._mailbox.put(batch)

    def close(self) -> None:
        """No more batches; the one waiting is still sent (the last acknowledgement is what a drill reads)."""
        self._mailbox.close()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while (batch := self._mailbox.take()) is not None:
            self._send(batch)

    def _send(self, batch: Batch) -> None:
        try:
            self._client.put_metric_data(Namespace=self._namespace, MetricData=batch)
        except Exception as exc:  # whatever one call raises, the thread must go on to the next batch
            self.failed += 1
            self._state.set("failing", "publishing_failing", region=self.region, error=first_line(exc))
            return
        self.published += 1
        self._state.set("ok", "publishing_recovered", region=self.region, failed_batches=self.failed)


class Publisher:
    """The same batches to every region's publisher."""

    def __init__(self, regions: Sequence[RegionPublisher]):
        self._regions = list(regions)

    def start(self) -> None:
        for region in self._regions:
            region.start()

    def publish(self, batch: Batch) -> None:
        for region in self._regions:
            region.offer(batch)

    def close(self, drain_seconds: float = 0) -> None:
        """Stop taking batches and send each region the last one, waiting at most `drain_seconds` in all: a dead
        region's call is then abandoned with its daemon thread."""
        for region in self._regions:
            region.close()
        deadline = time.monotonic() + drain_seconds
        for region in self._regions:
            region.join(max(0.0, deadline - time.monotonic()))

    def summary(self) -> dict[str, dict[str, int]]:
        return {r.region: {"published": r.published, "failed": r.failed} for r in self._regions}
