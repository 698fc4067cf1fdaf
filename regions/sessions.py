"""boto3 sessions that share one botocore loader.

A session per client keeps the tools' clients independent (a session is not thread-safe, and the drills make clients
in several threads), but every new session reads and parses the service models again from botocore's JSON files:
several milliseconds a model, most of a drill's own CPU time when a test run makes hundreds of clients. The parsed
models are the same for every session of a process, so one loader serves them all.
"""

from __future__ import annotations

import os
from functools import cache

import boto3
import botocore.loaders
import botocore.session


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
    return boto3.session.Session(botocore_session=core)
