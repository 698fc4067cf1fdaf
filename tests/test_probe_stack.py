"""The replication probe's infrastructure in both stacks (components/probe.py): its image, task, service and roles,
its contract with the process, its alarms, dashboard, output, cost, settings, and the AWS constraints the mocks
would accept but AWS refuses."""

from __future__ import annotations

import json

import pytest
import yaml
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

from components.probe import (
    CA_BUNDLE,
    METRICS,
    MODE_METRICS,
    NAMESPACE,
    alarm_window_problems,
    deployment_problems,
    fargate_size_problems,
)
from drills import phases
from policies.rules import POLICIES
from regions.catalog import FARGATE_MEMORY
from regions.settings import SettingsError, load_settings
from regions.stackfile import read_stack_file
from synth.__main__ import main as synth_main
from synth.cost import PRICES, estimate, table, usage_of
from synth.engine import REPO, evaluate
from synth.findings import evaluate_policies

NS = "trading-platform"
NAME = "replication-probe"
COMPONENT = "trading-platform:services:ReplicationProbe"
SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
POLICY = "aws:iam/rolePolicy:RolePolicy"
FIGURES = yaml.safe_load(PRICES.read_text())["regions"]["us-east-1"]
REGIONS = {"primary": "us-east-1", "backup": "us-west-2"}
PEER = {"us-east-1": "us-west-2", "us-west-2": "us-east-1"}


def usd(key):
    return FIGURES[key]["usd"]


def containers(stack):
    return json.loads(stack.named(TASK, NAME).inputs["containerDefinitions"])


def variables(stack):
    (container,) = containers(stack)
    return {v["name"]: v["value"] for v in container["environment"]}


def statements(stack, policy_name):
    return json.loads(stack.named(POLICY, policy_name).inputs["policy"])["Statement"]


def probe_alarms(stack):
    return {r.name: r.inputs for r in stack.of_type(ALARM) if r.name.startswith(f"{NAME}-")}


def pair(project_dir):
    cache: dict = {}
    evaluate("backup", project_dir, cache)
    return cache


# --- what each stack registers


