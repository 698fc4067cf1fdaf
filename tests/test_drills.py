"""The drill tool end to end against a moto server on loopback and local HTTP endpoints (drills/sandbox.py).

moto does not simulate health-check failure, DNS answers or replica lag: the front server answers the way
the failover record would, and tests inject ReplicaLag datapoints where they need lag.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import boto3
import pytest

import drills.__main__ as cli
import drills.scenarios as scenarios
from drills.sandbox import BACKUP, IDENTIFIER, PRIMARY, MotoServer, World


@pytest.fixture(scope="module")
def moto():
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def world(moto, tmp_path, monkeypatch):
    for key, value in moto.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    built = World(tmp_path, moto)
    yield built
    built.close(stop_moto=False)


def client(world, service, region):
    return boto3.client(service, region_name=region, endpoint_url=world.moto.url)


def desired(world, region):
    services = client(world, "ecs", region).describe_services(cluster=IDENTIFIER,
                                                              services=["api", "web", "worker", "beat"])["services"]
    return {s["serviceName"]: s["desiredCount"] for s in services}


def inverted(world):
    config = client(world, "route53", PRIMARY).get_health_check(
        HealthCheckId=world.outputs["primary"]["health_check_id"])["HealthCheck"]["HealthCheckConfig"]
    return config["Inverted"]


def run(world, tmp_path, *extra, scenario="region-evacuation"):
    return cli.main(["run", "--scenario", scenario, "--execute", "--confirm", BACKUP, "--probe-url", world.front.url,
                     "--probe-interval", "0.05", "--probe-timeout", "5", "--hold", "0.3",
                     "--promotion-keeps-source-link",
                     "--journal-dir", str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"),
                     *world.args(), *extra])


def journal(tmp_path):
    (path,) = (tmp_path / "journals").glob("drill-*.json")
    return path, json.loads(path.read_text())


# --- inputs and safety


def test_a_missing_output_key_exits_2_naming_key_and_file(world, tmp_path, capsys):
    document = dict(world.outputs["backup"])
    del document["health_check_id"]
    (tmp_path / "backup.json").write_text(json.dumps(document))
    assert cli.main(["plan", "--scenario", "dns-failover", *world.args()]) == 2
    error = capsys.readouterr().err
    assert "missing output 'health_check_id'" in error and str(tmp_path / "backup.json") in error


def test_a_malformed_outputs_file_exits_2(world, tmp_path, capsys):
    (tmp_path / "primary.json").write_text("{not json")
    assert cli.main(["preflight", *world.args()]) == 2
    assert "primary.json: not valid JSON" in capsys.readouterr().err


def test_a_wrong_confirm_exits_2_and_calls_nothing(world, tmp_path, capsys):
    code = cli.main(["run", "--scenario", "dns-failover", "--execute", "--confirm", PRIMARY,
                     "--journal-dir", str(tmp_path / "journals"), *world.args()])
    assert code == 2
    assert "--confirm must be the backup region us-west-2" in capsys.readouterr().err
    assert not inverted(world) and not (tmp_path / "journals").exists()


def test_plan_and_dry_run_show_the_calls_and_change_nothing(world, capsys):
    assert cli.main(["plan", "--scenario", "region-evacuation", *world.args()]) == 0
    assert cli.main(["run", "--scenario", "region-evacuation", *world.args()]) == 0
    out = capsys.readouterr().out
    assert f"rds[us-west-2].promote_read_replica(DBInstanceIdentifier={IDENTIFIER})" in out
    assert f"ecs[us-west-2].update_service(cluster={IDENTIFIER}, service=api, desiredCount=2)" in out
    assert "dry run: add --execute --confirm us-west-2" in out
    assert desired(world, BACKUP) == {"api": 1, "web": 1, "worker": 0, "beat": 0} and not inverted(world)


def test_preflight_passes_and_fails_with_evidence(world, capsys):
    assert cli.main(["preflight", *world.args()]) == 0
    out = capsys.readouterr().out
    assert "[PASS] replica:" in out and "replicates from arn:aws:rds:us-east-1:" in out
    assert "[PASS] replica-lag: no ReplicaLag datapoints" in out and "up to 5 minutes" in out
    client(world, "s3", PRIMARY).delete_bucket_replication(Bucket=world.outputs["primary"]["backup_bucket_name"])
    assert cli.main(["preflight", *world.args()]) == 3
    assert "[FAIL] s3-replication" in capsys.readouterr().out


def test_a_second_drill_refuses_to_start_while_a_journal_is_open(world, tmp_path, capsys):
    (tmp_path / "journals").mkdir()
    (tmp_path / "journals" / "drill-earlier.json").write_text(json.dumps({"status": "running"}))
    assert run(world, tmp_path) == 2
    assert "a drill is in progress" in capsys.readouterr().err
    assert desired(world, BACKUP)["api"] == 1


# --- scenarios end to end


def test_dns_failover_end_to_end(world, tmp_path):
    assert run(world, tmp_path, scenario="dns-failover") == 0
    assert not inverted(world)  # reverted
    _, data = journal(tmp_path)
    assert data["status"] == "done" and [s["status"] for s in data["steps"]] == ["done"] * 5
    regions = [p["region"] for p in data["probes"]]
    assert BACKUP in regions and regions[-1] == PRIMARY
    assert 0 < data["rto_seconds"] < 5 and data["rpo_seconds"] == 0
    report = json.loads((tmp_path / "reports" / f"drill-{data['id']}.json").read_text())
    assert report["rto_seconds"] == data["rto_seconds"] and report["operator"]["user"]
    assert (tmp_path / "reports" / f"drill-{data['id']}.html").read_text().count("<rect") == 5


def test_region_evacuation_end_to_end(world, tmp_path, capsys):
    assert run(world, tmp_path) == 0
    assert desired(world, BACKUP) == {"api": 2, "web": 2, "worker": 2, "beat": 1}
    assert desired(world, PRIMARY) == {"api": 2, "web": 2, "worker": 0, "beat": 0}
    assert inverted(world)
    snapshots = client(world, "rds", BACKUP).describe_db_snapshots(DBInstanceIdentifier=IDENTIFIER)["DBSnapshots"]
    _, data = journal(tmp_path)
    assert f"{IDENTIFIER}-drill-{data['id']}".lower() in {s["DBSnapshotIdentifier"] for s in snapshots}
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["snapshot-replica"]["ended_at_epoch"] <= steps["promote-replica"]["started_at_epoch"]
    # Never two beats: the backup's beat starts only after the primary's stopped.
    assert steps["stop-primary-writers"]["ended_at_epoch"] <= steps["start-backup-writers"]["started_at_epoch"]
    assert data["rpo_seconds"] is None and "no ReplicaLag datapoints" in data["rpo_reason"]
    out = capsys.readouterr().out
    assert "pulumi config set --path trading-platform:database.promoted true -s backup" in out


def test_measured_rpo_is_the_replica_lag_at_promotion(world, tmp_path):
    client(world, "cloudwatch", BACKUP).put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": "ReplicaLag", "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": IDENTIFIER}],
        "Value": 12.0, "Unit": "Seconds"}])
    assert run(world, tmp_path) == 0
    assert journal(tmp_path)[1]["rpo_seconds"] == 12.0


# --- faults


def test_a_stop_alarm_mid_run_aborts_and_rolls_back(world, tmp_path, monkeypatch):
    cloudwatch = client(world, "cloudwatch", BACKUP)
    cloudwatch.put_metric_alarm(AlarmName="trading-errors", MetricName="x", Namespace="drill", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    original = scenarios._hold

    def hold_then_alarm(ctx, detail):  # the alarm fires while the backup serves
        cloudwatch.set_alarm_state(AlarmName="trading-errors", StateValue="ALARM", StateReason="drill test")
        return original(ctx, detail)

    monkeypatch.setattr(scenarios, "_hold", hold_then_alarm)
    assert run(world, tmp_path, "--stop-alarm", "trading-errors", scenario="dns-failover") == 5
    assert not inverted(world)
    _, data = journal(tmp_path)
    assert data["status"] == "aborted" and "trading-errors is in ALARM" in data["stop_reason"]
    assert data["steps"][0]["status"] == "undone"


def test_replica_lag_over_the_limit_refuses_to_promote(world, tmp_path, monkeypatch):
    real_checks = cli.run_checks

    def checks_then_lag(ctx, journal_dir):  # lag rises after preflight passed
        found = real_checks(ctx, journal_dir)
        client(world, "cloudwatch", BACKUP).put_metric_data(Namespace="AWS/RDS", MetricData=[{
            "MetricName": "ReplicaLag", "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": IDENTIFIER}],
            "Value": 900.0, "Timestamp": dt.datetime.now(dt.UTC), "Unit": "Seconds"}])
        return found

    monkeypatch.setattr(cli, "run_checks", checks_then_lag)
    assert run(world, tmp_path, "--max-replica-lag", "300") == 5
    _, data = journal(tmp_path)
    assert "replica lag 900 s is over --max-replica-lag 300 s" in data["stop_reason"]
    steps = {s["name"]: s["status"] for s in data["steps"]}
    assert steps["promote-replica"] != "done" and steps["invert-primary-health-check"] == "pending"
    assert desired(world, BACKUP) == {"api": 1, "web": 1, "worker": 0, "beat": 0}  # readers scaled back
    assert not inverted(world)


def test_moto_killed_mid_run_then_resume_completes(world, tmp_path, monkeypatch, capsys):
    original = scenarios._snapshot_replica

    def snapshot_then_crash(ctx, detail):
        result = original(ctx, detail)
        world.moto.stop()  # AWS goes away between two steps
        return result

    monkeypatch.setattr(scenarios, "_snapshot_replica", snapshot_then_crash)
    assert run(world, tmp_path) == 4
    path, data = journal(tmp_path)
    assert data["status"] == "failed"
    statuses = {s["name"]: s["status"] for s in data["steps"]}
    assert statuses["snapshot-replica"] == "done" and statuses["scale-backup-readers"] == "failed"
    assert "python -m drills resume" in capsys.readouterr().out

    monkeypatch.setattr(scenarios, "_snapshot_replica", original)
    world.moto.start()
    world.build()  # moto keeps nothing across a restart: rebuild the same world (seeded ids)
    assert world.outputs["primary"]["health_check_id"] == data["outputs"]["primary"]["health_check_id"]
    assert cli.main(["resume", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 0
    assert desired(world, BACKUP) == {"api": 2, "web": 2, "worker": 2, "beat": 1}
    assert inverted(world)
    assert json.loads(path.read_text())["status"] == "done"


def test_an_abort_after_promotion_returns_to_the_primary_and_says_the_replica_is_gone(world, tmp_path, monkeypatch,
                                                                                      capsys):
    cloudwatch = client(world, "cloudwatch", BACKUP)
    cloudwatch.put_metric_alarm(AlarmName="trading-errors", MetricName="x", Namespace="drill", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    original = scenarios._promote_replica

    def promote_then_alarm(ctx, detail):
        result = original(ctx, detail)
        cloudwatch.set_alarm_state(AlarmName="trading-errors", StateValue="ALARM", StateReason="drill test")
        return result

    monkeypatch.setattr(scenarios, "_promote_replica", promote_then_alarm)
    assert run(world, tmp_path, "--stop-alarm", "trading-errors") == 5
    assert desired(world, BACKUP) == {"api": 1, "web": 1, "worker": 0, "beat": 0}  # readers scaled back
    assert not inverted(world)
    _, data = journal(tmp_path)
    assert "rebuild the replica" in data["warning"]
    assert "the backup database was promoted" in capsys.readouterr().out


def test_abort_undoes_reversible_steps_and_deletes_nothing(world, tmp_path):
    world.regions[BACKUP].down = True  # the backup never answers: the probe step fails
    assert run(world, tmp_path, scenario="dns-failover") == 4
    path, data = journal(tmp_path)
    assert inverted(world) and data["status"] == "failed"
    assert cli.main(["abort", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 5
    assert not inverted(world)
    data = json.loads(path.read_text())
    assert data["status"] == "aborted" and data["steps"][0]["status"] == "undone"
    assert cli.main(["resume", "--journal", str(path)]) == 2  # nothing left to resume


def test_report_and_failback_plan(world, tmp_path, capsys):
    assert run(world, tmp_path, scenario="dns-failover") == 0
    path, data = journal(tmp_path)
    assert cli.main(["report", "--journal", str(path), "--report-dir", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / f"drill-{data['id']}.md").read_text().startswith(f"# Drill {data['id']}")
    assert cli.main(["failback", "plan", *world.args()]) == 0
    out = capsys.readouterr().out
    assert "failback from us-west-2 to us-east-1" in out and "Inverted=False" in out


def test_journal_is_never_half_written(world, tmp_path):
    assert run(world, tmp_path, scenario="dns-failover") == 0
    leftovers = [p for p in (tmp_path / "journals").iterdir() if p.name.startswith(".journal-")]
    assert leftovers == []
    json.loads(journal(tmp_path)[0].read_text())


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path, monkeypatch):
    """Default journal and report directories land in the test's directory, not the repository."""
    monkeypatch.chdir(tmp_path)


