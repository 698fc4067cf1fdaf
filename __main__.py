"""One regional stack of the trading platform: settings -> components -> exports."""

from functools import partial
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.backup_plan import BackupPlan, BackupPlanArgs
from components.cache import REDIS_PORT, Cache, CacheArgs
from components.database import Database, DatabaseArgs, WriterCredentials
from components.endpoints import Endpoints, EndpointsArgs
from components.kms import StackKey, StackKeyArgs
from components.network import Network, NetworkArgs
from components.replication import BucketReplication, BucketReplicationArgs
from components.secrets import (
    SHARED_SECRETS,
    ConnectionSecret,
    ConnectionSecretArgs,
    SharedSecrets,
    SharedSecretsArgs,
    replica_arn,
)
from components.security_groups import POSTGRES_PORT, SecurityGroups, SecurityGroupsArgs
from components.storage import BackupBucket, BackupBucketArgs
from regions.catalog import SERVICE_PORTS
from regions.settings import check_peer_region, from_pulumi

# The engine runs the program in the project directory, beside the stack files.
settings = from_pulumi(Path.cwd())
region = settings.region
prefix = settings.name_prefix
is_primary = settings.role == "primary"

# Every AWS resource goes through this provider, so every one carries the cost tags.
provider = aws.Provider("aws", region=region.name, default_tags=aws.ProviderDefaultTagsArgs(tags=settings.cost_tags))
aws_opts = pulumi.ResourceOptions(providers={"aws": provider})
invoke_opts = pulumi.InvokeOutputOptions(provider=provider)
account_id = aws.get_caller_identity_output(opts=invoke_opts).account_id
backup_tag = ("BackupPlan", settings.resource_prefix)

key = StackKey("stack-key", StackKeyArgs(alias=prefix, account_id=account_id, region=region.name,
                                         partition=region.partition), opts=aws_opts)

# --- network
network = Network("network", NetworkArgs(
    cidr=settings.network.cidr,
    availability_zones=settings.availability_zones,
    nat_per_az=settings.network.nat_gateways == "perAz",
    flow_log_group_name=f"/{prefix}/vpc-flow-logs",
    flow_log_retention_days=settings.network.flow_log_retention_days,
    kms_key_arn=key.arn,
    account_id=account_id,
), opts=aws_opts)
security_groups = SecurityGroups("security-groups", SecurityGroupsArgs(
    vpc_id=network.vpc.id, app_ports=SERVICE_PORTS), opts=aws_opts)
Endpoints("endpoints", EndpointsArgs(
    region=region.name,
    vpc_id=network.vpc.id,
    subnet_ids=network.private_subnet_ids,
    route_table_ids=[*network.private_route_table_ids, network.isolated_route_table_id],
    security_group_id=security_groups.endpoints.id,
), opts=aws_opts)

# --- secrets: primary creates the shared ones with replicas in the peer region; backup reads the replicas
if is_primary:
    # Primary deploys first, so the replicas cannot use the backup stack's key: they get their own.
    replica_key = StackKey("secrets-replica-key", StackKeyArgs(
        alias=f"{prefix}/secrets-replica", account_id=account_id, region=region.peer, partition=region.partition,
        for_logs_and_alarms=False), opts=aws_opts)
    shared = SharedSecrets("shared-secrets", SharedSecretsArgs(
        prefix=prefix, kms_key_arn=key.arn, replica_region=region.peer, replica_kms_key_arn=replica_key.arn,
        jwt_secret=settings.secrets.jwt_secret, google_client_id=settings.secrets.google_client_id,
        db_username=settings.database.username, db_password_version=settings.database.password_version,
        redis_token_version=settings.cache.auth_token_version,
    ), opts=aws_opts)
    shared_secret_arns = shared.arns
    redis_auth_token = shared.redis_auth_token
    credentials = WriterCredentials(username=settings.database.username, db_name=settings.database.name,
                                    password=shared.db_password, password_version=settings.database.password_version)
    primary_db_arn = None
    # The backup stack's services decrypt the replicas with it.
    pulumi.export("secrets_replica_key_arn", replica_key.arn)