def test_both_stacks_synthesize_the_probe_as_one_component(stack):
    (component,) = [r for r in stack.resources if r.type == COMPONENT]
    children = [r for r in stack.resources if r.parent == component.urn]
    assert sorted((r.type.rsplit(":", 1)[1], r.name) for r in children) == sorted([
        ("LogGroup", NAME), ("Role", f"{NAME}-execution"), ("RolePolicy", f"{NAME}-execution"),
        ("Role", f"{NAME}-task"), ("RolePolicy", f"{NAME}-task"), ("TaskDefinition", NAME), ("Service", NAME),
        ("MetricAlarm", f"{NAME}-heartbeat-silent" if stack.stack == "primary" else f"{NAME}-replication-age")])
    # Nothing of the probe outside its component (its image aside, which the images component builds).
    assert not [r for r in stack.resources if r.name.startswith(NAME) and r.parent != component.urn
                and r.type != COMPONENT]
    for role in (f"{NAME}-execution", f"{NAME}-task"):
        trust = json.loads(stack.named("aws:iam/role:Role", role).inputs["assumeRolePolicy"])["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "ecs-tasks.amazonaws.com"}]


def test_the_primary_builds_the_probe_image_and_the_backup_runs_the_replicated_digest(evaluations):
    primary, backup = evaluations["primary"], evaluations["backup"]
    built = primary.named("docker:index/image:Image", "images-probe")
    # Relative to the project directory, as api and web are.
    assert built.inputs["build"] == {"context": "probe", "dockerfile": "probe/Dockerfile", "platform": "linux/amd64"}
    repository = primary.named("aws:ecr/repository:Repository", "images-probe")
    assert repository.inputs["name"] == "trading-platform/production/probe"
    assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
    assert primary.outputs["image_refs"]["probe"] == built.state["repoDigest"]
    (here,) = containers(primary)
    assert here["image"] == built.state["repoDigest"]
    (there,) = containers(backup)
    assert there["image"] == built.state["repoDigest"].replace(".dkr.ecr.us-east-1.", ".dkr.ecr.us-west-2.")
    pull = {s["Sid"]: s for s in statements(backup, f"{NAME}-execution")}["PullThisImage"]
    assert pull["Resource"] == "arn:aws:ecr:us-west-2:123456789012:repository/trading-platform/production/probe"


def test_the_task_is_small_locked_down_and_logs_to_its_own_encrypted_group(stack):
    definition = stack.named(TASK, NAME).inputs
    assert definition["family"] == "trading-platform-production-replication-probe"
    assert (definition["cpu"], definition["memory"]) == ("256", "512")
    assert definition["requiresCompatibilities"] == ["FARGATE"] and definition["networkMode"] == "awsvpc"
    assert definition["runtimePlatform"] == {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}
    assert not definition.get("volumes")
    (container,) = containers(stack)
    assert container["name"] == NAME and container["essential"] is True
    assert container["user"] == "10001:10001" and container["readonlyRootFilesystem"] is True
    assert container["linuxParameters"] == {"initProcessEnabled": True}
    assert "secrets" not in container and not container["mountPoints"] and "portMappings" not in container
    logs = stack.named("aws:cloudwatch/logGroup:LogGroup", NAME).inputs
    assert logs["name"] == "/trading-platform/production/ecs/replication-probe"
    assert logs["retentionInDays"] == stack.named("aws:cloudwatch/logGroup:LogGroup", "api").inputs["retentionInDays"]
    assert logs["kmsKeyId"] == stack.outputs["kms_key_arn"]
    assert container["logConfiguration"] == {"logDriver": "awslogs", "options": {
        "awslogs-group": logs["name"], "awslogs-region": stack.region, "awslogs-stream-prefix": NAME}}


def test_one_task_on_fargate_never_two_in_the_private_subnets_with_the_app_group(stack):
    service = stack.named(SERVICE, NAME).inputs
    ids = {r.id: r for r in stack.resources if r.id}
    private = {r.id for r in stack.of_type("aws:ec2/subnet:Subnet") if r.inputs["tags"]["Tier"] == "private"}
    assert service["name"] == NAME and service["desiredCount"] == 1
    assert service["capacityProviderStrategies"] == [{"capacityProvider": "FARGATE", "weight": 1}]
    assert service["platformVersion"] == "LATEST"
    assert (service["deploymentMinimumHealthyPercent"], service["deploymentMaximumPercent"]) == (0, 100)
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["propagateTags"] == "SERVICE" and service["enableExecuteCommand"] is False
    network = service["networkConfiguration"]
    assert set(network["subnets"]) == private and network["assignPublicIp"] is False
    assert [ids[g].name for g in network["securityGroups"]] == ["security-groups-app"]
    assert not service.get("loadBalancers")
    assert stack.named("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cluster").urn in (
        stack.named(SERVICE, NAME).dependencies)
    assert stack.named(SERVICE, NAME).ignore_changes == ()  # its count is the setting's, not autoscaling's


def test_the_probe_is_not_one_of_the_app_services(stack):
    # Autoscaling, the load balancer, the drill's capacities and the outputs the drill scales stay the four services.
    assert not [r for r in stack.of_type("aws:appautoscaling/target:Target") if NAME in r.inputs["resourceId"]]
    assert not [r for r in stack.of_type("aws:lb/targetGroup:TargetGroup") if NAME in r.name]
    assert set(stack.outputs["ecs_services"]) == set(stack.outputs["ecs_capacity"]) == {"api", "web", "worker",
                                                                                       "beat"}
    assert not [r for r in stack.of_type(ALARM) if r.name.startswith("monitoring-replication-probe")]


def test_the_app_group_reaches_the_database_and_https(stack):
    ids = {r.id: r.name for r in stack.resources if r.id}
    rules = {(r.type.rsplit(":", 1)[1], ids[r.inputs["securityGroupId"]], r.inputs["fromPort"],
              ids.get(r.inputs.get("referencedSecurityGroupId")), r.inputs.get("cidrIpv4"))
             for r in stack.resources if r.type.startswith("aws:vpc/securityGroup")}
    assert ("SecurityGroupEgressRule", "security-groups-app", 5432, "security-groups-db", None) in rules
    assert ("SecurityGroupIngressRule", "security-groups-db", 5432, "security-groups-app", None) in rules
    # Secrets Manager (its endpoint) and CloudWatch in both regions (through the NAT).
    assert ("SecurityGroupEgressRule", "security-groups-app", 443, None, "0.0.0.0/0") in rules


# --- its permissions


def test_the_task_role_reads_this_regions_credentials_and_publishes_in_its_namespace_only(evaluations, stack):
    found = {s["Sid"]: s for s in statements(stack, f"{NAME}-task")}
    secret = stack.outputs["secret_arns"]["database-credentials"]
    assert f":{stack.region}:" in secret
    # The key of this region's copy: the primary's stack key, the primary's replica key for the backup's replica.
    key = (evaluations["primary"].outputs["kms_key_arn"] if stack.stack == "primary"
           else evaluations["primary"].outputs["replica_key_arn"])
    assert found == {
        "ReadTheDatabaseCredentials": {"Sid": "ReadTheDatabaseCredentials", "Effect": "Allow",
                                       "Action": "secretsmanager:GetSecretValue", "Resource": secret},
        "DecryptThemThroughSecretsManager": {
            "Sid": "DecryptThemThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": [key],
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}}},
        # PutMetricData has no resource type; cloudwatch:namespace is its condition key (the service
        # authorization reference, and CloudWatch's "Using condition keys to limit access to namespaces").
        "PublishProbeMetrics": {"Sid": "PublishProbeMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
                                "Resource": "*",
                                "Condition": {"StringEquals": {"cloudwatch:namespace": NAMESPACE}}},
    }
    assert key in [r.state["arn"] for r in evaluations["primary"].of_type("aws:kms/key:Key")]


