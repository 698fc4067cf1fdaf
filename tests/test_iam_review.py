"""Issue 22's IAM review: the drill role's scopes and conditions, the restart state machine's execution logging,
and the AWS constraints on both that the mocks would accept but AWS refuses."""

from __future__ import annotations

import fnmatch
import json
import re
import textwrap

from components.drill_role import TARGET_TRACKING_ALARM_ACTIONS
from components.rotation import LOG_DELIVERY_ACTIONS
from drills import capacity
from regions.settings import LOG_RETENTION_DAYS
from regions.workloads import WORKLOADS
from synth.engine import REPO, evaluate

ACCOUNT = "123456789012"
REGIONS = ("us-east-1", "us-west-2")
CLUSTER = "trading-platform-production"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MACHINE = "aws:sfn/stateMachine:StateMachine"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
# IAM: the inline policies of one role together, whitespace not counted (IAM and STS quotas).
ROLE_INLINE_POLICY_LIMIT = 10_240
# The service-specific condition keys the Service Authorization Reference defines for the actions the drill
# role conditions. A key an action does not define is absent from its request, so a condition on it never
# matches: the statement would deny what it means to allow (DescribeScalableTargets defines none).
CONDITION_KEYS = {
    "application-autoscaling:RegisterScalableTarget": {"application-autoscaling:service-namespace",
                                                       "application-autoscaling:scalable-dimension"},
    "cloudwatch:PutMetricData": {"cloudwatch:namespace"},
    "kms:Decrypt": {"kms:ViaService"},
    "kms:GenerateDataKey": {"kms:ViaService"},
}
# Step Functions' CloudWatchLogsLogGroup.logGroupArn: at most 256 characters, ending with `:*` (API Reference);
# CloudWatch Logs' log group names: 1 to 512 of these characters (CreateLogGroup).
LOG_DESTINATION_MAX = 256
LOG_GROUP_NAME = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _drill_statements(backup) -> list[dict]:
    return json.loads(backup.named(ROLE_POLICY, "drill-operator").inputs["policy"])["Statement"]


def _resources_by_action(statements: list[dict]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for statement in statements:
        for action in _listed(statement["Action"]):
            found.setdefault(action, set()).update(_listed(statement["Resource"]))
    return found


def _drill_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in (REPO / "drills").glob("*.py")
            if p.name not in ("sandbox.py", "emulated_pulumi.py", "retire.py")}


# --- the drill role


def test_register_scalable_target_is_bounded_to_ecs_desired_counts_of_this_account(evaluations):
    statements = [s for s in _drill_statements(evaluations["backup"])
                  if "application-autoscaling:RegisterScalableTarget" in _listed(s["Action"])]
    (statement,) = statements
    assert _listed(statement["Action"]) == ["application-autoscaling:RegisterScalableTarget"]
    # ScalableTarget: arn:${Partition}:application-autoscaling:${Region}:${Account}:scalable-target/${ResourceId},
    # a generated id: the drill cannot know it, so this account's targets in the two regions.
    assert set(statement["Resource"]) == {f"arn:aws:application-autoscaling:{r}:{ACCOUNT}:scalable-target/*"
                                          for r in REGIONS}
    # CKV_AWS_290 / CKV_AWS_355: a write on a wildcard carries the keys that pin it to what the drill scales.
    assert statement["Condition"] == {"StringEquals": {
        "application-autoscaling:service-namespace": capacity.NAMESPACE,
        "application-autoscaling:scalable-dimension": capacity.DIMENSION}}
    assert (capacity.NAMESPACE, capacity.DIMENSION) == ("ecs", "ecs:service:DesiredCount")


def test_conditions_use_only_keys_their_actions_define(evaluations):
    for statement in _drill_statements(evaluations["backup"]):
        keys = {key for operator in statement.get("Condition", {}).values() for key in operator}
        service_keys = {k for k in keys if not k.startswith("aws:")}
        for action in _listed(statement["Action"]):
            assert service_keys <= CONDITION_KEYS.get(action, set()), (statement["Sid"], action)
    # DescribeScalableTargets defines no resource type and no condition key: "*", unconditioned.
    (describe,) = [s for s in _drill_statements(evaluations["backup"])
                   if "application-autoscaling:DescribeScalableTargets" in _listed(s["Action"])]
    assert describe["Resource"] == "*" and "Condition" not in describe


