"""Route53 failover, monitoring, budgets, the drill operator role and the output contract."""

from __future__ import annotations

import json
import re

import boto3
import pytest
import yaml

from synth.engine import REPO, evaluate

NS = "trading-platform"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
CONTRACT = ("region", "role", "app_domain", "hosted_zone_id", "health_check_id", "alb_dns_name", "alb_zone_id",
            "alb_arn", "db_instance_identifier", "db_instance_arn", "db_endpoint", "db_is_replica",
            "redis_primary_endpoint", "ecs_cluster_name", "ecs_services", "ecs_capacity", "backup_bucket_name",
            "backup_bucket_arn", "backup_vault_name", "kms_key_arn", "alarm_topic_arn", "active_region")


def test_health_check_on_the_stacks_own_alb(stack):
    check = stack.named("aws:route53/healthCheck:HealthCheck", "failover")
    i = check.inputs
    assert (i["type"], i["port"], i["resourcePath"]) == ("HTTPS", 443, "/api/health")
    assert (i["requestInterval"], i["failureThreshold"]) == (10, 3)
    assert i["measureLatency"] is True and i["enableSni"] is True
    assert i["fqdn"] == stack.outputs["alb_dns_name"]
    assert stack.outputs["health_check_id"] == check.id


def test_primary_health_check_alarm_lives_in_us_east_1(evaluations):
    primary = evaluations["primary"]
    alarm = primary.named(ALARM, "failover-health").inputs
    assert alarm["region"] == "us-east-1"  # Route53 metrics exist only there
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Route53", "HealthCheckStatus")
    assert alarm["dimensions"] == {"HealthCheckId": primary.outputs["health_check_id"]}
    assert alarm["alarmActions"] == [primary.outputs["alarm_topic_arn"]]
    # The standby is watched from its own region (its load balancer's healthy targets), not from us-east-1.
    backup = evaluations["backup"]
    with pytest.raises(KeyError):
        backup.named(ALARM, "failover-health")
    for service in ("api", "web"):
        standby = backup.named(ALARM, f"monitoring-{service}-no-healthy-hosts").inputs
        assert "region" not in standby and standby["metricName"] == "HealthyHostCount"
        assert (standby["threshold"], standby["comparisonOperator"]) == (1, "LessThanThreshold")
        assert standby["treatMissingData"] == "breaching"  # no data: no target at all


