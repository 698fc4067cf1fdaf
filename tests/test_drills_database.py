"""The drill's own database probe (--db-probe) on two real PostgreSQL servers (Debian's binaries, on loopback,
streaming replication): the RPO a region evacuation reports is the data the promoted writer really lacks.

The emulated RDS promotion also promotes the PostgreSQL standby (drills/sandbox.py's AwsFront), so the drill
reads its heartbeats from a database that stopped replicating exactly where the promotion cut it.
"""

from __future__ import annotations

import json
import os
import signal
import time

import boto3
from botocore.exceptions import ClientError
from drill_world import acknowledged, counted, expected_rpo, heartbeats, journal, report, run, when

import drills.__main__ as cli
import drills.scenarios as scenarios
from drills import heartbeat
from drills.pgpair import PostgresPair
from drills.sandbox import BACKUP, PRIMARY, free_port


def test_without_lag_the_measured_rpo_is_small_and_nothing_is_lost(world, pair, tmp_path):
    assert run(world, tmp_path, "--db-probe-lead", "3") == 0
    summary, markdown = report(tmp_path)
    acks = counted(tmp_path)
    assert len(acks) >= 10  # three seconds of lead at 0.2 s, and the fence
    assert summary["rpo_seconds"] <= 2 and summary["rows_lost"] == 0
    assert summary["rpo_seconds"] == expected_rpo(tmp_path, pair.standby)
    assert summary["rpo_reason"].startswith("measured through the database")
    # The promoted standby holds every acknowledged write: the measurement is the database's own answer.
    assert {a["id"] for a in acks} <= set(heartbeats(pair.standby))
    assert not pair.standby.query("SELECT pg_is_in_recovery()")[0][0]
    assert "rows lost**: 0 acknowledged heartbeats" in markdown
    # ReplicaLag is read beside it (moto has no datapoints), and the heartbeat decided the lag gate.
    assert "ReplicaLag before the promotion (CloudWatch, for comparison): unknown (no datapoints)" in markdown
    wait = {s["name"]: s for s in journal(tmp_path)["steps"]}["wait-for-replica-lag"]["detail"]
    assert wait["lag_source"] == "heartbeat" and not wait["data_loss_accepted"]


def test_a_cut_stream_loses_what_was_written_after_the_cut(world, pair, tmp_path):
    """The standby's WAL receiver stops once the heartbeat table has reached it; heartbeats go on for the lead;
    the promotion then loses them, and the RPO says how many seconds."""
    lead = 4

    def table_on_standby():
        return bool(heartbeats(pair.standby))

    watcher, cut = when(table_on_standby, pair.cut_stream)
    assert run(world, tmp_path, "--db-probe-lead", str(lead)) == 0
    watcher.join()
    # Writes end with the last fence, at the database.
    fenced = {s["name"]: s for s in journal(tmp_path)["steps"]}["fence-primary-database"]["ended_at_epoch"]
    summary, markdown = report(tmp_path)
    cut_for = fenced - cut["at"]
    assert cut_for >= lead - 1
    assert cut_for - 1 <= summary["rpo_seconds"] <= cut_for + 1
    assert summary["rpo_seconds"] == expected_rpo(tmp_path, pair.standby)
    acks = {a["id"] for a in counted(tmp_path)}
    lost = acks - set(heartbeats(pair.standby))
    assert summary["rows_lost"] == len(lost) > 0
    assert f"rows lost**: {len(lost)} acknowledged heartbeats" in markdown
    assert f"{len(lost)} of {len(acks)} acknowledged rows lost" in summary["rpo_reason"]


def test_a_writer_killed_before_the_fence_still_gives_an_rpo_with_the_reason(world, pair, tmp_path):
    def some_acknowledged():
        found = list((tmp_path / "journals").glob("drill-*.heartbeat.jsonl"))
        return bool(found) and found[0].read_text().count('"id"') >= 3

    watcher, killed = when(some_acknowledged, lambda: pair.writer.stop("immediate"))
    assert run(world, tmp_path, "--db-probe-lead", "3") == 0
    watcher.join()
    summary, markdown = report(tmp_path)
    entries = acknowledged(tmp_path)
    assert any("error" in e and e["at"] > killed["at"] for e in entries)
    assert summary["rows_lost"] == 0  # it streamed until it died
    assert summary["rpo_seconds"] == expected_rpo(tmp_path, pair.standby)
    acks = [e for e in entries if "id" in e]
    assert acks[-1]["acked_at"] < killed["at"] + 1
    assert "the old writer stopped answering at" in summary["rpo_reason"]
    assert "measured from the last write it acknowledged before it went away" in markdown


