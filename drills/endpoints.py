"""Where the drill's AWS calls go, and which failures mean a region cannot be reached."""

from __future__ import annotations

import re
from collections.abc import Iterable

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from drills.outputs import InputError

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


def parse_endpoints(values: Iterable[str]) -> dict[str, str]:
    """`--endpoint-url REGION=URL` values as {region: url}."""
    endpoints = {}
    for value in values:
        region, _, url = value.partition("=")
        if not _REGION.fullmatch(region) or not url.startswith(("http://", "https://")):
            raise InputError(f"--endpoint-url {value!r}: expected REGION=URL, e.g. us-east-1=http://127.0.0.1:5000")
        endpoints[region] = url
    return endpoints


def unreachable(exc: BaseException) -> bool:
    """The endpoint could not be reached, timed out, or AWS answered 5xx: the region is out, which a
    best-effort step outlives. A 4xx is an answer (a refusal, a missing resource) and is not this."""
    if isinstance(exc, ConnectionError | HTTPClientError):
        return True
    return isinstance(exc, ClientError) and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
