"""A failover round trip as stack files: every phase the drill tool writes evaluates, nothing stateful is
replaced between two phases except the replica being rebuilt, and the files end as they started."""

from __future__ import annotations

import shutil

import pytest

from drills import phases, reconcile
from synth.engine import REPO, evaluate

NS = "trading-platform"
INSTANCE = "aws:rds/instance:Instance"
BACKUPS_COPY = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
# Stateful resources besides the database: their inputs must not change at all between phases.
STATEFUL = ("aws:elasticache/replicationGroup:ReplicationGroup", "aws:s3/bucket:Bucket", "aws:kms/key:Key",
            "aws:backup/vault:Vault")
REGIONS = {"primary": "us-east-1", "backup": "us-west-2"}
IDENTIFIER = "trading-platform-production"
# Instance inputs a phase may change without replacing it: the promotion, and the deletion settings.
UPDATED_IN_PLACE = {"replicateSourceDb", "deletionProtection", "skipFinalSnapshot", "finalSnapshotIdentifier",
                    # Creation-only (ignore_changes): a promoted replica keeps its own master user.
                    "username", "dbName", "passwordWo", "passwordWoVersion"}
SNAPSHOTS = {"primary": phases.retire_snapshot(IDENTIFIER, "20261129T2300Z-a1"),
             "backup": phases.retire_snapshot(IDENTIFIER, "20261130T0100Z-b2")}
# (phase, the settings that lead to it), in order: evacuate to us-west-2, rebuild us-east-1's replica,
# switch back, rebuild us-west-2's.
ROUND_TRIP = [
    ("active us-east-1", []),
    ("evacuated", phases.switched_to("backup", REGIONS)),
    ("us-east-1 retiring", phases.retiring("primary", SNAPSHOTS["primary"])),
    ("us-east-1 rebuilt", phases.rebuilt("primary")),
    ("switched back", phases.switched_to("primary", REGIONS)),
    ("us-west-2 retiring", phases.retiring("backup", SNAPSHOTS["backup"])),
    ("us-west-2 rebuilt", phases.rebuilt("backup")),
]
# Where each stack's instance is replaced (deleted, leaving its final snapshot, and created as a replica).
REBUILT = {("us-east-1 rebuilt", "primary"), ("us-west-2 rebuilt", "backup")}


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory):
    """Each phase's stack files, written by the drill tool's writer, and both stacks evaluated."""
    directory = tmp_path_factory.mktemp("round-trip")
    for name in ("Pulumi.yaml", "Pulumi.primary.yaml", "Pulumi.backup.yaml"):
        shutil.copy(REPO / name, directory / name)
    found = []
    for phase, settings in ROUND_TRIP:
        reconcile.write(directory, reconcile.files(settings, {"primary": "primary", "backup": "backup"}))
        files = {role: (directory / f"Pulumi.{role}.yaml").read_text() for role in REGIONS}
        cache: dict = {}
        evaluate("backup", directory, cache)
        found.append((phase, files, cache))
    return found


def instance(evaluation):
    (found,) = evaluation.of_type(INSTANCE)
    return found


def replaced(before, after) -> bool:
    """What the engine would replace: a property in replaceOnChanges whose value changed."""
    return any(before.inputs.get(p) != after.inputs.get(p) for p in after.replace_on_changes)


def test_the_files_end_as_they_started(round_trip):
    (_, start, _), *_, (_, end, _) = round_trip
    assert end == start
    assert end == {role: (REPO / f"Pulumi.{role}.yaml").read_text() for role in REGIONS}
    assert [files for _, files, _ in round_trip[1:-1]] != [start] * (len(round_trip) - 2)


@pytest.mark.parametrize("role", REGIONS)
def test_between_phases_only_the_rebuilt_replica_is_replaced(round_trip, role):
    for (_, _, before), (phase, _, after) in zip(round_trip, round_trip[1:], strict=False):
        old, new = instance(before[role]), instance(after[role])
        assert (new.urn, new.inputs["identifier"]) == (old.urn, IDENTIFIER)
        assert replaced(old, new) is ((phase, role) in REBUILT), phase
        if (phase, role) not in REBUILT:
            changed = {k for k in old.inputs.keys() | new.inputs.keys() if old.inputs.get(k) != new.inputs.get(k)}
            assert changed <= UPDATED_IN_PLACE, (phase, changed)
        for typ in STATEFUL:
            assert ([(r.urn, r.inputs) for r in before[role].of_type(typ)]
                    == [(r.urn, r.inputs) for r in after[role].of_type(typ)]), (phase, typ)


def test_each_phase_says_who_writes(round_trip):
    roles = {phase: {role: (cache[role].outputs["active_region"], instance(cache[role]))
                     for role in REGIONS} for phase, _, cache in round_trip}
    writer_arn = {role: f"arn:aws:rds:{REGIONS[role]}:123456789012:db:{IDENTIFIER}" for role in REGIONS}
    expected = {  # phase: (active region, {role: what its database is})
        "active us-east-1": ("us-east-1", {"primary": "writer", "backup": "replica"}),
        "evacuated": ("us-west-2", {"primary": "kept", "backup": "writer"}),
        "us-east-1 retiring": ("us-west-2", {"primary": "retiring", "backup": "writer"}),
        "us-east-1 rebuilt": ("us-west-2", {"primary": "replica", "backup": "writer"}),
        "switched back": ("us-east-1", {"primary": "writer", "backup": "kept"}),
        "us-west-2 retiring": ("us-east-1", {"primary": "writer", "backup": "retiring"}),
        "us-west-2 rebuilt": ("us-east-1", {"primary": "writer", "backup": "replica"}),
    }
    for phase, (active, databases) in expected.items():
        for role, kind in databases.items():
            region, db = roles[phase][role]
            assert region == active, phase
            source = db.inputs.get("replicateSourceDb")
            assert source == (writer_arn["backup" if role == "primary" else "primary"] if kind == "replica"
                              else None), (phase, role)
            # Only a retiring former writer may be deleted, and it leaves the named snapshot.
            assert db.inputs["deletionProtection"] is (kind != "retiring"), (phase, role)
            if kind == "retiring":
                assert db.inputs["finalSnapshotIdentifier"] == SNAPSHOTS[role]
            # A replica is deleted before its replacement is created (the identifier stays), and asks for
            # the replacement only in its own program: a promotion stays an update.
            assert db.delete_before_replace is (kind == "replica")
            assert db.replace_on_changes == (("replicateSourceDb",) if kind == "replica" else ())


def test_the_active_region_runs_the_writers_and_the_other_copies_its_backups(round_trip):
    for phase, _, cache in round_trip:
        active = cache["primary"].outputs["active_region"]
        for role, region in REGIONS.items():
            stack = cache[role]
            beat = stack.named("aws:ecs/service:Service", "beat").inputs["desiredCount"]
            assert beat == (1 if region == active else 0), (phase, role)
            copies = stack.of_type(BACKUPS_COPY)
            writer_region = active
            if region == active:
                assert copies == [], (phase, role)
            else:
                (copy,) = copies
                assert copy.inputs["sourceDbInstanceArn"] == (
                    f"arn:aws:rds:{writer_region}:123456789012:db:{IDENTIFIER}"), (phase, role)
            # The password rotates only while the primary's region is active (the function lives there).
            rotation = stack.of_type("aws:secretsmanager/secretRotation:SecretRotation")
            assert bool(rotation) is (role == "primary" and region == active), (phase, role)
            assert stack.outputs["db_is_replica"] is (instance(stack).inputs.get("replicateSourceDb") is not None)