def test_the_failover_switch_moves_traffic_from_us_west_2(evaluations):
    primary, backup = evaluations["primary"], evaluations["backup"]
    switch = primary.outputs["failover_switch"]
    assert switch == {"region": "us-west-2", "namespace": "TradingPlatform/Failover", "metric_name": "SwitchToStandby",
                      "dimensions": {"Environment": "production"},
                      "alarm_name": "trading-platform-production-failover-switch"}
    alarm = primary.named(ALARM, "failover-switch").inputs
    # In the standby's region, owned by the primary (per-resource region): flipping it needs no us-east-1 call.
    assert alarm["region"] == "us-west-2" and alarm["name"] == switch["alarm_name"]
    assert (alarm["namespace"], alarm["metricName"], alarm["dimensions"]) == (
        switch["namespace"], switch["metric_name"], switch["dimensions"])
    # Route53 takes standard-resolution alarms with a basic statistic, and no metric math.
    assert alarm["period"] >= 60 and alarm["statistic"] in ("Average", "Minimum", "Maximum", "Sum", "SampleCount")
    assert "metricQueries" not in alarm and "extendedStatistic" not in alarm
    assert (alarm["threshold"], alarm["comparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
    assert alarm["treatMissingData"] == "ignore"  # set once: the alarm keeps its state without new data
    checks = {r.name: r for r in primary.of_type("aws:route53/healthCheck:HealthCheck")}
    metric_check = checks["failover-switch"].inputs
    assert (metric_check["type"], metric_check["cloudwatchAlarmName"], metric_check["cloudwatchAlarmRegion"]) == (
        "CLOUDWATCH_METRIC", switch["alarm_name"], "us-west-2")
    # Route53 judges the alarm's data, which ages out after one datapoint: the switch keeps its last position
    # (a new check starts healthy, so never set = off).
    assert metric_check["insufficientDataHealthStatus"] == "LastKnownStatus"
    serving = checks["failover-serving"].inputs
    assert serving["type"] == "CALCULATED" and serving["childHealthThreshold"] == 2
    assert set(serving["childHealthchecks"]) == {checks["failover"].id, checks["failover-switch"].id}
    (record,) = [r for r in primary.of_type("aws:route53/record:Record") if r.name == "failover"]
    assert record.inputs["healthCheckId"] == checks["failover-serving"].id
    # The backup's SECONDARY record checks its own endpoint; the backup owns no switch.
    assert "failover_switch" not in backup.outputs
    (secondary,) = [r for r in backup.of_type("aws:route53/record:Record") if r.name == "failover"]
    assert secondary.inputs["healthCheckId"] == backup.outputs["health_check_id"]


def test_failover_records_share_the_name_and_differ_by_role(evaluations):
    records = {}
    for name, stack in evaluations.items():
        (record,) = [r.inputs for r in stack.of_type("aws:route53/record:Record") if r.name == "failover"]
        records[name] = record
        assert record["name"] == "app.trading.example.com" and record["type"] == "A"
        assert record["setIdentifier"] == stack.region
        assert record["aliases"] == [{"name": stack.outputs["alb_dns_name"], "zoneId": stack.outputs["alb_zone_id"],
                                      "evaluateTargetHealth": True}]
    assert records["primary"]["failoverRoutingPolicies"] == [{"type": "PRIMARY"}]
    assert records["backup"]["failoverRoutingPolicies"] == [{"type": "SECONDARY"}]
    assert records["primary"]["zoneId"] == records["backup"]["zoneId"] == evaluations["primary"].outputs[
        "hosted_zone_id"]
    assert evaluations["backup"].outputs["hosted_zone_id"] == evaluations["primary"].outputs["hosted_zone_id"]


def test_primary_can_create_the_zone(project):
    cache: dict = {}
    evaluate("backup", project(primary={f"{NS}:dns.createZone": True}), cache)
    (zone,) = cache["primary"].of_type("aws:route53/zone:Zone")
    assert zone.inputs["name"] == "trading.example.com"
    assert cache["primary"].outputs["hosted_zone_id"] == zone.state["zoneId"]
    record = cache["backup"].named("aws:route53/record:Record", "failover").inputs
    assert record["zoneId"] == zone.state["zoneId"]


def test_alarms_and_dashboard(stack):
    key = stack.named("aws:kms/key:Key", "stack-key").state["arn"]
    topic = stack.named("aws:sns/topic:Topic", "monitoring")
    assert topic.inputs["kmsMasterKeyId"] == key
    assert stack.outputs["alarm_topic_arn"] == topic.state["arn"]
    subscription = stack.named("aws:sns/topicSubscription:TopicSubscription", "monitoring").inputs
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "platform-oncall@example.com")
    alarms = {r.name.removeprefix("monitoring-"): r.inputs for r in stack.of_type(ALARM)
              if r.name.startswith("monitoring-")}
    expected = {"alb-5xx-rate", "alb-p95-latency", "api-unhealthy-hosts", "web-unhealthy-hosts",
                "api-no-healthy-hosts", "web-no-healthy-hosts",
                *(f"{s}-{m}" for s in ("api", "web", "worker", "beat") for m in ("cpu", "memory")),
                "rds-cpu", "rds-free-storage", "rds-connections", "redis-cpu", "redis-memory", "redis-evictions"}
    if stack.stack == "backup":
        expected.add("rds-replica-lag")
    assert set(alarms) == expected
    for alarm in alarms.values():
        assert alarm["alarmActions"] == [topic.state["arn"]]
    assert alarms["alb-p95-latency"]["extendedStatistic"] == "p95" and alarms["alb-p95-latency"]["threshold"] == 1
    rate = alarms["alb-5xx-rate"]
    assert rate["threshold"] == 5
    returned = [q.get("expression") for q in rate["metricQueries"] if q.get("returnData")]
    assert returned == ["IF(m1 > 0, 100 * m0 / m1, 0)"]
    assert alarms["rds-connections"]["threshold"] == 656  # 80 % of max_connections
    assert alarms["rds-free-storage"]["comparisonOperator"] == "LessThanThreshold"
    # Every node of the replication group, whichever is the primary after a Multi-AZ failover.
    nodes = {"primary": ["trading-platform-production-001", "trading-platform-production-002"],
             "backup": ["trading-platform-production-001"]}[stack.stack]
    for label in ("redis-cpu", "redis-memory", "redis-evictions"):
        alarm = alarms[label]
        queries = alarm.get("metricQueries") or [{"metric": {"dimensions": alarm["dimensions"]}}]
        assert [q["metric"]["dimensions"]["CacheClusterId"] for q in queries if "metric" in q] == nodes
        if len(nodes) > 1:
            assert [q["expression"] for q in queries if q.get("returnData")] == ["MAX([m0, m1])"]
    if stack.stack == "backup":
        assert alarms["rds-replica-lag"]["metricName"] == "ReplicaLag"
        assert alarms["rds-replica-lag"]["threshold"] == 900
    dashboard = stack.named("aws:cloudwatch/dashboard:Dashboard", "monitoring").inputs
    assert dashboard["dashboardName"] == f"trading-platform-production-{stack.region}"
    widgets = json.loads(dashboard["dashboardBody"])["widgets"]
    # The same metrics as the alarms, then the replication probe's two graphs (its alarms are its own).
    assert len(widgets) == len(alarms) + 2
    assert [w["properties"]["metrics"][0][0] for w in widgets[-2:]] == ["TradingPlatform/ReplicationProbe"] * 2
    names = {row[1] for w in widgets for row in w["properties"]["metrics"] if isinstance(row[0], str)}
    assert {"ReplicaLag" in names} == {stack.stack == "backup"}
    assert {"HTTPCode_Target_5XX_Count", "TargetResponseTime", "CPUUtilization", "FreeStorageSpace",
            "EngineCPUUtilization", "Evictions"} <= names


def test_budget_watches_this_stacks_tag(stack):
    budget = stack.named("aws:budgets/budget:Budget", "cost").inputs
    assert budget["limitAmount"] == {"primary": "9000", "backup": "3000"}[stack.stack]
    assert (budget["limitUnit"], budget["timeUnit"], budget["budgetType"]) == ("USD", "MONTHLY", "COST")
    assert budget["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:Stack${stack.stack}"]}]
    alerts = {(n["notificationType"], n["threshold"]): n["subscriberSnsTopicArns"] for n in budget["notifications"]}
    assert alerts == {("ACTUAL", 80): [stack.outputs["alarm_topic_arn"]],
                      ("FORECASTED", 100): [stack.outputs["alarm_topic_arn"]]}


