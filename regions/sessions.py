"""boto3 sessions that share one botocore loader.

A session per client keeps the tools' clients independent (a session is not thread-safe, and the drills make clients
in several threads), but every new session reads and parses the service models again from botocore's JSON files:
several milliseconds a model, most of a drill's own CPU time when a test run makes hundreds of clients. The parsed
models are the same for every session of a process, so one loader serves them all.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError


class NotAnAwsAnswer(BotoCoreError):
    """What a proxy or a captive portal answers where AWS's response was due: botocore reads a body its JSON protocol
    cannot parse as a message, and an HTML page as an empty answer, so the caller's lookup of what AWS always
    returns would fail as a KeyError."""

    fmt = "{operation}: the endpoint answered {status} with {what}, not AWS (a proxy or a captive portal?)"


# What an AWS call can raise: AWS's refusal, the SDK's own failures (connection, credentials, retries, a web page),
# and a response botocore cannot parse at all, which it raises outside its hierarchy.
AWS_ERRORS = (ClientError, BotoCoreError, ResponseParserError)


def _refuse_what_aws_does_not_send(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    body = response_dict.get("body")
    if not isinstance(body, bytes) or not body.strip():
        return  # a stream, or an empty answer: for the parser
    service = operation_model.service_model
    # The protocol botocore chose among the service's (newer botocore); else the service's only one.
    protocol = getattr(service, "resolved_protocol", service.protocol)
    what = None
    if body[:512].lstrip().lower().startswith((b"<html", b"<!doctype html")):
        what = "a web page"
    elif protocol in ("json", "rest-json"):
        try:
            json.loads(body)
        except ValueError:
            what = "a body that is not JSON"
    if what:
        raise NotAnAwsAnswer(operation=operation_model.name, status=response_dict.get("status_code"), what=what)


class _Paths(list):
    """boto3 appends its own data directory to the loader of every session it makes: once is enough."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@cache
def _loader() -> botocore.loaders.Loader:
    extra = _Paths(os.path.expanduser(p) for p in os.environ.get("AWS_DATA_PATH", "").split(os.pathsep) if p)
    return botocore.loaders.Loader(extra_search_paths=extra)


def have_credentials() -> bool:
    """Whether boto3 finds credentials where it looks (environment, profile, SSO, instance role): checked once before a
    command calls AWS, so that their absence is one line, not one failure per call."""
    return new_session().get_credentials() is not None


def new_session() -> boto3.session.Session:
    """A new boto3 session (its own credentials and configuration, read from the environment now)."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _loader())
    core.register("before-parse", _refuse_what_aws_does_not_send)
    return boto3.session.Session(botocore_session=core)
