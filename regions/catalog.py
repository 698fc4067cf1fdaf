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


@dataclass(frozen=True)
class RegionShape:
    """What a region runs beside its services' capacities: its database's Multi-AZ, its NAT gateways and its cache.
    Whichever region is the activeRegion runs its active shape, the other region its standby shape (regions/roles.py),
    the way the services run their active or standby capacities."""

    db_multi_az: bool
    nat_gateways: NatMode
    cache_node_type: str
    # 2 or more: automatic failover and Multi-AZ (ElastiCache allows failover only with 2+ nodes, Multi-AZ only with
    # failover); 1: neither.
    cache_nodes: int


# The region that takes the traffic and writes: a Multi-AZ writer, a NAT gateway per AZ (an AZ outage spares the
# others), a cache (the Celery broker) that fails over to another AZ. The same whichever region is active.
ACTIVE_SHAPE = RegionShape(db_multi_az=True, nat_gateways="perAz", cache_node_type="cache.r7g.large", cache_nodes=2)
# A warm standby: a Single-AZ replica, one NAT gateway, one burstable cache node.
STANDBY_SHAPE = RegionShape(db_multi_az=False, nat_gateways="single", cache_node_type="cache.t4g.medium",
                            cache_nodes=1)

# The replica's instance class follows the primary's (a promoted replica must carry the load).
DEFAULT_DB_INSTANCE_CLASS = "db.r6g.large"
# RDS's weekly maintenance window (UTC), after AWS Backup's 02:00 job and the 03:00-04:00 backup window: patching,
# and the changes a database does not apply at once (database.applyImmediately, regions/roles.py).
DB_MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"

PROFILES: dict[Role, RoleProfile] = {
    "primary": RoleProfile(az_count=3),
    "backup": RoleProfile(az_count=2),
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


def _sizes(table: dict[tuple[str, ...], dict[str, float]], family: str) -> dict[str, float]:
    return next((sizes for families, sizes in table.items() if family in families), {})


def db_class_memory_gib(instance_class: str) -> int | None:
    """`db.r6g.large` -> 16; None for a class the table does not know."""
    _, family, size = instance_class.split(".")
    memory = _sizes(_CLASS_MEMORY_GIB, family).get(size)
    return None if memory is None else int(memory)


def db_class_neighbour(instance_class: str, step: int) -> str | None:
    """The class `step` sizes away in the same family (`db.r6g.xlarge`, -1 -> `db.r6g.large`); None past either end
    of the family or for a class the table does not know."""
    prefix, family, size = instance_class.split(".")
    sizes = list(_sizes(_CLASS_MEMORY_GIB, family))
    if size not in sizes or not 0 <= sizes.index(size) + step < len(sizes):
        return None
    return f"{prefix}.{family}.{sizes[sizes.index(size) + step]}"


# Memory (GiB) of the ElastiCache node types this platform is sized for, as the ElastiCache node-type table
# lists them: family -> size -> GiB.
_CACHE_NODE_MEMORY_GIB: dict[tuple[str, ...], dict[str, float]] = {
    ("t3", "t4g"): {"micro": 0.5, "small": 1.37, "medium": 3.09},
    ("m6g", "m7g"): {"large": 6.38, "xlarge": 12.93, "2xlarge": 26.04, "4xlarge": 52.26, "8xlarge": 103.68,
                     "12xlarge": 157.12, "16xlarge": 209.55},
    ("r6g", "r7g"): {"large": 13.07, "xlarge": 26.32, "2xlarge": 52.82, "4xlarge": 105.81, "8xlarge": 209.55,
                     "12xlarge": 317.77, "16xlarge": 419.09},
}
# A memory-optimized node's general-purpose sibling: the same generation and vCPUs, half the memory.
_GENERAL_PURPOSE = {"r6g": "m6g", "r7g": "m7g"}


def cache_node_memory_gib(node_type: str) -> float | None:
    _, family, size = node_type.split(".")
    return _sizes(_CACHE_NODE_MEMORY_GIB, family).get(size)


# The node families a Global Datastore runs on, in size large and above (ElastiCache User Guide, global datastores,
# "Prerequisites and limitations"): no burstable (t2, t3, t4g) and no previous-generation nodes.
GLOBAL_DATASTORE_FAMILIES = ("m5", "m6g", "m7g", "m8g", "r5", "r6g", "r6gd", "r7g", "r8g", "c7gn", "c8gn")


def supports_global_datastore(node_type: str) -> bool:
    _, family, size = node_type.split(".")
    return family in GLOBAL_DATASTORE_FAMILIES and size not in ("micro", "small", "medium")


def smaller_cache_node(node_type: str) -> str | None:
    """One size smaller in the family; below a memory-optimized family's smallest, its general-purpose sibling of
    the same size (`cache.r7g.large` -> `cache.m7g.large`). Never into a burstable family from another."""
    prefix, family, size = node_type.split(".")
    sizes = list(_sizes(_CACHE_NODE_MEMORY_GIB, family))
    if size not in sizes:
        return None
    if sizes.index(size) > 0:
        return f"{prefix}.{family}.{sizes[sizes.index(size) - 1]}"
    return f"{prefix}.{_GENERAL_PURPOSE[family]}.{size}" if family in _GENERAL_PURPOSE else None


def smaller_task(cpu: int, memory: int) -> tuple[int, int] | None:
    """The next smaller Fargate size: half the CPU (256 stays 256) with the least memory that size allows of at least
    half the memory; None at Fargate's smallest (256 CPU, 512 MiB)."""
    cpus = sorted(FARGATE_MEMORY)
    new_cpu = cpus[max(0, cpus.index(cpu) - 1)]
    fits = [m for m in FARGATE_MEMORY[new_cpu] if memory // 2 <= m < memory]
    return (new_cpu, min(fits)) if fits else None


def larger_task(cpu: int, memory: int) -> tuple[int, int] | None:
    """The next larger Fargate size: twice the CPU with the least memory it allows of at least twice the memory (or
    its most); None at Fargate's largest."""
    cpus = sorted(FARGATE_MEMORY)
    if cpus.index(cpu) + 1 == len(cpus):
        return None
    new_cpu = cpus[cpus.index(cpu) + 1]
    allowed = FARGATE_MEMORY[new_cpu]
    return new_cpu, min((m for m in allowed if m >= 2 * memory), default=max(allowed))
