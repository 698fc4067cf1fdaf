"""When RDS applies the database's changes (database.applyImmediately: the writer's, and a detached former writer's,
wait for the maintenance window by default, a replica's do not), and the writer's final snapshot, named per
instance."""

from __future__ import annotations

import pytest

from drills import phases
from regions.settings import _SNAPSHOT_ID
from synth.engine import evaluate

NS = "trading-platform"
INSTANCE = "aws:rds/instance:Instance"
RANDOM_ID = "random:index/randomId:RandomId"
IDENTIFIER = "trading-platform-production"
REGIONS = {"primary": "us-east-1", "backup": "us-west-2"}
EVACUATED = phases.by_role(phases.switched_to("backup", REGIONS))


def instance(evaluation):
    (found,) = evaluation.of_type(INSTANCE)
    return found


def both(project_dir) -> dict:
    cache: dict = {}
    evaluate("backup", project_dir, cache)
    return cache


def test_as_the_files_ship_the_writer_waits_for_the_maintenance_window_and_the_replica_does_not(evaluations):
    writer, replica = instance(evaluations["primary"]), instance(evaluations["backup"])
    assert (writer.inputs["applyImmediately"], replica.inputs["applyImmediately"]) == (False, True)
    assert writer.inputs["maintenanceWindow"] == replica.inputs["maintenanceWindow"] == "sun:05:00-sun:06:00"


@pytest.mark.parametrize("setting", [True, False])
def test_the_setting_is_the_writers_whichever_region_is_active(project, setting):
    edit = {f"{NS}:database.applyImmediately": setting}
    shipped = both(project(primary=edit, backup=edit))
    assert instance(shipped["primary"]).inputs["applyImmediately"] is setting
    assert instance(shipped["backup"]).inputs["applyImmediately"] is True  # the replica
    evacuated = both(project(primary={**EVACUATED["primary"], **edit}, backup={**EVACUATED["backup"], **edit}))
    assert instance(evacuated["backup"]).inputs["applyImmediately"] is setting  # the promoted writer
    assert instance(evacuated["primary"]).inputs["applyImmediately"] is setting  # the detached former writer's


def test_a_writers_final_snapshot_is_named_per_instance_within_rdss_rules(evaluations, project):
    writer = instance(evaluations["primary"])
    (generation,) = evaluations["primary"].of_type(RANDOM_ID)
    name = writer.inputs["finalSnapshotIdentifier"]
    assert name == f"{IDENTIFIER}-final-{generation.state['hex']}"
    # RDS: 1 to 255 letters, digits and hyphens, a letter first, no two hyphens together, no hyphen last.
    assert _SNAPSHOT_ID.fullmatch(name) and len(generation.state["hex"]) == 8
    # Drawn once per instance and kept in the state: its keepers are the instance's identity (what replaces it),
    # never its role, so neither a later preview nor a promotion draws another.
    key = evaluations["primary"].named("aws:kms/key:Key", "stack-key").state["arn"]
    assert generation.inputs["keepers"] == {"identifier": IDENTIFIER, "kmsKeyId": key}
    (replicas,) = evaluations["backup"].of_type(RANDOM_ID)
    evacuated = both(project(**EVACUATED))
    (promoted,) = evacuated["backup"].of_type(RANDOM_ID)
    assert (promoted.urn, promoted.inputs) == (replicas.urn, replicas.inputs)
    assert instance(evacuated["backup"]).inputs["finalSnapshotIdentifier"] == (
        f"{IDENTIFIER}-final-{promoted.state['hex']}")
    # The longest environment still makes a valid name.
    long = {f"{NS}:environment": "staging-eu1"}
    name = instance(evaluate("primary", project(primary=long, backup=long))).inputs["finalSnapshotIdentifier"]
    assert name.startswith("trading-platform-staging-eu1-final-") and _SNAPSHOT_ID.fullmatch(name)


def test_a_retiring_former_writer_leaves_the_snapshot_the_drill_named(project):
    snapshot = phases.retire_snapshot(IDENTIFIER, "20261130T0100Z-b2")
    retiring = phases.by_role([*phases.switched_to("backup", REGIONS), *phases.retiring("primary", snapshot)])
    primary = instance(evaluate("primary", project(**retiring)))
    assert (primary.inputs["finalSnapshotIdentifier"], primary.inputs["deletionProtection"]) == (snapshot, False)
