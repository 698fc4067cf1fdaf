"""RDS PostgreSQL: the writer in the active region, its cross-region read replica in the other (regions/roles.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.iam import service_role
from regions.catalog import DB_MAINTENANCE_WINDOW
from regions.model import DatabaseSettings
from regions.roles import DatabaseRole
from regions.tuning import postgres_parameters

LOG_EXPORTS = ("postgresql", "upgrade")


@dataclass
class WriterCredentials:
    """The master user of a writer created as one; a replica inherits its source's. Used at creation only:
    a promoted replica that becomes this stack's writer keeps the (rotated) password it replicated."""

    username: str
    db_name: str
    password: pulumi.Input[str]


@dataclass
class DatabaseArgs:
    identifier: str
    settings: DatabaseSettings
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    tags: Mapping[str, str]
    role: DatabaseRole
    # The active writer's ARN: a replica's source, and whose automated backups a non-active region copies.
    writer_arn: pulumi.Input[str]
    copies_writer_backups: bool
    # Multi-AZ as this region's role runs it: the active shape's, or the standby's for a replica (regions/roles.py).
    # RDS converts an instance either way in place (ModifyDBInstance MultiAZ), no outage, no replacement.
    multi_az: bool
    # Whether RDS applies a change at the `up` or queues it for the maintenance window (regions/roles.py).
    apply_immediately: bool
    credentials: WriterCredentials | None = None


class Database(pulumi.ComponentResource):
    instance: aws.rds.Instance

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:data:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings

        subnets = aws.rds.SubnetGroup(name, subnet_ids=args.subnet_ids,
                                      description=f"{args.identifier}: isolated subnets", opts=child)
        parameters = aws.rds.ParameterGroup(
            name, family=f"postgres{s.major_version}", description=f"{args.identifier}: deployment guide tuning",
            parameters=[aws.rds.ParameterGroupParameterArgs(name=p.name, value=p.value, apply_method=p.apply_method)
                        for p in postgres_parameters(s.log_min_duration_ms, s.max_connections)],
            opts=child)
        monitoring = service_role(f"{name}-monitoring", "monitoring.rds.amazonaws.com", self)
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring", role=monitoring.name,
            policy_arn="arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole", opts=child)
        # Created before the instance, so RDS exports into encrypted groups with retention, not its own.
        log_groups = [aws.cloudwatch.LogGroup(f"{name}-{kind}", name=f"/aws/rds/instance/{args.identifier}/{kind}",
                                              retention_in_days=s.log_retention_days, kms_key_id=args.kms_key_arn,
                                              opts=child)
                      for kind in LOG_EXPORTS]

        credentials = args.credentials if args.role == "writer" else None
        replica = args.role == "replica"
        # A former writer being retired: no deletion protection, and the final snapshot it leaves is named.
        retiring = args.role == "detached" and s.retire_snapshot is not None
        # Otherwise a writer's final snapshot is named per instance: RDS refuses a snapshot name that exists, so a
        # second writer of this identifier deleted later must not reuse the first's. Drawn once and kept in the state
        # (no diff in later previews); drawn anew with a new instance: another identifier or storage key, what
        # replaces it. Every role has it, so that a promotion keeps it.
        generation = random.RandomId(f"{name}-final-snapshot", byte_length=4,
                                     keepers={"identifier": args.identifier, "kmsKeyId": args.kms_key_arn}, opts=child)
        self.instance = aws.rds.Instance(
            name,
            identifier=args.identifier,
            engine="postgres",
            engine_version=s.engine_version,
            # Minor upgrades are changes like any other: reviewed in a preview, not applied by AWS.
            auto_minor_version_upgrade=False,
            instance_class=s.instance_class,
            allocated_storage=s.allocated_storage_gb,
            max_allocated_storage=s.max_allocated_storage_gb,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            multi_az=args.multi_az,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[args.security_group_id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            backup_retention_period=s.backup_retention_days,
            # After AWS Backup's 02:00 daily job; maintenance after both.
            backup_window="03:00-04:00",
            maintenance_window=DB_MAINTENANCE_WINDOW,
            apply_immediately=args.apply_immediately,
            copy_tags_to_snapshot=True,
            deletion_protection=not retiring,
            # RDS refuses a final snapshot when deleting a read replica; a writer always leaves one.
            skip_final_snapshot=replica,
            final_snapshot_identifier=None if replica else s.retire_snapshot or pulumi.Output.concat(
                args.identifier, "-final-", generation.hex),
            performance_insights_enabled=True,
            performance_insights_kms_key_id=args.kms_key_arn,
            performance_insights_retention_period=7,
            monitoring_interval=60,
            monitoring_role_arn=monitoring.arn,
            iam_database_authentication_enabled=True,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            username=credentials.username if credentials else None,
            db_name=credentials.db_name if credentials else None,
            # Write-only: the password reaches RDS but never the Pulumi state.
            password_wo=credentials.password if credentials else None,
            # Set once at creation; Secrets Manager rotates it from then on (PasswordRotation).
            password_wo_version=1 if credentials else None,
            replicate_source_db=args.writer_arn if replica else None,
            tags=dict(args.tags),
            # A standalone instance never becomes a replica in place, nor through a Pulumi replacement (that would
            # replace what depends on its address, the first password version among them): a retired former
            # writer is deleted outside Pulumi and refreshed away, and the replica is then created
            # (drills/reconcile.py prints the commands).
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[attachment, *log_groups],
                # The master user is set when a writer is created; never again (a promoted replica has its own).
                # Not on a replica: ignored inputs are taken from the state, and the provider refuses a username
                # beside replicate_source_db.
                ignore_changes=None if replica else ["username", "dbName", "passwordWo", "passwordWoVersion"]),
        )
        if args.copies_writer_backups:
            aws.rds.InstanceAutomatedBackupsReplication(
                name, source_db_instance_arn=args.writer_arn, kms_key_id=args.kms_key_arn,
                retention_period=s.backup_retention_days,
                # Deleting it calls RDS in the source's region, which a failover may have lost: when the active
                # region changes it is left running and stopped by a printed command once both regions answer.
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
        self.register_outputs({
            "identifier": self.instance.identifier,
            "arn": self.instance.arn,
            "endpoint": self.instance.endpoint,
        })