def test_the_execution_role_pulls_and_logs_and_reads_no_secret(stack):
    actions = set()
    for statement in statements(stack, f"{NAME}-execution"):
        actions |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    assert actions == {"ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
                       "ecr:GetAuthorizationToken", "logs:CreateLogStream", "logs:PutLogEvents"}


# --- the contract with the process


def _contract(region, writer_region, stack):
    return {
        "PROBE_MODE": "writer" if region == writer_region else "reader",
        "PROBE_REGION": region, "PROBE_PEER_REGION": PEER[region], "PROBE_WRITER_REGION": writer_region,
        "PROBE_NAMESPACE": "TradingPlatform/ReplicationProbe", "PROBE_ENVIRONMENT": "production",
        "PROBE_INTERVAL_SECONDS": "1",
        "DATABASE_HOST": stack.named("aws:rds/instance:Instance", "database").state["address"],
        "DATABASE_PORT": "5432", "DATABASE_NAME": "trading_platform",
        "DATABASE_SECRET_ARN": stack.outputs["secret_arns"]["database-credentials"],
        "DATABASE_CA_BUNDLE": "/etc/ssl/certs/rds-global-bundle.pem",
    }


def test_the_container_gets_the_contract_writer_in_the_active_region(stack):
    assert variables(stack) == _contract(stack.region, "us-east-1", stack)
    assert CA_BUNDLE == "/etc/ssl/certs/rds-global-bundle.pem"


