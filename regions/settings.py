"""Stack settings: read once from the stack's config, validated, frozen, passed down.

Every problem stops the program before any resource registers, with one message naming the
stack file, the key, the value found and what is allowed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from regions.addressing import MAX_VPC_PREFIX, MIN_VPC_PREFIX
from regions.catalog import NAT_MODES, PROFILES, REGIONS, ROLES, RegionInfo, Role
from regions.stackfile import StackFileError, read_stack_file, stack_file_name

PROJECT = "trading-platform"
_MISSING = object()

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)
_DNS_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ENVIRONMENT = re.compile(r"[a-z][a-z0-9-]{0,31}")
_STACK_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# What AWS accepts in a tag value.
_TAG_VALUE = re.compile(r"[\w\s.:/=+\-@]{1,256}")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))

# Top-level keys under the project namespace: a scalar (None) or an object with these fields.
SCHEMA: dict[str, tuple[str, ...] | None] = {
    "environment": None,
    "role": None,
    "peerStack": None,
    "domain": ("zoneName", "appRecord"),
    "tags": ("costCenter", "owner"),
    "network": ("cidr", "azCount", "natGateways", "flowLogRetentionDays"),
}


class SettingsError(pulumi.RunError):
    """A bad setting. A RunError, so the Pulumi CLI prints the message without a traceback."""

    def __init__(self, stack_file: str, key: str, found: Any, allowed: str, problem: str = "is not allowed"):
        self.stack_file, self.key, self.found, self.allowed = stack_file, key, found, allowed
        if found is _MISSING:
            text = f"{stack_file}: {key} is missing; allowed: {allowed}"
        else:
            text = f"{stack_file}: {key} {_show(found)} {problem}; allowed: {allowed}"
        super().__init__(text)


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class DomainSettings:
    zone_name: str
    app_record: str

    @property
    def app_domain(self) -> str:
        return f"{self.app_record}.{self.zone_name}"


@dataclass(frozen=True)
class TagSettings:
    cost_center: str
    owner: str


@dataclass(frozen=True)
class NetworkSettings:
    cidr: str
    az_count: int
    nat_gateways: str
    flow_log_retention_days: int


@dataclass(frozen=True)
class StackSettings:
    project: str
    stack: str
    stack_file: str
    environment: str
    role: Role
    region: RegionInfo
    peer_stack: str | None
    domain: DomainSettings
    tags: TagSettings
    network: NetworkSettings

    @property
    def availability_zones(self) -> tuple[str, ...]:
        return self.region.availability_zones[: self.network.az_count]

    @property
    def cost_tags(self) -> dict[str, str]:
        """The cost-allocation tags every taggable resource carries (DESIGN.md contract)."""
        return {
            "Project": self.project,
            "Environment": self.environment,
            "CostCenter": self.tags.cost_center,
            "Owner": self.tags.owner,
            "Stack": self.stack,
            "Region": self.region.name,
            "Role": self.role,
            "ManagedBy": "pulumi",
        }


class _Reader:
    """Typed access to one stack's raw config, raising SettingsError with the full key path."""

    def __init__(self, stack_file: str, raw: Mapping[str, str]):
        self.stack_file = stack_file
        self.raw = raw
        self.objects: dict[str, dict[str, Any]] = {}

    def fail(self, key: str, found: Any, allowed: str, problem: str = "is not allowed") -> SettingsError:
        return SettingsError(self.stack_file, key, found, allowed, problem)

    def check_known_keys(self) -> None:
        # A typo must not be silently ignored: an unknown key stops the program.
        prefix = f"{PROJECT}:"
        for key in sorted(self.raw):
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):]
            if name not in SCHEMA:
                raise self.fail(key, self.raw[key], f"the keys {', '.join(prefix + k for k in SCHEMA)}",
                                "is not a known setting")
            fields = SCHEMA[name]
            if fields is None:
                continue
            try:
                value = json.loads(self.raw[key])
            except json.JSONDecodeError:
                value = self.raw[key]
            if not isinstance(value, dict):
                raise self.fail(key, value, f"an object with the fields {', '.join(fields)}",
                                "is not an object")
            for field in value:
                if field not in fields:
                    raise self.fail(f"{key}.{field}", value[field], f"the fields {', '.join(fields)}",
                                    "is not a known setting")
            self.objects[name] = value

    def get(self, path: str, default: Any = _MISSING) -> Any:
        """Value at `name` or `name.field` under the project namespace, or `ns:key` as is."""
        if ":" in path:
            return self.raw.get(path, default)
        name, _, field = path.partition(".")
        if not field:
            return self.raw.get(f"{PROJECT}:{name}", default)
        return self.objects.get(name, {}).get(field, default)

    def key(self, path: str) -> str:
        return path if ":" in path else f"{PROJECT}:{path}"

    def string(self, path: str, pattern: re.Pattern[str], allowed: str, default: Any = _MISSING) -> str:
        value = self.get(path, default)
        if value is _MISSING:
            raise self.fail(self.key(path), _MISSING, allowed)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(self.key(path), value, allowed)
        return value

    def choice(self, path: str, choices: tuple[str, ...], default: Any = _MISSING) -> str:
        allowed = "one of " + ", ".join(choices)
        value = self.get(path, default)
        if value is _MISSING:
            raise self.fail(self.key(path), _MISSING, allowed)
        if value not in choices:
            raise self.fail(self.key(path), value, allowed)
        return value

    def integer(self, path: str, lo: int, hi: int, default: Any = _MISSING, why: str = "") -> int:
        allowed = f"an integer from {lo} to {hi}{why}"
        value = self.get(path, default)
        if value is _MISSING:
            raise self.fail(self.key(path), _MISSING, allowed)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(self.key(path), value, allowed, "is not an integer")
        if not lo <= value <= hi:
            raise self.fail(self.key(path), value, allowed)
        return value


