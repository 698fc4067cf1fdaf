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
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
# Stateful resources besides the database: their inputs must not change at all between phases, but for the cache's
# shape when the active region changes (its nodes; all updates in place, tests/test_active_shape.py).
STATEFUL = (CACHE, "aws:s3/bucket:Bucket", "aws:kms/key:Key", "aws:backup/vault:Vault")
CACHE_SHAPE = {"nodeType", "numCacheClusters", "automaticFailoverEnabled", "multiAzEnabled"}
# The phases that change the active region: each region's shape changes with it.
SWITCHES = {"evacuated", "switched back"}
REGIONS = {"primary": "us-east-1", "backup": "us-west-2"}
IDENTIFIER = "trading-platform-production"
# Instance inputs a phase may change in place: the promotion, when changes apply (a writer's wait for the maintenance
# window), and the deletion settings.
UPDATED_IN_PLACE = {"replicateSourceDb", "applyImmediately", "deletionProtection", "skipFinalSnapshot",
                    "finalSnapshotIdentifier"}
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
# Where each stack's instance is created anew as a replica: the retired former writer was deleted outside
# Pulumi (leaving its final snapshot) and refreshed away before (drills/retire.py), never replaced by Pulumi.
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


def changed(before, after) -> set[str]:
    """The inputs an `up` would change: the engine keeps the state's value of an ignored one."""
    keys = (before.inputs.keys() | after.inputs.keys()) - set(after.ignore_changes)
    return {k for k in keys if before.inputs.get(k) != after.inputs.get(k)}


def test_the_files_end_as_they_started(round_trip):
    (_, start, _), *_, (_, end, _) = round_trip
    assert end == start
    assert end == {role: (REPO / f"Pulumi.{role}.yaml").read_text() for role in REGIONS}
    assert [files for _, files, _ in round_trip[1:-1]] != [start] * (len(round_trip) - 2)


@pytest.mark.parametrize("role", REGIONS)
def test_between_phases_nothing_stateful_is_replaced(round_trip, role):
    for (_, _, before), (phase, _, after) in zip(round_trip, round_trip[1:], strict=False):
        old, new = instance(before[role]), instance(after[role])
        assert (new.urn, new.inputs["identifier"]) == (old.urn, IDENTIFIER)
        # Pulumi never replaces the instance: that would replace what depends on its address (the first
        # password version among them, which would put the original password back).
        assert (new.replace_on_changes, new.delete_before_replace) == ((), False), phase
        if (phase, role) in REBUILT:
            # Created fresh: the retired writer before it had its protection off and its final snapshot named.
            assert old.inputs["deletionProtection"] is False
            assert old.inputs["finalSnapshotIdentifier"] == SNAPSHOTS[role]
            assert new.inputs["replicateSourceDb"]
        else:
            # A promoted replica takes the active shape's Multi-AZ (in place); a detached former writer keeps its own.
            promoted = bool(old.inputs.get("replicateSourceDb")) and not new.inputs.get("replicateSourceDb")
            assert changed(old, new) <= UPDATED_IN_PLACE | ({"multiAz"} if promoted else set()), (
                phase, changed(old, new))
        for typ in STATEFUL:
            shape = CACHE_SHAPE if typ == CACHE and phase in SWITCHES else set()
            kept = [[(r.urn, {k: v for k, v in r.inputs.items() if k not in shape}) for r in evaluation.of_type(typ)]
                    for evaluation in (before[role], after[role])]
            assert kept[0] == kept[1], (phase, typ)


def test_a_replica_declares_no_master_user_and_ignores_nothing(round_trip):
    """The provider refuses a username beside replicate_source_db, and ignored inputs would be taken from the
    state of the writer the replica replaces."""
    for phase, _, cache in round_trip:
        for role in REGIONS:
            db = instance(cache[role])
            if db.inputs.get("replicateSourceDb"):
                assert not {"username", "dbName", "passwordWo", "passwordWoVersion"} & db.inputs.keys(), phase
                assert db.ignore_changes == (), phase
            else:
                assert set(db.ignore_changes) == {"username", "dbName", "passwordWo", "passwordWoVersion"}


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
                # Deleting it would call RDS in the source's region, which an evacuation may have lost.
                assert copy.retain_on_delete, (phase, role)
            # The password rotates in the active region only, on that region's own secret.
            (rotation,) = stack.of_type("aws:secretsmanager/secretRotation:SecretRotation") or [None]
            assert (rotation is not None) is (region == active), (phase, role)
            credentials = stack.outputs["secret_arns"]["database-credentials"]
            if rotation:
                assert rotation.inputs["secretId"] in (credentials, cache["primary"].named(
                    "aws:secretsmanager/secret:Secret", "shared-secrets-database-credentials").id), (phase, role)
            # The shared secrets replicate only while the primary's region is active: after an evacuation the
            # backup's copies are standalone, and re-adding the replicas would overwrite its rotated password.
            if role == "primary":
                replicas = {tuple(r.inputs.get("replicas") or ()) != () for r in stack.of_type(
                    "aws:secretsmanager/secret:Secret") if r.name.startswith("shared-secrets-")}
                assert replicas == {region == active}, (phase, role)
            # A region's services restart on new versions of the secret that rotates for it; only a replicating
            # primary forwards its events to the backup.
            restarts = stack.outputs["password_restarts"]
            watched = credentials if region == active or role == "primary" else \
                cache["primary"].outputs["secret_arns"]["database-credentials"]
            assert restarts["secret_arn"] == watched, (phase, role)
            forwards = [t for t in stack.of_type("aws:cloudwatch/eventTarget:EventTarget")
                        if t.name == "password-restarts-forward"]
            assert bool(forwards) is (role == "primary" and region == active), (phase, role)
            assert stack.outputs["db_is_replica"] is (instance(stack).inputs.get("replicateSourceDb") is not None)