def test_with_us_west_2_active_the_modes_and_alarms_swap(project):
    # Both files name us-west-2, the primary's former writer rebuilt as a replica (not detached).
    swapped = pair(project(primary={f"{NS}:activeRegion": "us-west-2"}, backup={f"{NS}:activeRegion": "us-west-2"}))
    for stack in swapped.values():
        assert variables(stack) == _contract(stack.region, "us-west-2", stack)
        assert stack.named(SERVICE, NAME).inputs["desiredCount"] == 1
    assert set(probe_alarms(swapped["primary"])) == {f"{NAME}-replication-age"}
    assert set(probe_alarms(swapped["backup"])) == {f"{NAME}-heartbeat-silent"}
    age = probe_alarms(swapped["primary"])[f"{NAME}-replication-age"]
    assert age["dimensions"] == {"Environment": "production", "WriterRegion": "us-west-2"}
    silent = probe_alarms(swapped["backup"])[f"{NAME}-heartbeat-silent"]
    assert silent["dimensions"] == {"Environment": "production", "WriterRegion": "us-west-2"}
    assert swapped["backup"].outputs["replication_probe"]["mode"] == "writer"
    assert swapped["primary"].outputs["replication_probe"]["mode"] == "reader"


def test_nothing_runs_against_a_detached_former_writer(project):
    evacuated = phases.switched_to("backup", {"primary": "us-east-1", "backup": "us-west-2"})
    stacks = pair(project(**phases.by_role(evacuated)))
    assert stacks["primary"].named(SERVICE, NAME).inputs["desiredCount"] == 0
    assert stacks["backup"].named(SERVICE, NAME).inputs["desiredCount"] == 1
    assert variables(stacks["backup"])["PROBE_MODE"] == "writer"
    cost = estimate(stacks["primary"], usage_of(REPO, "primary"))
    assert [i["monthly_usd"] for i in cost["items"] if i["component"] == NAME and i["type"] != ALARM] == [0, 0]


def test_the_metric_names_agree_with_the_probe_package():
    assert set(METRICS) == {k for keys in MODE_METRICS.values() for k in keys}
    probe = pytest.importorskip("probe", reason="probe/ (the process, written separately) is not importable yet")
    if not hasattr(probe, "METRICS"):
        pytest.skip("probe/__init__.py defines no METRICS yet")
    assert probe.METRICS == METRICS


# --- alarms, dashboard, output


def test_alarms_per_role_to_the_monitoring_topic(evaluations):
    primary, backup = evaluations["primary"], evaluations["backup"]
    (silent,) = probe_alarms(primary).values()
    assert silent["name"] == "trading-platform-production-probe-heartbeat-silent"
    assert (silent["namespace"], silent["metricName"], silent["statistic"]) == (
        NAMESPACE, "LastAcknowledgedSeq", "SampleCount")
    assert silent["dimensions"] == {"Environment": "production", "WriterRegion": "us-east-1"}
    assert (silent["period"], silent["evaluationPeriods"], silent["datapointsToAlarm"]) == (60, 5, 5)
    assert (silent["threshold"], silent["comparisonOperator"], silent["treatMissingData"]) == (
        1, "LessThanThreshold", "breaching")
    (age,) = probe_alarms(backup).values()
    assert age["name"] == "trading-platform-production-replication-age"
    assert (age["namespace"], age["metricName"], age["statistic"]) == (NAMESPACE, "ReplicationAge", "Maximum")
    assert age["dimensions"] == {"Environment": "production", "WriterRegion": "us-east-1"}
    assert (age["period"], age["evaluationPeriods"], age["datapointsToAlarm"]) == (60, 2, 2)
    assert (age["threshold"], age["comparisonOperator"], age["treatMissingData"]) == (
        60, "GreaterThanThreshold", "breaching")
    for stack, alarm in ((primary, silent), (backup, age)):
        assert alarm["alarmActions"] == alarm["okActions"] == [stack.outputs["alarm_topic_arn"]]
        assert "region" not in alarm  # in the stack's own region
        assert alarm_window_problems(alarm["period"], alarm["evaluationPeriods"], alarm["datapointsToAlarm"], 1) == []


