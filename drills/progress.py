"""A line every few seconds on long waits: what the drill waits for, and for how long so far."""

from __future__ import annotations

import time
from collections.abc import Callable

Say = Callable[[str], None]
EVERY = 10.0


class Ticker:
    def __init__(self, say: Say, what: str, limit: float | None = None, every: float | None = None):
        self.say, self.what, self.limit = say, what, limit
        self.every = EVERY if every is None else every
        self.started = self.last = time.time()

    def tick(self, detail: str = "") -> None:
        """Says where the wait stands when `every` seconds have passed since it last did."""
        now = time.time()
        if now - self.last < self.every:
            return
        self.last = now
        limit = f" of {self.limit:g} s" if self.limit else ""
        self.say(f"  ... {self.what}: {now - self.started:.0f} s{limit}{'; ' + detail if detail else ''}")
