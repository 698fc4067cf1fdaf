"""The deployment guide's PostgreSQL tuning, scaled to the instance class and converted to RDS units.

The guide's figures were written for a server of about 1 GiB. Its non-memory settings stay as written;
its memory settings keep their share of that server, as RDS formulas of DBInstanceClassMemory (the bytes
RDS leaves the database process), so every instance class gets the guide's ratios. max_connections is not
the guide's 100 but what the services can open at their peak (`connection_budget`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

# "PostgreSQL Optimization" in the deployment guide, as written there.
GUIDE_TUNING: dict[str, str] = {
    "max_connections": "100",
    "shared_buffers": "256MB",
    "effective_cache_size": "1GB",
    "work_mem": "4MB",
    "maintenance_work_mem": "64MB",
    "random_page_cost": "1.1",
    "effective_io_concurrency": "200",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "16MB",
}
GUIDE_SERVER_BYTES = 1024 ** 3
GUIDE_MAX_CONNECTIONS = 100
# Memory the guide sizes for its server. wal_buffers stays 16MB: PostgreSQL's own ceiling for it.
SCALED = ("shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem")
# Superuser slots RDS keeps, plus migrations, operators and monitoring.
RESERVED_CONNECTIONS = 20
# RDS's default max_connections gives each connection this much of DBInstanceClassMemory: a budget above
# it leaves connections more memory than the instance has.
RDS_BYTES_PER_CONNECTION = 9531392

# RDS takes memory parameters as plain integers in the parameter's own unit, in kB.
_UNIT_KB = {"shared_buffers": 8, "effective_cache_size": 8, "wal_buffers": 8,
            "work_mem": 1, "maintenance_work_mem": 1}
# These need a restart; RDS applies them at the next reboot rather than failing the change.
_STATIC = {"max_connections", "shared_buffers", "wal_buffers"}
_SIZE = re.compile(r"(\d+)(kB|MB|GB)")
_KB_PER = {"kB": 1, "MB": 1024, "GB": 1024 * 1024}
_FORMULA = re.compile(r"\{DBInstanceClassMemory/(\d+)\}")


class Parameter(NamedTuple):
    name: str
    value: str
    apply_method: str


def rds_value(name: str, value: str) -> str:
    """`shared_buffers` '256MB' -> '32768' (8 kB pages); non-memory values pass through."""
    if name not in _UNIT_KB:
        return value
    match = _SIZE.fullmatch(value)
    if not match:
        raise ValueError(f"{name}: {value!r} is not a size like 256MB")
    kb = int(match.group(1)) * _KB_PER[match.group(2)]
    unit = _UNIT_KB[name]
    if kb % unit:
        raise ValueError(f"{name}: {value} is not a whole number of {unit} kB units")
    return str(kb // unit)


def memory_formula(name: str, max_connections: int) -> str:
    """The guide's share of its server as an RDS formula: '{DBInstanceClassMemory/32768}' for shared_buffers
    (a quarter of memory, in 8 kB pages). work_mem is per sort and per connection, so the guide's total across
    its 100 connections is shared among `max_connections`."""
    units = int(rds_value(name, GUIDE_TUNING[name]))
    divisor = GUIDE_SERVER_BYTES // units
    if name == "work_mem":
        divisor = divisor * max_connections // GUIDE_MAX_CONNECTIONS
    return f"{{DBInstanceClassMemory/{divisor}}}"


def evaluate_formula(value: str, instance_memory_bytes: int) -> int:
    """What RDS sets for a formula value on an instance with this DBInstanceClassMemory."""
    match = _FORMULA.fullmatch(value)
    if not match:
        raise ValueError(f"{value!r} is not a DBInstanceClassMemory formula")
    return instance_memory_bytes // int(match.group(1))


def connection_budget(peaks: Iterable[tuple[int, int]], pool_size: int) -> int:
    """max_connections: every (peak tasks, database processes per task) at `pool_size` connections a process,
    plus the reserve."""
    return sum(tasks * processes * pool_size for tasks, processes in peaks) + RESERVED_CONNECTIONS


def postgres_parameters(log_min_duration_ms: int, max_connections: int) -> list[Parameter]:
    params = []
    for name, value in GUIDE_TUNING.items():
        if name == "max_connections":
            value = str(max_connections)
        elif name in SCALED:
            value = memory_formula(name, max_connections)
        else:
            value = rds_value(name, value)
        params.append(Parameter(name, value, "pending-reboot" if name in _STATIC else "immediate"))
    params.append(Parameter("rds.force_ssl", "1", "immediate"))
    params.append(Parameter("log_min_duration_statement", str(log_min_duration_ms), "immediate"))
    return params


def scaled_memory_mib(max_connections: int, memory_bytes: int) -> dict[str, float]:
    """What each scaled memory parameter comes to, in MiB, on an instance with this DBInstanceClassMemory."""
    return {name: evaluate_formula(memory_formula(name, max_connections), memory_bytes) * _UNIT_KB[name] / 1024
            for name in SCALED}
