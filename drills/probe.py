"""The probe: GET the health URL every second and learn which region answered."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass

from drills.progress import Ticker


@dataclass
class Answer:
    at: float
    region: str | None
    status: int | None
    error: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class ProbeTimeout(Exception):
    pass


def probe_once(url: str, timeout: float = 2.0) -> Answer:
    started = time.time()
    request = urllib.request.Request(url, headers={"Cache-Control": "no-cache", "User-Agent": "trading-platform-drill"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=ssl.create_default_context()) as response:
            body = response.read(65536)
            region = response.headers.get("X-Region")
            try:
                document = json.loads(body)
                region = document.get("region", region) if isinstance(document, dict) else region
            except (json.JSONDecodeError, UnicodeDecodeError):
                pass
            return Answer(started, region, response.status)
    except urllib.error.HTTPError as exc:
        return Answer(started, exc.headers.get("X-Region") if exc.headers else None, exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return Answer(started, None, None, str(getattr(exc, "reason", exc)))


def wait_for_region(url: str, region: str, timeout: float, interval: float, record: Callable[[Answer], None],
                    between: Callable[[], None] = lambda: None, ticker: Ticker | None = None) -> Answer:
    """Probe until a good answer (2xx) comes from `region`; `between` runs between probes (stop conditions)."""
    deadline = time.time() + timeout
    while True:
        answer = probe_once(url)
        record(answer)
        if ticker:
            ticker.tick(f"last answer from {answer.region or 'nobody'} ({answer.status or answer.error})")
        if answer.status is not None and 200 <= answer.status < 300 and answer.region == region:
            return answer
        if time.time() >= deadline:
            raise ProbeTimeout(f"no good answer from {region} at {url} within {timeout:g} s "
                               f"(last: {answer.region or '-'} {answer.status or answer.error})")
        between()
        time.sleep(interval)
