"""One regional stack of the trading platform: settings -> components -> exports.

What the active region decides (writer or replica, active or standby capacities, rotation) is named in
regions/roles.py; what one stack of the pair creates and the other reads (shared secrets, zone, images), in
components/pair.py. The remaining `is_primary` choices are the stack's identity: the primary owns the
switch, the backups' replication and the validation record; the backup the drill role.
"""

from dataclasses import asdict
from functools import partial
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.adopted_network import AdoptedNetwork, AdoptedNetworkArgs
from components.backup_plan import BackupPlan, BackupPlanArgs
from components.cache import REDIS_PORT, Cache, CacheArgs
from components.cluster import Cluster, ClusterArgs
from components.cost import Cost, CostArgs
from components.database import Database, DatabaseArgs
from components.dns import (
    SWITCH_NAMESPACE,
    Failover,
    FailoverArgs,
    FailoverSwitch,
    FailoverSwitchArgs,
)
from components.drill_role import DrillRole, DrillRoleArgs, RegionResources
from components.endpoints import Endpoints, EndpointsArgs
from components.kms import StackKey, StackKeyArgs
from components.load_balancer import LoadBalancer, LoadBalancerArgs, Target
from components.monitoring import Monitoring, MonitoringArgs
from components.network import Network, NetworkArgs
from components.pair import cache_auth_token, joined_global_datastore, pair, shared_secrets, zone_id
from components.pair import images as pair_images
from components.probe import ReplicationProbe, ReplicationProbeArgs
from components.probe import dashboard_widgets as probe_widgets
from components.replication import BucketReplication, BucketReplicationArgs
from components.rotation import (
    FirstValue,
    PasswordRotation,
    PasswordRotationArgs,
    RestartOnNewSecret,
    RestartOnNewSecretArgs,
)
from components.secrets import (
    ConnectionSecret,
    ConnectionSecretArgs,
    shared_only,
)
from components.security_groups import POSTGRES_PORT, SecurityGroups, SecurityGroupsArgs
from components.service import Service, ServiceArgs
from components.storage import ALB_LOG_PREFIX, BackupBucket, BackupBucketArgs, LogBucket, LogBucketArgs
from regions.catalog import SERVICE_PORTS, SERVICES
from regions.roles import roles, writer_arn
from regions.settings import check_zone_ids, from_pulumi
from regions.workloads import PROBE_IMAGE, WORKLOADS

# The engine runs the program in the project directory, beside the stack files.
settings = from_pulumi(Path.cwd())
region = settings.region
prefix = settings.name_prefix
is_primary = settings.role == "primary"  # the stack's identity, not whether it is active
# What this region does while `activeRegion` is what it is: writer or replica, active or standby capacities.
role = roles(settings)

# Every AWS resource goes through this provider, so every one carries the cost tags.
provider = aws.Provider("aws", region=region.name, default_tags=aws.ProviderDefaultTagsArgs(tags=settings.cost_tags))
aws_opts = pulumi.ResourceOptions(providers={"aws": provider})
invoke_opts = pulumi.InvokeOutputOptions(provider=provider)
account_id = aws.get_caller_identity_output(opts=invoke_opts).account_id
backup_tag = ("BackupPlan", settings.resource_prefix)

key = StackKey("stack-key", StackKeyArgs(alias=prefix, account_id=account_id, region=region.name,
                                         partition=region.partition), opts=aws_opts)

# --- network
if settings.network.source == "terraform":
    network = AdoptedNetwork("network", AdoptedNetworkArgs(state=settings.network.terraform,
                                                           stack_file=settings.stack_file), opts=aws_opts)
else:
    offered_zones = aws.get_availability_zones_output(state="available", opts=invoke_opts).zone_ids
    network = Network("network", NetworkArgs(
        cidr=settings.network.cidr,
        availability_zone_ids=offered_zones.apply(partial(check_zone_ids, settings)),
        az_count=len(settings.network.availability_zone_ids),
        # The active or the standby shape's (regions/roles.py).
        nat_per_az=role.shape.nat_per_az,
        flow_log_group_name=f"/{prefix}/vpc-flow-logs",
        flow_log_retention_days=settings.network.flow_log_retention_days,
        kms_key_arn=key.arn,
        account_id=account_id,
    ), opts=aws_opts)
security_groups = SecurityGroups("security-groups", SecurityGroupsArgs(
    vpc_id=network.vpc_id, app_ports=SERVICE_PORTS), opts=aws_opts)
