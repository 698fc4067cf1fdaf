"""The failback on two real PostgreSQL servers: its phases' order, its refusals and its abort. The whole round trip,
as docs/runbook.md has the operator run it, is tests/test_runbook.py."""

from __future__ import annotations

import boto3
from botocore.exceptions import ClientError
from drill_world import eventually

import drills.__main__ as cli
import drills.scenarios as scenarios
from drills.sandbox import BACKUP, IDENTIFIER, PRIMARY, RoundTrip


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

