"""The service tier as registered: images, cluster, the four services, load balancer, WAF, scaling."""

from __future__ import annotations

import json
import re

import pytest

from drills import phases
from regions.settings import SettingsError
from regions.stackfile import SECRET_PLACEHOLDER
from regions.workloads import WORKLOADS
from synth.engine import evaluate

NS = "trading-platform"
SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
DIGEST = "sha256:" + "ab" * 32


def by_id(stack):
    return {r.id: r for r in stack.resources if r.id}


def by_arn(stack):
    return {r.state["arn"]: r for r in stack.resources if isinstance(r.state.get("arn"), str)}


def containers(stack, name):
    return {c["name"]: c for c in json.loads(stack.named(TASK, name).inputs["containerDefinitions"])}


def container(stack, name):
    return containers(stack, name)[name]


def policy(stack, name):
    return json.loads(stack.named("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])["Statement"]


# --- images


def test_ecr_repositories_scan_are_immutable_and_encrypted(evaluations):
    primary = evaluations["primary"]
    repositories = {r.inputs["name"]: r for r in primary.of_type("aws:ecr/repository:Repository")}
    assert set(repositories) == {"trading-platform/production/api", "trading-platform/production/web",
                                 "trading-platform/production/probe"}
    key = primary.named("aws:kms/key:Key", "stack-key").state["arn"]
    for repository in repositories.values():
        assert repository.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}
        assert repository.inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key}]
        (rule,) = json.loads(primary.named("aws:ecr/lifecyclePolicy:LifecyclePolicy", repository.name)
                             .inputs["policy"])["rules"]
        assert rule["selection"]["countType"] == "imageCountMoreThan" and rule["selection"]["countNumber"] == 30
    # The backup builds nothing and owns no repository: ECR creates the replicas.
    backup = evaluations["backup"]
    assert not backup.of_type("aws:ecr/repository:Repository") and not backup.of_type("docker:index/image:Image")


def test_images_replicate_to_the_peer_region_into_repositories_like_the_primarys(evaluations):
    primary = evaluations["primary"]
    (configuration,) = primary.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
    (rule,) = configuration.inputs["replicationConfiguration"]["rules"]
    assert rule["destinations"] == [{"region": "us-west-2", "registryId": "123456789012"}]
    assert rule["repositoryFilters"] == [{"filter": "trading-platform/production/", "filterType": "PREFIX_MATCH"}]
    # ECR would create the replicas mutable, AES-256 and without lifecycle: a template in us-west-2 says how.
    template = primary.named("aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate", "images")
    t = template.inputs
    assert (t["region"], t["prefix"], t["appliedFors"]) == ("us-west-2", "trading-platform/production",
                                                            ["REPLICATION"])
    replica_key = primary.named("aws:kms/key:Key", "replica-key")
    assert replica_key.inputs["region"] == "us-west-2"  # a template's key must be in the template's region
    assert t["imageTagMutability"] == "IMMUTABLE"
    assert t["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": replica_key.state["arn"]}]
    assert json.loads(t["lifecyclePolicy"])["rules"][0]["selection"]["countNumber"] == 30
    assert t["resourceTags"]["Region"] == "us-west-2" and t["resourceTags"]["CostCenter"] == "CC-4410-trading"
    # KMS and tags on a template need a custom role ECR assumes.
    role = by_arn(primary)[t["customRoleArn"]]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "ecr.amazonaws.com"}
    statements = {s["Sid"]: s for s in policy(primary, "images-replica-repositories")}
    assert set(statements["CreateReplicaRepositories"]["Action"]) == {"ecr:CreateRepository", "ecr:ReplicateImage",
                                                                      "ecr:TagResource"}
    assert statements["EncryptReplicaRepositories"]["Resource"] == replica_key.state["arn"]
    # Only pushes made after replication is configured are replicated.
    for image in ("api", "web"):
        built = primary.named("docker:index/image:Image", f"images-{image}")
        assert {configuration.urn, template.urn} <= set(built.dependencies)


def test_both_regions_run_the_same_digests_each_from_its_own_ecr(evaluations):
    primary, backup = evaluations["primary"], evaluations["backup"]
    for service, image in (("api", "api"), ("web", "web"), ("worker", "api"), ("beat", "api")):
        built = primary.named("docker:index/image:Image", f"images-{image}")
        assert container(primary, service)["image"] == built.state["repoDigest"]
        assert primary.outputs["image_refs"][image] == built.state["repoDigest"]
        assert "@sha256:" in built.state["repoDigest"]
        here = container(backup, service)["image"]
        assert here == built.state["repoDigest"].replace(".dkr.ecr.us-east-1.", ".dkr.ecr.us-west-2.")
        # The standby pulls from the replica, not across regions.
        statements = {s["Sid"]: s for s in policy(backup, f"{service}-execution")}
        assert statements["PullThisImage"]["Resource"] == (
            f"arn:aws:ecr:us-west-2:123456789012:repository/trading-platform/production/{image}")