def test_drill_role_may_mutate_only_the_drills_resources(evaluations):
    primary, backup = evaluations["primary"], evaluations["backup"]
    assert "drill_role_arn" not in primary.outputs
    assert not [r for r in primary.of_type("aws:iam/role:Role") if r.name == "drill-operator"]
    role = backup.named("aws:iam/role:Role", "drill-operator")
    assert backup.outputs["drill_role_arn"] == role.state["arn"]
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"AWS": ["arn:aws:iam::123456789012:root"]}
    assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    statements = json.loads(backup.named("aws:iam/rolePolicy:RolePolicy", "drill-operator").inputs["policy"])[
        "Statement"]
    by_action: dict[str, set] = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            by_action.setdefault(action, set()).update(resources)
    # Every action that IAM can scope to a resource is scoped. DescribeAlarms returns composite alarms (a stop
    # alarm may be one) only when allowed on "*"; GetMetricStatistics, GetMetricData (the replication probe's
    # metrics) and DescribeScalableTargets have no resource type (tests/test_iam_review.py has the others).
    assert {a for a, r in by_action.items() if "*" in r} == {
        "cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData", "cloudwatch:DescribeAlarms",
        "application-autoscaling:DescribeScalableTargets", "cloudwatch:PutMetricData"}
    # The one write on "*" is limited to the failover switch's namespace.
    (put,) = [s for s in statements if s["Action"] == "cloudwatch:PutMetricData"]
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": "TradingPlatform/Failover"}}
    account = "123456789012"
    services = {f"arn:aws:ecs:{s.region}:{account}:service/trading-platform-production/{n}"
                for s in (primary, backup) for n in ("api", "web", "worker", "beat")}
    # An evacuation promotes the backup's instance, a failback the primary's: both, and nothing else.
    instances = {primary.outputs["db_instance_arn"], backup.outputs["db_instance_arn"]}
    drill_snapshots = {f"arn:aws:rds:{region}:{account}:snapshot:trading-platform-production-drill-*"
                       for region in ("us-east-1", "us-west-2")}
    assert by_action["ecs:UpdateService"] == by_action["ecs:DescribeServices"] == services
    assert by_action["rds:PromoteReadReplica"] == by_action["rds:DescribeDBInstances"] == instances
    assert by_action["rds:CreateDBSnapshot"] == instances | drill_snapshots
    # copy_tags_to_snapshot: RDS authorizes the copied tags as AddTagsToResource on the new snapshot.
    assert backup.of_type("aws:rds/instance:Instance")[0].inputs["copyTagsToSnapshot"] is True
    assert by_action["rds:AddTagsToResource"] == drill_snapshots
    # Moving traffic needs no Route53 call (its control plane is served from us-east-1).
    assert not [a for a in by_action if a.startswith("route53:")]
    assert by_action["rds:DescribeDBSnapshots"] == instances | drill_snapshots | {
        f"arn:aws:rds:{region}:{account}:snapshot:rds:trading-platform-production-*"
        for region in ("us-east-1", "us-west-2")}
    assert by_action["s3:GetReplicationConfiguration"] == {primary.outputs["backup_bucket_arn"]}
    # The database probe reads the database-credentials secret in each region, and only it; decrypting goes
    # through Secrets Manager with the key of that region's copy.
    assert by_action["secretsmanager:GetSecretValue"] == {primary.outputs["secret_arns"]["database-credentials"],
                                                          backup.outputs["secret_arns"]["database-credentials"]}
    assert by_action["kms:Decrypt"] == {primary.outputs["kms_key_arn"], primary.outputs["replica_key_arn"]}
    (decrypt,) = [s for s in statements if "kms:Decrypt" in s["Action"]]
    assert decrypt["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": ["secretsmanager.us-east-1.amazonaws.com",
                                                                        "secretsmanager.us-west-2.amazonaws.com"]}}
    # The evacuation detaches the shared secrets (in both regions, a failback's the other way), and writes and
    # stops the rotation of the database credentials only.
    credentials = by_action["secretsmanager:GetSecretValue"]
    shared = {arn for stack in (primary, backup) for name, arn in stack.outputs["secret_arns"].items()
              if name != "connection"}
    assert by_action["secretsmanager:StopReplicationToReplica"] == by_action["secretsmanager:DescribeSecret"] == shared
    for action in ("PutSecretValue", "CancelRotateSecret", "RotateSecret"):
        assert by_action[f"secretsmanager:{action}"] == credentials, action
    assert by_action["lambda:InvokeFunction"] == {
        f"arn:aws:lambda:{region}:{account}:function:trading-platform-production-db-rotation"
        for region in ("us-east-1", "us-west-2")}
    rules = {f"arn:aws:events:{s.region}:{account}:rule/{s.outputs['password_restarts']['rule_name']}"
             for s in (primary, backup)}
    for action in ("DescribeRule", "DisableRule", "EnableRule"):
        assert by_action[f"events:{action}"] == rules, action
    groups = {f"arn:aws:ec2:{s.region}:{account}:security-group/{s.outputs['db_fence']['security_group_id']}"
              for s in (primary, backup)}
    assert by_action["ec2:RevokeSecurityGroupIngress"] == by_action["ec2:AuthorizeSecurityGroupIngress"] == groups
    assert by_action["rds:RebootDBInstance"] == instances


