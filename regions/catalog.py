"""The regions this platform runs in, and what each role provisions by default."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["primary", "backup"]
ROLES: tuple[Role, ...] = ("primary", "backup")
NatMode = Literal["perAz", "single"]
NAT_MODES: tuple[NatMode, ...] = ("perAz", "single")


@dataclass(frozen=True)
class RegionInfo:
    name: str
    peer: str
    default_cidr: str
    # AZ names in order of preference. us-east-1e is left out on purpose: it lacks most
    # current instance families (RDS, ElastiCache, Fargate capacity).
    availability_zones: tuple[str, ...]
    partition: str = "aws"


REGIONS: dict[str, RegionInfo] = {
    "us-east-1": RegionInfo(
        name="us-east-1",
        peer="us-west-2",
        default_cidr="10.10.0.0/16",
        availability_zones=("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"),
    ),
    "us-west-2": RegionInfo(
        name="us-west-2",
        peer="us-east-1",
        default_cidr="10.20.0.0/16",
        availability_zones=("us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"),
    ),
}


@dataclass(frozen=True)
class RoleProfile:
    """Defaults a stack file may override; the backup is a warm standby, so smaller."""

    az_count: int
    nat_gateways: NatMode
    db_multi_az: bool
    cache_node_type: str
    cache_nodes: int


# The replica's instance class follows the primary's (a promoted replica must carry the load).
DEFAULT_DB_INSTANCE_CLASS = "db.r6g.large"

PROFILES: dict[Role, RoleProfile] = {
    "primary": RoleProfile(az_count=3, nat_gateways="perAz", db_multi_az=True,
                           cache_node_type="cache.r7g.large", cache_nodes=2),
    "backup": RoleProfile(az_count=2, nat_gateways="single", db_multi_az=False,
                          cache_node_type="cache.t4g.medium", cache_nodes=1),
}

# Container ports behind the load balancer (the deployment guide: uvicorn on 8000, nginx on 80).
SERVICE_PORTS: dict[str, int] = {"api": 8000, "web": 80}

# Cache engine -> version -> parameter group family.
CACHE_VERSIONS: dict[str, dict[str, str]] = {
    "valkey": {"7.2": "valkey7", "8.0": "valkey8", "8.1": "valkey8"},
    "redis": {"6.2": "redis6.x", "7.0": "redis7", "7.1": "redis7"},
}