def test_images_are_built_for_amd64_and_tagged_by_release_and_content(evaluations):
    stack = evaluations["primary"]
    for image, context in (("api", "../backend"), ("web", "../frontend")):
        built = stack.named("docker:index/image:Image", f"images-{image}")
        repository = stack.named("aws:ecr/repository:Repository", f"images-{image}")
        url = repository.state["repositoryUrl"]
        assert url.startswith("123456789012.dkr.ecr.us-east-1.amazonaws.com/")
        assert built.inputs["build"] == {"context": context, "dockerfile": f"{context}/Dockerfile.prod",
                                         "platform": "linux/amd64"}
        assert re.fullmatch(re.escape(f"{url}:2026.11.26-1-") + "[0-9a-f]{12}", built.inputs["imageName"])
        assert ".registry" in built.secret_paths or ".registry.password" in built.secret_paths
        assert built.inputs["registry"]["server"] == url


def test_changed_sources_under_the_same_release_tag_push_a_new_tag(project, tmp_path):
    # ECR refuses to push a tag that exists in an immutable repository, even with the same digest: a tag that
    # follows the content lets `pulumi up` re-run with changed sources and an unchanged images.tag.
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "Dockerfile.prod").write_text("FROM python:3.12-slim\n")
    (app / "src" / "main.py").write_text("print('v1')\n")
    (app / ".dockerignore").write_text("*.log\nnode_modules\nDockerfile*\n")
    edits = {f"{NS}:images.api": {"context": str(app), "dockerfile": "Dockerfile.prod"}}

    def pushed_tag() -> str:
        primary = evaluate("primary", project(primary=edits))
        return primary.named("docker:index/image:Image", "images-api").inputs["imageName"].rsplit(":", 1)[1]

    first = pushed_tag()
    assert pushed_tag() == first  # nothing changed: same tag, and pulumi-docker sees no diff to push
    (app / "debug.log").write_text("ignored\n")
    (app / "node_modules").mkdir()
    (app / "node_modules" / "x.js").write_text("ignored\n")
    assert pushed_tag() == first  # what .dockerignore leaves out of the build does not count
    (app / "src" / "main.py").write_text("print('v2')\n")
    second = pushed_tag()
    assert second != first and second.startswith("2026.11.26-1-")
    (app / "Dockerfile.prod").write_text("FROM python:3.13-slim\n")
    assert pushed_tag() not in (first, second)  # read by the build even though .dockerignore names it


def test_image_uris_from_settings_are_deployed_without_a_build(project):
    # One in the primary's ECR under the replicated prefix, one in another registry; the replication probe's too
    # (else it is built from this repository, which needs images.tag).
    api = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/trading-platform/production/api@{DIGEST}"
    web = f"ghcr.io/example/web@{DIGEST}"
    probe = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/trading-platform/production/probe@{DIGEST}"
    cache: dict = {}
    evaluate("backup", project(primary={f"{NS}:images": {"api": {"uri": api}, "web": {"uri": web},
                                                         "probe": {"uri": probe}}}), cache)
    primary, backup = cache["primary"], cache["backup"]
    assert not primary.of_type("docker:index/image:Image")
    assert {s: container(primary, s)["image"] for s in ("api", "web", "worker", "beat")} == {
        "api": api, "web": web, "worker": api, "beat": api}
    replica = api.replace(".us-east-1.", ".us-west-2.")
    assert {s: container(backup, s)["image"] for s in ("api", "web", "worker", "beat")} == {
        "api": replica, "web": web, "worker": replica, "beat": replica}
    assert container(primary, "replication-probe")["image"] == probe
    assert container(backup, "replication-probe")["image"] == probe.replace(".us-east-1.", ".us-west-2.")


@pytest.mark.parametrize("uri", [
    f"123456789012.dkr.ecr.us-east-1.amazonaws.com/trading/api@{DIGEST}",  # not replicated
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/trading-platform/production/api:v1",  # a tag: not re-hosted
    f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/trading-platform/production/api@{DIGEST}",  # another region
])
def test_an_image_uri_the_backup_could_not_pull_in_its_region_is_refused(project, uri):
    with pytest.raises(SettingsError) as raised:
        evaluate("primary", project(primary={f"{NS}:images.api": {"uri": uri}}))
    assert str(raised.value).startswith(f"Pulumi.primary.yaml: {NS}:images.api.uri")
    assert "would not reach the backup region" in str(raised.value)


# --- cluster and services


