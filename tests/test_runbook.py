"""docs/runbook.md, run as written (drills/runbook.py): every command of its shell blocks, in order, in the sandbox's
world (moto, two PostgreSQL servers, the replication probes), from a copy of the project as the operator's working
directory, section 1 with us-east-1 lost. The evacuation and the failback it describes end where they started: roles,
stack files, capacities."""

from __future__ import annotations

import json

from drills.runbook import RUNBOOK, Runbook, sections
from drills.sandbox import BACKUP, IDENTIFIER, PRIMARY, RoundTrip
from synth.engine import REPO


def test_the_runbook_has_the_sections_an_incident_needs():
    chosen = sections(RUNBOOK.read_text(encoding="utf-8"))
    assert [s.title for s in chosen] == ["Before an incident", "1. us-east-1 is down",
                                         "2. Going back to us-east-1 (planned failback)", "3. A drill"]
    assert all(command.split()[0] in ("pulumi", "python", "aws", "export") for s in chosen for command in s.commands)
    # us-east-1 is lost until the block that begins "once us-east-1 is back", its last, which calls it first.
    down = chosen[1]
    assert [down.region_lost(i) for i in range(len(down.blocks))] == [True, True, False]
    assert down.blocks[-1][0].startswith("aws rds stop-db-instance-automated-backups-replication")
    assert chosen[2].region_lost(0) is None


def test_the_runbook_runs_as_written_and_ends_where_it_started(world, pair, tmp_path, monkeypatch, capsys):
    lines: list[str] = []
    trip = RoundTrip(world, tmp_path, tmp_path / "unused", lines.append)

    def setenv(name: str, value: str | None) -> None:
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    book = Runbook(trip, setenv, lines.append)
    monkeypatch.chdir(trip.project)
    chosen = sections(RUNBOOK.read_text(encoding="utf-8"))
    assert book.follow(chosen) == 0, "\n".join(lines)
    ran = [line.split()[1] for line in lines if line.startswith("$ ")]
    assert ran.count("python") >= 12 and ran.count("aws") == 2 and ran.count("pulumi") >= 14
    # An evacuation and a failback, each reconciled: the stack files are as they were; the dns-failover drill last.
    for name in ("Pulumi.primary.yaml", "Pulumi.backup.yaml"):
        assert (trip.project / name).read_text() == (REPO / name).read_text()
    reports = {json.loads(p.read_text())["scenario"]: json.loads(p.read_text())
               for p in (trip.project / ".drills" / "reports").glob("drill-*.json")}
    assert {scenario: r["status"] for scenario, r in reports.items()} == {
        "dns-failover": "done", "failback": "done", "region-evacuation": "done"}
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
    # Section 1 ran with us-east-1 lost: its steps there were skipped, and reconcile printed them to do once it is
    # back; the loss was measured from us-west-2's CloudWatch alone.
    evacuation = reports["region-evacuation"]
    steps = {s["name"]: s["status"] for s in evacuation["steps"]}
    assert {steps[name] for name in ("fence-primary-writers", "fence-primary-database", "stop-primary-rotation")} == {
        "skipped"}
    assert evacuation["rpo_reason"].startswith(f"measured through the databases by the replication probe, read "
                                               f"from CloudWatch in {BACKUP}")
    assert f"aws ecs update-service --region {PRIMARY} --cluster {IDENTIFIER} --service beat --desired-count 0" in (
        evacuation["reconcile"]["commands"])
    # Nothing runs against a detached former writer: the primary's first `up` once us-east-1 is back stops what the
    # fence could not reach (its probe went with the region).
    first_up = lines.index("$ pulumi up -s primary")
    output = lines[first_up + 1:next(i for i in range(first_up + 1, len(lines)) if lines[i].startswith(("$", "\n==")))]
    assert output == [f"  {PRIMARY} {service}: desired {count} -> 0"
                      for service, count in (("api", 2), ("beat", 1), ("web", 2), ("worker", 2))]
    # Each `up` moved the probes with activeRegion: the writer's beside each writer in turn, ending as they began.
    probes = {region: [line.split(": ", 1)[1] for line in lines if line.strip().startswith(f"{region} replication")]
              for region in (PRIMARY, BACKUP)}
    assert probes == {PRIMARY: [f"reader (writer in {BACKUP})", f"writer (writer in {PRIMARY})"],
                      BACKUP: [f"writer (writer in {BACKUP})", "stopped", f"reader (writer in {PRIMARY})"]}
    # The world's clients: boto3's default session read the AWS config before the runbook's profile was set.
    (replica,) = world.client("rds", BACKUP).describe_db_instances(DBInstanceIdentifier=IDENTIFIER)["DBInstances"]
    assert replica["ReadReplicaSourceDBInstanceIdentifier"] == f"arn:aws:rds:{PRIMARY}:123456789012:db:{IDENTIFIER}"
    for region in (PRIMARY, BACKUP):
        snapshots = world.client("rds", region).describe_db_snapshots()
        assert any(s["DBSnapshotIdentifier"].startswith(f"{IDENTIFIER}-retired-") for s in snapshots["DBSnapshots"])
    # The failback promoted only once every acknowledged heartbeat had arrived, measured by the probes' metrics in
    # us-east-1, the region users went back to.
    back = reports["failback"]
    assert back["rpo_seconds"] == 0 and back["rows_lost"] == 0 and back["moved"] == {"from": BACKUP, "to": PRIMARY}
    wait = {s["name"]: s for s in back["steps"]}["wait-for-replica-lag"]["detail"]
    assert wait["nothing_missing"] and wait["heartbeat"]["rows_missing"] == 0
    assert wait["heartbeat"]["method"] == "replication-probe" and wait["heartbeat"]["read_in"] == PRIMARY
    assert back["rpo_reason"].startswith(f"measured through the databases by the replication probe, read from "
                                         f"CloudWatch in {PRIMARY}")
    # Users are back on the primary's region, which runs the active capacities; the backup its standby's.
    assert world.front.primary_serving()
    ecs = {region: {s["serviceName"]: s["desiredCount"] for s in world.client("ecs", region).describe_services(
        cluster=IDENTIFIER, services=["api", "web", "worker", "beat"])["services"]} for region in (PRIMARY, BACKUP)}
    assert ecs[PRIMARY] == {"api": 2, "web": 2, "worker": 2, "beat": 1}
    assert {k: ecs[BACKUP][k] for k in ("api", "worker", "beat")} == {"api": 1, "worker": 0, "beat": 0}
