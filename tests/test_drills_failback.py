"""The whole round trip on two real PostgreSQL servers, as an operator runs it: the evacuation, the stack files
reconciled and the printed commands run (`pulumi` emulated from the program's own evaluation), the failback's
planned switchover measured by the replication probes, and its refusals and abort."""

from __future__ import annotations

import json

import boto3
from botocore.exceptions import ClientError
from drill_world import eventually

import drills.__main__ as cli
import drills.scenarios as scenarios
from drills.sandbox import BACKUP, IDENTIFIER, PRIMARY, RoundTrip
from synth.engine import REPO


def test_evacuation_and_failback_end_where_they_started(world, pair, tmp_path, capsys):
    """The whole round trip as an operator runs it: the drill tool's commands in order, `pulumi` emulated from
    the program's own evaluation of the stack files the tool writes. Both regions end in their original roles,
    the files as they started, and the planned switchover lost nothing, by the heartbeat."""
    lines: list[str] = []
    trip = RoundTrip(world, tmp_path, tmp_path / "reports", lines.append)
    assert trip.evacuate() == 0
    assert trip.back() == 0, "\n".join(lines)
    for name in ("Pulumi.primary.yaml", "Pulumi.backup.yaml"):
        assert (trip.project / name).read_text() == (REPO / name).read_text()
    # Each database was rebuilt once, from the other, and the primary's is the writer again.
    assert not pair.writer.in_recovery() and pair.standby.in_recovery() and pair.receiving(pair.standby)
    # Each former writer was deleted outside Pulumi leaving its named snapshot, refreshed away, and the replica
    # created by `up`: never a Pulumi replacement, which would replace what depends on the instance.
    printed = capsys.readouterr().out.splitlines()
    deleted = [line for line in printed if "deleting, leaving the final snapshot trading-platform-production-retired-"
               in line]
    created = [line for line in lines if "created as a read replica of" in line]
    assert [line.split()[2].rstrip(":") for line in deleted] == [PRIMARY, BACKUP]
    assert [line.split()[0] for line in created] == [PRIMARY, BACKUP]
    # Nothing ran against a detached former writer: the primary's first `up` after the evacuation starts nothing.
    first_up = lines.index("$ pulumi up -s primary")
    output = lines[first_up + 1:next(i for i in range(first_up + 1, len(lines)) if lines[i].startswith("$"))]
    # api, worker and beat were fenced to 0 already; the probe stops (nothing to write to, nothing replicates).
    assert output == [f"  {PRIMARY} web: desired 2 -> 0", f"  {PRIMARY} replication probe: stopped"]
    # Each `up` moved the probes with activeRegion: the writer's beside each writer in turn, ending as they began.
    probes = {region: [line.split(": ", 1)[1] for line in lines if line.strip().startswith(f"{region} replication")]
              for region in (PRIMARY, BACKUP)}
    assert probes == {PRIMARY: ["stopped", f"reader (writer in {BACKUP})", f"writer (writer in {PRIMARY})"],
                      BACKUP: [f"writer (writer in {BACKUP})", "stopped", f"reader (writer in {PRIMARY})"]}
    rds = boto3.client("rds", region_name=BACKUP, endpoint_url=world.moto.url)
    (replica,) = rds.describe_db_instances(DBInstanceIdentifier=IDENTIFIER)["DBInstances"]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == f"arn:aws:rds:{PRIMARY}:123456789012:db:{IDENTIFIER}"
    # The former writers were deleted only after their protection was lifted, each leaving its named snapshot.
    for region in (PRIMARY, BACKUP):
        snapshots = boto3.client("rds", region_name=region, endpoint_url=world.moto.url).describe_db_snapshots()
        assert any(s["DBSnapshotIdentifier"].startswith(f"{IDENTIFIER}-retired-") for s in snapshots["DBSnapshots"])
    # A report for each leg; the failback promoted only once every acknowledged heartbeat had arrived.
    legs = {json.loads(p.read_text())["scenario"]: json.loads(p.read_text())
            for p in (tmp_path / "reports").glob("drill-*.json")}
    assert set(legs) == {"region-evacuation", "failback"}
    back = legs["failback"]
    assert back["status"] == "done" and back["rpo_seconds"] == 0 and back["rows_lost"] == 0
    assert back["moved"] == {"from": BACKUP, "to": PRIMARY}
    wait = {s["name"]: s for s in back["steps"]}["wait-for-replica-lag"]["detail"]
    assert wait["nothing_missing"] and wait["heartbeat"]["rows_missing"] == 0
    # Measured by the probes' metrics in us-east-1, the region users went back to.
    assert wait["heartbeat"]["method"] == "replication-probe" and wait["heartbeat"]["read_in"] == PRIMARY
    assert back["rpo_reason"].startswith(f"measured through the databases by the replication probe, read from "
                                         f"CloudWatch in {PRIMARY}")
    # Users are back on the primary's region, which runs the active capacities; the backup its standby's.
    assert world.front.primary_serving()
    ecs = {region: {s["serviceName"]: s["desiredCount"] for s in boto3.client(
        "ecs", region_name=region, endpoint_url=world.moto.url).describe_services(
        cluster=IDENTIFIER, services=["api", "web", "worker", "beat"])["services"]} for region in (PRIMARY, BACKUP)}
    assert ecs[PRIMARY] == {"api": 2, "web": 2, "worker": 2, "beat": 1}
    assert {k: ecs[BACKUP][k] for k in ("api", "worker", "beat")} == {"api": 1, "worker": 0, "beat": 0}