def _parse_cidr(reader: _Reader, path: str, default: str) -> str:
    value = reader.get(path, default)
    allowed = (f"an RFC 1918 IPv4 network from /{MIN_VPC_PREFIX} to /{MAX_VPC_PREFIX} "
               f"with no host bits, e.g. {default}")
    try:
        network = ipaddress.ip_network(value) if isinstance(value, str) else None
    except ValueError:
        network = None
    if (network is None or network.version != 4
            or not MIN_VPC_PREFIX <= network.prefixlen <= MAX_VPC_PREFIX
            or not any(network.subnet_of(block) for block in _RFC1918)):
        raise reader.fail(reader.key(path), value, allowed)
    return str(network)


def _peek(raw: Mapping[str, str], key: str, field: str | None = None) -> Any:
    value = raw.get(key)
    if field is None or value is None:
        return value
    try:
        obj = json.loads(value)
    except json.JSONDecodeError:
        return None
    return obj.get(field) if isinstance(obj, dict) else None


def _check_other_stacks(reader: _Reader, project_dir: Path, role: Role, region: RegionInfo, cidr: str) -> None:
    """The stack files are a pair: one per role, peer regions, disjoint address ranges."""
    own = ipaddress.ip_network(cidr)
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        if path.name == reader.stack_file:
            continue
        try:
            raw, _ = read_stack_file(path)
        except StackFileError:
            continue  # that stack reports its own file when it runs
        other_role = _peek(raw, f"{PROJECT}:role")
        other_region = REGIONS.get(_peek(raw, "aws:region") or "")
        if other_role == role:
            raise reader.fail(reader.key("role"), role,
                              f"exactly one stack file per role ({', '.join(ROLES)})",
                              f"is already the role of {path.name}")
        if other_role in ROLES and other_region is not None and region.name != other_region.peer:
            raise reader.fail("aws:region", region.name,
                              f"{other_region.peer} (the catalog's peer of {other_region.name}, "
                              f"the {other_role} stack's region in {path.name})",
                              "does not pair with the other stack")
        other_cidr = _peek(raw, f"{PROJECT}:network", "cidr") or (other_region.default_cidr if other_region else None)
        try:
            other = ipaddress.ip_network(other_cidr) if isinstance(other_cidr, str) else None
        except ValueError:
            other = None
        if other is not None and own.overlaps(other):
            raise reader.fail(reader.key("network.cidr"), cidr,
                              f"a range disjoint from {other} (the peer VPCs must stay routable to each other)",
                              f"overlaps the {other_role or path.stem} stack's {other} ({path.name})")


