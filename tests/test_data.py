"""The data tier as registered: one writer, its cross-region replica, the cache, secrets, backups."""

from __future__ import annotations

import json

import pytest

from drills import phases
from regions.stackfile import SECRET_PLACEHOLDER
from regions.tuning import (
    GUIDE_MAX_CONNECTIONS,
    connection_budget,
    evaluate_formula,
    postgres_parameters,
    rds_value,
)
from synth.engine import evaluate
from synth.report import to_json

NS = "trading-platform"
INSTANCE = "aws:rds/instance:Instance"
RANDOM_ID = "random:index/randomId:RandomId"
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def by_id(stack):
    return {r.id: r for r in stack.resources if r.id}


def stack_key_arn(stack):
    return stack.named("aws:kms/key:Key", "stack-key").state["arn"]


def token_value(stack):
    """The region's own Redis token (generated: the backup's too, without a Global Datastore)."""
    return stack.named("random:index/randomPassword:RandomPassword", "cache-auth-token").state["result"]


def isolated_subnet_ids(stack):
    return {r.id for r in stack.of_type("aws:ec2/subnet:Subnet") if r.inputs["tags"]["Tier"] == "isolated"}


# --- RDS


def test_exactly_one_writer_in_primary(evaluations):
    (writer,) = evaluations["primary"].of_type(INSTANCE)
    i = writer.inputs
    assert "replicateSourceDb" not in i
    assert i["multiAz"] is True
    assert (i["username"], i["dbName"]) == ("trading_admin", "trading_platform")
    # Write-only password from the generated secret; never the state-stored `password`, and not RDS-managed
    # (RDS cannot create a read replica of an instance whose master password it manages).
    assert i["passwordWo"] and i["passwordWoVersion"] == 1
    assert "password" not in i and "manageMasterUserPassword" not in i


def test_exactly_one_replica_in_backup_pointing_at_the_primary_writer(evaluations):
    (writer,) = evaluations["primary"].of_type(INSTANCE)
    (replica,) = evaluations["backup"].of_type(INSTANCE)
    source = replica.inputs["replicateSourceDb"]
    assert source == evaluations["primary"].outputs["db_instance_arn"] == writer.state["arn"]
    assert replica.inputs["replicateSourceDb"].startswith("arn:aws:rds:us-east-1:")
    assert replica.inputs["kmsKeyId"] == stack_key_arn(evaluations["backup"])
    assert replica.inputs["kmsKeyId"].startswith("arn:aws:kms:us-west-2:")
    assert replica.inputs["instanceClass"] == writer.inputs["instanceClass"]  # same class unless set
    for inherited in ("username", "dbName", "passwordWo"):
        assert inherited not in replica.inputs
    assert evaluations["backup"].outputs["db_is_replica"] is True
    assert evaluations["primary"].outputs["db_is_replica"] is False


