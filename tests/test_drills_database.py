"""The database probe on two real PostgreSQL servers (Debian's binaries, on loopback, streaming replication):
the RPO a region evacuation reports is the data the promoted writer really lacks.

The emulated RDS promotion also promotes the PostgreSQL standby (drills/sandbox.py's AwsFront), so the drill
reads its heartbeats from a database that stopped replicating exactly where the promotion cut it.
"""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest

import drills.__main__ as cli
from drills.heartbeat import TABLE
from drills.pgpair import PostgresPair
from drills.sandbox import BACKUP, PRIMARY, SECRET_NAME, World, free_port

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


def run(world, tmp_path, *extra):
    return cli.main(["run", "--scenario", "region-evacuation", "--execute", "--confirm", BACKUP,
                     "--probe-url", world.front.url, "--probe-interval", "0.05", "--probe-timeout", "5",
                     "--promotion-keeps-source-link", "--db-probe-interval", INTERVAL,
                     "--journal-dir", str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"),
                     *world.args(), *extra])


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
    return [json.loads(line) for line in path.read_text().splitlines()]


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


def test_without_lag_the_measured_rpo_is_small_and_nothing_is_lost(world, pair, tmp_path):
    assert run(world, tmp_path, "--db-probe-lead", "1") == 0
    summary, markdown = report(tmp_path)
    acks = [a for a in acknowledged(tmp_path) if "id" in a]
    assert len(acks) >= 4  # a second of lead at 0.2 s, and the fence
    assert summary["rpo_seconds"] <= 2 and summary["rows_lost"] == 0
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
    assert summary["rpo_seconds"] >= cut_for - 1
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
    assert summary["rpo_seconds"] is not None and summary["rows_lost"] is not None
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
