"""Fencing the old writer, and the report of which fences held.

The first fence is ECS's: api, worker and beat scaled to 0 (drills/capacity.py). It does not stop a task that
someone or something starts again, nor end a session a task left open, so when the old writer's region answers
the drill also fences at the database: its security group's ingress from the app tasks is revoked (no new
session) and the instance rebooted (security groups keep tracked connections open: the EC2 user guide,
"Security group connection tracking"; a reboot ends every session). Both are in the old writer's region, so an
evacuation tries them and goes on without them when that region is out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from drills.outputs import StackOutputs

if TYPE_CHECKING:
    from drills.scenarios import Context

# What EC2 answers when the permission to revoke is not there: revoked already (a resumed step).
_ALREADY_REVOKED = ("InvalidPermission.NotFound",)


def _permission(outputs: StackOutputs) -> list[dict[str, Any]]:
    fence = outputs.db_fence or {}
    return [{"IpProtocol": "tcp", "FromPort": fence["port"], "ToPort": fence["port"],
             "UserIdGroupPairs": [{"GroupId": fence["app_security_group_id"]}]}]


def database_calls(outputs: StackOutputs) -> list[str]:
    if not outputs.db_fence:
        return []
    fence = outputs.db_fence
    return [f"ec2[{outputs.region}].revoke_security_group_ingress(GroupId={fence['security_group_id']}, "
            f"tcp {fence['port']} from {fence['app_security_group_id']})",
            f"rds[{outputs.region}].reboot_db_instance(DBInstanceIdentifier={outputs.db_instance_identifier})"]


def fence_database(outputs: StackOutputs) -> Callable[[Context, dict], dict]:
    def run(ctx: Context, detail: dict) -> dict:
        if not outputs.db_fence:
            return {"ingress_revoked": None, "reboot_requested_at": None,
                    "note": f"{outputs.source} has no db_fence output (deployed before it): not fenced at the database"}
        detail["revoke_called"] = True
        ctx.checkpoint()  # an abort then restores the ingress
        try:
            ctx.client("ec2", outputs.region).revoke_security_group_ingress(
                GroupId=outputs.db_fence["security_group_id"], IpPermissions=_permission(outputs))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in _ALREADY_REVOKED:
                raise
        if not detail.get("reboot_requested_at"):
            ctx.client("rds", outputs.region).reboot_db_instance(DBInstanceIdentifier=outputs.db_instance_identifier)
            detail["reboot_requested_at"] = time.time()
        return {"ingress_revoked": True, "reboot_requested_at": detail["reboot_requested_at"]}
    return run


def restore_ingress(outputs: StackOutputs) -> Callable[[Context, dict], None]:
    def undo(ctx: Context, detail: dict) -> None:
        if not detail.get("revoke_called") or not outputs.db_fence:
            return
        try:
            ctx.client("ec2", outputs.region).authorize_security_group_ingress(
                GroupId=outputs.db_fence["security_group_id"], IpPermissions=_permission(outputs))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
                raise
    return undo


def report(steps: list[dict], ecs_step: str, database_step: str) -> list[dict[str, Any]]:
    """Each fence, and whether it held: True, False, or None (not known: its region did not answer, or it did not
    run)."""
    by_name = {s["name"]: s for s in steps}

    def entry(name: str) -> tuple[str, dict]:
        step = by_name.get(name) or {}
        return step.get("status", "not run"), step.get("detail") or {}

    status, _ = entry(ecs_step)
    fences = [{"fence": "ecs", "what": "api, worker and beat scaled to 0 and none running",
               "held": True if status == "done" else False if status == "failed" else None,
               "how": _how(status, "the services reported 0 running tasks")}]
    status, detail = entry(database_step)
    fences.append({"fence": "database-ingress", "what": "the database's ingress from the app tasks revoked",
                   "held": bool(detail.get("ingress_revoked")) if status == "done" else
                   False if status == "failed" else None,
                   "how": detail.get("note") or _how(status, "EC2 accepted the revocation")})
    fences.append({"fence": "database-sessions", "what": "the old writer rebooted, ending every open session",
                   "held": bool(detail.get("reboot_requested_at")) if status == "done" else
                   False if status == "failed" else None,
                   "how": detail.get("note") or _how(status, "RDS accepted the reboot")})
    return fences


def _how(status: str, done: str) -> str:
    return {"done": done, "skipped": "its region did not answer (best effort, skipped)",
            "failed": "the step failed", "undone": "undone by the abort"}.get(status, f"the step is {status}")
