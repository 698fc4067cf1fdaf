"""The database probe on two real PostgreSQL servers (Debian's binaries, on loopback, streaming replication):
the RPO a region evacuation reports is the data the promoted writer really lacks.

The emulated RDS promotion also promotes the PostgreSQL standby (drills/sandbox.py's AwsFront), so the drill
reads its heartbeats from a database that stopped replicating exactly where the promotion cut it.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import boto3
import pytest
from botocore.exceptions import ClientError

import drills.__main__ as cli
import drills.scenarios as scenarios
from drills import heartbeat
from drills.heartbeat import TABLE
from drills.pgpair import PostgresPair
from drills.sandbox import BACKUP, IDENTIFIER, PRIMARY, SECRET_NAME, RoundTrip, World, free_port
from synth.engine import REPO

INTERVAL = "0.2"


@pytest.fixture
def pair():
    with PostgresPair() as started:
        yield started


@pytest.fixture
def world(moto, pair, tmp_path, monkeypatch):
    built = World(tmp_path, moto, postgres=pair)
    for key, value in built.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    yield built
    built.close(stop_moto=False)


def evacuate(world, tmp_path, *extra):
    """A region evacuation measured by the replication probes' metrics (the default)."""
    return cli.main(["run", "--scenario", "region-evacuation", "--execute", "--confirm", BACKUP,
                     "--probe-url", world.front.url, "--probe-interval", "0.05", "--probe-timeout", "5",
                     "--promotion-keeps-source-link",
                     "--journal-dir", str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"),
                     *world.args(), *extra])


def run(world, tmp_path, *extra):
    """A region evacuation measured by the drill's own database probe."""
    return evacuate(world, tmp_path, "--db-probe", "--db-probe-interval", INTERVAL, *extra)


def report(tmp_path):
    (path,) = (tmp_path / "reports").glob("drill-*.json")
    return json.loads(path.read_text()), path.with_suffix(".md").read_text()


def journal(tmp_path):
    (path,) = (tmp_path / "journals").glob("drill-*.json")
    return json.loads(path.read_text())


def heartbeats(server, dbname="trading"):
    if not server.query("SELECT to_regclass(%s) IS NOT NULL", TABLE, dbname=dbname)[0][0]:
        return []
    return [row[0] for row in server.query(f"SELECT id FROM {TABLE} ORDER BY id", dbname=dbname)]


def acknowledged(tmp_path):
    (path,) = (tmp_path / "journals").glob("drill-*.heartbeat.jsonl")
    return heartbeat.Record(path).entries()


def eventually(condition, timeout=10):
    """The front reads the switch's metric, whose newest datapoint CloudWatch (moto) returns a moment later."""
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def when(condition, then, timeout=30):
    """Run `then` in the background once `condition` holds: a fault injected while the drill runs."""
    done = {}

    def watch():
        deadline = time.time() + timeout
        while not condition():
            if time.time() > deadline:
                return
            time.sleep(0.05)
        done["at"] = time.time()
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, done


def expected_rpo(tmp_path, server):
    """The RPO computed independently: the last acknowledged write's time against the newest row the promoted
    server holds, read from it directly."""
    last = [a for a in acknowledged(tmp_path) if "id" in a][-1]["written_at"]
    (newest,) = server.query(f"SELECT extract(epoch FROM max(written_at)) FROM {TABLE}", dbname="trading")[0]
    return round(last - float(newest), 3)


def test_without_lag_the_measured_rpo_is_small_and_nothing_is_lost(world, pair, tmp_path):
    assert run(world, tmp_path, "--db-probe-lead", "3") == 0
    summary, markdown = report(tmp_path)
    acks = [a for a in acknowledged(tmp_path) if "id" in a]
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
    fenced = {s["name"]: s for s in journal(tmp_path)["steps"]}["fence-primary-writers"]["ended_at_epoch"]
    summary, markdown = report(tmp_path)
    cut_for = fenced - cut["at"]
    assert cut_for >= lead - 1
    assert cut_for - 1 <= summary["rpo_seconds"] <= cut_for + 1
    assert summary["rpo_seconds"] == expected_rpo(tmp_path, pair.standby)
    acks = {a["id"] for a in acknowledged(tmp_path) if "id" in a}
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
    value = json.loads(secrets.get_secret_value(SecretId=SECRET_NAME)["SecretString"])
    secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=json.dumps({**value, "password": "wrong"}))
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
    assert run(world, tmp_path, "--db-probe-lead", "1") == 4
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
    assert steps == ["1. prepare-primary-serving", "2. snapshot-replica", "3. switch-back", "4. fence-backup-writers",
                     "5. wait-for-replica-lag", "6. promote-replica", "7. raise-primary-capacity",
                     "8. probe-until-primary-answers", "9. measure-data-loss"]