def test_cluster_has_container_insights_and_fargate_spot(stack):
    cluster = stack.named("aws:ecs/cluster:Cluster", "cluster")
    assert {"name": "containerInsights", "value": "enhanced"} in cluster.inputs["settings"]
    providers = stack.named("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cluster")
    assert providers.inputs["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]
    assert stack.outputs["ecs_cluster_name"] == cluster.inputs["name"]


def test_services_run_private_with_circuit_breaker_and_cost_tags(stack):
    ids = by_id(stack)
    private = {r.id for r in stack.of_type("aws:ec2/subnet:Subnet") if r.inputs["tags"]["Tier"] == "private"}
    for name in ("api", "web", "worker", "beat"):
        i = stack.named(SERVICE, name).inputs
        assert set(i["networkConfiguration"]["subnets"]) == private
        assert i["networkConfiguration"]["assignPublicIp"] is False
        assert [ids[g].name for g in i["networkConfiguration"]["securityGroups"]] == ["security-groups-app"]
        assert i["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert i["propagateTags"] == "SERVICE" and i["enableEcsManagedTags"] is True
        assert i["enableExecuteCommand"] is False
        assert i["cluster"] == stack.named("aws:ecs/cluster:Cluster", "cluster").state["arn"]
    strategies = {n: stack.named(SERVICE, n).inputs["capacityProviderStrategies"][0]["capacityProvider"]
                  for n in ("api", "web", "worker", "beat")}
    assert strategies == {"api": "FARGATE", "web": "FARGATE", "worker": "FARGATE_SPOT", "beat": "FARGATE"}
    assert stack.outputs["ecs_services"] == {"api": "api", "web": "web", "worker": "worker", "beat": "beat"}


def test_one_beat_in_the_active_region_none_in_the_standby(evaluations):
    desired = {stack: {n: evaluations[stack].named(SERVICE, n).inputs["desiredCount"]
                       for n in ("api", "web", "worker", "beat")} for stack in ("primary", "backup")}
    assert desired == {"primary": {"api": 2, "web": 2, "worker": 2, "beat": 1},
                       "backup": {"api": 1, "web": 1, "worker": 0, "beat": 0}}
    for stack in evaluations.values():
        beat = stack.named(SERVICE, "beat").inputs
        # Stopped before its replacement starts: never two beats, even during a deployment.
        assert (beat["deploymentMinimumHealthyPercent"], beat["deploymentMaximumPercent"]) == (0, 100)


def test_services_wait_for_their_listener_and_the_capacity_providers(stack):
    providers = stack.named("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cluster").urn
    listener = stack.named("aws:lb/listener:Listener", "alb-https").urn
    rule = stack.named("aws:lb/listenerRule:ListenerRule", "alb-api").urn
    for name in ("api", "web", "worker", "beat"):
        assert {providers, listener, rule} <= set(stack.named(SERVICE, name).dependencies), name


def test_the_alb_waits_for_its_log_bucket_policy(stack):
    policy = stack.named("aws:s3/bucketPolicy:BucketPolicy", "access-logs").urn
    assert policy in stack.named("aws:lb/loadBalancer:LoadBalancer", "alb").dependencies


def test_autoscaling_owns_the_running_count(stack):
    for name in ("api", "web", "worker"):
        assert stack.named(SERVICE, name).ignore_changes == ("desiredCount",)
    assert stack.named(SERVICE, "beat").ignore_changes == ()  # beat's count is the setting, always


def test_after_a_failover_the_roles_swap_by_settings(project):
    cache: dict = {}
    evacuated = phases.switched_to("backup", {"primary": "us-east-1", "backup": "us-west-2"})
    project_dir = project(**phases.by_role(evacuated))
    evaluate("backup", project_dir, cache)
    assert cache["backup"].named(SERVICE, "beat").inputs["desiredCount"] == 1
    assert cache["backup"].named(SERVICE, "worker").inputs["desiredCount"] == 2
    assert cache["primary"].named(SERVICE, "beat").inputs["desiredCount"] == 0
    assert cache["primary"].named(SERVICE, "worker").inputs["desiredCount"] == 0


def test_ecs_capacity_is_the_active_capacity_in_both_stacks(evaluations):
    expected = {"api": {"min": 2, "max": 10, "desired": 2}, "web": {"min": 2, "max": 10, "desired": 2},
                "worker": {"min": 1, "max": 10, "desired": 2}, "beat": {"min": 1, "max": 1, "desired": 1}}
    assert evaluations["primary"].outputs["ecs_capacity"] == expected
    assert evaluations["backup"].outputs["ecs_capacity"] == expected


# --- task definitions


def _known_secret_values(stack_names, project_dir):
    cache: dict = {}
    for name in stack_names:
        evaluate(name, project_dir, cache)
    values = {SECRET_PLACEHOLDER.format(key=f"{NS}:{k}") for k in ("jwtSecret", "googleClientId")}
    # The generated ones: the primary's shared secrets, each region's Redis token.
    values |= {r.state["result"] for stack in cache.values()
               for r in stack.of_type("random:index/randomPassword:RandomPassword")}
    return cache, values


def token_arn(stack):
    """The region's own Redis token, which `secret_arns` leaves out (it is never handed over)."""
    return stack.named("aws:secretsmanager/secret:Secret", "cache-auth-token").state["arn"]


def generations(stack, primary):
    """What each service's ROTATION_GENERATIONS must be: the version ids of the values it reads (the shared ones'
    as the primary wrote them)."""
    shared = primary.outputs["secret_versions"]
    token = stack.named(VERSION, "cache-auth-token").state["versionId"]
    api = ",".join(f"{name}:{shared[name]}" for name in sorted(shared)) + f",redis-auth-token:{token}"
    return {"api": api, "worker": f"redis-auth-token:{token}", "beat": f"redis-auth-token:{token}"}


def test_no_secret_value_in_any_container_environment(project):
    cache, secrets = _known_secret_values(
        ("primary", "backup"),
        project(primary={f"{NS}:jwtSecret": {"secure": "x"}, f"{NS}:googleClientId": {"secure": "y"}}))
    for stack in cache.values():
        for name in ("api", "web", "worker", "beat"):
            c = container(stack, name)
            environment = {e["name"]: e["value"] for e in c["environment"]}
            rotation = generations(stack, cache["primary"])
            assert environment == {"LOG_LEVEL": "INFO", "DEBUG": "false", "AWS_REGION": stack.region,
                                   "PLATFORM_REGION": stack.region, "PLATFORM_ROLE": stack.stack,
                                   **({"ROTATION_GENERATIONS": rotation[name]} if name in rotation else {}),
                                   **({"DATABASE_POOL_SIZE": "5"} if name in ("api", "worker") else {})}
            assert not [v for v in environment.values() if any(s in v for s in secrets)]
            assert not any(s in json.dumps(c) for s in secrets)  # nowhere in the definition


def test_a_new_jwt_secret_restarts_the_tasks_that_read_it_in_both_stacks(evaluations, project):
    """ECS reads secrets only at task start: a new jwtSecret (here: set, where the shipped files generate one) is a
    new secret version, whose id alone changes the definitions of the tasks that read it, in both stacks (the backup
    takes it from the primary's `secret_versions`). The others keep theirs."""
    cache: dict = {}
    evaluate("backup", project(primary={f"{NS}:jwtSecret": {"secure": "v1:AAAnew"}}), cache)
    before, after = (stacks["primary"].outputs["secret_versions"]["jwt-secret"] for stacks in (evaluations, cache))
    assert re.fullmatch(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", after) and before != after
    for name, stack in cache.items():
        for service in ("api", "web", "worker", "beat"):
            old, new = (_generations(stacks[name], service) for stacks in (evaluations, cache))
            if service == "api":
                assert f"jwt-secret:{before}" in old and f"jwt-secret:{after}" in new, name
                assert old.replace(before, after) == new  # nothing else changed
            else:
                assert old == new, (name, service)
        assert SECRET_PLACEHOLDER.format(key=f"{NS}:jwtSecret") not in json.dumps(container(stack, "api"))


def _generations(stack, service):
    return {e["name"]: e["value"] for e in container(stack, service)["environment"]}.get("ROTATION_GENERATIONS")


def test_secrets_are_injected_from_this_regions_secrets_manager(project):
    cache: dict = {}
    evaluate("backup", project(primary={f"{NS}:googleClientId": {"secure": "v1:AAAgoogle"}}), cache)
    for stack in cache.values():
        _assert_injected(stack)


def _assert_injected(stack):
    arns = {**stack.outputs["secret_arns"], "redis-auth-token": token_arn(stack)}
    api = {s["name"]: s["valueFrom"] for s in container(stack, "api")["secrets"]}
    assert api == {
        "DATABASE_USER": arns["database-credentials"] + ":username::",
        "DATABASE_PASSWORD": arns["database-credentials"] + ":password::",
        "DATABASE_HOST": arns["connection"] + ":db_host::",
        "DATABASE_PORT": arns["connection"] + ":db_port::",
        "DATABASE_NAME": arns["connection"] + ":db_name::",
        "REDIS_HOST": arns["connection"] + ":redis_host::",
        "REDIS_PORT": arns["connection"] + ":redis_port::",
        "REDIS_AUTH_TOKEN": arns["redis-auth-token"],
        "JWT_SECRET": arns["jwt-secret"],
        "GOOGLE_CLIENT_ID": arns["google-client-id"],
    }
    assert all(f":secretsmanager:{stack.region}:" in v for v in api.values())
    assert "secrets" not in container(stack, "web") or container(stack, "web")["secrets"] == []
    assert {s["name"] for s in container(stack, "beat")["secrets"]} == {"REDIS_HOST", "REDIS_PORT",
                                                                        "REDIS_AUTH_TOKEN"}


def test_every_secret_a_task_reads_has_a_value(evaluations):
    # ECS cannot start a task whose secret has no current version. Without googleClientId (the stack files
    # set none) there is no such secret, and the api runs without GOOGLE_CLIENT_ID.
    # A secret's id is its ARN.
    with_value = {v.inputs["secretId"] for stack in evaluations.values()
                  for v in stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    for stack in evaluations.values():
        for name in ("api", "web", "worker", "beat"):
            for ref in container(stack, name).get("secrets", []):
                arn = ref["valueFrom"].removesuffix("::").rsplit(":", 1)[0] if ref["valueFrom"].endswith(
                    "::") else ref["valueFrom"]
                # A us-west-2 ARN is the replica of the primary's secret of the same name.
                assert arn.replace(":us-west-2:", ":us-east-1:") in with_value or arn in with_value, (
                    stack.stack, name, ref["name"])
        assert "GOOGLE_CLIENT_ID" not in {s["name"] for s in container(stack, "api")["secrets"]}


def test_containers_run_unprivileged_on_a_read_only_root(stack):
    for name, cpu, memory in (("api", 1024, 2048), ("web", 256, 512), ("worker", 1024, 2048), ("beat", 256, 512)):
        definition = stack.named(TASK, name).inputs
        assert (definition["cpu"], definition["memory"]) == (str(cpu), str(memory))
        assert definition["requiresCompatibilities"] == ["FARGATE"] and definition["networkMode"] == "awsvpc"
        c = container(stack, name)
        uid = c["user"].split(":")[0]
        assert uid not in ("0", "root")
        assert c["readonlyRootFilesystem"] is True
        logs = c["logConfiguration"]
        assert logs["logDriver"] == "awslogs"
        assert logs["options"]["awslogs-group"] == f"/trading-platform/production/ecs/{name}"
        group = stack.named("aws:cloudwatch/logGroup:LogGroup", name)
        assert group.inputs["kmsKeyId"] == stack.named("aws:kms/key:Key", "stack-key").state["arn"]
        assert group.inputs["retentionInDays"] == 90
    assert container(stack, "api")["command"] == ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000",
                                                  "--workers", "4", "--log-level", "INFO"]
    assert container(stack, "api")["portMappings"] == [{"containerPort": 8000, "protocol": "tcp"}]
    assert container(stack, "web")["portMappings"] == [{"containerPort": 80, "protocol": "tcp"}]
    assert container(stack, "web")["systemControls"] == [
        {"namespace": "net.ipv4.ip_unprivileged_port_start", "value": "80"}]
    assert container(stack, "worker")["command"][:4] == ["celery", "-A", "celery_app", "worker"]
    assert container(stack, "beat")["command"][-2:] == ["--schedule", "/tmp/celerybeat-schedule"]


def test_execution_roles_read_only_their_own_secrets_image_and_logs(stack):
    arns = {**stack.outputs["secret_arns"], "redis-auth-token": token_arn(stack)}
    for name, secrets in (("api", set(arns.values())), ("worker", {arns["database-credentials"], arns["connection"],
                                                                   arns["redis-auth-token"]}),
                          ("beat", {arns["connection"], arns["redis-auth-token"]}), ("web", set())):
        statements = {s["Sid"]: s for s in policy(stack, f"{name}-execution")}
        if secrets:
            assert set(statements["ReadOwnSecrets"]["Resource"]) == secrets
            assert statements["DecryptThroughSecretsManager"]["Condition"] == {
                "StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}}
        else:
            assert "ReadOwnSecrets" not in statements
        image = "web" if name == "web" else "api"
        assert statements["PullThisImage"]["Resource"] == (
            f"arn:aws:ecr:{stack.region}:123456789012:repository/trading-platform/production/{image}")
        group = stack.named("aws:cloudwatch/logGroup:LogGroup", name)
        assert statements["WriteOwnLogs"]["Resource"] == group.state["arn"] + ":*"
        definition = stack.named(TASK, name).inputs
        execution = by_arn(stack)[definition["executionRoleArn"]]
        assert json.loads(execution.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
            "Service": "ecs-tasks.amazonaws.com"}


def test_backup_decrypts_shared_secrets_with_the_primarys_replica_key(evaluations):
    statements = {s["Sid"]: s for s in policy(evaluations["backup"], "api-execution")}
    assert set(statements["DecryptThroughSecretsManager"]["Resource"]) == {
        evaluations["backup"].outputs["kms_key_arn"], evaluations["primary"].outputs["replica_key_arn"]}


def test_only_the_worker_may_touch_the_backups_bucket(stack):
    statements = {s["Sid"]: s for s in policy(stack, "worker-task")}
    assert statements["ListBackups"]["Resource"] == stack.outputs["backup_bucket_arn"]
    assert statements["ReadWriteBackups"]["Resource"] == stack.outputs["backup_bucket_arn"] + "/*"
    for name in ("api", "web", "beat"):
        with pytest.raises(KeyError):
            stack.named("aws:iam/rolePolicy:RolePolicy", f"{name}-task")


# --- load balancer


def test_each_service_is_reachable_only_from_the_alb_on_its_port(stack):
    ids = by_id(stack)
    for name, port in (("api", 8000), ("web", 80)):
        (balanced,) = stack.named(SERVICE, name).inputs["loadBalancers"]
        assert balanced == {"targetGroupArn": stack.named("aws:lb/targetGroup:TargetGroup", f"alb-{name}").state["arn"],
                            "containerName": name, "containerPort": port}
        app_sg = stack.named(SERVICE, name).inputs["networkConfiguration"]["securityGroups"][0]
        rules = [r.inputs for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                 if r.inputs["securityGroupId"] == app_sg and r.inputs["fromPort"] == port]
        assert [ids[r["referencedSecurityGroupId"]].name for r in rules] == ["security-groups-alb"]
    all_app_rules = [r.inputs for r in stack.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                     if ids[r.inputs["securityGroupId"]].name == "security-groups-app"]
    assert {ids[r["referencedSecurityGroupId"]].name for r in all_app_rules} == {"security-groups-alb"}
    assert "loadBalancers" not in stack.named(SERVICE, "worker").inputs


def test_alb_is_https_only_with_a_tls13_policy_and_routes_api(stack):
    ids, arns = by_id(stack), by_arn(stack)
    alb = stack.named("aws:lb/loadBalancer:LoadBalancer", "alb")
    public = {r.id for r in stack.of_type("aws:ec2/subnet:Subnet") if r.inputs["tags"]["Tier"] == "public"}
    assert set(alb.inputs["subnets"]) == public and alb.inputs["internal"] is False
    assert [ids[g].name for g in alb.inputs["securityGroups"]] == ["security-groups-alb"]
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert alb.inputs["accessLogs"] == {"bucket": stack.named("aws:s3/bucket:Bucket", "access-logs").state["bucket"],
                                        "prefix": "alb", "enabled": True}
    assert alb.inputs["enableDeletionProtection"] is (stack.stack == "primary")
    https = stack.named("aws:lb/listener:Listener", "alb-https").inputs
    assert (https["port"], https["protocol"], https["sslPolicy"]) == (443, "HTTPS",
                                                                      "ELBSecurityPolicy-TLS13-1-2-2021-06")
    certificate = stack.named("aws:acm/certificate:Certificate", "alb")
    assert https["certificateArn"] == certificate.state["arn"]
    assert certificate.inputs == {"domainName": "app.trading.example.com", "validationMethod": "DNS"}
    assert arns[https["defaultActions"][0]["targetGroupArn"]].name == "alb-web"
    http = stack.named("aws:lb/listener:Listener", "alb-http").inputs
    assert http["port"] == 80 and http["defaultActions"] == [{"type": "redirect", "redirect": {
        "protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}]
    rule = stack.named("aws:lb/listenerRule:ListenerRule", "alb-api").inputs
    assert rule["conditions"] == [{"pathPattern": {"values": ["/api/*"]}}]
    assert arns[rule["actions"][0]["targetGroupArn"]].name == "alb-api"
    health = {n: stack.named("aws:lb/targetGroup:TargetGroup", f"alb-{n}").inputs for n in ("api", "web")}
    assert (health["api"]["port"], health["api"]["healthCheck"]["path"]) == (8000, "/api/health")
    assert (health["web"]["port"], health["web"]["healthCheck"]["path"]) == (80, "/")
    assert all(h["targetType"] == "ip" for h in health.values())
    assert stack.outputs["alb_zone_id"] == {"primary": "Z35SXDOTRQ7X7K", "backup": "Z1H1FL5HABSF5"}[stack.stack]
    assert stack.outputs["alb_arn"] == alb.state["arn"] and stack.outputs["alb_dns_name"] == alb.state["dnsName"]


def test_certificate_is_validated_in_the_hosted_zone_by_the_primary(evaluations):
    primary, backup = evaluations["primary"], evaluations["backup"]
    record = primary.named("aws:route53/record:Record", "alb-certificate-validation").inputs
    option = primary.named("aws:acm/certificate:Certificate", "alb").state["domainValidationOptions"][0]
    assert record["zoneId"] == primary.outputs["hosted_zone_id"]
    assert (record["name"], record["type"], record["records"]) == (
        option["resourceRecordName"], "CNAME", [option["resourceRecordValue"]])
    assert [r.name for r in backup.of_type("aws:route53/record:Record")] == ["failover"]
    backup_option = backup.named("aws:acm/certificate:Certificate", "alb").state["domainValidationOptions"][0]
    validation = backup.named("aws:acm/certificateValidation:CertificateValidation", "alb").inputs
    assert validation["validationRecordFqdns"] == [backup_option["resourceRecordName"]] == [record["name"]]


def test_waf_guards_the_alb(stack):
    acl = stack.named("aws:wafv2/webAcl:WebAcl", "alb").inputs
    assert acl["scope"] == "REGIONAL" and acl["defaultAction"] == {"allow": {}}
    rules = {r["name"]: r for r in acl["rules"]}
    assert rules["AWSManagedRulesCommonRuleSet"]["statement"]["managedRuleGroupStatement"]["vendorName"] == "AWS"
    assert "AWSManagedRulesKnownBadInputsRuleSet" in rules
    rate = rules["rate-per-ip"]
    # The guide's 100 requests a minute per user, as WAF counts: per IP over five minutes.
    assert rate["statement"]["rateBasedStatement"] == {"limit": 500, "aggregateKeyType": "IP",
                                                      "evaluationWindowSec": 300}
    assert rate["action"] == {"block": {}}
    association = stack.named("aws:wafv2/webAclAssociation:WebAclAssociation", "alb").inputs
    assert association["resourceArn"] == stack.outputs["alb_arn"]


# --- autoscaling


def test_autoscaling_follows_the_guides_hpa(evaluations):
    for stack_name, low in (("primary", 2), ("backup", 1)):
        stack = evaluations[stack_name]
        for name in ("api", "web"):
            target = stack.named("aws:appautoscaling/target:Target", name).inputs
            assert (target["minCapacity"], target["maxCapacity"]) == (low, 10)
            assert target["resourceId"] == f"service/trading-platform-production/{name}"
            for label, metric, value in (("cpu", "ECSServiceAverageCPUUtilization", 70),
                                         ("memory", "ECSServiceAverageMemoryUtilization", 80)):
                config = stack.named("aws:appautoscaling/policy:Policy", f"{name}-{label}").inputs[
                    "targetTrackingScalingPolicyConfiguration"]
                assert config["targetValue"] == value
                assert config["predefinedMetricSpecification"]["predefinedMetricType"] == metric
        worker = stack.named("aws:appautoscaling/target:Target", "worker").inputs
        # A standby's database is read-only: its workers may not run at all, whatever target tracking wants.
        assert (worker["minCapacity"], worker["maxCapacity"]) == ((1, 10) if stack_name == "primary" else (0, 0))
        assert stack.named("aws:appautoscaling/policy:Policy", "worker-cpu")
        with pytest.raises(KeyError):
            stack.named("aws:appautoscaling/policy:Policy", "worker-memory")
        with pytest.raises(KeyError):
            stack.named("aws:appautoscaling/target:Target", "beat")


# --- settings


def test_ecs_exec_when_enabled_may_open_sessions_and_decrypt_them(project):
    primary = evaluate("primary", project(primary={f"{NS}:services.execEnabled": True}))
    assert primary.named(SERVICE, "api").inputs["enableExecuteCommand"] is True
    statements = {s["Sid"]: s for s in policy(primary, "api-task")}
    assert "ssmmessages:OpenDataChannel" in statements["EcsExecSessions"]["Action"]
    assert statements["EcsExecSessionKey"]["Resource"] == primary.outputs["kms_key_arn"]


# --- writable paths, exec sessions, WAF logs


def _owner(path_user_mounts, path):
    """The mount that holds `path` (itself or a parent directory)."""
    return next((m for m in path_user_mounts if path == m or path.startswith(m.rstrip("/") + "/")), None)


def test_every_path_a_workload_writes_is_a_volume_its_user_owns(stack):
    for name in ("api", "web", "worker", "beat"):
        found = containers(stack, name)
        app = found[name]
        definition = stack.named(TASK, name).inputs
        volumes = {v["name"] for v in definition["volumes"]}
        mounts = {m["containerPath"]: m["sourceVolume"] for m in app["mountPoints"] if not m["readOnly"]}
        assert set(mounts.values()) <= volumes
        writes = set(WORKLOADS[name].writes)
        command = app.get("command") or []
        if "--schedule" in command:  # celery beat's schedule file, as the task runs it
            writes.add(command[command.index("--schedule") + 1])
        assert writes or name == "beat"
        # Fargate mounts volumes root-owned 0755: a root container with only CHOWN hands each to the user
        # before the workload starts, and the workload starts only once it succeeded.
        owner = found["volume-owner"]
        assert owner["essential"] is False and owner["user"] == "0" and owner["image"] == app["image"]
        assert owner["readonlyRootFilesystem"] is True
        assert "CHOWN" not in owner["linuxParameters"]["capabilities"]["drop"]
        assert {"SETUID", "DAC_OVERRIDE", "NET_RAW"} <= set(owner["linuxParameters"]["capabilities"]["drop"])
        assert app["dependsOn"] == [{"containerName": "volume-owner", "condition": "SUCCESS"}]
        chown, user, *owned = owner["entryPoint"]
        assert (chown, user) == ("chown", app["user"])
        owner_mounts = {m["containerPath"]: m["sourceVolume"] for m in owner["mountPoints"]}
        for path in writes:
            mount = _owner(mounts, path)
            assert mount is not None, (name, path)
            assert mount in owned and owner_mounts[mount] == mounts[mount], (name, path)


def test_ecs_exec_sessions_are_logged_to_an_encrypted_group(stack):
    cluster = stack.named("aws:ecs/cluster:Cluster", "cluster").inputs
    config = cluster["configuration"]["executeCommandConfiguration"]
    group = stack.named("aws:cloudwatch/logGroup:LogGroup", "cluster-exec")
    key = stack.named("aws:kms/key:Key", "stack-key").state["arn"]
    assert config["kmsKeyId"] == key and config["logging"] == "OVERRIDE"
    assert config["logConfiguration"] == {"cloudWatchLogGroupName": group.inputs["name"],
                                          "cloudWatchEncryptionEnabled": True}
    # ECS refuses cloudWatchEncryptionEnabled on a group without a customer-managed key.
    assert group.inputs["kmsKeyId"] == key and group.inputs["retentionInDays"] == 90


def test_ecs_exec_when_enabled_logs_sessions_and_has_agent_volumes(project):
    primary = evaluate("primary", project(primary={f"{NS}:services.execEnabled": True}))
    group = primary.named("aws:cloudwatch/logGroup:LogGroup", "cluster-exec").state["arn"]
    for name in ("api", "web", "worker", "beat"):
        statements = {s["Sid"]: s for s in policy(primary, f"{name}-task")}
        assert statements["EcsExecSessionLogs"]["Resource"] == f"{group}:*"
        assert statements["EcsExecFindLogGroup"] == {"Sid": "EcsExecFindLogGroup", "Effect": "Allow",
                                                     "Action": "logs:DescribeLogGroups", "Resource": "*"}
        # The managed agent cannot start on a read-only root without these (containers-roadmap #1359).
        paths = {m["containerPath"] for m in container(primary, name)["mountPoints"]}
        assert {"/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"} <= paths


def test_waf_logs_requests_without_credentials(stack):
    acl = stack.named("aws:wafv2/webAcl:WebAcl", "alb")
    logging = stack.named("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", "alb")
    group = stack.named("aws:cloudwatch/logGroup:LogGroup", "alb-waf")
    assert logging.inputs["resourceArn"] == acl.state["arn"]
    # WAF delivers only to groups named aws-waf-logs-*, by the group's ARN without ':*'.
    assert group.inputs["name"].startswith("aws-waf-logs-")
    assert logging.inputs["logDestinationConfigs"] == [group.state["arn"]]
    assert not group.state["arn"].endswith(":*")
    assert group.inputs["kmsKeyId"] == stack.named("aws:kms/key:Key", "stack-key").state["arn"]
    assert group.inputs["retentionInDays"] == 90
    # WAF redacts only method, query string, URI path and single headers, named in lower case.
    assert logging.inputs["redactedFields"] == [{"singleHeader": {"name": "authorization"}},
                                                {"singleHeader": {"name": "cookie"}}]
    delivery = stack.named("aws:cloudwatch/logResourcePolicy:LogResourcePolicy", "alb-waf")
    (statement,) = json.loads(delivery.inputs["policyDocument"])["Statement"]
    assert statement["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert statement["Resource"] == f"{group.state['arn']}:log-stream:*"
    assert delivery.urn in logging.dependencies


def test_replication_and_rotation_names_fit_the_api_patterns(evaluations):
    # The mocks accept any string; these are the patterns of the AWS API references.
    primary = evaluations["primary"]
    (configuration,) = primary.of_type("aws:ecr/replicationConfiguration:ReplicationConfiguration")
    ((repository_filter,),) = [r["repositoryFilters"]
                               for r in configuration.inputs["replicationConfiguration"]["rules"]]
    # ECR RepositoryFilter.filter
    assert re.fullmatch(r"(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*",
                        repository_filter["filter"]) and 2 <= len(repository_filter["filter"]) <= 256
    # ECR CreateRepositoryCreationTemplate.prefix
    prefix = primary.named("aws:ecr/repositoryCreationTemplate:RepositoryCreationTemplate", "images").inputs["prefix"]
    assert re.fullmatch(r"((?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*/?|ROOT)", prefix)
    # CloudFormation stack names (the rotation application's stack).
    stack_name = primary.named("aws:serverlessrepository/cloudFormationStack:CloudFormationStack",
                               "database-password").inputs["name"]
    assert re.fullmatch(r"[a-zA-Z][-a-zA-Z0-9]{0,127}", stack_name)
    # CloudWatch Logs resource policies are at most 5,120 characters.
    for stack in evaluations.values():
        document = stack.named("aws:cloudwatch/logResourcePolicy:LogResourcePolicy", "alb-waf").inputs[
            "policyDocument"]
        assert len(document) <= 5120


def test_tasks_are_defined_only_once_their_secrets_have_values(evaluations):
    # A task whose secret has no value yet fails to start, and on a first deployment the circuit breaker then
    # stops the service for good: each definition waits for the versions of the secrets it reads.
    for stack in evaluations.values():
        versions = {v.inputs["secretId"]: v.urn
                    for v in stack.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
        for name in ("api", "worker", "beat"):
            definition = stack.named(TASK, name)
            # valueFrom is the secret's ARN, or ARN:json-key:: for one key of it.
            arns = {ref["valueFrom"].rsplit(":", 3)[0] if ref["valueFrom"].endswith("::") else ref["valueFrom"]
                    for ref in container(stack, name)["secrets"]}
            local = [arn for arn in arns if arn in versions]
            assert local, (stack.stack, name)
            for arn in local:
                assert versions[arn] in definition.dependencies, (stack.stack, name, arn)