BROKER_ACTIONS = {"elasticache:DescribeGlobalReplicationGroups", "elasticache:FailoverGlobalReplicationGroup"}


def test_drill_role_grants_what_the_drill_calls(evaluations):
    # The AWS operations the drill tool calls, by botocore's method names: not its sandbox, the sandbox's
    # emulated pulumi and runbook, nor retire.py, which deletes a retired database with the credentials pulumi up
    # runs with.
    calls = set()
    for path in (REPO / "drills").glob("*.py"):
        if path.name not in ("sandbox.py", "emulated_pulumi.py", "runbook.py", "retire.py"):
            calls |= set(re.findall(r"\.([a-z]+(?:_[a-z0-9]+)+)\(", path.read_text()))
    granted = set()
    for statement in json.loads(evaluations["backup"].named(
            "aws:iam/rolePolicy:RolePolicy", "drill-operator").inputs["policy"])["Statement"]:
        granted |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    # IAM names S3's GetBucketReplication after the configuration; AddTagsToResource is implied by snapshots.
    iam_name = {"GetBucketReplication": "GetReplicationConfiguration"}
    called = set()
    for service, prefix in (("ecs", "ecs"), ("rds", "rds"), ("route53", "route53"), ("cloudwatch", "cloudwatch"),
                            ("s3", "s3"), ("application-autoscaling", "application-autoscaling"),
                            ("secretsmanager", "secretsmanager"), ("events", "events"), ("ec2", "ec2"),
                            ("elasticache", "elasticache")):
        methods = boto3.session.Session().client(service, region_name="us-west-2").meta.method_to_api_mapping
        called |= {f"{prefix}:{iam_name.get(methods[m], methods[m])}" for m in calls & set(methods)}
    # kms:Decrypt and kms:GenerateDataKey are Secrets Manager's calls on the caller's behalf, for a secret under a
    # customer key, and lambda:InvokeFunction what RotateSecret requires of its caller on the function; the alarm
    # writes are what Application Auto Scaling requires of a RegisterScalableTarget caller for ECS services (its
    # user guide: "Permissions required for actions on target services and CloudWatch").
    # Moving the broker's Global Datastore is granted only with cache.globalDatastore (tests/test_global_datastore.py).
    assert {a for a in called if a.startswith("elasticache:")} == BROKER_ACTIONS
    called -= BROKER_ACTIONS
    assert called == granted - {"rds:AddTagsToResource", "kms:Decrypt", "kms:GenerateDataKey", "lambda:InvokeFunction",
                                "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"}


