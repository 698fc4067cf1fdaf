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


PROFILES: dict[Role, RoleProfile] = {
    "primary": RoleProfile(az_count=3, nat_gateways="perAz"),
    "backup": RoleProfile(az_count=2, nat_gateways="single"),
}

# Container ports behind the load balancer (the deployment guide: uvicorn on 8000, nginx on 80).
SERVICE_PORTS: dict[str, int] = {"api": 8000, "web": 80}
