"""What else changes hands with the writer: the shared secrets, the password's rotation and the restarts it
triggers (regions/roles.py says how the stacks declare each side).

An evacuation leaves nothing in the new active region tied to the old one: its copies of the shared secrets
become standalone (StopReplicationToReplica, called in their own region, as AWS requires), its
database-credentials names the promoted writer (the rotation function logs in there), and the rule that
restarted its services on the old region's new passwords is disabled. The old region's rotation and forwarding
stop too, when it answers (best effort). A failback stops the active region's rotation first, so the password
holds still, and copies it into the primary's secret before the primary's replica is promoted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from drills.outputs import StackOutputs

if TYPE_CHECKING:
    from drills.scenarios import Context

CREDENTIALS = "database-credentials"
# The region's own secrets among a stack's `secret_arns`: never replicated, nothing to detach.
REGIONAL = ("connection",)


def _credentials_arn(outputs: StackOutputs) -> str:
    return outputs.secret_arns[CREDENTIALS]


def _host(outputs: StackOutputs) -> str:
    return outputs.db_endpoint.rsplit(":", 1)[0]


def _rule_name(outputs: StackOutputs) -> str | None:
    return (outputs.password_restarts or {}).get("rule_name")


def stop_rotation_calls(outputs: StackOutputs) -> list[str]:
    calls = [f"secretsmanager[{outputs.region}].cancel_rotate_secret(SecretId={_credentials_arn(outputs)})"]
    if _rule_name(outputs):
        calls.append(f"events[{outputs.region}].disable_rule(Name={_rule_name(outputs)})")
    return calls


def stop_rotation(outputs: StackOutputs) -> Callable[[Context, dict], dict]:
    """Rotation off in the old writer's region, and its restart rule (which forwards to the peer) disabled. What
    was on is journaled first, for the undo."""
    def run(ctx: Context, detail: dict) -> dict:
        secrets = ctx.client("secretsmanager", outputs.region)
        if "rotation" not in detail:
            found = secrets.describe_secret(SecretId=_credentials_arn(outputs))
            detail["rotation"] = {"enabled": bool(found.get("RotationEnabled")),
                                  "lambda_arn": found.get("RotationLambdaARN"),
                                  "rules": found.get("RotationRules")}
            detail["rule_enabled"] = bool(_rule_name(outputs)) and ctx.client("events", outputs.region).describe_rule(
                Name=_rule_name(outputs))["State"] == "ENABLED"
            ctx.checkpoint()
        if detail["rotation"]["enabled"]:
            secrets.cancel_rotate_secret(SecretId=_credentials_arn(outputs))
        if detail["rule_enabled"]:
            ctx.client("events", outputs.region).disable_rule(Name=_rule_name(outputs))
        return {"rotation_stopped": detail["rotation"]["enabled"], "rule_disabled": detail["rule_enabled"]}
    return run


def restore_rotation(outputs: StackOutputs) -> Callable[[Context, dict], None]:
    def undo(ctx: Context, detail: dict) -> None:
        rotation = detail.get("rotation") or {}
        if rotation.get("enabled") and rotation.get("lambda_arn"):
            # The schedule as it was; nothing rotates now.
            ctx.client("secretsmanager", outputs.region).rotate_secret(
                SecretId=_credentials_arn(outputs), RotationLambdaARN=rotation["lambda_arn"],
                RotationRules=rotation["rules"], RotateImmediately=False)
        if detail.get("rule_enabled"):
            ctx.client("events", outputs.region).enable_rule(Name=_rule_name(outputs))
    return undo


def shared(outputs: StackOutputs) -> dict[str, str]:
    return {name: arn for name, arn in outputs.secret_arns.items() if name not in REGIONAL}


def detach_calls(target: StackOutputs, source: StackOutputs) -> list[str]:
    calls = [f"secretsmanager[{target.region}].stop_replication_to_replica(SecretId={arn})"
             for arn in shared(target).values()]
    calls.append(f"secretsmanager[{target.region}].put_secret_value(SecretId={_credentials_arn(target)}, "
                 f"SecretString=<its value, host={_host(target)}>)")
    if _rule_name(target):
        calls.append(f"events[{target.region}].disable_rule(Name={_rule_name(target)}) while it watches "
                     f"{source.region}'s secret")
    return calls


def _with_host(secrets: Any, arn: str, host: str) -> bool:
    """Point the credentials at `host` (the rotation function logs in there), keeping the password; False when
    they already did."""
    value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    if value.get("host") == host:
        return False
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({**value, "host": host}))
    return True


def detach(ctx: Context, detail: dict) -> dict:
    """Make the target's copies of the shared secrets standalone, point its credentials at its promoted writer,
    and disable the restarts it heard from the source's secret. Only the target's region is called."""
    target, source = ctx.target, ctx.source
    secrets = ctx.client("secretsmanager", target.region)
    standalone = []
    for name, arn in shared(target).items():
        primary_region = secrets.describe_secret(SecretId=arn).get("PrimaryRegion")
        if primary_region and primary_region != target.region:
            secrets.stop_replication_to_replica(SecretId=arn)
            standalone.append(name)
    repointed = _with_host(secrets, _credentials_arn(target), _host(target))
    rule, disabled = _rule_name(target), False
    watches = (target.password_restarts or {}).get("secret_arn", "")
    if rule and f":{source.region}:" in watches:
        events = ctx.client("events", target.region)
        if events.describe_rule(Name=rule)["State"] == "ENABLED":
            events.disable_rule(Name=rule)
            disabled = True
    return {"made_standalone": standalone, "credentials_host": _host(target) if repointed else None,
            "restart_rule_disabled": rule if disabled else None}


def copy_credentials_calls(source: StackOutputs, target: StackOutputs) -> list[str]:
    return [f"secretsmanager[{source.region}].get_secret_value(SecretId={_credentials_arn(source)})",
            f"secretsmanager[{target.region}].put_secret_value(SecretId={_credentials_arn(target)}, "
            f"SecretString=<that value, host={_host(target)}>)"]


def copy_credentials(ctx: Context, detail: dict) -> dict:
    """The password the source's writer runs with (its rotation stopped), into the target's secret: the target's
    replica has it already through the WAL, and its services and rotation read it from there once promoted."""
    source, target = ctx.source, ctx.target
    value = json.loads(ctx.client("secretsmanager", source.region).get_secret_value(
        SecretId=_credentials_arn(source))["SecretString"])
    secrets = ctx.client("secretsmanager", target.region)
    wanted = {**value, "host": _host(target)}
    current = json.loads(secrets.get_secret_value(SecretId=_credentials_arn(target))["SecretString"])
    if current == wanted:
        return {"copied": False}
    secrets.put_secret_value(SecretId=_credentials_arn(target), SecretString=json.dumps(wanted))
    return {"copied": True}


def broker_calls(target: StackOutputs) -> list[str]:
    return [f"elasticache[{target.region}].failover_global_replication_group(GlobalReplicationGroupId="
            f"{target.cache_global_datastore}, PrimaryRegion={target.region}, "
            f"PrimaryReplicationGroupId={target.cache_replication_group_id})"]


def broker_primary(elasticache: Any, datastore: str) -> str | None:
    (group,) = elasticache.describe_global_replication_groups(GlobalReplicationGroupId=datastore,
                                                              ShowMemberInfo=True)["GlobalReplicationGroups"]
    return next((m["ReplicationGroupRegion"] for m in group.get("Members", []) if m.get("Role") == "PRIMARY"), None)


def promote_broker(ctx: Context, detail: dict) -> dict:
    """Make the target's cluster the Global Datastore's primary, so its workers find a writable broker holding the
    tasks queued before the fence. Called in the target's region: AWS takes the failover from any region holding a
    secondary ("Replication across AWS Regions using global datastores"), so it needs nothing of the source's."""
    target = ctx.target
    datastore = target.cache_global_datastore
    elasticache = ctx.client("elasticache", target.region)
    if broker_primary(elasticache, datastore) != target.region:
        elasticache.failover_global_replication_group(
            GlobalReplicationGroupId=datastore, PrimaryRegion=target.region,
            PrimaryReplicationGroupId=target.cache_replication_group_id)
    ctx.wait(f"{datastore}'s primary in {target.region}",
             lambda: broker_primary(elasticache, datastore) == target.region)
    return {"broker_primary": target.region}
