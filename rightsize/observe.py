"""What AWS says about one stack, in its own region: CloudWatch series and what RDS runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import botocore.config
from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

from drills.outputs import InputError
from regions.sessions import AWS_ERRORS, have_credentials, new_session
from rightsize.metrics import Metric, Series, fetch
from rightsize.rules import DatabaseState, Targets

_CONFIG = botocore.config.Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60)
T = TypeVar("T")
_CREDENTIALS = ("set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (reading CloudWatch metrics and "
                "describing the services and the database is all it does)")


class AwsError(Exception):
    """An AWS call failed: exit 3, naming the call."""


def _call(what: str, region: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise InputError(f"no AWS credentials for {what} in {region} ({exc}): {_CREDENTIALS}") from None
    except ClientError as exc:
        code, message = (exc.response.get("Error", {}).get(k) for k in ("Code", "Message"))
        raise AwsError(f"{what} in {region} failed: {code or 'error'}: {message or exc}") from None
    except AWS_ERRORS as exc:  # after ClientError's own case above
        raise AwsError(f"{what} in {region} failed: {exc}") from None


def _client(service: str, region: str) -> Any:
    return new_session().client(service, region_name=region, config=_CONFIG)


def check_credentials() -> None:
    """Before anything is read: no credentials is bad input, not an AWS failure."""
    if not have_credentials():
        raise InputError(f"no AWS credentials: {_CREDENTIALS}")


def series(targets: Targets, metrics: list[Metric], start: datetime, end: datetime,
           period: int) -> dict[Metric, Series]:
    if not metrics:
        return {}
    client = _client("cloudwatch", targets.region)
    return _call("cloudwatch:GetMetricData", targets.region, lambda: fetch(client, metrics, start, end, period))


def database(targets: Targets) -> DatabaseState:
    client = _client("rds", targets.region)
    found = _call("rds:DescribeDBInstances", targets.region, lambda: client.describe_db_instances(
        DBInstanceIdentifier=targets.db_instance_identifier)["DBInstances"][0])
    return DatabaseState(instance_class=found["DBInstanceClass"], allocated_gb=int(found["AllocatedStorage"]))

