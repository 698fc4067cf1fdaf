"""boto3 clients with short timeouts, per region, with the endpoint PROBE_ENDPOINTS gives that region if any
(otherwise boto3's own environment, AWS_ENDPOINT_URL included, applies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

CONNECT_TIMEOUT = 2
READ_TIMEOUT = 3


class Clients:
    """Makes the clients from one session (creating a session is slow; its clients are thread-safe)."""

    def __init__(self, endpoints: Mapping[str, str]):
        self._session = boto3.session.Session()
        self._endpoints = endpoints

    def client(self, service: str, region: str, attempts: int) -> Any:
        """`attempts` in all: botocore's max_attempts would count the retries only."""
        config = BotoConfig(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
                            retries={"total_max_attempts": attempts, "mode": "standard"})
        return self._session.client(service, region_name=region, endpoint_url=self._endpoints.get(region),
                                    config=config)
