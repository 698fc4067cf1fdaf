"""The probe's settings: environment variables (how ECS passes them), each overridable by a command-line option.

A bad setting is a ConfigError whose message is one line naming the setting, its value and what is allowed.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

# Where the Dockerfile puts RDS's global CA bundle.
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/rds-global-bundle.pem"
MODES = ("writer", "reader")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


class ConfigError(ValueError):
    """One bad setting; the message is a single line."""


@dataclass(frozen=True)
class Config:
    mode: str
    region: str
    peer_region: str
    writer_region: str
    namespace: str
    environment: str
    interval_seconds: float
    retention_hours: float
    database_host: str
    database_port: int
    database_name: str
    database_secret_arn: str
    database_ca_bundle: str
    endpoints: Mapping[str, str] = field(default_factory=dict)
    # False only for a loopback host without the bundle file: TLS is then required but the server unverified.
    verify_server: bool = True

    def describe(self) -> dict[str, Any]:
        """The effective settings for the start log line (no secret is among them: the password is read later)."""
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "endpoints": dict(self.endpoints)}


def _text(limit: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not 1 <= len(text) <= limit or text != text.strip():
            raise ValueError(f"must be 1 to {limit} characters without surrounding spaces")
        return text
    return parse


def _choice(text: str) -> str:
    if text not in MODES:
        raise ValueError(f"must be {' or '.join(MODES)}")
    return text


def _region(text: str) -> str:
    if not _REGION.fullmatch(text):
        raise ValueError("must be an AWS region name such as us-east-1")
    return text


def _number(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # also rejects nan
            raise ValueError(f"must be a number from {low:g} to {high:g}")
        return value
    return parse


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError("must be a TCP port from 1 to 65535")
    return int(text)


def _namespace(text: str) -> str:
    if text.startswith("AWS/"):
        raise ValueError("must not start with AWS/ (reserved for AWS services)")
    return _text(255)(text)


def _endpoints(text: str) -> dict[str, str]:
    allowed = "must be region=url[,region=url] with http(s) URLs"
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        region, equals, url = item.partition("=")
        if not equals or not _REGION.fullmatch(region.strip()) or not url.strip().startswith(("http://", "https://")):
            raise ValueError(allowed)
        found[region.strip()] = url.strip()
    return found


@dataclass(frozen=True)
class Option:
    name: str  # the Config field
    env: str
    help: str
    parse: Callable[[str], Any]
    default: str | None = None  # None: required
    allowed: str = ""  # said when a required one is missing

    @property
    def flag(self) -> str:
        return "--" + self.env.removeprefix("PROBE_").lower().replace("_", "-")


OPTIONS = (
    Option("mode", "PROBE_MODE", "writer (active region) or reader (standby region)", _choice,
           allowed="writer or reader"),
    Option("region", "PROBE_REGION", "this region", _region, allowed="an AWS region name"),
    Option("peer_region", "PROBE_PEER_REGION", "the other region", _region, allowed="an AWS region name"),
    Option("writer_region", "PROBE_WRITER_REGION", "the active region: this one for a writer, the peer for a reader",
           _region, allowed="an AWS region name"),
    Option("namespace", "PROBE_NAMESPACE", "CloudWatch namespace of the metrics", _namespace,
           allowed="a CloudWatch namespace"),
    Option("environment", "PROBE_ENVIRONMENT", "value of the Environment dimension", _text(255),
           allowed="the environment's name"),
    Option("interval_seconds", "PROBE_INTERVAL_SECONDS", "seconds between heartbeats", _number(0.1, 60), "1"),
    Option("retention_hours", "PROBE_RETENTION_HOURS", "writer: its region's rows older than this are pruned",
           _number(1, 8760), "48"),
    Option("database_host", "DATABASE_HOST", "the local database's host", _text(255), allowed="a host name"),
    Option("database_port", "DATABASE_PORT", "the local database's port", _port, "5432"),
    Option("database_name", "DATABASE_NAME", "the database", _text(63), allowed="a database name"),
    Option("database_secret_arn", "DATABASE_SECRET_ARN",
           "Secrets Manager secret in this region with username and password", _text(2048),
           allowed="a secret's ARN"),
    Option("database_ca_bundle", "DATABASE_CA_BUNDLE", "CA bundle to verify the database (sslmode=verify-full)",
           _text(4096), DEFAULT_CA_BUNDLE),
    Option("endpoints", "PROBE_ENDPOINTS", "region=url[,region=url]: AWS endpoint per region", _endpoints, ""),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse would print the usage too: one line is the contract.
        raise ConfigError(message)


def parser() -> argparse.ArgumentParser:
    command = _Parser(prog="python -m probe", allow_abbrev=False,
                      description="Replication probe: heartbeats through the database, reported to CloudWatch "
                                  "in both regions. Every option overrides its environment variable.")
    for option in OPTIONS:
        default = "required" if option.default is None else f"default {option.default!r}"
        command.add_argument(option.flag, dest=option.name, metavar=option.env.removeprefix("PROBE_"),
                             help=f"{option.help} (env {option.env}; {default})")
    return command


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _fail(source: str, text: object, allowed: str) -> NoReturn:
    raise ConfigError(f"{source}={text!r}: {allowed}")


def _read(argv: Sequence[str] | None, environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The parsed values and where each came from (an option or a variable), for the error messages."""
    given = vars(parser().parse_args(argv))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for option in OPTIONS:
        if given[option.name] is not None:
            source, text = option.flag, given[option.name]
        elif environ.get(option.env):
            source, text = option.env, environ[option.env]
        elif option.default is not None:
            source, text = option.env, option.default
        else:
            raise ConfigError(f"{option.env} (or {option.flag}) is required: {option.allowed}")
        try:
            values[option.name] = option.parse(text)
        except ValueError as exc:
            _fail(source, text, str(exc))
        sources[option.name] = source
    return values, sources


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The settings from `environ` (os.environ by default) overridden by the options in `argv`."""
    values, sources = _read(argv, os.environ if environ is None else environ)
    region, peer, writer = values["region"], values["peer_region"], values["writer_region"]
    if peer == region:
        _fail(sources["peer_region"], peer, f"must differ from {sources['region']}")
    expected = "region" if values["mode"] == "writer" else "peer_region"
    if writer != values[expected]:
        _fail(sources["writer_region"], writer,
              f"in {values['mode']} mode must equal {sources[expected]} ({values[expected]!r})")
    if stray := sorted(set(values["endpoints"]) - {region, peer}):
        _fail(sources["endpoints"], ",".join(stray), f"endpoints only for {region} and {peer}")
    values["verify_server"] = Path(values["database_ca_bundle"]).is_file()
    if not values["verify_server"] and not _is_loopback(values["database_host"]):
        # The probe sends the master user's password: never to a server it has not verified.
        _fail(sources["database_ca_bundle"], values["database_ca_bundle"],
              f"no such file; required to verify {sources['database_host']}={values['database_host']!r} "
              "(only a loopback host may go without)")
    return Config(**values)
