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
    # AZ IDs in order of preference. IDs, not names: a name (us-east-1a) maps to a different zone in each
    # account, an ID (use1-az1) is the same zone everywhere.
    availability_zone_ids: tuple[str, ...]
    # Zones that lack the current instance families this platform runs (Graviton RDS and ElastiCache classes,
    # Nitro-based hosts): never chosen, and refused when a stack file pins one.
    constrained_zone_ids: tuple[str, ...]
    # Route53 zone of the region's application load balancers (for alias records).
    alb_zone_id: str
    # The Elastic Load Balancing account that writes ALB access logs in this region.
    elb_account_id: str
    partition: str = "aws"


REGIONS: dict[str, RegionInfo] = {
    "us-east-1": RegionInfo(
        name="us-east-1",
        peer="us-west-2",
        default_cidr="10.10.0.0/16",
        availability_zone_ids=("use1-az1", "use1-az2", "use1-az4", "use1-az6", "use1-az5"),
        constrained_zone_ids=("use1-az3",),
        alb_zone_id="Z35SXDOTRQ7X7K",
        elb_account_id="127311923021",
    ),
    "us-west-2": RegionInfo(
        name="us-west-2",
        peer="us-east-1",
        default_cidr="10.20.0.0/16",
        availability_zone_ids=("usw2-az1", "usw2-az2", "usw2-az3", "usw2-az4"),
        constrained_zone_ids=(),
        alb_zone_id="Z1H1FL5HABSF5",
        elb_account_id="797873946194",
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
SERVICES = ("api", "web", "worker", "beat")


@dataclass(frozen=True)
class ServiceProfile:
    cpu: int
    memory: int
    # Capacity while the region takes the traffic (the guide's HPA: 2 to 10 for api and web).
    min: int
    max: int
    desired: int
    # Capacity while it is the warm standby: api and web answer health checks, and nothing writes
    # (the database is a read-only replica) or schedules (exactly one Celery beat, in the active region).
    standby_min: int
    standby_desired: int


SERVICE_PROFILES: dict[str, ServiceProfile] = {
    "api": ServiceProfile(cpu=1024, memory=2048, min=2, max=10, desired=2, standby_min=1, standby_desired=1),
    "web": ServiceProfile(cpu=256, memory=512, min=2, max=10, desired=2, standby_min=1, standby_desired=1),
    "worker": ServiceProfile(cpu=1024, memory=2048, min=1, max=10, desired=2, standby_min=0, standby_desired=0),
    "beat": ServiceProfile(cpu=256, memory=512, min=1, max=1, desired=1, standby_min=0, standby_desired=0),
}

# Fargate's CPU units -> the memory sizes (MiB) each allows.
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}

# Cache engine -> version -> parameter group family.
CACHE_VERSIONS: dict[str, dict[str, str]] = {
    "valkey": {"7.2": "valkey7", "8.0": "valkey8", "8.1": "valkey8"},
    "redis": {"6.2": "redis6.x", "7.0": "redis7", "7.1": "redis7"},
}

# Memory (GiB) of the RDS classes this platform is sized for: family -> size -> GiB. Families of one row share
# their memory per size.
_CLASS_MEMORY_GIB: dict[tuple[str, ...], dict[str, int]] = {
    ("t3", "t4g"): {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32},
    ("m5", "m6g", "m6i", "m7g", "m7i", "m8g"): {"large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64,
                                                "8xlarge": 128, "12xlarge": 192, "16xlarge": 256},
    ("r5", "r6g", "r6i", "r7g", "r7i", "r8g"): {"large": 16, "xlarge": 32, "2xlarge": 64, "4xlarge": 128,
                                                "8xlarge": 256, "12xlarge": 384, "16xlarge": 512},
}


def db_class_memory_gib(instance_class: str) -> int | None:
    """`db.r6g.large` -> 16; None for a class the table does not know."""
    _, family, size = instance_class.split(".")
    return next((sizes.get(size) for families, sizes in _CLASS_MEMORY_GIB.items() if family in families), None)
