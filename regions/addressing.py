"""Carving a VPC CIDR into public, private (app) and isolated (data) subnets per AZ."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# A /16 to /20 VPC leaves every tier at least a /26 (64 addresses, 59 usable) per AZ.
MIN_VPC_PREFIX = 16
MAX_VPC_PREFIX = 20
MAX_AZS = 6


@dataclass(frozen=True)
class SubnetPlan:
    public: tuple[str, ...]
    private: tuple[str, ...]
    isolated: tuple[str, ...]


def plan_subnets(cidr: str, az_count: int) -> SubnetPlan:
    """Private subnets get an eighth of the VPC each (Fargate tasks take one IP apiece);
    public and isolated share the last eighth in 1/64 blocks, which is plenty for load
    balancers, NAT gateways, RDS and ElastiCache."""
    if not 1 <= az_count <= MAX_AZS:
        raise ValueError(f"az_count must be 1..{MAX_AZS}, got {az_count}")
    vpc = ipaddress.ip_network(cidr)
    if not MIN_VPC_PREFIX <= vpc.prefixlen <= MAX_VPC_PREFIX:
        raise ValueError(f"VPC prefix must be /{MIN_VPC_PREFIX} to /{MAX_VPC_PREFIX}, got /{vpc.prefixlen}")
    eighths = list(vpc.subnets(new_prefix=vpc.prefixlen + 3))
    small = list(vpc.subnets(new_prefix=vpc.prefixlen + 6))
    return SubnetPlan(
        private=tuple(str(eighths[i]) for i in range(az_count)),
        public=tuple(str(small[48 + i]) for i in range(az_count)),
        isolated=tuple(str(small[56 + i]) for i in range(az_count)),
    )
