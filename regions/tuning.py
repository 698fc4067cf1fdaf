"""The deployment guide's PostgreSQL tuning, converted to the units RDS parameter groups take."""

from __future__ import annotations

import re
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

# RDS takes memory parameters as plain integers in the parameter's own unit, in kB.
_UNIT_KB = {"shared_buffers": 8, "effective_cache_size": 8, "wal_buffers": 8,
            "work_mem": 1, "maintenance_work_mem": 1}
# These need a restart; RDS applies them at the next reboot rather than failing the change.
_STATIC = {"max_connections", "shared_buffers", "wal_buffers"}
_SIZE = re.compile(r"(\d+)(kB|MB|GB)")
_KB_PER = {"kB": 1, "MB": 1024, "GB": 1024 * 1024}


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


def postgres_parameters(log_min_duration_ms: int) -> list[Parameter]:
    params = [Parameter(name, rds_value(name, value), "pending-reboot" if name in _STATIC else "immediate")
              for name, value in GUIDE_TUNING.items()]
    params.append(Parameter("rds.force_ssl", "1", "immediate"))
    params.append(Parameter("log_min_duration_statement", str(log_min_duration_ms), "immediate"))
    return params