def test_target_tracking_alarm_writes_only_on_the_scaled_services_alarms(evaluations):
    by_action = _resources_by_action(_drill_statements(evaluations["backup"]))
    scaled = {name for name, workload in WORKLOADS.items() if workload.scale_on}
    # The services whose bounds the drill moves are the ones with target tracking policies (and alarms).
    assert scaled == set(capacity.SCALED)
    expected = {f"arn:aws:cloudwatch:{r}:{ACCOUNT}:alarm:TargetTracking-service/{CLUSTER}/{s}-*"
                for r in REGIONS for s in scaled}
    assert set(TARGET_TRACKING_ALARM_ACTIONS) == {"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"}
    for action in TARGET_TRACKING_ALARM_ACTIONS:
        assert by_action[action] == expected
    # The names Application Auto Scaling gives them (PutScalingPolicy's example in its API Reference) match,
    # and no alarm of ours does.
    example = "TargetTracking-service/default/web-app-AlarmHigh-d4f0770c-b46e-434a-a60f-3b36d653feca"
    assert fnmatch.fnmatchcase(f"arn:aws:cloudwatch:us-west-2:{ACCOUNT}:alarm:{example}",
                               f"arn:aws:cloudwatch:us-west-2:{ACCOUNT}:alarm:TargetTracking-service/default/web-app-*")
    ours = {r.inputs.get("name") for stack in evaluations.values()
            for r in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert not [n for n in ours if n and n.startswith("TargetTracking-")]


def test_describe_alarms_stays_on_star_exactly_while_the_drill_reads_composite_alarms(evaluations):
    # CloudWatch returns composite alarms only to a cloudwatch:DescribeAlarms allowed on "*" (DescribeAlarms,
    # CloudWatch API Reference); scoped to alarm ARNs, a composite --stop-alarm would never be found. Should
    # the drill stop asking for them, the alarm resource type scopes it.
    reads_composites = any(re.search(r"describe_alarms\([^)]*CompositeAlarm", source, re.S)
                           for source in _drill_sources().values())
    assert reads_composites
    resources = _resources_by_action(_drill_statements(evaluations["backup"]))["cloudwatch:DescribeAlarms"]
    assert (resources == {"*"}) is reads_composites


def test_automated_backups_are_listed_in_this_accounts_two_regions_only(evaluations):
    resources = _resources_by_action(_drill_statements(evaluations["backup"]))[
        "rds:DescribeDBInstanceAutomatedBackups"]
    assert resources == {f"arn:aws:rds:{r}:{ACCOUNT}:{kind}:*" for r in REGIONS for kind in ("auto-backup", "db")}
    # The call names no instance: once it passes DBInstanceIdentifier, scope this to the two instances' ARNs.
    calls = re.findall(r"describe_db_instance_automated_backups\(([^)]*)\)", _drill_sources()["preflight.py"])
    assert calls == [""]


def test_every_scoped_arn_is_this_accounts_in_the_two_regions(evaluations):
    for statement in _drill_statements(evaluations["backup"]):
        for arn in _listed(statement["Resource"]):
            if arn == "*":
                continue
            partition, service, region, account = arn.split(":")[1:5]
            assert partition == "aws", arn
            assert region in (*REGIONS, "") and (region or service == "s3"), arn
            assert account == (ACCOUNT if service != "s3" else ""), arn


def test_the_drill_roles_inline_policies_fit_iams_quota(evaluations):
    backup = evaluations["backup"]
    role = backup.named("aws:iam/role:Role", "drill-operator")
    policies = [r.inputs["policy"] for r in backup.of_type(ROLE_POLICY) if r.inputs.get("role") == role.id]
    assert policies
    assert sum(len(re.sub(r"\s", "", p)) for p in policies) <= ROLE_INLINE_POLICY_LIMIT


# --- the restart state machine


def test_the_restart_state_machine_logs_every_event_without_execution_data(stack):
    machine = stack.named(MACHINE, "password-restarts")
    group = stack.named(LOG_GROUP, "password-restarts-executions")
    logging = machine.inputs["loggingConfiguration"]
    assert logging["level"] == "ALL"
    # The states' input and output (Secrets Manager's event, ECS's service descriptions) stay out of the logs.
    assert logging["includeExecutionData"] is False
    # Step Functions takes the group's ARN with `:*`; the provider's arn has none (AWS refuses it without).
    assert not group.state["arn"].endswith(":*")
    assert logging["logDestination"] == group.state["arn"] + ":*"
    assert len(logging["logDestination"]) <= LOG_DESTINATION_MAX
    # In the stack's own region, next to the state machine.
    assert group.state["arn"].startswith(f"arn:aws:logs:{stack.region}:{ACCOUNT}:log-group:")


def test_the_execution_log_group_is_named_and_kept_as_aws_accepts(stack):
    group = stack.named(LOG_GROUP, "password-restarts-executions").inputs
    # /aws/vendedlogs/ keeps Step Functions off the account's CloudWatch Logs resource policy (5,120 characters).
    assert group["name"] == f"/aws/vendedlogs/states/{CLUSTER}-password-restarts"
    assert LOG_GROUP_NAME.fullmatch(group["name"])
    assert group["retentionInDays"] in LOG_RETENTION_DAYS and group["retentionInDays"] == 90
    names = [r.inputs.get("name") for r in stack.of_type(LOG_GROUP)]
    assert names.count(group["name"]) == 1


def test_the_state_machines_role_may_deliver_its_logs_before_it_is_created(stack):
    machine = stack.named(MACHINE, "password-restarts")
    role = stack.named("aws:iam/role:Role", "password-restarts-machine")
    assert machine.inputs["roleArn"] == role.state["arn"]
    logs = stack.named(ROLE_POLICY, "password-restarts-machine-logs")
    assert logs.inputs["role"] == role.id
    (statement,) = json.loads(logs.inputs["policy"])["Statement"]
    # The Step Functions Developer Guide's set, on "*" as it gives it.
    assert set(statement["Action"]) == set(LOG_DELIVERY_ACTIONS) == {
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups"}
    assert statement["Resource"] == "*" and statement["Effect"] == "Allow"
    # CreateStateMachine fails when the role cannot deliver to the destination yet: both policies come first.
    for policy in (logs, stack.named(ROLE_POLICY, "password-restarts-machine")):
        assert policy.urn in machine.dependencies
    # Nothing else of the machine's role is on "*".
    restart = json.loads(stack.named(ROLE_POLICY, "password-restarts-machine").inputs["policy"])["Statement"]
    assert all(s["Resource"] != "*" for s in restart)


def test_the_stack_key_lets_cloudwatch_logs_encrypt_the_execution_log_group(stack):
    key_policy = json.loads(stack.named("aws:kms/key:Key", "stack-key").inputs["policy"])
    (logs,) = [s for s in key_policy["Statement"] if s.get("Sid") == "CloudWatchLogsInThisRegion"]
    group_arn = stack.named(LOG_GROUP, "password-restarts-executions").state["arn"]
    assert logs["Principal"] == {"Service": f"logs.{stack.region}.amazonaws.com"}
    assert fnmatch.fnmatchcase(group_arn, logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"])


def test_the_execution_log_group_is_encrypted_with_the_stack_key(stack):
    group = stack.named(LOG_GROUP, "password-restarts-executions")
    assert group.inputs.get("kmsKeyId") == stack.named("aws:kms/key:Key", "stack-key").state["arn"]


def test_the_component_encrypts_and_keeps_its_log_group_as_told(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: restarts\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  aws:region: us-east-1\n")
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/restarts"
    (tmp_path / "__main__.py").write_text(textwrap.dedent(f"""
        from components.rotation import RestartOnNewSecret, RestartOnNewSecretArgs

        RestartOnNewSecret("restarts", RestartOnNewSecretArgs(
            secret_arn="arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db-abcdef", region="us-east-1",
            account_id="{ACCOUNT}", cluster_name="orders", service_names=["api"],
            kms_key_arn="{key}", log_retention_days=30))
    """))
    evaluation = evaluate("dev", tmp_path, program=tmp_path / "__main__.py")
    group = evaluation.named(LOG_GROUP, "restarts-executions").inputs
    assert (group["name"], group["kmsKeyId"], group["retentionInDays"]) == (
        "/aws/vendedlogs/states/orders-restarts", key, 30)
