"""The stack-file settings of each phase of a failover round trip (regions/roles.py says what they mean).

A switchover to a region makes it the `activeRegion` in both files and leaves the other region's database
`detached` (the former writer, kept as it is). Rebuilding that region's replica takes two `pulumi up`s: one
that retires the former writer (deletion protection off, a named final snapshot) and one that replaces it
with a replica of the new writer under the same identifier. After a switchover and a rebuild each way, both
stack files are as they started.

A setting's value None removes the key.
"""

from __future__ import annotations

PROJECT = "trading-platform"
ROLES = ("primary", "backup")
Setting = dict  # {"role", "key", "value"}


def _setting(role: str, key: str, value: object) -> Setting:
    return {"role": role, "key": f"{PROJECT}:{key}", "value": value}


def other(role: str) -> str:
    return ROLES[1 - ROLES.index(role)]


def switched_to(role: str, regions: dict[str, str]) -> list[Setting]:
    """After the database in `role`'s region was promoted: that region is active, the other's former writer is
    detached, and nothing else of the earlier round trip is left."""
    return [*(_setting(r, "activeRegion", regions[role]) for r in ROLES),
            _setting(other(role), "database.detached", True),
            _setting(role, "database.detached", None), _setting(role, "database.retireWithSnapshot", None)]


def retiring(role: str, snapshot: str) -> list[Setting]:
    """The former writer in `role`'s region may be deleted, leaving `snapshot`."""
    return [_setting(role, "database.retireWithSnapshot", snapshot)]


def rebuilt(role: str) -> list[Setting]:
    """`role`'s region holds a replica of the active writer again."""
    return [_setting(role, "database.detached", None), _setting(role, "database.retireWithSnapshot", None)]


def retire_snapshot(identifier: str, drill_id: str) -> str:
    """A final snapshot name unique to the drill: a second round trip must not collide with the first's."""
    return f"{identifier}-retired-{drill_id}".lower().replace("_", "-")


def by_role(settings: list[Setting]) -> dict[str, dict[str, object]]:
    """{role: {key: value}}: a phase's settings as edits per stack."""
    found: dict[str, dict[str, object]] = {role: {} for role in ROLES}
    for setting in settings:
        found[setting["role"]][setting["key"]] = setting["value"]
    return found