def test_the_dashboard_graphs_the_probe(stack):
    widgets = json.loads(stack.named("aws:cloudwatch/dashboard:Dashboard", "monitoring").inputs["dashboardBody"])[
        "widgets"]
    probe = [w["properties"] for w in widgets if w["properties"]["metrics"][0][0] == NAMESPACE]
    assert [[m[1] for m in p["metrics"]] for p in probe] == [["ReplicationAge"],
                                                             ["LastAcknowledgedSeq", "NewestReplicatedSeq"]]
    for properties in probe:
        assert properties["region"] == stack.region
        for metric in properties["metrics"]:
            assert metric[2:6] == ["Environment", "production", "WriterRegion", "us-east-1"]
    assert probe[0]["annotations"]["horizontal"][0]["value"] == 60


def test_the_output(evaluations, stack):
    alarms = {"heartbeat_silent": "trading-platform-production-probe-heartbeat-silent", "replication_age": None}
    if stack.stack == "backup":
        alarms = {"heartbeat_silent": None, "replication_age": "trading-platform-production-replication-age"}
    assert stack.outputs["replication_probe"] == {
        "namespace": "TradingPlatform/ReplicationProbe",
        "metrics": {"last_acknowledged_write": "LastAcknowledgedWrite", "last_acknowledged_seq": "LastAcknowledgedSeq",
                    "newest_replicated_write": "NewestReplicatedWrite", "newest_replicated_seq": "NewestReplicatedSeq",
                    "replication_age": "ReplicationAge"},
        "dimensions": {"Environment": "production"},
        "writer_dimension": "WriterRegion",
        "mode": "writer" if stack.stack == "primary" else "reader",
        "interval_seconds": 1,
        "max_replication_age_seconds": 60,
        "alarms": alarms,
        "service": "replication-probe",
        "cluster": stack.outputs["ecs_cluster_name"],
    }


def test_turned_off_there_is_no_probe_at_all(project, capsys):
    off = {f"{NS}:probe.enabled": False}
    project_dir = project(primary=off, backup=off)
    stacks = pair(project_dir)
    for stack in stacks.values():
        assert stack.outputs["replication_probe"] is None
        assert not [r for r in stack.resources if "probe" in r.name or r.type == COMPONENT]
        widgets = json.loads(stack.named("aws:cloudwatch/dashboard:Dashboard", "monitoring").inputs["dashboardBody"])
        assert not [w for w in widgets["widgets"] if w["properties"]["metrics"][0][0] == NAMESPACE]
        assert not [i for i in estimate(stack, usage_of(project_dir, stack.stack))["items"] if "probe" in i["resource"]]
    assert "probe" not in stacks["primary"].outputs["image_refs"]
    # Its image setting would be ignored: refused by name.
    with pytest.raises(SettingsError, match=r"^Pulumi.primary.yaml: trading-platform:images.probe .*no probe runs"):
        evaluate("primary", project(primary={**off, f"{NS}:images.probe": {"context": "probe"}}, backup=off))


def test_an_image_setting_overrides_the_probes_build(project):
    uri = "ghcr.io/example/probe@sha256:" + "cd" * 32
    stacks = pair(project(primary={f"{NS}:images.probe": {"uri": uri}}))
    assert not [r for r in stacks["primary"].of_type("docker:index/image:Image") if r.name == "images-probe"]
    assert containers(stacks["primary"])[0]["image"] == containers(stacks["backup"])[0]["image"] == uri
    built = evaluate("primary", project(primary={f"{NS}:images.probe": {"context": "../probe-fork",
                                                                        "dockerfile": "Dockerfile.prod"}}))
    assert built.named("docker:index/image:Image", "images-probe").inputs["build"]["dockerfile"] == (
        "../probe-fork/Dockerfile.prod")


# --- cost


@pytest.fixture(scope="module")
def costs(evaluations):
    return {name: estimate(evaluations[name], usage_of(REPO, name)) for name in ("primary", "backup")}