def nothing_changed(world, pair, tmp_path):
    assert not list((tmp_path / "journals").glob("drill-*.json"))
    assert not list((tmp_path / "reports").glob("*"))
    cloudwatch = boto3.client("cloudwatch", region_name=BACKUP, endpoint_url=world.moto.url)
    assert not cloudwatch.list_metrics(Namespace="TradingPlatform/Failover")["Metrics"]
    ecs = boto3.client("ecs", region_name=PRIMARY, endpoint_url=world.moto.url)
    counts = {s["serviceName"]: s["desiredCount"] for s in ecs.describe_services(
        cluster=world.outputs["primary"]["ecs_cluster_name"], services=["api", "worker", "beat"])["services"]}
    assert counts == {"api": 2, "worker": 2, "beat": 1}


def test_bad_credentials_fail_the_preflight_and_change_nothing(world, pair, tmp_path, capsys):
    secrets = boto3.client("secretsmanager", region_name=PRIMARY, endpoint_url=world.moto.url)
    credentials = world.outputs["primary"]["secret_arns"]["database-credentials"]
    value = json.loads(secrets.get_secret_value(SecretId=credentials)["SecretString"])
    secrets.put_secret_value(SecretId=credentials, SecretString=json.dumps({**value, "password": "wrong"}))
    assert run(world, tmp_path) == 3
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("[FAIL] database-probe"))
    assert f"trading_admin@127.0.0.1:{pair.writer.port}/trading" in line and "password authentication failed" in line
    assert "--no-db-probe" in line and "preflight failed: nothing was changed" in out
    nothing_changed(world, pair, tmp_path)
    assert heartbeats(pair.writer) == []


def test_an_unreachable_writer_fails_the_preflight_and_changes_nothing(world, pair, tmp_path, capsys):
    pair.writer.stop("immediate")
    assert run(world, tmp_path) == 3
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("[FAIL] database-probe"))
    assert f"cannot connect to trading_admin@127.0.0.1:{pair.writer.port}/trading" in line
    nothing_changed(world, pair, tmp_path)


def test_endpoints_swapped_in_the_outputs_fail_the_preflight(world, pair, tmp_path, capsys):
    """A writer endpoint that is in recovery (the outputs files mixed up) is refused before anything changes."""
    for role, port in (("primary", pair.standby.port), ("backup", pair.writer.port)):
        path = tmp_path / f"{role}.json"
        document = json.loads(path.read_text())
        path.write_text(json.dumps({**document, "db_endpoint": f"127.0.0.1:{port}"}))
    assert run(world, tmp_path) == 3
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("[FAIL] database-probe"))
    assert f"127.0.0.1:{pair.standby.port} (primary) is in recovery" in line
    nothing_changed(world, pair, tmp_path)


def test_with_us_east_1_out_the_probe_is_off_and_the_rpo_is_replica_lags(world, pair, tmp_path, capsys):
    """An evacuation while the primary's region is down must not wait for its database: the probe turns
    itself off with a warning, and the RPO is ReplicaLag's estimate, said so."""
    replica = [{"Name": "DBInstanceIdentifier", "Value": world.outputs["backup"]["db_instance_identifier"]}]
    boto3.client("cloudwatch", region_name=BACKUP, endpoint_url=world.moto.url).put_metric_data(
        Namespace="AWS/RDS", MetricData=[{"MetricName": "ReplicaLag", "Value": 2.0, "Unit": "Seconds",
                                          "Dimensions": replica}])
    assert run(world, tmp_path, "--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}") == 0
    out = capsys.readouterr().out
    assert "[WARN] database-probe: us-east-1 unreachable, so no heartbeat" in out
    summary, _ = report(tmp_path)
    assert summary["rpo_seconds"] == 2.0 and summary["rows_lost"] is None
    assert "ReplicaLag" in summary["rpo_reason"] and "estimate" in summary["rpo_reason"]
    assert "measure-data-loss" not in [s["name"] for s in summary["steps"]]
    assert heartbeats(pair.writer) == []


