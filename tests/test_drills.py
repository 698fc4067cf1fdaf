"""The drill tool end to end against a moto server on loopback and local HTTP endpoints (drills/sandbox.py).

moto evaluates no alarms and simulates no DNS answers or replica lag: the front server answers the way the
failover record would (from the switch's latest datapoint and the endpoints), and tests inject ReplicaLag
datapoints where they need lag.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import shlex
import shutil
import time

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

import drills.__main__ as cli
import drills.scenarios as scenarios
from drills import progress, switch
from drills.capacity import DIMENSION, NAMESPACE
from drills.endpoints import unreachable
from drills.sandbox import (
    ACTIVE,
    BACKUP,
    GLOBAL_DATASTORE,
    IDENTIFIER,
    PRIMARY,
    RESTART_RULE,
    STANDBY,
    SWITCH,
    World,
    free_port,
    stack_outputs,
    write_outputs,
)
from synth.engine import REPO, evaluate

STANDBY_COUNTS = {name: c["desired"] for name, c in STANDBY.items()}
ACTIVE_COUNTS = {name: c["desired"] for name, c in ACTIVE.items()}
PRIMARY_FENCED = {"api": 0, "web": 2, "worker": 0, "beat": 0}


@pytest.fixture
def world(moto, tmp_path, monkeypatch):
    built = World(tmp_path, moto)
    for key, value in built.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield built
    built.close(stop_moto=False)


@pytest.fixture
def outputs(tmp_path):
    """The stacks' outputs as files without a world behind them, for input checks that call no AWS:
    (documents by role, the drill's arguments)."""
    unused = "http://127.0.0.1:9/api/health"
    documents = stack_outputs(unused, unused)
    return documents, write_outputs(tmp_path, documents)


@pytest.fixture(autouse=True)
def _in_a_scratch_directory(tmp_path, monkeypatch):
    """Default journal and report directories land in the test's directory, not the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def aws_calls(monkeypatch):
    """Every AWS call the drill makes, in order, as (region, operation, params), from botocore's events."""
    calls = []
    real_client = scenarios.Context.client

    def client(self, service, region):
        made = real_client(self, service, region)
        if not getattr(made, "_recorded", False):
            made.meta.events.register("before-parameter-build", lambda model, params, **_: calls.append(
                (region, model.name, params)))
            made._recorded = True
        return made

    monkeypatch.setattr(scenarios.Context, "client", client)
    return calls


def client(world, service, region):
    return boto3.client(service, region_name=region, endpoint_url=world.moto.url)


def desired(world, region):
    services = client(world, "ecs", region).describe_services(cluster=IDENTIFIER,
                                                              services=["api", "web", "worker", "beat"])["services"]
    return {s["serviceName"]: s["desiredCount"] for s in services}


def bounds(world, region):
    """The scalable targets' (min, max) by service."""
    targets = client(world, "application-autoscaling", region).describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ScalableDimension=DIMENSION)["ScalableTargets"]
    return {t["ResourceId"].rsplit("/", 1)[-1]: (t["MinCapacity"], t["MaxCapacity"]) for t in targets}


def switch_value(world):
    """The switch's latest datapoint, counting one dated up to a second ahead (an off after a quick on)."""
    found = switch.reading(client(world, "cloudwatch", SWITCH.region), SWITCH, 1, time.time() + 2)
    return None if found is None else found[0]


def db_ingress(world, region):
    """Whether the database's security group admits the app tasks (the stacks' db-from-app rule)."""
    fence = world.outputs["primary" if region == PRIMARY else "backup"]["db_fence"]
    (group,) = client(world, "ec2", region).describe_security_groups(GroupIds=[fence["security_group_id"]])[
        "SecurityGroups"]
    return any(p.get("FromPort") == 5432 and [g["GroupId"] for g in p["UserIdGroupPairs"]] ==
               [fence["app_security_group_id"]] for p in group["IpPermissions"])


def rule_state(world, region):
    return client(world, "events", region).describe_rule(Name=RESTART_RULE)["State"]


def replica_lag(world, seconds):
    client(world, "cloudwatch", BACKUP).put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": "ReplicaLag", "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": IDENTIFIER}],
        "Value": seconds, "Timestamp": dt.datetime.now(dt.UTC), "Unit": "Seconds"}])


def run(world, tmp_path, *extra, scenario="region-evacuation"):
    return cli.main(["run", "--scenario", scenario, "--execute", "--confirm", BACKUP, "--probe-url", world.front.url,
                     "--probe-interval", "0.05", "--probe-timeout", "5", "--hold", "0.3",
                     "--promotion-keeps-source-link",
                     "--journal-dir", str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"),
                     *world.args(), *extra])


def journal(tmp_path):
    (path,) = (tmp_path / "journals").glob("drill-*.json")
    return path, json.loads(path.read_text())


def statuses(data):
    return {s["name"]: s["status"] for s in data["steps"]}


def reports(tmp_path, data):
    """The JSON summary and the Markdown and HTML texts of a drill's reports."""
    base = tmp_path / "reports" / f"drill-{data['id']}"
    return (json.loads(base.with_suffix(".json").read_text()), base.with_suffix(".md").read_text(),
            base.with_suffix(".html").read_text())


def first(calls, region, operation, **params):
    """The index of the first call of `operation` in `region` whose params include `params`."""
    return next(i for i, (r, op, p) in enumerate(calls)
                if r == region and op == operation and all(p.get(k) == v for k, v in params.items()))


# --- inputs and safety