def test_the_probe_is_priced_task_metrics_requests_and_alarm(costs):
    task = (0.25 * usd("fargate.vcpu-hour") + 0.5 * usd("fargate.gb-hour")) * 730
    requests = 2 * 730 * 3600 / 1  # one request a heartbeat to each of the two regions
    assert requests == 2 * 2_628_000
    for name, metrics in (("primary", 2), ("backup", 3)):
        items = {i["type"]: i for i in costs[name]["items"] if i["component"] == NAME}
        assert set(items) == {SERVICE, "aws:cloudwatch:PutMetricData", ALARM}
        assert items[SERVICE]["monthly_usd"] == pytest.approx(task, abs=0.01)  # the standby's runs too
        cloudwatch = metrics * 2 * usd("cloudwatch.custom-metric-month") + requests / 1000 * usd(
            "cloudwatch.thousand-requests")
        assert items["aws:cloudwatch:PutMetricData"]["monthly_usd"] == pytest.approx(cloudwatch, abs=0.01)
        assert "5,256,000 PutMetricData requests" in items["aws:cloudwatch:PutMetricData"]["basis"]
        assert items[ALARM]["monthly_usd"] == usd("cloudwatch.alarm-metric-month")
        assert costs[name]["by_component"][NAME] == pytest.approx(sum(i["monthly_usd"] for i in items.values()),
                                                                  abs=0.01)
    assert costs["primary"]["by_component"][NAME] == pytest.approx(62.87, abs=0.01)
    assert costs["backup"]["by_component"][NAME] == pytest.approx(63.47, abs=0.01)


def test_a_third_repository_does_not_count_the_images_twice(costs):
    repositories = [i for i in costs["primary"]["items"] if i["type"] == "aws:ecr/repository:Repository"]
    assert len(repositories) == 3
    assert sum(i["monthly_usd"] for i in repositories) == pytest.approx(20 * usd("ecr.gb-month"), abs=0.02)


def test_the_cost_table_prints_the_probe_for_both_stacks(costs):
    # What `python -m synth --cost` prints per stack.
    for stack, cost in costs.items():
        assert f"\n  {NAME:<22} {cost['by_component'][NAME]:>10,.2f}" in table(cost, stack)


# --- policies


def test_the_probe_raises_no_finding(stack):
    assert [f for f in evaluate_policies(stack) if NAME in f["resource"] or NAME in f["message"]] == []


def _environment_findings(name: str, value: str) -> list[str]:
    (policy,) = [p for p in POLICIES if p.name == "ecs-no-secrets-in-environment"]
    props = {"containerDefinitions": json.dumps([{"name": "app", "environment": [{"name": name, "value": value}]}])}
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    found: list[str] = []
    policy.validate(ResourceValidationArgs(TASK, props, "urn:r", "r", options, None),
                    lambda message, urn=None: found.append(message))
    return found


def test_a_secret_arn_is_a_reference_but_a_secret_is_still_refused():
    arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:trading-platform/production/database-credentials-a1"
    assert _environment_findings("DATABASE_SECRET_ARN", arn) == []
    assert _environment_findings("DATABASE_SECRET_ARN", "hunter2") != []
    # A secret's ARN with a JSON key is what `secrets` takes, and nothing a process reads itself.
    assert _environment_findings("DATABASE_PASSWORD", arn + ":password::") != []


# --- settings

# (stack file edited, edits, stack file and key named, words)
SETTINGS_CASES = [
    ("primary", {"probe.intervalSeconds": 0.05}, "primary", "probe.intervalSeconds", "a number from 0.1 to 60"),
    ("primary", {"probe.intervalSeconds": 61}, "primary", "probe.intervalSeconds", "a number from 0.1 to 60"),
    ("primary", {"probe.intervalSeconds": "1s"}, "primary", "probe.intervalSeconds", "is not a number"),
    ("primary", {"probe.maxReplicationAgeSeconds": 1}, "primary", "probe.maxReplicationAgeSeconds",
     "an integer from 2 to 86400 (at least twice probe.intervalSeconds 1"),
    ("primary", {"probe.maxReplicationAgeSeconds": 86_401}, "primary", "probe.maxReplicationAgeSeconds",
     "an integer from 2 to 86400"),
    ("primary", {"probe.maxReplicationAgeSeconds": 60.5}, "primary", "probe.maxReplicationAgeSeconds",
     "is not an integer"),
    ("primary", {"probe.silentMinutes": 0}, "primary", "probe.silentMinutes", "an integer from 1 to 60"),
    ("primary", {"probe.silentMinutes": 61}, "primary", "probe.silentMinutes", "an integer from 1 to 60"),
    ("primary", {"probe.enabled": "yes"}, "primary", "probe.enabled", "true or false"),
    ("primary", {"probe.intervalSecs": 1}, "primary", "probe.intervalSecs", "is not a known setting"),
    ("primary", {"images.probe": {"uri": "probe"}}, "primary", "images.probe.uri",
     "REGISTRY/REPOSITORY@sha256:DIGEST or :TAG"),
]