else:
    primary = pulumi.StackReference("primary", stack_name=settings.peer_stack)
    pulumi.export("peer_region", primary.get_output("region").apply(partial(check_peer_region, settings)))
    shared_secret_arns = primary.require_output("secret_arns").apply(
        lambda arns: {name: replica_arn(arns[name], region.name) for name in SHARED_SECRETS})
    redis_auth_token = pulumi.Output.secret(aws.secretsmanager.get_secret_version_output(
        secret_id=f"{prefix}/redis-auth-token", opts=invoke_opts).secret_string)
    credentials = None
    primary_db_arn = primary.require_output("db_instance_arn")

# --- data
database = Database("database", DatabaseArgs(
    identifier=settings.resource_prefix,
    settings=settings.database,
    subnet_ids=network.isolated_subnet_ids,
    security_group_id=security_groups.db.id,
    kms_key_arn=key.arn,
    tags=dict([backup_tag]),
    credentials=credentials,
    # Promotion (after a failover) removes only this: the same instance becomes a standalone writer.
    replicate_source_db=None if is_primary or settings.database.promoted else primary_db_arn,
    automated_backups_source_arn=primary_db_arn,
), opts=aws_opts)
cache = Cache("cache", CacheArgs(
    identifier=settings.resource_prefix,
    settings=settings.cache,
    subnet_ids=network.isolated_subnet_ids,
    security_group_id=security_groups.cache.id,
    kms_key_arn=key.arn,
    auth_token=redis_auth_token,
), opts=aws_opts)
connection = ConnectionSecret("connection-secret", ConnectionSecretArgs(
    secret_name=f"{prefix}/{region.name}/connection",
    kms_key_arn=key.arn,
    db_host=database.instance.address,
    db_port=POSTGRES_PORT,
    db_name=settings.database.name,
    redis_host=cache.group.primary_endpoint_address,
    redis_port=REDIS_PORT,
), opts=aws_opts)

# --- backups
backups = BackupBucket("backups", BackupBucketArgs(
    bucket_name=pulumi.Output.concat(settings.resource_prefix, "-backups-", region.name, "-", account_id),
    log_bucket_name=pulumi.Output.concat(settings.resource_prefix, "-s3-logs-", region.name, "-", account_id),
    kms_key_arn=key.arn,
    account_id=account_id,
    tags=dict([backup_tag]),
), opts=aws_opts)
if not is_primary:
    BucketReplication("backups-replication", BucketReplicationArgs(
        source_region=region.peer,
        source_bucket_name=primary.require_output("backup_bucket_name"),
        source_bucket_arn=primary.require_output("backup_bucket_arn"),
        source_kms_key_arn=primary.require_output("kms_key_arn"),
        destination_region=region.name,
        destination_bucket_arn=backups.bucket.arn,
        destination_kms_key_arn=key.arn,
    ), opts=pulumi.ResourceOptions(providers={"aws": provider}, depends_on=[backups.versioning]))
# The peer vault's ARN is derivable, so the primary needs no reference to the backup stack.
peer_vault_arn = pulumi.Output.concat("arn:", region.partition, ":backup:", region.peer, ":", account_id,
                                      ":backup-vault:", settings.backups.peer_vault_name)
backup_plan = BackupPlan("backup-plan", BackupPlanArgs(
    settings=settings.backups,
    kms_key_arn=key.arn,
    selection_tag=backup_tag,
    copy_to_vault_arn=peer_vault_arn if is_primary else None,
), opts=aws_opts)

pulumi.export("region", region.name)
pulumi.export("role", settings.role)
pulumi.export("app_domain", settings.domain.app_domain)
pulumi.export("kms_key_arn", key.arn)
pulumi.export("vpc_id", network.vpc.id)
pulumi.export("db_instance_identifier", database.instance.identifier)
pulumi.export("db_instance_arn", database.instance.arn)
pulumi.export("db_endpoint", database.instance.endpoint)
pulumi.export("db_is_replica", not is_primary and not settings.database.promoted)
pulumi.export("redis_primary_endpoint", cache.group.primary_endpoint_address)
pulumi.export("backup_bucket_name", backups.bucket.bucket)
pulumi.export("backup_bucket_arn", backups.bucket.arn)
pulumi.export("backup_vault_name", backup_plan.vault.name)
pulumi.export("secret_arns", pulumi.Output.all(shared_secret_arns, connection.arn).apply(
    lambda pair: {**pair[0], "connection": pair[1]}))