def load_settings(raw: Mapping[str, str], stack: str, project_dir: Path, project: str = PROJECT) -> StackSettings:
    """Validate one stack's config (`raw`, as the engine passes it) against the stack files beside it."""
    reader = _Reader(stack_file_name(stack), raw)

    region_name = reader.get("aws:region")
    if region_name is _MISSING:
        raise reader.fail("aws:region", _MISSING, "one of " + ", ".join(REGIONS))
    if region_name not in REGIONS:
        raise reader.fail("aws:region", region_name, "one of " + ", ".join(REGIONS), "is not in the region catalog")
    region = REGIONS[region_name]
    reader.check_known_keys()

    role: Role = reader.choice("role", ROLES)  # type: ignore[assignment]
    profile = PROFILES[role]
    environment = reader.string("environment", _ENVIRONMENT,
                                "a lowercase name of letters, digits and '-', up to 32 characters, e.g. production")

    peer_stack = reader.get("peerStack", None)
    if role == "backup":
        peer_stack = reader.string("peerStack", _STACK_NAME,
                                   f"the primary stack's fully qualified name, e.g. organization/{project}/primary")
    elif peer_stack is not None:
        raise reader.fail(reader.key("peerStack"), peer_stack, "not set in a primary stack",
                          "is set, but only the backup stack references its peer")

    domain = DomainSettings(
        zone_name=reader.string("domain.zoneName", re.compile(rf"(?:{_DNS_LABEL}\.)+{_DNS_LABEL}"),
                                "a lowercase DNS zone name, e.g. trading.example.com"),
        app_record=reader.string("domain.appRecord", re.compile(_DNS_LABEL),
                                 "a single lowercase DNS label, e.g. app"),
    )
    tag_allowed = "1 to 256 letters, digits, spaces and _ . : / = + - @"
    tags = TagSettings(
        cost_center=reader.string("tags.costCenter", _TAG_VALUE, tag_allowed),
        owner=reader.string("tags.owner", _TAG_VALUE, tag_allowed),
    )

    cidr = _parse_cidr(reader, "network.cidr", region.default_cidr)
    az_limit = len(region.availability_zones)
    network = NetworkSettings(
        cidr=cidr,
        az_count=reader.integer("network.azCount", 2, az_limit, profile.az_count,
                                f" (the usable AZs of {region.name} in the region catalog)"),
        nat_gateways=reader.choice("network.natGateways", NAT_MODES, profile.nat_gateways),
        flow_log_retention_days=_retention(reader, "network.flowLogRetentionDays", 90),
    )

    _check_other_stacks(reader, project_dir, role, region, cidr)

    return StackSettings(
        project=project, stack=stack, stack_file=reader.stack_file, environment=environment, role=role,
        region=region, peer_stack=peer_stack, domain=domain, tags=tags, network=network,
    )


def _retention(reader: _Reader, path: str, default: int) -> int:
    value = reader.integer(path, LOG_RETENTION_DAYS[0], LOG_RETENTION_DAYS[-1], default)
    if value not in LOG_RETENTION_DAYS:
        raise reader.fail(reader.key(path), value,
                          "one of the CloudWatch Logs retention periods " + ", ".join(map(str, LOG_RETENTION_DAYS)))
    return value


def raw_config() -> dict[str, str]:
    """All config the engine gave this program: the PULUMI_CONFIG bag overlaid by explicit values."""
    return {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}


def from_pulumi(project_dir: Path) -> StackSettings:
    return load_settings(raw_config(), pulumi.get_stack(), project_dir, pulumi.get_project())


def check_peer_region(settings: StackSettings, found: Any) -> str:
    """The backup's StackReference must lead to a stack in the catalog's peer region."""
    if found != settings.region.peer:
        raise SettingsError(settings.stack_file, f"{PROJECT}:peerStack", settings.peer_stack,
                            f"the primary stack, whose region is {settings.region.peer}",
                            f"leads to a stack whose region output is {_show(found)}")
    return found