@pytest.mark.parametrize(("edited", "edits", "named", "key", "words"), SETTINGS_CASES,
                         ids=[f"{c[3]}={list(c[1].values())[0]}" for c in SETTINGS_CASES])
def test_a_bad_probe_setting_stops_with_one_message(project, capsys, edited, edits, named, key, words):
    project_dir = project(**{edited: {f"{NS}:{k}": v for k, v in edits.items()}})
    assert synth_main(["--project-dir", str(project_dir)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"synth: Pulumi.{named}.yaml: {NS}:{key} ")
    assert words in error and "allowed:" in error


def test_the_shortest_age_and_silence_follow_the_interval(project):
    slow = {f"{NS}:probe.intervalSeconds": 45}
    with pytest.raises(SettingsError) as raised:
        evaluate("primary", project(primary=slow, backup=slow))
    # The files' 60 s is less than two heartbeats of 45 s.
    assert str(raised.value).startswith(f"Pulumi.primary.yaml: {NS}:probe.maxReplicationAgeSeconds 60 is not allowed")
    assert "an integer from 90 to 86400" in str(raised.value)
    slow = {**slow, f"{NS}:probe.maxReplicationAgeSeconds": 90, f"{NS}:probe.silentMinutes": 1}
    with pytest.raises(SettingsError, match=r"probe.silentMinutes 1 is not allowed; allowed: an integer from 2 to 60"):
        evaluate("primary", project(primary=slow, backup=slow))
    left_out = {f"{NS}:probe": {"intervalSeconds": 45}}
    stacks = pair(project(primary=left_out, backup=left_out))
    assert stacks["backup"].outputs["replication_probe"]["max_replication_age_seconds"] == 90


# (the file edited, its edit, the file the error must name, words): the pair's files must agree.
PAIR_CASES = [
    ("backup", {"probe.intervalSeconds": 2}, "backup", "probe.intervalSeconds 2 differs from the other stack's; "
                                                       "allowed: 1, the value in Pulumi.primary.yaml"),
    ("primary", {"probe.maxReplicationAgeSeconds": 120}, "primary",
     "probe.maxReplicationAgeSeconds 120 differs from the other stack's; allowed: 60, the value in Pulumi.backup.yaml"),
    ("backup", {"probe.silentMinutes": 10}, "backup", "the value in Pulumi.primary.yaml"),
    ("primary", {"probe.enabled": False}, "primary", "probe.enabled false differs from the other stack's"),
    ("backup", {"probe": {"enabled": True, "intervalSeconds": 0.5}}, "backup",
     "probe.intervalSeconds 0.5 differs from the other stack's"),
]


@pytest.mark.parametrize(("edited", "edit", "named", "words"), PAIR_CASES)
def test_the_two_files_must_agree_and_the_changed_one_is_named(project, capsys, edited, edit, named, words):
    project_dir = project(**{edited: {f"{NS}:{k}": v for k, v in edit.items()}})
    assert synth_main(["--project-dir", str(project_dir)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"synth: Pulumi.{named}.yaml: {NS}:probe.")
    assert words in error


def test_a_section_left_out_is_the_defaults_the_other_file_spells_out(project):
    project_dir = project(backup={f"{NS}:probe": None})
    for stack in ("primary", "backup"):
        raw, keys = read_stack_file(project_dir / f"Pulumi.{stack}.yaml")
        settings = load_settings(raw, stack, project_dir, secret_keys=keys).probe
        assert (settings.enabled, settings.interval_seconds, settings.max_replication_age_seconds,
                settings.silent_minutes) == (True, 1, 60, 5)


# --- what AWS refuses that the mocks would accept


def test_alarm_periods_cloudwatch_takes():
    """PutMetricAlarm (API reference, Period): 10, 20, 30 or a multiple of 60, and 10/20/30 only for a metric stored
    at 1-second resolution."""
    for period in (10, 20, 30):
        assert alarm_window_problems(period, 1, 1, storage_resolution=1) == []
        assert alarm_window_problems(period, 1, 1, storage_resolution=60) != []
    for period in (60, 120, 3600):
        assert alarm_window_problems(period, 1, 1, storage_resolution=60) == []
    for period in (1, 5, 15, 45, 90, 0):
        assert alarm_window_problems(period, 1, 1, storage_resolution=1) != []


def test_alarm_evaluation_windows_cloudwatch_takes():
    """PutMetricAlarm (API reference): period x evaluation periods at most one day for periods under an hour, seven
    days otherwise; DatapointsToAlarm between 1 and EvaluationPeriods."""
    assert alarm_window_problems(60, 1440, 1440, 1) == []
    assert alarm_window_problems(60, 1441, 1, 1) != []
    assert alarm_window_problems(30, 2880, 1, 1) == [] and alarm_window_problems(30, 2881, 1, 1) != []
    assert alarm_window_problems(3600, 168, 1, 1) == [] and alarm_window_problems(3600, 169, 1, 1) != []
    assert alarm_window_problems(60, 2, 3, 1) != [] and alarm_window_problems(60, 2, 0, 1) != []
    assert alarm_window_problems(60, 0, 0, 1) != []


def test_the_longest_silence_the_settings_allow_is_an_alarm_cloudwatch_takes(project):
    edge = {f"{NS}:probe.silentMinutes": 60, f"{NS}:probe.maxReplicationAgeSeconds": 86_400,
            f"{NS}:probe.intervalSeconds": 0.1}
    stacks = pair(project(primary=edge, backup=edge))
    for stack in stacks.values():
        for alarm in probe_alarms(stack).values():
            assert alarm_window_problems(alarm["period"], alarm["evaluationPeriods"], alarm["datapointsToAlarm"],
                                         1) == []
    assert probe_alarms(stacks["primary"])[f"{NAME}-heartbeat-silent"]["evaluationPeriods"] == 60
    assert variables(stacks["backup"])["PROBE_INTERVAL_SECONDS"] == "0.1"


def test_the_task_size_is_one_fargate_runs(stack):
    """Fargate's task CPU and memory pairs (task definition parameters reference): 256 CPU units take 512, 1024 or
    2048 MiB."""
    definition = stack.named(TASK, NAME).inputs
    cpu, memory = int(definition["cpu"]), int(definition["memory"])
    assert fargate_size_problems(cpu, memory) == [] and memory in FARGATE_MEMORY[cpu]
    assert fargate_size_problems(256, 4096) != [] and fargate_size_problems(300, 512) != []


def test_the_deployment_never_runs_two_probes_and_can_still_replace_one(stack):
    """ECS DeploymentConfiguration (API reference): RUNNING or PENDING tasks during a deployment are desiredCount x
    maximumPercent rounded down, those kept RUNNING desiredCount x minimumHealthyPercent rounded up."""
    service = stack.named(SERVICE, NAME).inputs
    assert deployment_problems(service["desiredCount"], service["deploymentMinimumHealthyPercent"],
                               service["deploymentMaximumPercent"]) == []
    assert deployment_problems(1, 0, 200) != []  # the default: a second writer while deploying
    assert deployment_problems(1, 100, 100) != []  # stuck: the task can neither stop nor be joined
    assert deployment_problems(1, 50, 100) != []  # 50 % of one task rounds up to one
    assert deployment_problems(0, 0, 100) == []