def test_a_rebuild_before_the_retire_is_refused(world, pair, tmp_path, capsys):
    """The phases keep their order: a rebuild needs the former writer retired first (AWS would refuse to
    delete it while its deletion protection is on), and a retire needs a switchover first."""
    trip = RoundTrip(world, tmp_path, tmp_path / "reports", lambda line: None)
    assert trip.drills("failback", "phase", "retire", "--role", "primary", "--project-dir", str(trip.project)) == 2
    assert "database.detached is not true" in capsys.readouterr().err
    assert trip.evacuate() == 0
    reconcile_journal = next((tmp_path / "journals").glob("drill-*.json"))
    assert trip.drills("reconcile", "--journal", str(reconcile_journal), "--project-dir", str(trip.project),
                       "--write") == 0
    capsys.readouterr()
    assert trip.drills("failback", "phase", "rebuild", "--role", "primary", "--project-dir", str(trip.project)) == 2
    assert "retire the former writer first" in capsys.readouterr().err


def test_failback_without_the_probe_or_to_the_wrong_region_is_refused_before_anything(world, pair, tmp_path,
                                                                                      capsys):
    common = ["--journal-dir", str(tmp_path / "journals"), *world.args()]
    assert cli.main(["failback", "run", "--execute", "--confirm", PRIMARY, "--no-replication-probe", *common]) == 2
    assert "a failback promotes only once the heartbeat shows that nothing would be lost" in capsys.readouterr().err
    assert cli.main(["failback", "run", "--execute", "--confirm", BACKUP, *common]) == 2
    assert f"--confirm must be the region users go to, {PRIMARY}" in capsys.readouterr().err
    assert not (tmp_path / "journals").exists() or not list((tmp_path / "journals").glob("drill-*.json"))
    # The plan: the rebuild phases, then the switchover's steps from us-west-2 to us-east-1.
    assert cli.main(["failback", "plan", *world.args()]) == 0
    out = capsys.readouterr().out
    assert "python -m drills failback phase retire --role primary --write" in out
    assert f"failback: {BACKUP} -> {PRIMARY}" in out
    switchover = out[out.index(f"failback: {BACKUP} -> {PRIMARY}"):out.index("3. Record it")]
    steps = [line.split(":")[0] for line in switchover.splitlines() if line[:2].rstrip(".").isdigit()]
    # The password holds still and moves first; the writers are fenced through ECS and at the database.
    assert [step.split(". ")[1] for step in steps] == [
        "stop-backup-rotation", "copy-credentials-to-primary", "prepare-primary-serving", "snapshot-replica",
        "switch-back", "fence-backup-writers", "fence-backup-database", "wait-for-replica-lag", "promote-replica",
        "raise-primary-capacity", "probe-until-primary-answers", "measure-data-loss"]


def test_a_failed_failback_aborts_back_to_us_west_2(world, pair, tmp_path, monkeypatch):
    """Before the promotion a failback is undone like an evacuation: users back on us-west-2 (the switch on
    again), its writers restored, us-east-1's api and web back to their standby counts; the writer untouched."""
    trip = RoundTrip(world, tmp_path, tmp_path / "reports", lambda line: None)
    assert trip.evacuate() == 0
    trip.reconcile()  # records the evacuation and rebuilds us-east-1's replica
    world.wait_for_probe(PRIMARY, BACKUP)  # as an operator waits for the rebuilt replica's first readings

    def refused(ctx, detail):
        raise ClientError({"Error": {"Code": "InvalidDBInstanceState", "Message": "backing up"}}, "PromoteReadReplica")

    monkeypatch.setattr(scenarios, "_promote_replica", refused)
    assert trip.drills("failback", "run", "--execute", "--confirm", PRIMARY, "--probe-url", world.front.url,
                       "--probe-interval", "0.05", "--promotion-keeps-source-link", "--journal-dir",
                       str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"), *world.args()) == 4
    journal_path = max((tmp_path / "journals").glob("drill-*.json"), key=lambda p: p.stat().st_mtime)
    assert eventually(world.front.primary_serving)  # switched to us-east-1, read-only there
    assert trip.drills("abort", "--journal", str(journal_path), "--report-dir", str(tmp_path / "reports")) == 5
    assert eventually(lambda: not world.front.primary_serving() and world.front.switch_on())
    ecs = {region: {s["serviceName"]: s["desiredCount"] for s in boto3.client(
        "ecs", region_name=region, endpoint_url=world.moto.url).describe_services(
        cluster=IDENTIFIER, services=["api", "web", "worker", "beat"])["services"]} for region in (PRIMARY, BACKUP)}
    assert ecs[BACKUP] == {"api": 2, "web": 2, "worker": 2, "beat": 1}
    assert ecs[PRIMARY] == {"api": 1, "web": 1, "worker": 0, "beat": 0}
    assert not pair.standby.in_recovery() and pair.writer.in_recovery()