Endpoints("endpoints", EndpointsArgs(
    region=region.name,
    vpc_id=network.vpc_id,
    subnet_ids=network.private_subnet_ids,
    route_table_ids=network.endpoint_route_table_ids,
    security_group_id=security_groups.endpoints.id,
), opts=aws_opts)

# --- what exists once for the pair: the primary creates it, the backup reads it (components/pair.py)
side = pair(settings, key.arn, account_id, aws_opts, invoke_opts)
secrets = shared_secrets(side)
shared_secret_arns = secrets.arns
# This region's own (the primary's, copied, with a Global Datastore): its cache and its tasks change in its `up`.
cache_token = cache_auth_token(side, secrets)

# --- data
database = Database("database", DatabaseArgs(
    identifier=settings.resource_prefix,
    settings=settings.database,
    subnet_ids=network.isolated_subnet_ids,
    security_group_id=security_groups.db.id,
    kms_key_arn=key.arn,
    tags=dict([backup_tag]),
    role=role.database,
    writer_arn=writer_arn(settings, account_id),
    copies_writer_backups=role.copies_writer_backups,
    multi_az=role.shape.db_multi_az,
    apply_immediately=role.db_applies_immediately,
    credentials=secrets.credentials,
), opts=aws_opts)
rotation_function_name = f"{settings.resource_prefix}-db-rotation"
# The primary writes its first value, which needs the writer's address; Secrets Manager rotates it from then on,
# in the active region.
password_rotation = PasswordRotation("database-password", PasswordRotationArgs(
    secret_id=secrets.owner.database_credentials.id if secrets.owner else
    pulumi.Output.from_input(shared_secret_arns).apply(lambda arns: arns["database-credentials"]),
    first_value=FirstValue(username=settings.database.username, password=secrets.owner.db_password,
                           host=database.instance.address, port=POSTGRES_PORT,
                           db_name=settings.database.name) if secrets.owner else None,
    every_days=settings.database.password_rotation_days, function_name=rotation_function_name,
    region=region.name, subnet_ids=network.private_subnet_ids,
    security_group_id=security_groups.rotation.id, kms_key_arn=key.arn,
    rotate=role.rotates_password), opts=aws_opts)
if secrets.owner:
    shared_secret_arns = {**shared_secret_arns, "database-credentials": password_rotation.secret_arn}