def test_database_is_encrypted_private_protected_and_observable(stack):
    (db,) = stack.of_type(INSTANCE)
    i = db.inputs
    ids = by_id(stack)
    assert i["engine"] == "postgres" and i["engineVersion"].startswith("16.")
    assert i["storageEncrypted"] is True and i["kmsKeyId"] == stack_key_arn(stack)
    assert i["storageType"] == "gp3" and i["maxAllocatedStorage"] > i["allocatedStorage"]
    assert i["backupRetentionPeriod"] >= 7
    assert i["deletionProtection"] is True
    assert i["copyTagsToSnapshot"] is True
    assert i["performanceInsightsEnabled"] is True and i["performanceInsightsKmsKeyId"] == stack_key_arn(stack)
    assert i["monitoringInterval"] == 60
    monitoring_role = next(r for r in stack.of_type("aws:iam/role:Role") if r.state["arn"] == i["monitoringRoleArn"])
    assert json.loads(monitoring_role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "monitoring.rds.amazonaws.com"}
    assert i["iamDatabaseAuthenticationEnabled"] is True
    assert i["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert i["publiclyAccessible"] is False
    subnet_group = stack.named("aws:rds/subnetGroup:SubnetGroup", "database")
    assert i["dbSubnetGroupName"] == subnet_group.state["name"]
    assert set(subnet_group.inputs["subnetIds"]) == isolated_subnet_ids(stack)
    assert [ids[g].name for g in i["vpcSecurityGroupIds"]] == ["security-groups-db"]
    assert db.name == "database" and i["identifier"] == "trading-platform-production"
    for kind in ("postgresql", "upgrade"):
        group = stack.named("aws:cloudwatch/logGroup:LogGroup", f"database-{kind}")
        assert group.inputs["name"] == f"/aws/rds/instance/trading-platform-production/{kind}"
        assert group.inputs["kmsKeyId"] == stack_key_arn(stack)


def test_parameter_group_scales_the_guide_tuning_to_the_instance(stack):
    group = stack.named("aws:rds/parameterGroup:ParameterGroup", "database")
    assert group.inputs["family"] == "postgres16"
    (db,) = stack.of_type(INSTANCE)
    assert db.inputs["parameterGroupName"] == group.state["name"]
    params = {p["name"]: (p["value"], p["applyMethod"]) for p in group.inputs["parameters"]}
    # api and worker: 10 tasks at most, 20 while a deployment rolls, 4 processes each with a pool of 5;
    # plus 20 reserved: 2 * 20 * 4 * 5 + 20.
    assert params == {
        "max_connections": ("820", "pending-reboot"),
        "shared_buffers": ("{DBInstanceClassMemory/32768}", "pending-reboot"),  # 1/4, in 8 kB pages
        "effective_cache_size": ("{DBInstanceClassMemory/8192}", "immediate"),  # all of it, in 8 kB pages
        "work_mem": ("{DBInstanceClassMemory/2149580}", "immediate"),  # the guide's 400 MB per GiB over 820
        "maintenance_work_mem": ("{DBInstanceClassMemory/16384}", "immediate"),  # 1/16, in kB
        "random_page_cost": ("1.1", "immediate"),
        "effective_io_concurrency": ("200", "immediate"),
        "checkpoint_completion_target": ("0.9", "immediate"),
        "wal_buffers": ("2048", "pending-reboot"),  # 16MB in 8 kB pages: PostgreSQL's ceiling for it
        "rds.force_ssl": ("1", "immediate"),
        "log_min_duration_statement": ("500", "immediate"),
    }
    # The services pass their pool size on, so what they open is what max_connections counts.
    for service in ("api", "worker"):
        assert _environment(stack, service)["DATABASE_POOL_SIZE"] == "5"
    worker = json.loads(stack.named("aws:ecs/taskDefinition:TaskDefinition", "worker").inputs[
        "containerDefinitions"])[-1]
    assert "--concurrency=4" in worker["command"]
    monitoring = stack.named("aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-rds-connections").inputs
    assert monitoring["threshold"] == 656  # 80 % of max_connections


def test_memory_settings_keep_the_guides_share_of_any_instance():
    gib = 1024 ** 3
    # On the guide's 1 GiB server with its 100 connections the formulas give the guide's values back.
    at_guide = {p.name: p.value for p in postgres_parameters(500, GUIDE_MAX_CONNECTIONS)}
    assert evaluate_formula(at_guide["shared_buffers"], gib) == int(rds_value("shared_buffers", "256MB"))
    assert evaluate_formula(at_guide["effective_cache_size"], gib) == int(rds_value("effective_cache_size", "1GB"))
    assert evaluate_formula(at_guide["work_mem"], gib) == 4096
    assert evaluate_formula(at_guide["maintenance_work_mem"], gib) == 65536
    # A 16 GiB class gets 16 times the memory; work_mem is shared among the connections.
    scaled = {p.name: p.value for p in postgres_parameters(500, 820)}
    assert evaluate_formula(scaled["shared_buffers"], 16 * gib) * 8 == 4 * 1024 ** 2  # 4 GiB in kB
    assert evaluate_formula(scaled["work_mem"], 16 * gib) * 820 <= 16 * 400 * 1024 * 1.001
    assert connection_budget([(20, 4), (20, 4), (1, 0), (20, 0)], 5) == 820


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("shared_buffers", "256MB", "32768"), ("effective_cache_size", "1GB", "131072"), ("work_mem", "4MB", "4096"),
    ("wal_buffers", "16MB", "2048"), ("maintenance_work_mem", "64MB", "65536"), ("random_page_cost", "1.1", "1.1"),
])
def test_rds_units(name, value, expected):
    assert rds_value(name, value) == expected


def test_rds_units_refuse_what_they_cannot_convert():
    with pytest.raises(ValueError):
        rds_value("shared_buffers", "lots")
    with pytest.raises(ValueError):
        rds_value("shared_buffers", "4kB")  # not a whole number of 8 kB pages