def test_a_resume_from_elsewhere_still_measures(world, pair, tmp_path, monkeypatch):
    """The heartbeat record is found beside the journal, wherever the operator resumes from."""
    calls = {"n": 0}
    real = scenarios._snapshot_replica

    def fails_once(ctx, detail):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ClientError({"Error": {"Code": "SnapshotQuotaExceeded", "Message": "quota"}}, "CreateDBSnapshot")
        return real(ctx, detail)

    monkeypatch.setattr(scenarios, "_snapshot_replica", fails_once)
    assert run(world, tmp_path, "--db-probe-lead", "1", "--snapshot-replica") == 4
    (path,) = (tmp_path / "journals").glob("drill-*.json")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["resume", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 0
    summary, _ = report(tmp_path)
    assert summary["rpo_reason"].startswith("measured through the database") and summary["rows_lost"] == 0
    assert summary["rpo_seconds"] == expected_rpo(tmp_path, pair.standby)


def test_a_failed_read_of_the_promoted_writer_does_not_stop_the_evacuation(world, pair, tmp_path, monkeypatch):
    """Capacity is raised all the same; the lag gate's reading on the replica stands in, and says so."""
    real, reads = heartbeat.present, {"n": 0}

    def second_read_fails(where, drill_id):
        reads["n"] += 1
        if reads["n"] > 1:
            raise heartbeat.DatabaseError(f"{where}: connection refused")
        return real(where, drill_id)

    monkeypatch.setattr(heartbeat, "present", second_read_fails)
    assert run(world, tmp_path, "--db-probe-lead", "1") == 0
    summary, _ = report(tmp_path)
    steps = {s["name"]: s for s in summary["steps"]}
    assert steps["raise-backup-capacity"]["status"] == "done" and steps["measure-data-loss"]["status"] == "done"
    assert "the replica just before the promotion" in summary["rpo_reason"]
    assert "the promoted writer's heartbeats could not be read" in summary["rpo_reason"]
    assert summary["rows_lost"] == 0 and summary["rpo_seconds"] is not None


def test_a_write_acknowledged_after_the_stop_is_not_counted(pair, tmp_path):
    """A writer that hangs mid-write and comes back after the drill stopped the probe: that write came after
    the fence, so it is not among the writes the promotion had to keep."""
    from drills.heartbeat import Heartbeat, Record, target

    secret = json.dumps({"username": pair.username, "password": pair.password, "dbname": pair.dbname})
    writer = target(secret, f"127.0.0.1:{pair.writer.port}", "test", str(pair.ca_bundle))
    record = Record(tmp_path / "record.jsonl")
    beat = Heartbeat(writer, "hung", 0.2, record)
    beat.start()
    while record.summary()["acknowledged"] < 3:
        time.sleep(0.05)
    (pid,) = pair.writer.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'drills-heartbeat'")[0]
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(0.5)  # the next write is in flight on the frozen backend
        before = record.summary()["acknowledged"]
        beat.stop()
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(1)
    assert record.summary()["acknowledged"] == before
    assert all(e.get("after_stop") for e in record.entries() if "id" in e and e["acked_at"] > time.time() - 1.2)


def test_a_pair_whose_port_was_taken_meanwhile_starts_on_another(cluster_template, monkeypatch):
    """free_port only says a port was free a moment ago: with servers starting in several processes, the writer's
    may be taken before it binds. It starts on another; the standby streams from it there."""
    import socket

    from drills import pgpair

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        free_port = pgpair.free_port
        monkeypatch.setattr(pgpair, "free_port", lambda: next(ports, None) or free_port())
        with PostgresPair(template=cluster_template) as started:
            assert started.writer.port != taken.getsockname()[1]
            assert not started.writer.in_recovery() and started.receiving(started.standby)