def test_a_failed_failback_aborts_back_to_us_west_2(world, pair, tmp_path, monkeypatch):
    """Before the promotion a failback is undone like an evacuation: users back on us-west-2 (the switch on
    again), its writers restored, us-east-1's api and web back to their standby counts; the writer untouched."""
    trip = RoundTrip(world, tmp_path, tmp_path / "reports", lambda line: None)
    assert trip.evacuate() == 0
    trip.reconcile()  # records the evacuation and rebuilds us-east-1's replica

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


# --- measured by the replication probes (probe/, as processes), read from CloudWatch: the default


def probe_rows(server, region=PRIMARY):
    """The probe's heartbeats written by `region`'s writer, as a server holds them: {seq: written_at epoch}."""
    if not server.query("SELECT to_regclass('replication_heartbeat') IS NOT NULL", dbname="trading")[0][0]:
        return {}
    return {seq: float(at) for seq, at in server.query(
        "SELECT seq, extract(epoch FROM written_at) FROM replication_heartbeat WHERE region = %s", region,
        dbname="trading")}


def test_the_probes_measure_an_evacuation_with_no_connection_from_the_drill(world, pair, tmp_path, capsys):
    assert eventually(lambda: len(probe_rows(pair.standby)) >= 5, timeout=30)
    assert evacuate(world, tmp_path) == 0
    out = capsys.readouterr().out
    assert "[PASS] replication-probe: TradingPlatform/ReplicationProbe in us-west-2" in out
    summary, markdown = report(tmp_path)
    assert summary["rpo_seconds"] == 0 and summary["rows_lost"] == 0
    assert summary["rpo_reason"].startswith("measured through the databases by the replication probe, read from "
                                            f"CloudWatch in {BACKUP}")
    loss = {s["name"]: s for s in summary["steps"]}["measure-data-loss"]["detail"]["measured"]
    # Every heartbeat acknowledged before the fence is on the promoted writer: the truth, read from it.
    assert loss["last_acknowledged"]["seq"] in probe_rows(pair.standby)
    assert loss["newest_present"]["seq"] >= loss["last_acknowledged"]["seq"]
    # The drill connected to no database: neither its own heartbeat table nor a session of its probe.
    assert heartbeats(pair.writer) == [] and heartbeats(pair.standby) == []
    assert "rows lost**: 0" in markdown


def test_a_cut_stream_then_a_lost_region_loses_exactly_what_the_metrics_say(world, pair, tmp_path):
    """The replica stops receiving; the writer's probe goes on acknowledging for two seconds; then us-east-1 is
    lost with its probe. The last acknowledged heartbeat is still known in us-west-2's CloudWatch, and the rows
    and seconds lost equal the truth counted on the two databases."""
    assert eventually(lambda: len(probe_rows(pair.standby)) >= 3, timeout=30)
    pair.cut_stream()
    time.sleep(2)
    world.probes.stop(PRIMARY)
    written, kept = probe_rows(pair.writer), probe_rows(pair.standby)
    lost = set(written) - set(kept)
    assert len(lost) >= 5 and max(kept) < min(lost)  # the standby holds a prefix of the writer's heartbeats
    assert evacuate(world, tmp_path, "--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}") == 0
    summary, _ = report(tmp_path)
    assert summary["rows_lost"] == len(lost)
    assert summary["rpo_seconds"] == pytest.approx(written[max(written)] - kept[max(kept)], abs=0.002)
    steps = {s["name"]: s for s in summary["steps"]}
    assert steps["fence-primary-writers"]["status"] == "skipped"
    assert steps["wait-for-replica-lag"]["detail"]["lag_source"] == "replication probe"


def test_status_answers_from_us_west_2_alone(world, pair, tmp_path, capsys):
    assert eventually(lambda: len(probe_rows(pair.standby)) >= 3, timeout=30)
    dead = ["--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}"]
    assert cli.main(["status", *world.outputs_args(), *dead]) == 0
    out = capsys.readouterr().out
    assert "active region      us-east-1" in out and "switch             off" in out
    assert "READY: the standby can take over" in out
    # The switch on while the writer is still in us-east-1: users would meet a read-only standby.
    boto3.client("cloudwatch", region_name=BACKUP, endpoint_url=world.moto.url).put_metric_data(
        Namespace="TradingPlatform/Failover", MetricData=[{"MetricName": "SwitchToStandby", "Value": 1.0,
                                                           "Dimensions": [{"Name": "Environment",
                                                                           "Value": "production"}]}])
    assert cli.main(["status", "--format", "json", *world.outputs_args(), *dead]) == 3
    document = json.loads(capsys.readouterr().out)
    assert document["ready"] is False and document["switch"]["on"] is True
    assert any("the switch sends users to us-west-2" in why for why in document["not_ready_because"])
    assert document["replication"]["newest_replicated"]["seq"] >= 3