cache = Cache("cache", CacheArgs(
    identifier=settings.resource_prefix,
    settings=settings.cache,
    subnet_ids=network.isolated_subnet_ids,
    security_group_id=security_groups.cache.id,
    kms_key_arn=key.arn,
    auth_token=cache_token.value,
    node_type=role.shape.cache_node_type,
    nodes=role.shape.cache_nodes,
    joins_global_datastore=joined_global_datastore(side),
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
def bucket_name(purpose: str, region_name: str = region.name) -> pulumi.Output[str]:
    return pulumi.Output.concat(settings.resource_prefix, "-", purpose, "-", region_name, "-", account_id)


backups_bucket_name = bucket_name("backups")
access_logs = LogBucket("access-logs", LogBucketArgs(
    bucket_name=bucket_name("access-logs"),
    account_id=account_id,
    elb_account_id=region.elb_account_id,
    s3_log_sources={"backups": pulumi.Output.concat("arn:aws:s3:::", backups_bucket_name)},
), opts=aws_opts)
backups = BackupBucket("backups", BackupBucketArgs(
    bucket_name=backups_bucket_name,
    kms_key_arn=key.arn,
    tags=dict([backup_tag]),
    log_bucket=access_logs.bucket.id,
    log_prefix="backups",
), opts=aws_opts)
# The rule lives on the primary's bucket, so the primary owns it; the destination's names are derived. S3
# refuses a rule whose destination bucket does not exist yet: a first deployment turns it on once the backup
# stack is up (backups.replicateToPeer).
if is_primary and settings.backups.replicate_to_peer:
    BucketReplication("backups-replication", BucketReplicationArgs(
        source_region=region.name,
        source_bucket_name=backups.bucket.bucket,
        source_bucket_arn=backups.bucket.arn,
        source_kms_key_arn=key.arn,
        source_versioning=backups.versioning,
        destination_region=region.peer,
        destination_bucket_arn=pulumi.Output.concat("arn:aws:s3:::", bucket_name("backups", region.peer)),
        # The backup stack's key, by the alias it gives it.
        destination_kms_key_alias=f"alias/{prefix}",
        account_id=account_id,
    ), opts=aws_opts)
# The peer vault's ARN is derivable, so the primary needs no reference to the backup stack.
peer_vault_arn = pulumi.Output.concat("arn:", region.partition, ":backup:", region.peer, ":", account_id,
                                      ":backup-vault:", settings.backups.peer_vault_name)
backup_plan = BackupPlan("backup-plan", BackupPlanArgs(
    settings=settings.backups,
    kms_key_arn=key.arn,
    selection_tag=backup_tag,
    copy_to_vault_arn=peer_vault_arn if is_primary else None,
), opts=aws_opts)

# --- services
zone = zone_id(side)
images = pair_images(side, secrets)
cluster = Cluster("cluster", ClusterArgs(name=settings.resource_prefix, kms_key_arn=key.arn,
                                         exec_log_group_name=f"/{prefix}/ecs/exec",
                                         log_retention_days=settings.services.log_retention_days), opts=aws_opts)
load_balancer = LoadBalancer("alb", LoadBalancerArgs(
    vpc_id=network.vpc_id,
    subnet_ids=network.public_subnet_ids,
    security_group_id=security_groups.alb.id,
    domain=settings.domain.app_domain,
    zone_id=zone,
    writes_validation_record=is_primary,
    deletion_protection=is_primary,
    log_bucket=access_logs.bucket.bucket,
    log_prefix=ALB_LOG_PREFIX,
    log_bucket_policy=access_logs.policy,
    targets={name: Target(port=WORKLOADS[name].port, health_path=WORKLOADS[name].health_path)
             for name in SERVICE_PORTS},
    waf_log_group_name=f"aws-waf-logs-{settings.resource_prefix}",
    waf_log_retention_days=settings.services.log_retention_days,
    kms_key_arn=key.arn,
    account_id=account_id,
    region=region.name,
), opts=aws_opts)
secret_arns = pulumi.Output.all(shared_secret_arns, connection.arn).apply(
    lambda pair: {**pair[0], "connection": pair[1]})
# The token is the region's own, never handed over with the writer: the tasks read it, `secret_arns` leaves it out
# (the drills take every secret there but `connection` for one they detach).
task_secret_arns = pulumi.Output.all(secret_arns, cache_token.arn).apply(
    lambda pair: {**pair[0], "redis-auth-token": pair[1]})
secret_versions = pulumi.Output.all(secrets.versions, cache_token.version_id).apply(
    lambda pair: {**pair[0], "redis-auth-token": pair[1]})
services = {}
for workload_name in SERVICES:
    workload = WORKLOADS[workload_name]
    services[workload_name] = Service(workload_name, ServiceArgs(
        family=f"{settings.resource_prefix}-{workload_name}",
        settings=settings.services[workload_name],
        workload=workload,
        running=settings.services.running(workload_name),
        region=region.name,
        cluster_arn=cluster.cluster.arn,
        cluster_name=cluster.cluster.name,
        image=images.refs[workload.image],
        repository_arn=images.repository_arns[workload.image],
        subnet_ids=network.private_subnet_ids,
        security_group_id=security_groups.app.id,
        environment={"LOG_LEVEL": settings.services.log_level, "DEBUG": "false", "AWS_REGION": region.name,
                     "PLATFORM_REGION": region.name, "PLATFORM_ROLE": settings.role},
        secret_arns=task_secret_arns,
        secret_key_arns=secrets.key_arns,
        kms_key_arn=key.arn,
        log_group_name=f"/{prefix}/ecs/{workload_name}",
        log_retention_days=settings.services.log_retention_days,
        log_level=settings.services.log_level,
        exec_enabled=settings.services.exec_enabled,
        exec_log_group_arn=cluster.exec_logs.arn,
        secret_versions=secret_versions,
        db_pool_size=settings.database.pool_size,
        target_group_arn=load_balancer.target_groups[workload_name].arn if workload.port else None,
        backups_bucket_arn=backups.bucket.arn if workload.writes_backups else None,
        # New tasks with a new token start once the cache accepts it (the provider returns when the group is
        # available again).
        depends_on=[load_balancer.https, load_balancer.api_rule, cluster.capacity_providers,
                    *([cache.group] if "redis-auth-token" in workload.secret_names else [])],
    ), opts=aws_opts)

# --- a new master password (Secrets Manager rotates it in the active region) restarts the tasks that read it
restarted = [name for name in SERVICES if "database-credentials" in WORKLOADS[name].secret_names]
# The backup's standby hears of the primary's rotation through forwarded events; its replica secret takes a moment
# to receive the new value.
hears_of_peer = not is_primary and not role.active
password_restarts = RestartOnNewSecret("password-restarts", RestartOnNewSecretArgs(
    secret_arn=secrets.rotated_credentials_arn,
    region=region.name, account_id=account_id, cluster_name=cluster.cluster.name,
    service_names=[services[name].service.name for name in restarted],
    wait_seconds=120 if hears_of_peer else 0,
    # Only while the secrets replicate (the primary's region active): after an evacuation the backup's copy is
    # standalone, and nothing in us-east-1 may restart it.
    forward_to_region=region.peer if is_primary and role.active else None,
    kms_key_arn=key.arn, log_retention_days=settings.services.log_retention_days), opts=aws_opts)

# --- monitoring, failover, cost
monitoring = Monitoring("monitoring", MonitoringArgs(
    region=region.name,
    settings=settings.monitoring,
    kms_key_arn=key.arn,
    account_id=account_id,
    dashboard_name=f"{settings.resource_prefix}-{region.name}",
    alb_arn_suffix=load_balancer.alb.arn_suffix,
    target_group_arn_suffixes={name: tg.arn_suffix for name, tg in load_balancer.target_groups.items()},
    cluster_name=cluster.cluster.name,
    service_names=list(SERVICES),
    db_identifier=settings.resource_prefix,
    db_is_replica=role.database == "replica",
    # ElastiCache names a replication group's nodes <group>-001, -002, ...
    cache_node_ids=[f"{settings.resource_prefix}-{n:03d}" for n in range(1, role.shape.cache_nodes + 1)],
    extra_widgets=probe_widgets(settings.environment, settings.active_region, region.name,
                                settings.probe.max_replication_age_seconds) if settings.probe.enabled else (),
), opts=aws_opts)
# --- the replication probe: heartbeats through the database, reported to CloudWatch in both regions
probe = ReplicationProbe("replication-probe", ReplicationProbeArgs(
    environment=settings.environment,
    region=region.name,
    peer_region=region.peer,
    writer_region=settings.active_region,
    settings=settings.probe,
    # Nothing runs against a detached former writer (it is writable, and it is not the writer).
    running=role.database != "detached",
    family=f"{settings.resource_prefix}-replication-probe",
    service_name="replication-probe",
    cluster_arn=cluster.cluster.arn,
    cluster_name=cluster.cluster.name,
    image=images.refs[PROBE_IMAGE],
    repository_arn=images.repository_arns[PROBE_IMAGE],
    subnet_ids=network.private_subnet_ids,
    security_group_id=security_groups.app.id,
    database_host=database.instance.address,
    database_port=POSTGRES_PORT,
    database_name=settings.database.name,
    # In this region: the secret in the primary, its replica in the backup.
    database_secret_arn=pulumi.Output.from_input(shared_secret_arns).apply(lambda arns: arns["database-credentials"]),
    database_secret_key_arns=[secrets.shared_key_arn],
    kms_key_arn=key.arn,
    log_group_name=f"/{prefix}/ecs/replication-probe",
    log_retention_days=settings.services.log_retention_days,
    alarm_topic_arn=monitoring.topic.arn,
    alarm_name_prefix=settings.resource_prefix,
    depends_on=[cluster.capacity_providers],
), opts=aws_opts) if settings.probe.enabled else None
# The primary owns the switch, in the peer region: the backup needs nothing of it, so no reference cycle.
switch = FailoverSwitch("failover-switch", FailoverSwitchArgs(
    region=region.peer, alarm_name=f"{settings.resource_prefix}-failover-switch",
    dimensions={"Environment": settings.environment}), opts=aws_opts) if is_primary else None
failover = Failover("failover", FailoverArgs(
    zone_id=zone,
    app_domain=settings.domain.app_domain,
    failover_role="PRIMARY" if is_primary else "SECONDARY",
    set_identifier=region.name,
    alb_dns_name=load_balancer.alb.dns_name,
    alb_zone_id=load_balancer.alb.zone_id,
    switch_health_check_id=switch.health_check.id if switch else None,
    # Route53's metrics live in us-east-1, as the primary's topic does.
    route53_alarm_topic_arn=monitoring.topic.arn if is_primary else None,
), opts=aws_opts)
if switch:
    pulumi.export("failover_switch", switch.description)
Cost("cost", CostArgs(
    budget_name=f"{settings.resource_prefix}-{region.name}",
    settings=settings.budget,
    stack_tag=("Stack", settings.stack),
    alert_topic_arn=monitoring.topic.arn,
    activate_tags=tuple(settings.cost_tags) if settings.budget.activate_cost_tags else (),
), opts=aws_opts)
if not is_primary:
    drill_role = DrillRole("drill-operator", DrillRoleArgs(
        account_id=account_id,
        principals=settings.drill.principals,
        require_mfa=settings.drill.require_mfa,
        regions=[
            RegionResources(region.peer, side.from_primary("ecs_cluster_name"), side.from_primary("ecs_services"),
                            side.from_primary("secret_arns").apply(lambda arns: arns["database-credentials"]),
                            side.from_primary("kms_key_arn"),
                            side.from_primary("secret_arns").apply(shared_only),
                            side.from_primary("password_restarts"), side.from_primary("db_fence")),
            RegionResources(region.name, cluster.cluster.name,
                            {name: service.service.name for name, service in services.items()},
                            shared_secret_arns.apply(lambda arns: arns["database-credentials"]),
                            side.from_primary("replica_key_arn"), shared_secret_arns.apply(shared_only),
                            password_restarts.description, security_groups.db_fence),
        ],
        db_identifier=settings.resource_prefix,
        replicated_bucket_arn=side.from_primary("backup_bucket_arn"),
        switch_namespace=SWITCH_NAMESPACE,
        rotation_function_name=rotation_function_name,
        cache_global_datastore=cache.global_datastore_id,
        cache_replication_group_id=settings.resource_prefix,
    ), opts=aws_opts)
    pulumi.export("drill_role_arn", drill_role.role.arn)

pulumi.export("region", region.name)
pulumi.export("role", settings.role)
pulumi.export("app_domain", settings.domain.app_domain)
pulumi.export("kms_key_arn", key.arn)
pulumi.export("vpc_id", network.vpc_id)
pulumi.export("db_instance_identifier", database.instance.identifier)
pulumi.export("db_instance_arn", database.instance.arn)
pulumi.export("db_endpoint", database.instance.endpoint)
pulumi.export("db_is_replica", role.database == "replica")
pulumi.export("active_region", settings.active_region)
pulumi.export("redis_primary_endpoint", cache.group.primary_endpoint_address)
# ElastiCache publishes its metrics per member cluster (`<group>-001`, ...): python -m rightsize reads them.
pulumi.export("cache_replication_group_id", cache.group.replication_group_id)
pulumi.export("cache_member_clusters", cache.group.member_clusters)
# The Global Datastore both caches belong to while cache.globalDatastore (the backup joins it by this id); else null.
pulumi.export("cache_global_datastore", cache.global_datastore_id)
pulumi.export("backup_bucket_name", backups.bucket.bucket)
pulumi.export("backup_bucket_arn", backups.bucket.arn)
pulumi.export("backup_vault_name", backup_plan.vault.name)
pulumi.export("secret_arns", secret_arns)
pulumi.export("hosted_zone_id", zone)
pulumi.export("health_check_id", failover.health_check.id)
pulumi.export("alarm_topic_arn", monitoring.topic.arn)
pulumi.export("alb_dns_name", load_balancer.alb.dns_name)
pulumi.export("alb_zone_id", load_balancer.alb.zone_id)
pulumi.export("alb_arn", load_balancer.alb.arn)
# The LoadBalancer dimension of its CloudWatch metrics (app/<name>/<id>).
pulumi.export("alb_arn_suffix", load_balancer.alb.arn_suffix)
pulumi.export("ecs_cluster_name", cluster.cluster.name)
pulumi.export("ecs_services", {name: service.service.name for name, service in services.items()})
# The capacity when this region is the active one (a drill raises the standby to it), and when it is the standby.
pulumi.export("ecs_capacity", {s.name: asdict(s.active) for s in settings.services.services})
pulumi.export("ecs_standby_capacity", {s.name: asdict(s.standby) for s in settings.services.services})
# Where the replication probe publishes (both regions) and what alarms on it; null while probe.enabled is false.
pulumi.export("replication_probe", probe.description if probe else None)
pulumi.export("password_restarts", password_restarts.description)
pulumi.export("db_fence", security_groups.db_fence)