def test_outputs_from_the_pulumi_cli(world, tmp_path, monkeypatch, capsys):
    """`--primary-stack/--backup-stack` run `pulumi stack output --json --show-secrets -s NAME`; a stand-in
    `pulumi` on PATH answers as the CLI would (there is no Pulumi CLI on these machines)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    script = bin_dir / "pulumi"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
case "$*" in
  *"-s org/primary"*) cat {tmp_path / 'primary.json'} ;;
  *"-s org/backup"*) cat {tmp_path / 'backup.json'} ;;
  *) echo "error: no stack named '$7'" >&2; exit 255 ;;
esac
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    assert cli.main(["plan", "--scenario", "dns-failover", "--primary-stack", "org/primary",
                     "--backup-stack", "org/backup"]) == 0
    assert calls.read_text().splitlines() == ["stack output --json --show-secrets -s org/primary",
                                              "stack output --json --show-secrets -s org/backup"]
    assert cli.main(["plan", "--scenario", "dns-failover", "--primary-stack", "org/primary",
                     "--backup-stack", "org/nope"]) == 2
    assert "stack org/nope:" in capsys.readouterr().err


def test_without_the_emulator_flag_a_promotion_waits_for_the_source_link_to_go(world, tmp_path):
    """On AWS a promotion is done when the replica no longer names its source; moto never drops it, so
    without --promotion-keeps-source-link the drill waits, and fails at --wait-timeout (exit 4)."""
    code = cli.main(["run", "--scenario", "region-evacuation", "--execute", "--confirm", BACKUP,
                     "--probe-url", world.front.url, "--wait-timeout", "1",
                     "--journal-dir", str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"),
                     *world.args()])
    assert code == 4
    steps = {s["name"]: s for s in journal(tmp_path)[1]["steps"]}
    assert steps["promote-replica"]["status"] == "failed"
    assert "replica promoted to a standalone writer" in steps["promote-replica"]["error"]


def test_a_step_failing_halfway_is_undone_by_abort(world, tmp_path, monkeypatch):
    """The counts before a scale are journaled before the first update, so an abort after a failure
    inside the step restores them."""
    original = scenarios.Context.wait

    def wait(self, what, done, interval=5):
        if what.startswith(f"services in {PRIMARY}"):
            raise TimeoutError(f"{what}: not done within 0 s")
        return original(self, what, done, interval)

    monkeypatch.setattr(scenarios.Context, "wait", wait)
    assert run(world, tmp_path) == 4
    path, data = journal(tmp_path)
    step = {s["name"]: s for s in data["steps"]}["stop-primary-writers"]
    assert step["status"] == "failed" and step["detail"]["previous"] == {"worker": 2, "beat": 1}
    assert desired(world, PRIMARY)["beat"] == 0  # the update went through before the failure
    monkeypatch.setattr(scenarios.Context, "wait", original)
    assert cli.main(["abort", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 5
    assert desired(world, PRIMARY) == {"api": 2, "web": 2, "worker": 2, "beat": 1}
    assert desired(world, BACKUP) == {"api": 1, "web": 1, "worker": 0, "beat": 0}
    assert json.loads(path.read_text())["warning"].startswith("the backup database was promoted")


def test_a_resume_does_not_promote_twice(world, tmp_path, monkeypatch):
    original = scenarios.Context.wait
    calls = []
    real_client = scenarios.Context.client

    def client(self, service, region):
        made = real_client(self, service, region)
        if service == "rds" and not hasattr(made, "_counted"):
            made.meta.events.register("before-call.rds.PromoteReadReplica", lambda **_: calls.append(1))
            made._counted = True
        return made

    def wait(self, what, done, interval=5):
        if what.startswith("replica promoted"):
            raise TimeoutError(f"{what}: not done within 0 s")
        return original(self, what, done, interval)

    monkeypatch.setattr(scenarios.Context, "client", client)
    monkeypatch.setattr(scenarios.Context, "wait", wait)
    assert run(world, tmp_path) == 4
    path, data = journal(tmp_path)
    assert {s["name"]: s for s in data["steps"]}["promote-replica"]["detail"]["promote_called"] is True
    monkeypatch.setattr(scenarios.Context, "wait", original)
    assert cli.main(["resume", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 0
    assert calls == [1]


def test_a_damaged_journal_is_named_not_a_traceback(world, tmp_path, capsys):
    damaged = tmp_path / "drill-broken.json"
    damaged.write_text('{"status": "running"')
    assert cli.main(["abort", "--journal", str(damaged)]) == 2
    assert "not a readable drill journal" in capsys.readouterr().err
    damaged.write_text('{"status": "running"}')
    assert cli.main(["resume", "--journal", str(damaged)]) == 2
    assert "not a drill journal (missing id, scenario, outputs" in capsys.readouterr().err


def test_preflight_fails_for_a_stop_alarm_that_does_not_exist(world, capsys):
    assert cli.main(["preflight", "--stop-alarm", "no-such-alarm", *world.args()]) == 3
    assert "[FAIL] stop-alarm no-such-alarm: exists in neither region" in capsys.readouterr().out
