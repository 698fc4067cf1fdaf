"""Deleting a retired former writer, the step of a rebuild that Pulumi must not do itself: a replacement would
replace what depends on the instance's address (the first password version among them). Run with the
credentials `pulumi up` runs with (the drill role may not delete databases).
"""

from __future__ import annotations

from collections.abc import Callable

from botocore.exceptions import ClientError, WaiterError

from drills.outputs import InputError
from regions.sessions import AWS_ERRORS, new_session


def delete_retired(region: str, identifier: str, snapshot: str, say: Callable[[str], None]) -> None:
    """Delete the instance leaving `snapshot`, and wait until it is gone; nothing to do when it already is.
    AWS refuses while deletion protection is on: the retire phase's `pulumi up` turns it off."""
    rds = new_session().client("rds", region_name=region)
    try:
        found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "DBInstanceNotFound":
            say(f"  {identifier} in {region}: already deleted")
            return
        raise InputError(f"rds[{region}].describe_db_instances({identifier}): {exc}") from None
    except AWS_ERRORS as exc:  # after ClientError's own case above
        raise InputError(f"rds[{region}].describe_db_instances({identifier}): {exc}") from None
    if found[0].get("DeletionProtection"):
        raise InputError(f"{identifier} in {region} still has deletion protection on: run the retire phase's "
                         "`pulumi up` first (it turns it off and names the final snapshot)")
    try:
        if found[0]["DBInstanceStatus"] != "deleting":
            rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=False,
                                   FinalDBSnapshotIdentifier=snapshot)
        say(f"  {identifier} in {region}: deleting, leaving the final snapshot {snapshot} ...")
        rds.get_waiter("db_instance_deleted").wait(DBInstanceIdentifier=identifier,
                                                  WaiterConfig={"Delay": 30, "MaxAttempts": 120})
    except (*AWS_ERRORS, WaiterError) as exc:
        raise InputError(f"rds[{region}].delete_db_instance({identifier}): {exc}") from None
    say(f"  {identifier} in {region}: deleted")