@pytest.mark.parametrize(("role", "key", "named"), [
    ("backup", "db_instance_arn", "db_instance_arn"),
    ("primary", "failover_switch", "failover_switch"),
    ("backup", "ecs_standby_capacity", "ecs_standby_capacity"),
    ("primary", "failover_switch.alarm_name", "failover_switch.alarm_name"),
    ("primary", "ecs_standby_capacity.beat", "ecs_standby_capacity.beat"),
])
def test_a_missing_output_key_exits_2_naming_key_and_file(outputs, tmp_path, capsys, role, key, named):
    documents, args = outputs
    document = json.loads(json.dumps(documents[role]))
    parent, _, member = key.rpartition(".")
    del (document[parent] if parent else document)[member]
    (tmp_path / f"{role}.json").write_text(json.dumps(document))
    assert cli.main(["plan", "--scenario", "region-evacuation", *args]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"'{named}'" in error and str(tmp_path / f"{role}.json") in error


def test_a_malformed_outputs_file_exits_2(outputs, tmp_path, capsys):
    (tmp_path / "primary.json").write_text("{not json")
    assert cli.main(["preflight", *outputs[1]]) == 2
    assert "primary.json: not valid JSON" in capsys.readouterr().err


def test_a_bad_endpoint_url_exits_2_in_one_line(outputs, capsys):
    assert cli.main(["preflight", "--endpoint-url", "us-east-1:http://x", *outputs[1]]) == 2
    error = capsys.readouterr().err
    assert error == "drills: --endpoint-url 'us-east-1:http://x': expected REGION=URL, e.g. " \
                    "us-east-1=http://127.0.0.1:5000\n"


def test_a_region_is_unreachable_on_connection_errors_timeouts_and_5xx_only():
    def answer(status):
        return ClientError({"Error": {"Code": "x", "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                           "DescribeServices")

    assert unreachable(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    assert unreachable(ReadTimeoutError(endpoint_url="http://127.0.0.1:1"))
    assert unreachable(answer(503)) and not unreachable(answer(400)) and not unreachable(TimeoutError("wait"))


def test_a_wrong_confirm_exits_2_and_calls_nothing(world, tmp_path, capsys):
    code = cli.main(["run", "--scenario", "dns-failover", "--execute", "--confirm", PRIMARY,
                     "--journal-dir", str(tmp_path / "journals"), *world.args()])
    assert code == 2
    assert "--confirm must be the region users go to, us-west-2" in capsys.readouterr().err
    assert switch_value(world) is None and not (tmp_path / "journals").exists()


def test_plan_and_dry_run_show_the_calls_and_change_nothing(world, capsys):
    assert cli.main(["plan", "--scenario", "region-evacuation", *world.args()]) == 0
    assert cli.main(["run", "--scenario", "region-evacuation", *world.args()]) == 0
    out = capsys.readouterr().out
    assert ("cloudwatch[us-west-2].put_metric_data(Namespace=TradingPlatform/Failover, MetricName=SwitchToStandby, "
            "Dimensions=Environment=production, Value=1, Unit=Count)") in out
    assert (f"application-autoscaling[us-east-1].register_scalable_target(ServiceNamespace=ecs, "
            f"ResourceId=service/{IDENTIFIER}/worker, ScalableDimension=ecs:service:DesiredCount, MinCapacity=0, "
            "MaxCapacity=0)") in out
    assert "best effort: skipped if us-east-1 is unreachable" in out
    assert f"rds[us-west-2].promote_read_replica(DBInstanceIdentifier={IDENTIFIER})" in out
    assert f"ecs[us-west-2].update_service(cluster={IDENTIFIER}, service=beat, desiredCount=1)" in out
    assert "dry run: add --execute --confirm us-west-2" in out and "route53" not in out
    assert cli.main(["plan", "--scenario", "dns-failover", *world.args()]) == 0
    assert "users are served READ-ONLY by the standby during the hold" in capsys.readouterr().out
    assert desired(world, BACKUP) == STANDBY_COUNTS and switch_value(world) is None


def test_preflight_passes_and_fails_with_evidence(world, capsys):
    # With nothing to measure the data loss by, the preflight refuses and names the command that accepts it.
    assert cli.main(["preflight", *world.args()]) == 3
    out = capsys.readouterr().out
    assert "[PASS] replica-lag: no ReplicaLag datapoints" in out and "up to 5 minutes" in out
    assert ("[FAIL] data-loss: unknown: no heartbeat reading and no ReplicaLag datapoints, so the evacuation would "
            "turn the switch on and then refuse to promote. To promote with an unknown loss: python -m drills "
            f"preflight {' '.join(world.args())} --accept-data-loss") in out
    assert out.strip().splitlines()[-1] == "preflight: 11 passed, 0 warnings, 1 failed: not ready"
    # What moves with the writer, read in us-west-2: the secrets still replicas of us-east-1's, no Global Datastore.
    assert ("[PASS] handover: us-west-2: database-credentials replica of us-east-1, jwt-secret replica of us-east-1; "
            "no Global Datastore: queued Celery tasks stay in us-east-1's cache") in out
    replica_lag(world, 3.0)
    assert cli.main(["preflight", *world.args()]) == 0
    out = capsys.readouterr().out
    assert "[PASS] replica:" in out and "replicates from arn:aws:rds:us-east-1:" in out
    assert "[PASS] data-loss: 3.0 s behind by ReplicaLag (--max-lag 300 s)" in out
    assert "[PASS] replica-backups: trading-platform-production keeps automated backups" in out
    assert f"[PASS] failover-switch-alarm: {SWITCH.alarm_name} in us-west-2" in out
    assert "[PASS] failover-switch-off: TradingPlatform/Failover SwitchToStandby: no data (off)" in out
    assert "[PASS] backup-standby-capacity" in out and "health" not in out
    client(world, "s3", PRIMARY).delete_bucket_replication(Bucket=world.outputs["primary"]["backup_bucket_name"])
    switch.put(client(world, "cloudwatch", BACKUP), SWITCH, 1, time.time() - 2)
    client(world, "cloudwatch", BACKUP).delete_alarms(AlarmNames=[SWITCH.alarm_name])
    assert cli.main(["preflight", *world.args()]) == 3
    out = capsys.readouterr().out
    # A switch already on only warns: an operator may have moved users first; the drill's switch is idempotent.
    assert "[FAIL] s3-replication" in out and "[WARN] failover-switch-off" in out and "(on)" in out
    assert f"[FAIL] failover-switch-alarm: no alarm {SWITCH.alarm_name} in us-west-2" in out


def test_a_second_drill_refuses_to_start_while_a_journal_is_open(world, tmp_path, capsys):
    (tmp_path / "journals").mkdir()
    (tmp_path / "journals" / "drill-earlier.json").write_text(json.dumps({"status": "running"}))
    assert run(world, tmp_path) == 2
    assert "a drill is in progress" in capsys.readouterr().err
    assert desired(world, BACKUP)["api"] == 1


# --- scenarios end to end


def test_dns_failover_end_to_end(world, tmp_path, aws_calls):
    assert run(world, tmp_path, scenario="dns-failover") == 0
    assert switch_value(world) == 0  # switched off again
    _, data = journal(tmp_path)
    assert data["status"] == "done" and [s["status"] for s in data["steps"]] == ["done"] * 5
    regions = [p["region"] for p in data["probes"]]
    assert BACKUP in regions and regions[-1] == PRIMARY
    assert 0 < data["rto_seconds"] < 5 and data["rpo_seconds"] == 0
    summary, _, page = reports(tmp_path, data)
    assert summary["rto_seconds"] == data["rto_seconds"] and summary["operator"]["user"]
    assert page.count("<rect") == 5
    # Traffic moves by the switch alone: CloudWatch in us-west-2, nothing in us-east-1, no Route53.
    assert {(r, op) for r, op, _ in aws_calls if op == "PutMetricData"} == {(BACKUP, "PutMetricData")}
    assert not [c for c in aws_calls if c[0] == PRIMARY and c[1] != "GetBucketReplication"]


def test_a_switch_that_does_not_hold_fails_the_hold(world, tmp_path, monkeypatch):
    # The hold probes all along: users back on the primary mid-hold is what a drill is there to find.
    real = scenarios.probe_once
    seen = []

    def probe_then_lose_the_switch(url, *args, **kwargs):
        seen.append(url)
        if len(seen) == 2:  # the switch goes off under the drill (in AWS: Route53 read stale data as off)
            switch.put(client(world, "cloudwatch", BACKUP), SWITCH, 0, time.time() + 1)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(scenarios, "probe_once", probe_then_lose_the_switch)
    assert run(world, tmp_path, "--hold", "5", scenario="dns-failover") == 4
    _, data = journal(tmp_path)
    hold = {s["name"]: s for s in data["steps"]}["hold"]
    assert hold["status"] == "failed" and "answered" in hold["error"] and "the switch did not hold" in hold["error"]


def test_region_evacuation_end_to_end(world, tmp_path, aws_calls, capsys):
    replica_lag(world, 3.0)
    assert run(world, tmp_path) == 0
    assert desired(world, BACKUP) == ACTIVE_COUNTS
    assert desired(world, PRIMARY) == PRIMARY_FENCED
    assert switch_value(world) == 1
    snapshots = client(world, "rds", BACKUP).describe_db_snapshots(DBInstanceIdentifier=IDENTIFIER)["DBSnapshots"]
    _, data = journal(tmp_path)
    assert set(statuses(data).values()) == {"done"}
    # The replica's automated backups cover the moment before the promotion: no snapshot on the RTO path.
    assert "snapshot-replica" not in statuses(data)
    assert not [s for s in snapshots if s["DBSnapshotIdentifier"].startswith(f"{IDENTIFIER}-drill-")]
    assert data["rpo_seconds"] == 3.0 and 0 < data["rto_seconds"] < 5
    out = capsys.readouterr().out
    assert 'Pulumi.backup.yaml: trading-platform:activeRegion: "us-west-2"' in out
    assert "Pulumi.primary.yaml: trading-platform:database.detached: true" in out
    assert "python -m drills reconcile --journal" in out


def test_the_switch_comes_first_and_the_fence_before_the_promotion(world, tmp_path, aws_calls):
    replica_lag(world, 3.0)
    assert run(world, tmp_path) == 0
    switch_on = first(aws_calls, BACKUP, "PutMetricData")
    assert aws_calls[switch_on][2]["MetricData"][0]["Value"] == 1
    changes = [i for i, (_, op, _) in enumerate(aws_calls)
               if op in ("PutMetricData", "RegisterScalableTarget", "UpdateService", "CreateDBSnapshot",
                         "PromoteReadReplica")]
    # Before the switch: only the backup's api and web raised to the active capacity, and running it.
    before = [aws_calls[i] for i in changes if i < switch_on]
    assert before and {region for region, _, _ in before} == {BACKUP}
    assert {p.get("service") or p["ResourceId"].rsplit("/", 1)[-1] for _, _, p in before} == {"api", "web"}
    assert first(aws_calls, BACKUP, "UpdateService", service="api", desiredCount=2) < switch_on
    promotion = first(aws_calls, BACKUP, "PromoteReadReplica")
    fence = [first(aws_calls, PRIMARY, "RegisterScalableTarget", ResourceId=f"service/{IDENTIFIER}/{s}",
                   MinCapacity=0, MaxCapacity=0) for s in ("api", "worker")]
    fence += [first(aws_calls, PRIMARY, "UpdateService", service=s, desiredCount=0) for s in ("api", "worker", "beat")]
    assert switch_on < min(fence) and max(fence) < promotion
    # The backup's writers start only after the promotion (and so after the fence).
    starts = [first(aws_calls, BACKUP, "UpdateService", service="worker", desiredCount=2),
              first(aws_calls, BACKUP, "UpdateService", service="beat", desiredCount=1),
              first(aws_calls, BACKUP, "RegisterScalableTarget", ResourceId=f"service/{IDENTIFIER}/worker")]
    assert promotion < min(starts)
    # Nothing that moves traffic or data calls us-east-1.
    assert {r for r, op, _ in aws_calls if op in ("PutMetricData", "CreateDBSnapshot", "PromoteReadReplica",
                                                  "GetMetricStatistics")} == {BACKUP}
    assert not [c for c in aws_calls if c[1].endswith("HealthCheck")]


def test_target_tracking_cannot_undo_the_evacuation(world, tmp_path):
    assert bounds(world, BACKUP) == {"api": (1, 10), "web": (1, 10), "worker": (0, 0)}
    replica_lag(world, 3.0)
    assert run(world, tmp_path) == 0
    assert bounds(world, BACKUP) == {s: (ACTIVE[s]["min"], ACTIVE[s]["max"]) for s in ("api", "web", "worker")}
    assert bounds(world, PRIMARY) == {"api": (0, 0), "web": (2, 10), "worker": (0, 0)}


def test_an_evacuation_with_us_east_1_unreachable_completes(world, tmp_path, capsys):
    """Every us-east-1 endpoint refuses connections (--endpoint-url points it at a closed port): the primary's
    steps are skipped with their error, and the evacuation completes from us-west-2 alone."""
    replica_lag(world, 3.0)
    assert run(world, tmp_path, "--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}") == 0
    out = capsys.readouterr().out
    assert "[WARN] s3-replication: us-east-1 unreachable, not checked: Could not connect" in out
    _, data = journal(tmp_path)
    assert data["status"] == "done"
    steps = {s["name"]: s for s in data["steps"]}
    in_us_east_1 = ("fence-primary-writers", "fence-primary-database", "stop-primary-rotation")
    for name in in_us_east_1:
        assert steps[name]["status"] == "skipped"
        assert "Could not connect to the endpoint URL" in steps[name]["error"]
    assert {n: s["status"] for n, s in steps.items() if n not in in_us_east_1} == dict.fromkeys(
        ["prepare-backup-serving", "switch-on", "wait-for-replica-lag", "promote-replica", "detach-backup-secrets",
         "raise-backup-capacity", "probe-until-backup-answers"], "done")
    # Users moved only once the standby served at the active size (Route53 answers with the primary whenever the
    # SECONDARY is unhealthy: one restarting task there would send them back).
    assert steps["prepare-backup-serving"]["detail"]["set"] == {s: ACTIVE[s] for s in ("api", "web")}
    assert min(ACTIVE["api"]["min"], ACTIVE["web"]["min"]) >= 2
    assert steps["prepare-backup-serving"]["ended_at_epoch"] <= steps["switch-on"]["started_at_epoch"]
    assert switch_value(world) == 1 and desired(world, BACKUP) == ACTIVE_COUNTS
    assert desired(world, PRIMARY) == ACTIVE_COUNTS  # unreached: as it was
    # Nothing in us-west-2 is tied to us-east-1 any more: its secrets are standalone, and the rule that restarted
    # its services on us-east-1's new passwords is off.
    backup_secrets = client(world, "secretsmanager", BACKUP)
    for arn in world.outputs["backup"]["secret_arns"].values():
        assert "PrimaryRegion" not in backup_secrets.describe_secret(SecretId=arn)
    assert sorted(steps["detach-backup-secrets"]["detail"]["made_standalone"]) == ["database-credentials",
                                                                                  "jwt-secret"]
    assert client(world, "events", BACKUP).describe_rule(Name=RESTART_RULE)["State"] == "DISABLED"
    # When us-east-1 returns, a new password there stays there.
    credentials = world.outputs["backup"]["secret_arns"]["database-credentials"]
    before = backup_secrets.get_secret_value(SecretId=credentials)["SecretString"]
    client(world, "secretsmanager", PRIMARY).put_secret_value(
        SecretId=world.outputs["primary"]["secret_arns"]["database-credentials"], SecretString='{"password": "new"}')
    assert backup_secrets.get_secret_value(SecretId=credentials)["SecretString"] == before
    summary, markdown, page = reports(tmp_path, data)
    assert [s["name"] for s in summary["skipped"]] == list(in_us_east_1)
    assert "Skipped (best effort" in markdown and "- fence-primary-writers: Could not connect" in markdown
    assert "Skipped (best effort" in page and "<li>fence-primary-writers: Could not connect" in page
    assert "| fence-primary-writers | skipped |" in markdown
    # A skipped step is no done one: the headline says how many.
    assert markdown.startswith(f"# Drill {data['id']}: region-evacuation (done, 3 steps skipped)")
    assert "<h1>region-evacuation: done, 3 steps skipped</h1>" in page
    # A time axis under the timeline, and each step with what it changed.
    assert ">0 s</text>" in page and "<pre>" in page and "| prepare-backup-serving |" in markdown
    assert "made_standalone: [" in markdown
    # Each fence, and that none is known to have held: us-east-1 never answered.
    assert [(f["fence"], f["held"]) for f in summary["fences"]] == [
        ("ecs", None), ("database-ingress", None), ("database-sessions", None)]
    assert "- ecs: NOT KNOWN: api, worker and beat scaled to 0" in markdown
    assert "queued Celery tasks in us-east-1's cache were not moved" in summary["broker"]
    # The writers the fence could not reach restart against the old writer when the region returns:
    # reconcile says how to fence them first.
    path, _ = journal(tmp_path)
    capsys.readouterr()
    assert cli.main(["reconcile", "--journal", str(path)]) == 0
    out = capsys.readouterr().out
    for service in ("api", "worker", "beat"):
        assert f"aws ecs update-service --region us-east-1 --cluster trading-platform-production --service " \
               f"{service} --desired-count 0" in out
    # And the fences at the database and the rotation it could not reach either.
    fence = world.outputs["primary"]["db_fence"]
    assert (f"aws ec2 revoke-security-group-ingress --region us-east-1 --group-id {fence['security_group_id']} "
            f"--protocol tcp --port 5432 --source-group {fence['app_security_group_id']}") in out
    assert "aws rds reboot-db-instance --region us-east-1 --db-instance-identifier trading-platform-production" in out
    assert "aws secretsmanager cancel-rotate-secret --secret-id 'arn:aws:secretsmanager:us-east-1:" in out
    assert "--resource-id service/trading-platform-production/worker --min-capacity 0 --max-capacity 0" in out


def test_an_evacuation_fences_the_old_writer_at_the_database_and_reports_each_fence(world, tmp_path, capsys):
    replica_lag(world, 3.0)
    assert db_ingress(world, PRIMARY) and rule_state(world, BACKUP) == "ENABLED"
    assert run(world, tmp_path) == 0
    _, data = journal(tmp_path)
    steps = statuses(data)
    order = list(steps)
    # The fences come before the replica is waited on and promoted; the secrets are cut loose right after.
    assert order.index("fence-primary-writers") < order.index("fence-primary-database") < order.index(
        "wait-for-replica-lag") < order.index("promote-replica") < order.index("detach-backup-secrets")
    assert set(steps.values()) == {"done"}
    assert not db_ingress(world, PRIMARY) and db_ingress(world, BACKUP)
    # us-east-1's rule no longer restarts or forwards; us-west-2's no longer hears us-east-1's secret.
    assert rule_state(world, PRIMARY) == rule_state(world, BACKUP) == "DISABLED"
    summary, markdown, _ = reports(tmp_path, data)
    assert [(f["fence"], f["held"]) for f in summary["fences"]] == [
        ("ecs", True), ("database-ingress", True), ("database-sessions", True)]
    assert "- database-sessions: HELD: the old writer rebooted, ending every open session (RDS accepted" in markdown
    out = capsys.readouterr().out
    assert "fence database-ingress: HELD (EC2 accepted the revocation)" in out


def test_with_a_global_datastore_the_evacuation_moves_the_broker_from_us_west_2(moto, tmp_path, monkeypatch):
    """cache.globalDatastore: the backup's cache becomes the datastore's primary (FailoverGlobalReplicationGroup,
    called in us-west-2 while us-east-1 refuses every connection) before its workers start, and the report says the
    queued tasks moved with it."""
    world = World(tmp_path, moto, global_datastore=True)
    try:
        for key, value in world.environment().items():
            monkeypatch.setenv(key, value)
        replica_lag(world, 3.0)
        assert run(world, tmp_path, "--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}") == 0
        _, data = journal(tmp_path)
        order = list(statuses(data))
        assert statuses(data)["promote-backup-broker"] == "done"
        assert order.index("promote-replica") < order.index("promote-backup-broker") < order.index(
            "raise-backup-capacity")
        assert world.aws.datastores[GLOBAL_DATASTORE]["primary"] == BACKUP
        summary, _, _ = reports(tmp_path, data)
        assert summary["broker"].startswith(f"queued Celery tasks replicate with the cache's Global Datastore "
                                            f"({GLOBAL_DATASTORE})")
        # A resume finds it done and calls nothing again.
        path, _ = journal(tmp_path)
        assert cli.main(["resume", "--journal", str(path)]) == 2
    finally:
        world.close(stop_moto=False)


def test_with_us_east_1_out_a_lag_over_the_limit_is_refused_at_once(world, tmp_path):
    # The replica cannot catch up with its source out: no waiting out --wait-timeout for it.
    replica_lag(world, 900.0)
    assert run(world, tmp_path, "--max-lag", "300", "--wait-timeout", "600",
               "--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}") == 4
    path, data = journal(tmp_path)
    step = {s["name"]: s for s in data["steps"]}["wait-for-replica-lag"]
    assert step["status"] == "failed" and "is unreachable, so it cannot catch up" in step["error"]
    assert statuses(data)["promote-replica"] == "pending"
    # The report says where the journal is and how to go on.
    _, markdown, page = reports(tmp_path, data)
    assert f"- to go on: `python -m drills resume --journal {path}`" in markdown
    assert f"python -m drills resume --journal {path}" in page
    # Without --report-dir, the reports go beside the journal.
    assert cli.main(["resume", "--journal", str(path), "--max-lag", "1000",
                     "--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}"]) == 0
    assert (path.parent / "reports" / f"drill-{data['id']}.html").is_file()


def test_a_resume_once_us_east_1_is_back_fences_what_was_skipped(world, tmp_path, capsys):
    replica_lag(world, 900.0)  # over --max-lag with us-east-1 out: refused at the gate
    assert run(world, tmp_path, "--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}") == 4
    path, data = journal(tmp_path)
    assert statuses(data)["fence-primary-writers"] == "skipped" and desired(world, PRIMARY) == ACTIVE_COUNTS
    assert cli.main(["resume", "--journal", str(path), "--max-lag", "1000",
                     "--report-dir", str(tmp_path / "reports")]) == 0
    assert set(statuses(json.loads(path.read_text())).values()) == {"done"}
    assert desired(world, PRIMARY) == PRIMARY_FENCED


def test_measured_rpo_is_the_replica_lag_before_the_promotion(world, tmp_path):
    replica_lag(world, 12.0)
    assert run(world, tmp_path) == 0
    assert journal(tmp_path)[1]["rpo_seconds"] == 12.0


def test_unknown_lag_is_refused_before_anything_and_the_command_to_accept_it_is_named(world, tmp_path, capsys):
    """With us-east-1 out, no heartbeat and no ReplicaLag, the evacuation would turn the switch on and then refuse
    to promote: the preflight decides it first, changes nothing, and names the exact command that accepts it."""
    dead = ["--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}"]
    assert run(world, tmp_path, *dead) == 3  # moto has no ReplicaLag datapoints
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("[FAIL] data-loss: unknown"))
    command = line.split("To promote with an unknown loss: ")[1]
    assert command.startswith("python -m drills run --scenario region-evacuation --execute --confirm us-west-2 ")
    assert command.endswith(" --accept-data-loss") and "preflight failed: nothing was changed" in out
    assert switch_value(world) is None and not (tmp_path / "journals").exists()
    assert desired(world, BACKUP) == STANDBY_COUNTS
    # The named command, as printed, runs the evacuation.
    assert cli.main(shlex.split(command)[3:]) == 0
    path, data = journal(tmp_path)
    out = capsys.readouterr().out
    assert "RPO unknown (" in out and "None" not in out  # said, never `None s`
    assert data["status"] == "done" and data["options"]["accept_data_loss"] is True
    assert data["rpo_seconds"] is None and "--accept-data-loss" in data["rpo_reason"]
    summary, markdown, page = reports(tmp_path, data)
    assert summary["data_loss_accepted"] is True
    assert "**data loss accepted**" in markdown and "data loss accepted" in page
    assert "None" not in markdown and "RPO unknown (" in page


def test_replica_lag_over_the_limit_stops_and_abort_returns_to_the_primary(world, tmp_path, monkeypatch):
    real_checks = cli.run_checks

    def checks_then_lag(ctx, journal_dir):  # lag rises after preflight passed
        found = real_checks(ctx, journal_dir)
        replica_lag(world, 900.0)
        return found

    monkeypatch.setattr(cli, "run_checks", checks_then_lag)
    replica_lag(world, 3.0)
    assert run(world, tmp_path, "--max-replica-lag", "300", "--wait-timeout", "0.5") == 4
    path, data = journal(tmp_path)
    step = {s["name"]: s for s in data["steps"]}["wait-for-replica-lag"]
    assert "trading-platform-production is still 900 s behind (ReplicaLag)" in step["error"]
    assert "over --max-lag 300 s: not promoting" in step["error"]
    assert statuses(data)["promote-replica"] == "pending" and desired(world, PRIMARY) == PRIMARY_FENCED
    assert not db_ingress(world, PRIMARY) and rule_state(world, PRIMARY) == "DISABLED"
    assert cli.main(["abort", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 5
    assert switch_value(world) == 0
    # The fence at the database and the stopped restarts are undone with the rest.
    assert db_ingress(world, PRIMARY) and rule_state(world, PRIMARY) == "ENABLED"
    assert desired(world, PRIMARY) == ACTIVE_COUNTS
    assert bounds(world, PRIMARY) == {"api": (2, 10), "web": (2, 10), "worker": (1, 10)}
    assert "warning" not in json.loads(path.read_text())


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
    assert switch_value(world) == 0
    _, data = journal(tmp_path)
    assert data["status"] == "aborted" and "trading-errors is in ALARM" in data["stop_reason"]
    assert data["steps"][0]["status"] == "undone"


def test_moto_killed_mid_run_then_resume_completes(world, tmp_path, monkeypatch, capsys):
    original = scenarios._snapshot_replica

    def snapshot_then_crash(ctx, detail):
        result = original(ctx, detail)
        world.moto.stop()  # AWS goes away between two steps
        return result

    monkeypatch.setattr(scenarios, "_snapshot_replica", snapshot_then_crash)
    assert run(world, tmp_path, "--accept-data-loss", "--snapshot-replica") == 4
    path, data = journal(tmp_path)
    assert data["status"] == "failed"
    assert statuses(data)["snapshot-replica"] == "done" and statuses(data)["promote-replica"] == "failed"
    assert "python -m drills resume" in capsys.readouterr().out

    monkeypatch.setattr(scenarios, "_snapshot_replica", original)
    world.moto.start()
    world.build()  # moto keeps nothing across a restart: rebuild the same world (seeded ids) ...
    switch.put(client(world, "cloudwatch", BACKUP), SWITCH, 1, time.time())  # ... with the switch AWS would keep
    assert cli.main(["resume", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 0
    assert desired(world, BACKUP) == ACTIVE_COUNTS
    assert json.loads(path.read_text())["status"] == "done"


def test_a_stop_alarm_after_the_promotion_halts_without_going_back(world, tmp_path, monkeypatch, capsys):
    # Rolling back now would send users and writers to the old writer while the promoted one holds newer
    # writes: the drill halts where it stands, and abort refuses.
    cloudwatch = client(world, "cloudwatch", BACKUP)
    cloudwatch.put_metric_alarm(AlarmName="trading-errors", MetricName="x", Namespace="drill", Statistic="Sum",
                                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    original = scenarios._promote_replica

    def promote_then_alarm(ctx, detail):
        result = original(ctx, detail)
        cloudwatch.set_alarm_state(AlarmName="trading-errors", StateValue="ALARM", StateReason="drill test")
        return result

    monkeypatch.setattr(scenarios, "_promote_replica", promote_then_alarm)
    replica_lag(world, 3.0)
    assert run(world, tmp_path, "--stop-alarm", "trading-errors") == 5
    assert desired(world, PRIMARY) == PRIMARY_FENCED and switch_value(world) == 1  # nothing undone
    path, data = journal(tmp_path)
    assert data["status"] == "halted" and "trading-errors is in ALARM" in data["stop_reason"]
    assert "nothing is rolled back" in capsys.readouterr().out
    assert cli.main(["abort", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 2
    assert "the replica was promoted" in capsys.readouterr().err
    assert desired(world, PRIMARY) == PRIMARY_FENCED and switch_value(world) == 1
    # Once the alarm is resolved, resume finishes the evacuation.
    cloudwatch.set_alarm_state(AlarmName="trading-errors", StateValue="OK", StateReason="resolved")
    monkeypatch.setattr(scenarios, "_promote_replica", original)
    assert cli.main(["resume", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 0
    assert desired(world, BACKUP) == ACTIVE_COUNTS


def test_a_refused_promotion_is_made_again_on_resume(world, tmp_path, monkeypatch):
    # AWS refuses to promote a replica that is still backing up: the resume decides from the instance, not
    # from what the first run meant to do.
    replica_lag(world, 3.0)
    rds = client(world, "rds", BACKUP)
    calls = []
    original_client = scenarios.Context.client

    def client_refusing_promotion(self, service, region):
        made = original_client(self, service, region)
        if service == "rds" and not calls:
            def refused(**kwargs):
                calls.append(kwargs)
                raise ClientError(
                    {"Error": {"Code": "InvalidDBInstanceState", "Message": "backing-up"},
                     "ResponseMetadata": {"HTTPStatusCode": 400}}, "PromoteReadReplica")
            made.promote_read_replica = refused
        return made

    monkeypatch.setattr(scenarios.Context, "client", client_refusing_promotion)
    assert run(world, tmp_path) == 4
    path, data = journal(tmp_path)
    assert statuses(data)["promote-replica"] == "failed" and calls
    assert rds.describe_db_instances(DBInstanceIdentifier="trading-platform-production")["DBInstances"][0][
        "ReadReplicaSourceDBInstanceIdentifier"]
    monkeypatch.setattr(scenarios.Context, "client", original_client)
    assert cli.main(["resume", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 0
    assert statuses(json.loads(path.read_text()))["promote-replica"] == "done"


def test_abort_undoes_reversible_steps_and_deletes_nothing(world, tmp_path):
    world.regions[BACKUP].down = True  # the backup never answers: the probe step fails
    assert run(world, tmp_path, "--probe-timeout", "1", scenario="dns-failover") == 4
    path, data = journal(tmp_path)
    assert switch_value(world) == 1 and data["status"] == "failed"
    assert cli.main(["abort", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 5
    assert switch_value(world) == 0
    data = json.loads(path.read_text())
    assert data["status"] == "aborted" and data["steps"][0]["status"] == "undone"
    assert cli.main(["resume", "--journal", str(path)]) == 2  # nothing left to resume


def test_report_from_the_journal_lists_every_step_with_start_end_and_outcome(world, tmp_path):
    assert run(world, tmp_path, scenario="dns-failover") == 0
    path, data = journal(tmp_path)
    assert cli.main(["report", "--journal", str(path), "--report-dir", str(tmp_path / "again")]) == 0
    markdown = (tmp_path / "again" / f"drill-{data['id']}.md").read_text()
    assert markdown.startswith(f"# Drill {data['id']}")
    assert "| step | outcome | started | ended | duration |" in markdown
    for step in data["steps"]:
        assert f"| {step['started_at']} | {step['ended_at']} |" in markdown
    summary = json.loads((tmp_path / "again" / f"drill-{data['id']}.json").read_text())
    assert [(s["name"], s["status"]) for s in summary["steps"]] == [(s["name"], "done") for s in data["steps"]]
    assert all(s["started_at"] and s["ended_at"] for s in summary["steps"])


def test_journal_is_never_half_written(world, tmp_path):
    assert run(world, tmp_path, scenario="dns-failover") == 0
    leftovers = [p for p in (tmp_path / "journals").iterdir() if p.name.startswith(".journal-")]
    assert leftovers == []
    json.loads(journal(tmp_path)[0].read_text())


@pytest.fixture
def pulumi_cli(tmp_path, fake_pulumi):
    """`pulumi stack output` for org/primary and org/backup; the file its arguments are logged to."""
    return fake_pulumi({f"org/{role}": tmp_path / f"{role}.json" for role in ("primary", "backup")})


def test_outputs_from_the_pulumi_cli(outputs, pulumi_cli, capsys):
    """`--primary-stack/--backup-stack` run `pulumi stack output --json --show-secrets -s NAME`."""
    assert cli.main(["plan", "--scenario", "dns-failover", "--primary-stack", "org/primary",
                     "--backup-stack", "org/backup"]) == 0
    assert pulumi_cli.read_text().splitlines() == ["stack output --json --show-secrets -s org/primary",
                                                   "stack output --json --show-secrets -s org/backup"]
    assert cli.main(["plan", "--scenario", "dns-failover", "--primary-stack", "org/primary",
                     "--backup-stack", "org/nope"]) == 2
    assert "stack org/nope:" in capsys.readouterr().err


def test_without_the_emulator_flag_a_promotion_waits_for_the_source_link_to_go(world, tmp_path):
    """On AWS a promotion is done when the replica no longer names its source; moto never drops it, so
    without --promotion-keeps-source-link the drill waits, and fails at --wait-timeout (exit 4)."""
    code = cli.main(["run", "--scenario", "region-evacuation", "--execute", "--confirm", BACKUP,
                     "--probe-url", world.front.url, "--wait-timeout", "1", "--accept-data-loss",
                     "--journal-dir", str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"),
                     *world.args()])
    assert code == 4
    steps = {s["name"]: s for s in journal(tmp_path)[1]["steps"]}
    assert steps["promote-replica"]["status"] == "failed"
    assert "replica promoted to a standalone writer" in steps["promote-replica"]["error"]


def test_a_step_failing_halfway_is_undone_by_abort(world, tmp_path, monkeypatch):
    """The capacities before a scale are journaled before the first change, so an abort after a failure
    inside the step restores them, scalable targets included."""
    original = scenarios.Context.wait

    def wait(self, what, done, interval=5, timeout=None):
        if what.startswith(f"services in {PRIMARY}"):
            raise TimeoutError(f"{what}: not done within 0 s")
        return original(self, what, done, interval, timeout)

    monkeypatch.setattr(scenarios.Context, "wait", wait)
    replica_lag(world, 3.0)
    assert run(world, tmp_path) == 4
    path, data = journal(tmp_path)
    step = {s["name"]: s for s in data["steps"]}["fence-primary-writers"]
    assert step["status"] == "failed" and step["detail"]["previous"] == {
        "api": {"desired": 2, "min": 2, "max": 10}, "worker": {"desired": 2, "min": 1, "max": 10},
        "beat": {"desired": 1}}
    assert desired(world, PRIMARY) == PRIMARY_FENCED  # the updates went through before the failure
    monkeypatch.setattr(scenarios.Context, "wait", original)
    assert cli.main(["abort", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 5
    assert desired(world, PRIMARY) == ACTIVE_COUNTS and desired(world, BACKUP) == STANDBY_COUNTS
    assert bounds(world, PRIMARY) == {"api": (2, 10), "web": (2, 10), "worker": (1, 10)}
    assert switch_value(world) == 0


def test_a_resume_does_not_promote_twice(world, tmp_path, monkeypatch, aws_calls):
    original = scenarios.Context.wait

    def wait(self, what, done, interval=5):
        if what.startswith("replica promoted"):
            raise TimeoutError(f"{what}: not done within 0 s")
        return original(self, what, done, interval)

    monkeypatch.setattr(scenarios.Context, "wait", wait)
    assert run(world, tmp_path, "--accept-data-loss") == 4
    path, data = journal(tmp_path)
    assert {s["name"]: s for s in data["steps"]}["promote-replica"]["detail"]["promote_called"] is True
    monkeypatch.setattr(scenarios.Context, "wait", original)
    assert cli.main(["resume", "--journal", str(path), "--report-dir", str(tmp_path / "reports")]) == 0
    assert [op for _, op, _ in aws_calls].count("PromoteReadReplica") == 1


def test_a_damaged_journal_is_named_not_a_traceback(tmp_path, capsys):
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


# --- reconcile


def test_reconcile_prints_the_settings_and_the_commands_in_order(world, tmp_path, pulumi_cli, capsys):
    replica_lag(world, 3.0)
    assert cli.main(["run", "--scenario", "region-evacuation", "--execute", "--confirm", BACKUP,
                     "--probe-url", world.front.url, "--probe-interval", "0.05", "--promotion-keeps-source-link",
                     "--primary-stack", "org/primary", "--backup-stack", "org/backup", "--no-db-probe"]) == 0
    (path,) = (tmp_path / ".drills").glob("drill-*.json")
    capsys.readouterr()
    assert cli.main(["reconcile", "--journal", str(path)]) == 0
    out = capsys.readouterr().out
    settings = ['Pulumi.primary.yaml: trading-platform:activeRegion: "us-west-2"',
                'Pulumi.backup.yaml: trading-platform:activeRegion: "us-west-2"',
                "Pulumi.primary.yaml: trading-platform:database.detached: true",
                "Pulumi.backup.yaml: trading-platform:database.detached: absent",
                "Pulumi.backup.yaml: trading-platform:database.retireWithSnapshot: absent"]
    commands = ["pulumi refresh -s org/backup --target 'urn:pulumi:backup::trading-platform::trading-platform:data:"
                "Database$aws:rds/instance:Instance::database' --yes",
                "pulumi up -s org/backup", "# only once us-east-1 is back, before anything else there:",
                "pulumi refresh -s org/primary --yes", "pulumi up -s org/primary"]
    lines = [line.strip() for line in out.splitlines()]
    # Up to the rebuild of us-east-1's replica, which follows (tests/test_drills_database.py runs it).
    recorded = lines[:lines.index("# then rebuild us-east-1's replica (python -m drills failback phase):")]
    assert [line for line in recorded if line in settings + commands] == settings + commands
    assert lines[lines.index("# then rebuild us-east-1's replica (python -m drills failback phase):") + 1] == (
        "python -m drills failback phase retire --role primary --write")
    assert "the failover switch is a metric, not a setting: no `up` moves it" in out
    # us-east-1 answered: its rotation stopped and its writers were fenced by the drill, so nothing is left to do
    # there by hand first.
    back = lines[lines.index("# only once us-east-1 is back, before anything else there:") + 1:]
    assert back[0].startswith("aws rds stop-db-instance-automated-backups-replication ")
    assert not [line for line in lines if "update-service" in line or "cancel-rotate-secret" in line
                or "revoke-security-group-ingress" in line]


def _stack_files(project):
    """A project directory with the stack files as committed: the fixture rewrites them without comments."""
    directory = project()
    for stack in ("primary", "backup"):
        shutil.copy(REPO / f"Pulumi.{stack}.yaml", directory / f"Pulumi.{stack}.yaml")
    return directory


def _running(stack, service):
    """(min, max) of a service's scalable target in a stack evaluation."""
    target = stack.named("aws:appautoscaling/target:Target", service).inputs
    return target["minCapacity"], target["maxCapacity"]


def test_reconcile_writes_the_stack_files_keeping_comments_and_twice_changes_nothing(world, tmp_path, project,
                                                                                   capsys):
    replica_lag(world, 3.0)
    assert run(world, tmp_path) == 0
    path, _ = journal(tmp_path)
    directory = _stack_files(project)
    before = {s: (directory / f"Pulumi.{s}.yaml").read_text() for s in ("primary", "backup")}
    capsys.readouterr()
    assert cli.main(["reconcile", "--journal", str(path), "--project-dir", str(directory), "--write"]) == 0
    out = capsys.readouterr().out
    assert 'Pulumi.backup.yaml: trading-platform:activeRegion: "us-west-2" (was "us-east-1")' in out
    # What it wrote, said once (not again as what the files should say), then what to run.
    assert "should now say" not in out and out.count("activeRegion") == 2 and "Then, in this order:" in out
    after = {s: (directory / f"Pulumi.{s}.yaml").read_text() for s in ("primary", "backup")}
    for stack in ("primary", "backup"):
        changed = [line for line in difflib.ndiff(before[stack].splitlines(), after[stack].splitlines())
                   if line[:2] in ("- ", "+ ")]
        assert changed == {
            "primary": ["-   trading-platform:activeRegion: us-east-1", "+   trading-platform:activeRegion: us-west-2",
                        "+     detached: true"],
            "backup": ["-   trading-platform:activeRegion: us-east-1",
                       "+   trading-platform:activeRegion: us-west-2"]}[stack]
    assert "# The region that serves and writes, the same in both stack files" in after["backup"]

    evaluations = {}
    backup = evaluate("backup", directory, evaluations)
    (instance,) = backup.of_type("aws:rds/instance:Instance")
    assert instance.inputs["identifier"] == IDENTIFIER and not instance.inputs.get("replicateSourceDb")
    active = backup.outputs["ecs_capacity"]
    for service in ("api", "web", "worker"):
        assert _running(backup, service) == (active[service]["min"], active[service]["max"])
        # Nothing runs in front of the detached former writer until it is rebuilt as a replica.
        assert _running(evaluations["primary"], service) == (0, 0)

    assert cli.main(["reconcile", "--journal", str(path), "--project-dir", str(directory), "--write"]) == 0
    assert capsys.readouterr().out.count("(already set)") == 5
    assert {s: (directory / f"Pulumi.{s}.yaml").read_text() for s in ("primary", "backup")} == after


def test_reconcile_refuses_other_drills_and_missing_stack_files(world, tmp_path, capsys):
    assert run(world, tmp_path, scenario="dns-failover") == 0
    path, data = journal(tmp_path)
    assert cli.main(["reconcile", "--journal", str(path)]) == 2
    assert capsys.readouterr().err == (f"drills: {path}: a dns-failover drill changes no stack settings; reconcile "
                                       "follows a region evacuation or a failback\n")
    data.update(scenario="region-evacuation", status="failed")
    path.write_text(json.dumps(data))
    assert cli.main(["reconcile", "--journal", str(path)]) == 2
    assert capsys.readouterr().err == (f"drills: {path}: the region-evacuation is failed, not done: nothing to "
                                       "reconcile until it is\n")
    data["status"] = "done"
    path.write_text(json.dumps(data))
    assert cli.main(["reconcile", "--journal", str(path), "--project-dir", str(tmp_path), "--write"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"{tmp_path}/Pulumi.primary.yaml: no such stack file" in error


def test_long_waits_say_where_they_stand(world, tmp_path, capsys, monkeypatch):
    """The hold and the probes print a line every few seconds (every 10 s; 0.3 s here)."""
    monkeypatch.setattr(progress, "EVERY", 0.3)
    assert cli.main(["run", "--scenario", "dns-failover", "--execute", "--confirm", BACKUP, "--probe-url",
                     world.front.url, "--probe-interval", "0.05", "--hold", "1.2", "--journal-dir",
                     str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"), *world.args()]) == 0
    out = capsys.readouterr().out
    holding = [line for line in out.splitlines() if line.startswith(f"  ... holding on {BACKUP}: ")]
    assert len(holding) >= 2 and all(" of 1.2 s; last answer from us-west-2 (200)" in line for line in holding)
