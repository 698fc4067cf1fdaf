"""The database credentials from the Secrets Manager secret (the stacks' database-credentials secret)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

REQUIRED_KEYS = ("username", "password")


class SecretError(Exception):
    """The secret could not be read or lacks what the probe needs; the message is one line."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def read(client: Any, secret_id: str) -> Credentials:
    """The secret's current value: JSON with at least username and password."""
    try:
        text = client.get_secret_value(SecretId=secret_id).get("SecretString")
    except (BotoCoreError, ClientError) as exc:
        raise SecretError(f"cannot read the secret {secret_id}: {exc}") from None
    try:
        document = json.loads(text or "")
    except json.JSONDecodeError:
        raise SecretError(f"the secret {secret_id}: SecretString is not JSON") from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(document, dict) or not isinstance(document.get(key), str)]
    if missing:
        raise SecretError(f"the secret {secret_id}: no {' or '.join(missing)} in it")
    return Credentials(document["username"], document["password"])