def test_a_replica_can_be_deleted_and_a_writer_leaves_a_final_snapshot(evaluations):
    # DeleteDBInstance refuses FinalDBSnapshotIdentifier for a read replica: with one set, the replica
    # could never be deleted or replaced.
    (writer,) = evaluations["primary"].of_type(INSTANCE)
    (replica,) = evaluations["backup"].of_type(INSTANCE)
    assert writer.inputs["skipFinalSnapshot"] is False
    # Named per instance (tests/test_database_apply.py).
    (generation,) = evaluations["primary"].of_type(RANDOM_ID)
    assert writer.inputs["finalSnapshotIdentifier"] == f"trading-platform-production-final-{generation.state['hex']}"
    assert replica.inputs["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in replica.inputs
    assert replica.inputs["deletionProtection"] is True


def test_backup_replicates_the_primary_automated_backups(evaluations):
    assert not evaluations["primary"].of_type(
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    (copy,) = evaluations["backup"].of_type(
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    assert copy.inputs["sourceDbInstanceArn"] == evaluations["primary"].outputs["db_instance_arn"]
    assert copy.inputs["kmsKeyId"] == stack_key_arn(evaluations["backup"])
    assert copy.inputs["retentionPeriod"] >= 7


def test_an_evacuation_promotes_the_replica_in_place(evaluations, project):
    """The backup's instance, once us-west-2 is active, is the same resource without its source: an update (the
    promotion AWS already made), never a replacement. tests/test_phases.py follows the whole round trip."""
    promoted = evaluate("backup", project(**phases.by_role(phases.switched_to("backup", {"primary": "us-east-1",
                                                                              "backup": "us-west-2"}))))
    before, after = to_json(evaluations["backup"]), to_json(promoted)
    (replica,) = [r for r in before["resources"] if r["type"] == INSTANCE]
    (writer,) = [r for r in after["resources"] if r["type"] == INSTANCE]
    # Same logical name and URN, same identifier: an update in place, not a replacement.
    assert (writer["urn"], writer["inputs"]["identifier"]) == (replica["urn"], replica["inputs"]["identifier"])
    assert "replicateSourceDb" not in writer["inputs"]
    # The promoted writer leaves a final snapshot again (only the provider reads these, at deletion).
    deletion = ("skipFinalSnapshot", "finalSnapshotIdentifier")
    (generation,) = promoted.of_type(RANDOM_ID)
    assert (writer["inputs"]["skipFinalSnapshot"], writer["inputs"]["finalSnapshotIdentifier"]) == (
        False, f"trading-platform-production-final-{generation.state['hex']}")
    # And it runs Multi-AZ, the active shape (RDS converts it in place): Single-AZ was the standby's replica.
    assert (replica["inputs"]["multiAz"], writer["inputs"]["multiAz"]) == (False, True)
    # A writer's changes wait for the maintenance window (database.applyImmediately), a replica's do not.
    assert (replica["inputs"]["applyImmediately"], writer["inputs"]["applyImmediately"]) == (True, False)
    shape = ("multiAz", "applyImmediately", *deletion)
    assert ({k: v for k, v in replica["inputs"].items() if k not in ("replicateSourceDb", *shape)}
            == {k: v for k, v in writer["inputs"].items() if k not in shape})
    assert after["outputs"]["db_is_replica"] is False and after["outputs"]["active_region"] == "us-west-2"


# --- cache


def test_cache_is_encrypted_authenticated_and_private(stack):
    (group,) = stack.of_type(GROUP)
    i = group.inputs
    ids = by_id(stack)
    assert i["engine"] in ("valkey", "redis")
    assert i["atRestEncryptionEnabled"] is True and i["kmsKeyId"] == stack_key_arn(stack)
    assert i["transitEncryptionEnabled"] is True and i["transitEncryptionMode"] == "required"
    # The region's own token (version 1, first step): sent again when the version changes.
    assert i["authTokenWo"] == token_value(stack) and "authToken" not in i
    assert (i["authTokenWoVersion"], i["authTokenUpdateStrategy"]) == (2, "ROTATE")
    assert i["snapshotRetentionLimit"] >= 1
    assert [ids[g].name for g in i["securityGroupIds"]] == ["security-groups-cache"]
    subnets = stack.named("aws:elasticache/subnetGroup:SubnetGroup", "cache")
    assert set(subnets.inputs["subnetIds"]) == isolated_subnet_ids(stack)
    params = stack.named("aws:elasticache/parameterGroup:ParameterGroup", "cache")
    assert i["parameterGroupName"] == params.state["name"]
    # The cache is the Celery broker too: never evict queued tasks.
    assert params.inputs["parameters"] == [{"name": "maxmemory-policy", "value": "noeviction"}]


def test_primary_cache_fails_over_and_the_standby_backup_cache_is_smaller(evaluations):
    (primary,) = evaluations["primary"].of_type(GROUP)
    (backup,) = evaluations["backup"].of_type(GROUP)
    assert primary.inputs["numCacheClusters"] >= 2
    assert primary.inputs["automaticFailoverEnabled"] is True and primary.inputs["multiAzEnabled"] is True
    assert backup.inputs["numCacheClusters"] == 1
    assert (primary.inputs["nodeType"], backup.inputs["nodeType"]) == ("cache.r7g.large", "cache.t4g.medium")


# --- secrets


def test_shared_secrets_live_in_primary_with_replicas_on_a_us_west_2_key(evaluations):
    primary = evaluations["primary"]
    replica_key = primary.named("aws:kms/key:Key", "replica-key")
    assert replica_key.inputs["region"] == "us-west-2" and replica_key.inputs["enableKeyRotation"] is True
    shared = {r.inputs["name"]: r for r in primary.of_type(SECRET) if r.name.startswith("shared-secrets")}
    # No googleClientId in the stack files: no google-client-id secret (see the task-definition tests).
    assert set(shared) == {f"trading-platform/production/{k}" for k in ("jwt-secret", "database-credentials")}
    for secret in shared.values():
        assert secret.inputs["kmsKeyId"] == stack_key_arn(primary)
        assert secret.inputs["replicas"] == [{"region": "us-west-2", "kmsKeyId": replica_key.state["arn"]}]
    assert not [r for r in evaluations["backup"].of_type(SECRET) if r.name.startswith("shared-secrets")]


def test_each_region_has_its_connection_secret(stack):
    secret = stack.named(SECRET, "connection-secret")
    assert secret.inputs["name"] == f"trading-platform/production/{stack.region}/connection"
    version = stack.named("aws:secretsmanager/secretVersion:SecretVersion", "connection-secret")
    value = json.loads(version.inputs["secretString"])
    assert value["db_host"] == stack.of_type(INSTANCE)[0].state["address"]
    assert value["redis_host"] == stack.outputs["redis_primary_endpoint"]
    # The region's Redis token is its own and never handed over: not among them (docs/contracts.md).
    assert set(stack.outputs["secret_arns"]) == {"jwt-secret", "database-credentials", "connection"}
    assert all(f":secretsmanager:{stack.region}:" in arn for arn in stack.outputs["secret_arns"].values())


def _walk(value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def test_no_secret_value_outside_its_secret_version(project):
    project_dir = project(primary={f"{NS}:jwtSecret": {"secure": "v1:AAAjwt"},
                                   f"{NS}:googleClientId": {"secure": "v1:AAAgoogle"}})
    cache: dict = {}
    evaluate("backup", project_dir, cache)
    primary, backup = cache["primary"], cache["backup"]
    jwt, google = (SECRET_PLACEHOLDER.format(key=f"{NS}:{k}") for k in ("jwtSecret", "googleClientId"))
    generated = {r.name: r.state["result"] for r in primary.of_type("random:index/randomPassword:RandomPassword")}
    assert set(generated) == {"shared-secrets-db-password", "cache-auth-token"}  # jwt from config
    backup_token = token_value(backup)  # its own
    secrets = {jwt, google, backup_token, *generated.values()}
    assert len(secrets) == 5

    allowed = {("aws:secretsmanager/secretVersion:SecretVersion", ".secretString"),
               (INSTANCE, ".passwordWo"), (GROUP, ".authTokenWo")}
    leaks = []
    for stack in (primary, backup):
        for resource in stack.resources:
            if resource.type.startswith("random:"):
                continue  # the generator itself
            for path, value in _walk(resource.inputs):
                if isinstance(value, str) and any(s in value for s in secrets) and (resource.type, path) not in allowed:
                    leaks.append((stack.stack, resource.type, resource.name, path))
        for path, value in _walk(stack.outputs):
            if isinstance(value, str) and any(s in value for s in secrets):
                leaks.append((stack.stack, "output", path))
    assert leaks == []
    versions = {r.name: r.inputs["secretString"] for r in primary.of_type(
        "aws:secretsmanager/secretVersion:SecretVersion")}
    assert versions["shared-secrets-jwt-secret"] == jwt
    assert versions["shared-secrets-google-client-id"] == google
    # What the rotation function needs: the engine, the writer's address and the database.
    assert json.loads(versions["database-password"]) == {
        "engine": "postgres", "host": primary.of_type(INSTANCE)[0].state["address"], "port": 5432,
        "dbname": "trading_platform", "username": "trading_admin", "password": generated["shared-secrets-db-password"]}
    assert primary.of_type(INSTANCE)[0].inputs["passwordWo"] == generated["shared-secrets-db-password"]


# --- S3


def test_backups_bucket_is_versioned_encrypted_private_and_tls_only(stack):
    bucket = stack.named("aws:s3/bucket:Bucket", "backups")
    name = bucket.state["bucket"]
    assert name == stack.outputs["backup_bucket_name"]
    assert name == f"trading-platform-production-backups-{stack.region}-123456789012"

    def on_bucket(typ):
        resource = stack.named(typ, "backups")
        assert resource.inputs["bucket"] == name
        return resource.inputs

    assert on_bucket("aws:s3/bucketVersioning:BucketVersioning")["versioningConfiguration"]["status"] == "Enabled"
    sse = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    (rule,) = on_bucket(sse)["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms",
                                                          "kmsMasterKeyId": stack_key_arn(stack)}
    assert rule["bucketKeyEnabled"] is True
    block = on_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                           "restrictPublicBuckets"))
    assert on_bucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls")["rule"] == {
        "objectOwnership": "BucketOwnerEnforced"}
    (deny,) = json.loads(on_bucket("aws:s3/bucketPolicy:BucketPolicy")["policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {bucket.state["arn"], bucket.state["arn"] + "/*"}
    logging = on_bucket("aws:s3/bucketLogging:BucketLogging")
    assert logging["targetBucket"] == stack.named("aws:s3/bucket:Bucket", "access-logs").state["bucket"]


def test_backups_lifecycle_mirrors_the_guide(stack):
    rules = {r["id"]: r for r in stack.named(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "backups").inputs["rules"]}
    assert rules["daily"]["filter"] == {"prefix": "daily/"} and rules["daily"]["expiration"] == {"days": 35}
    assert rules["weekly"]["transitions"] == [{"days": 30, "storageClass": "STANDARD_IA"}]
    assert rules["weekly"]["expiration"] == {"days": 180}
    assert [t["storageClass"] for t in rules["monthly"]["transitions"]] == ["GLACIER", "DEEP_ARCHIVE"]
    assert rules["monthly"]["expiration"] == {"days": 2557}  # seven years
    housekeeping = rules["housekeeping"]
    assert housekeeping["noncurrentVersionExpiration"]["noncurrentDays"] == 30
    assert housekeeping["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7
    assert all(r["status"] == "Enabled" for r in rules.values())


def test_access_log_bucket_takes_server_access_logs(stack):
    logs = stack.named("aws:s3/bucket:Bucket", "access-logs")
    (rule,) = stack.named("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                          "access-logs").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"  # S3 logging can't write SSE-KMS
    statements = json.loads(stack.named("aws:s3/bucketPolicy:BucketPolicy", "access-logs").inputs["policy"])[
        "Statement"]
    delivery = next(s for s in statements if s["Effect"] == "Allow")
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Resource"] == logs.state["arn"] + "/backups/*"
    assert delivery["Condition"]["ArnLike"]["aws:SourceArn"] == stack.outputs["backup_bucket_arn"]


def test_replication_primary_to_backup_is_owned_by_the_primary(evaluations, project):
    # The rule lives on the primary's bucket: owned by the primary, the backup stack has nothing in us-east-1.
    primary, backup = evaluations["primary"], evaluations["backup"]
    assert not backup.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    (config,) = primary.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert "region" not in config.inputs  # the primary's own region
    assert config.inputs["bucket"] == primary.outputs["backup_bucket_name"]
    assert primary.named("aws:s3/bucketVersioning:BucketVersioning", "backups").urn in config.dependencies
    (rule,) = config.inputs["rules"]
    destination = rule["destination"]
    # Derived, not read from the backup stack: they must be the names the backup stack gives.
    assert destination["bucket"] == backup.outputs["backup_bucket_arn"]
    backup_alias = backup.named("aws:kms/alias:Alias", "stack-key").inputs["name"]
    assert destination["encryptionConfiguration"]["replicaKmsKeyId"] == (
        f"arn:aws:kms:us-west-2:123456789012:{backup_alias}")
    assert destination["replicationTime"] == {"status": "Enabled", "time": {"minutes": 15}}
    assert destination["metrics"] == {"status": "Enabled", "eventThreshold": {"minutes": 15}}
    assert rule["deleteMarkerReplication"] == {"status": "Enabled"}
    role = next(r for r in primary.of_type("aws:iam/role:Role") if r.state["arn"] == config.inputs["role"])
    statements = {s["Sid"]: s for s in json.loads(
        primary.named("aws:iam/rolePolicy:RolePolicy", role.name).inputs["policy"])["Statement"]}
    assert statements["WriteReplicas"]["Resource"] == backup.outputs["backup_bucket_arn"] + "/*"
    assert statements["DecryptSourceObjects"]["Resource"] == primary.outputs["kms_key_arn"]
    # IAM authorizes keys by ARN: the backup's key is matched by its alias.
    encrypt = statements["EncryptReplicas"]
    assert encrypt["Resource"] == "arn:aws:kms:us-west-2:123456789012:key/*"
    assert encrypt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-west-2.amazonaws.com"},
                                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": backup_alias}}
    # S3 refuses a rule whose destination bucket does not exist: a first deployment turns it on later.
    first = evaluate("primary", project(primary={f"{NS}:backups.replicateToPeer": False}))
    assert not first.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")


def test_the_backup_stack_lives_in_its_own_region(evaluations):
    # Operable while us-east-1 is down: nothing of the backup stack is in another region (Route53 is global).
    backup = evaluations["backup"]
    (provider,) = backup.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-west-2"
    elsewhere = [(r.type, r.name) for r in backup.resources if r.inputs.get("region") not in (None, "us-west-2")]
    assert elsewhere == []
    assert not [r for r in backup.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
                if r.inputs.get("namespace") == "AWS/Route53"]


# --- AWS Backup


def test_backup_vault_and_plan(stack):
    vault = stack.named("aws:backup/vault:Vault", "backup-plan")
    assert vault.inputs["kmsKeyArn"] == stack_key_arn(stack)
    assert stack.outputs["backup_vault_name"] == vault.inputs["name"] == "trading-platform-production"
    rules = {r["ruleName"]: r for r in stack.named("aws:backup/plan:Plan", "backup-plan").inputs["rules"]}
    assert rules["daily"]["lifecycle"] == {"deleteAfter": 35}
    assert rules["weekly"]["lifecycle"] == {"deleteAfter": 180}
    assert rules["monthly"]["lifecycle"] == {"deleteAfter": 2557, "coldStorageAfter": 90}
    copy_target = "arn:aws:backup:us-west-2:123456789012:backup-vault:trading-platform-production"
    for rule in rules.values():
        if stack.stack == "primary":
            assert [c["destinationVaultArn"] for c in rule["copyActions"]] == [copy_target]
            assert rule["copyActions"][0]["lifecycle"] == rule["lifecycle"]
        else:
            assert "copyActions" not in rule
    (selection,) = stack.of_type("aws:backup/selection:Selection")
    assert selection.inputs["selectionTags"] == [
        {"type": "STRINGEQUALS", "key": "BackupPlan", "value": "trading-platform-production"}]
    # The database and the backups bucket carry the tag the selection picks.
    assert stack.of_type(INSTANCE)[0].inputs["tags"]["BackupPlan"] == "trading-platform-production"
    assert stack.named("aws:s3/bucket:Bucket", "backups").inputs["tags"]["BackupPlan"] == "trading-platform-production"


# --- outputs and settings


def test_data_outputs_of_the_contract(stack):
    for key in ("db_instance_identifier", "db_instance_arn", "db_endpoint", "db_is_replica",
                "redis_primary_endpoint", "backup_bucket_name", "backup_bucket_arn", "backup_vault_name",
                "kms_key_arn"):
        assert stack.outputs.get(key) not in (None, ""), key
    assert stack.outputs["db_instance_arn"].startswith(f"arn:aws:rds:{stack.region}:")


def test_the_longest_environment_still_fits_every_aws_name_limit(project):
    cache: dict = {}
    evaluate("backup", project(primary={f"{NS}:environment": "abcdefghijk"},
                               backup={f"{NS}:environment": "abcdefghijk",
                                       f"{NS}:backups.vaultName": "trading-platform-abcdefghijk"}), cache)
    for stack in cache.values():
        buckets = [r.state["bucket"] for r in stack.of_type("aws:s3/bucket:Bucket")]
        assert buckets and max(map(len, buckets)) <= 63, buckets
        assert len(stack.of_type(INSTANCE)[0].inputs["identifier"]) <= 63
        assert len(stack.of_type(GROUP)[0].inputs["replicationGroupId"]) <= 40


def test_each_region_owns_its_token_in_a_secret_of_its_region(evaluations):
    """A region's cache and tasks use its own token, which no other stack's `up` changes."""
    tokens = set()
    for stack in evaluations.values():
        secret = stack.named(SECRET, "cache-auth-token")
        assert secret.inputs["name"] == f"trading-platform/production/{stack.region}/redis-auth-token"
        assert secret.inputs["kmsKeyId"] == stack_key_arn(stack) and not secret.inputs.get("replicas")
        version = stack.named(VERSION, "cache-auth-token")
        assert version.inputs["secretString"] == token_value(stack) == stack.named(GROUP, "cache").inputs["authTokenWo"]
        for service in ("api", "worker", "beat"):
            assert _secrets(stack, service)["REDIS_AUTH_TOKEN"] == secret.state["arn"], (stack.stack, service)
        tokens.add(token_value(stack))
    assert len(tokens) == 2
    # Not the primary's to hand over: the backup's tasks restart on their own token's versions only.
    assert "redis-auth-token" not in evaluations["primary"].outputs["secret_versions"]


def test_new_tasks_start_once_the_cache_accepts_their_token(stack):
    """The provider returns from the group's update once it is available again: the services that read the token
    update (start new tasks) after it. web reads no token and waits for nothing of the cache."""
    group = stack.named(GROUP, "cache").urn
    for service in ("api", "worker", "beat"):
        assert group in stack.named("aws:ecs/service:Service", service).dependencies, service
    assert group not in stack.named("aws:ecs/service:Service", "web").dependencies


# Each step of a rotation as written in both files -> what each cache is sent: (auth_token_wo_version, strategy).
ROTATION_STEPS = [
    ({}, (2, "ROTATE")),  # as shipped: version 1, its token beside whatever the cache had
    ({"cache.authTokenSoleVersion": 1}, (3, "SET")),
    ({"cache.authTokenVersion": 2, "cache.authTokenSoleVersion": 1}, (4, "ROTATE")),
    ({"cache.authTokenVersion": 2, "cache.authTokenSoleVersion": 2}, (5, "SET")),
    ({"cache.authTokenVersion": 3, "cache.authTokenSoleVersion": 2}, (6, "ROTATE")),
]


def test_a_rotation_is_rotate_then_set_in_both_stacks(project):
    """Raising the version generates new tokens sent with ROTATE (the old ones still work) and restarts the tasks that
    read them; naming it sole sends the same tokens with SET (the old ones stop working) and restarts nothing."""
    previous = None
    for edits, sent in ROTATION_STEPS:
        cache: dict = {}
        config = {f"{NS}:{key}": value for key, value in edits.items()}
        evaluate("backup", project(primary=config, backup=config), cache)
        version = edits.get("cache.authTokenVersion", 1)
        for name, stack in cache.items():
            group = stack.named(GROUP, "cache").inputs
            assert (group["authTokenWoVersion"], group["authTokenUpdateStrategy"]) == sent, (name, edits)
            token = stack.named("random:index/randomPassword:RandomPassword", "cache-auth-token")
            assert token.inputs["keepers"] == {"version": str(version)}
            assert group["authTokenWo"] == token.state["result"]
            if previous is None:
                continue
            before, now = previous[0][name], stack
            changed = previous[1] != version
            assert (token_value(before) != token_value(now)) == changed, (name, edits)
            for service in ("api", "web", "worker", "beat"):
                old, new = (_environment(s, service).get("ROTATION_GENERATIONS") for s in (before, now))
                if service == "web":  # reads no secret: never restarted
                    assert old is new is None
                else:  # tasks read secrets only at start: a changed definition starts new ones
                    assert (_generation(old, "redis-auth-token") != _generation(new, "redis-auth-token")) == changed
        previous = (cache, version)


def _generation(marker, secret):
    return dict(part.split(":", 1) for part in marker.split(","))[secret]


def _secrets(stack, service):
    definitions = json.loads(stack.named("aws:ecs/taskDefinition:TaskDefinition", service).inputs[
        "containerDefinitions"])
    (app,) = [c for c in definitions if c["name"] == service]
    return {s["name"]: s["valueFrom"] for s in app["secrets"]}


def _environment(stack, service):
    definitions = json.loads(stack.named("aws:ecs/taskDefinition:TaskDefinition", service).inputs[
        "containerDefinitions"])
    (app,) = [c for c in definitions if c["name"] == service]
    return {e["name"]: e["value"] for e in app["environment"]}


# --- the master password's rotation


def test_secrets_manager_rotates_the_master_password_where_the_secret_lives(evaluations, project):
    primary, backup = evaluations["primary"], evaluations["backup"]
    secret = primary.named(SECRET, "shared-secrets-database-credentials")
    (rotation,) = primary.of_type("aws:secretsmanager/secretRotation:SecretRotation")
    assert rotation.inputs["secretId"] == secret.id
    assert rotation.inputs["rotationRules"] == {"automaticallyAfterDays": 30}
    # Services started by this deployment read the first password: the first rotation waits for the schedule.
    assert rotation.inputs["rotateImmediately"] is False
    # Rotation is configured on the primary secret only; its replica receives each new value.
    assert not backup.of_type("aws:secretsmanager/secretRotation:SecretRotation")
    assert secret.inputs["replicas"][0]["region"] == "us-west-2"
    app = primary.named("aws:serverlessrepository/cloudFormationStack:CloudFormationStack", "database-password")
    a = app.inputs
    assert a["applicationId"].endswith(":applications/SecretsManagerRDSPostgreSQLRotationSingleUser")
    assert a["semanticVersion"] == "1.1.671"  # pinned: a new version is a reviewed change
    assert set(a["capabilities"]) == {"CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"}
    assert len(a["parameters"]["functionName"]) <= 64
    assert rotation.inputs["rotationLambdaArn"] == app.state["outputs"]["RotationLambdaARN"]
    p = a["parameters"]
    assert p["endpoint"] == "https://secretsmanager.us-east-1.amazonaws.com"
    private = {r.id for r in primary.of_type("aws:ec2/subnet:Subnet") if r.inputs["tags"]["Tier"] == "private"}
    assert set(p["vpcSubnetIds"].split(",")) == private
    assert by_id(primary)[p["vpcSecurityGroupIds"]].name == "security-groups-rotation"
    assert p["kmsKeyArn"] == stack_key_arn(primary)
    assert set(p["excludeCharacters"]) == set('/@"\' \\')  # what RDS refuses in a master password
    # Written once: a later `pulumi up` must not put the first password back over a rotated one.
    version = primary.named("aws:secretsmanager/secretVersion:SecretVersion", "database-password")
    assert version.inputs["secretId"] == secret.id and version.ignore_changes == ("secretString",)
    # Secrets Manager tests the function as soon as rotation is configured: the value and database must exist.
    assert version.urn in rotation.dependencies
    # The new versions the function writes are re-encrypted for the us-west-2 replica with the function's own
    # identity, which this program cannot name: the replica key lets Secrets Manager there encrypt for this
    # account (reading a replica still takes kms:Decrypt from IAM).
    replica_key = primary.named("aws:kms/key:Key", "replica-key")
    statements = {s["Sid"]: s for s in json.loads(replica_key.inputs["policy"])["Statement"]}
    replication = statements["SecretsManagerReplicatesNewVersions"]
    assert replication["Principal"] == {"AWS": "*"} and replication["Action"] == ["kms:Encrypt", "kms:GenerateDataKey*"]
    assert replication["Condition"] == {"StringEquals": {"kms:CallerAccount": "123456789012",
                                                         "kms:ViaService": "secretsmanager.us-west-2.amazonaws.com"}}
    # Pulumi no longer drives the password after creation.
    (writer,) = primary.of_type(INSTANCE)
    assert writer.inputs["passwordWoVersion"] == 1
    assert (evaluate("primary", project(primary={f"{NS}:database.passwordRotationDays": 7}))
            .of_type("aws:secretsmanager/secretRotation:SecretRotation")[0].inputs["rotationRules"]
            == {"automaticallyAfterDays": 7})
    # After a failover the primary is the standby: its rotation would replicate a password the promoted
    # database never got. The first value stays (deleting a version would be worse).
    cache: dict = {}
    evaluate("backup", project(**phases.by_role(phases.switched_to("backup", {"primary": "us-east-1",
                                                                     "backup": "us-west-2"}))), cache)
    assert not cache["primary"].of_type("aws:secretsmanager/secretRotation:SecretRotation")
    assert cache["primary"].named("aws:secretsmanager/secretVersion:SecretVersion", "database-password")


def test_a_new_password_restarts_the_services_that_read_it_in_both_regions(evaluations):
    primary, backup = evaluations["primary"], evaluations["backup"]
    secret_arn = primary.named(SECRET, "shared-secrets-database-credentials").state["arn"]
    for stack in (primary, backup):
        rule = stack.named("aws:cloudwatch/eventRule:EventRule", "password-restarts")
        # Secrets Manager's own event (no trail needed): AWSCURRENT moved to a new version of the primary
        # secret, as the primary region names it (the backup receives the primary's events).
        assert json.loads(rule.inputs["eventPattern"]) == {
            "source": ["aws.secretsmanager"], "detail-type": ["Secret Label Updated"], "resources": [secret_arn],
            "detail": {"labelUpdated": ["AWSCURRENT"]}}
        machine = stack.named("aws:sfn/stateMachine:StateMachine", "password-restarts")
        definition = json.loads(machine.inputs["definition"])
        restart = definition["States"]["Restart"]
        tasks = [branch["States"][branch["StartAt"]] for branch in restart["Branches"]]
        # api and worker read the password; web and beat do not.
        assert [t["Parameters"] for t in tasks] == [
            {"Cluster": "trading-platform-production", "Service": name, "ForceNewDeployment": True}
            for name in ("api", "worker")]
        assert {t["Resource"] for t in tasks} == {"arn:aws:states:::aws-sdk:ecs:updateService"}
        # The replica secret receives the value a little later.
        if stack.stack == "backup":
            assert definition["StartAt"] == "WaitForReplica"
            assert definition["States"]["WaitForReplica"]["Seconds"] == 120
        else:
            assert definition["StartAt"] == "Restart"
        statements = json.loads(stack.named("aws:iam/rolePolicy:RolePolicy", "password-restarts-machine")
                                .inputs["policy"])["Statement"]
        assert statements == [{"Sid": "RestartServices", "Effect": "Allow", "Action": "ecs:UpdateService",
                               "Resource": [f"arn:aws:ecs:{stack.region}:123456789012:service/"
                                            f"trading-platform-production/{n}" for n in ("api", "worker")]}]
        target = stack.named("aws:cloudwatch/eventTarget:EventTarget", "password-restarts-restart")
        assert target.inputs["arn"] == machine.state["arn"]
    # A state machine cannot call ECS in another region: the primary forwards the event to the backup's bus.
    forward = primary.named("aws:cloudwatch/eventTarget:EventTarget", "password-restarts-forward")
    assert forward.inputs["arn"] == "arn:aws:events:us-west-2:123456789012:event-bus/default"
    events = {s["Sid"]: s for s in json.loads(primary.named(
        "aws:iam/rolePolicy:RolePolicy", "password-restarts-events").inputs["policy"])["Statement"]}
    assert events["ForwardToPeerRegion"]["Resource"] == forward.inputs["arn"]
    with pytest.raises(KeyError):
        backup.named("aws:cloudwatch/eventTarget:EventTarget", "password-restarts-forward")