def test_drill_principals_and_mfa_come_from_settings(project):
    backup = evaluate("backup", project(backup={f"{NS}:drill": {
        "principals": ["arn:aws:iam::123456789012:role/platform-oncall"], "requireMfa": False}}))
    (trust,) = json.loads(backup.named("aws:iam/role:Role", "drill-operator").inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"AWS": ["arn:aws:iam::123456789012:role/platform-oncall"]}
    assert "Condition" not in trust


def test_every_contract_output_in_both_stacks(stack):
    missing = [k for k in CONTRACT if stack.outputs.get(k) in (None, "", {})]
    assert missing == []
    assert stack.outputs["region"] == {"primary": "us-east-1", "backup": "us-west-2"}[stack.stack]
    assert stack.outputs["role"] == stack.stack
    assert stack.outputs["db_is_replica"] is (stack.stack == "backup")
    assert ("drill_role_arn" in stack.outputs) is (stack.stack == "backup")
    assert set(stack.outputs["ecs_services"]) == set(stack.outputs["ecs_capacity"]) == {"api", "web", "worker",
                                                                                       "beat"}


def test_tag_activation_is_off_until_billing_has_seen_the_tags(evaluations, project):
    # Billing knows a tag key only up to a day after first seeing it, and only the payer account may
    # activate it: a first `pulumi up` that activates tags fails.
    for stack in evaluations.values():
        assert not stack.of_type("aws:costexplorer/costAllocationTag:CostAllocationTag")
    for file in ("primary", "backup"):
        document = yaml.safe_load((REPO / f"Pulumi.{file}.yaml").read_text())
        assert document["config"][f"{NS}:budget"]["activateCostTags"] is False
    defaults = evaluate("primary", project(primary={f"{NS}:budget.activateCostTags": None}))
    assert not defaults.of_type("aws:costexplorer/costAllocationTag:CostAllocationTag")
    later = evaluate("primary", project(primary={f"{NS}:budget.activateCostTags": True}))
    assert {r.inputs["tagKey"] for r in later.of_type("aws:costexplorer/costAllocationTag:CostAllocationTag")} == {
        "Project", "Environment", "CostCenter", "Owner", "Stack", "Region", "Role", "ManagedBy"}
