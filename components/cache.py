"""ElastiCache (Valkey or Redis): the platform's cache and Celery broker, one per region."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from regions.model import CacheSettings

REDIS_PORT = 6379


@dataclass
class CacheArgs:
    identifier: str
    settings: CacheSettings
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    auth_token: pulumi.Input[str]
    # The nodes this region runs now: its active or its standby shape (regions/roles.py). Each is an update in place
    # of the replication group (IncreaseReplicaCount or DecreaseReplicaCount, ModifyReplicationGroup), never a
    # replacement.
    node_type: str
    nodes: int
    # With cache.globalDatastore: the Global Datastore's id where this group joins it as a secondary (the backup, which
    # reads it from the primary's outputs: components/pair.py); None where this group creates it (the primary).
    joins_global_datastore: pulumi.Input[str] | None = None


class Cache(pulumi.ComponentResource):
    group: aws.elasticache.ReplicationGroup
    # The Global Datastore's id (created here or joined) while cache.globalDatastore is true, else None.
    global_datastore_id: pulumi.Output[str] | None

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:data:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        subnets = aws.elasticache.SubnetGroup(name, subnet_ids=args.subnet_ids,
                                              description=f"{args.identifier}: isolated subnets", opts=child)
        # ElastiCache allows automatic failover only with 2 or more nodes and Multi-AZ only with automatic failover:
        # both follow the node count (policies/rules.py checks the pair on every replication group).
        replicated = args.nodes >= 2
        common = dict(
            replication_group_id=args.identifier,
            description=f"{args.identifier}: cache and Celery broker",
            num_cache_clusters=args.nodes,
            port=REDIS_PORT,
            automatic_failover_enabled=replicated,
            multi_az_enabled=replicated,
            kms_key_id=args.kms_key_arn,
            # Write-only: the provider keeps the token out of the resource's outputs, and sends it again only when
            # the version changes: each step of a rotation (cache.authTokenVersion, then authTokenSoleVersion) is
            # one. ROTATE (a new token) keeps the previous one valid beside it while the tasks restart; SET, the same
            # token again once they all run it, makes it the only one (ElastiCache allows SET only after ROTATE).
            auth_token_wo=args.auth_token,
            auth_token_wo_version=2 * s.auth_token_version + (1 if s.auth_token_sole else 0),
            auth_token_update_strategy="SET" if s.auth_token_sole else "ROTATE",
            subnet_group_name=subnets.name,
            security_group_ids=[args.security_group_id],
            snapshot_retention_limit=s.snapshot_retention_days,
            snapshot_window="04:00-05:00",
            maintenance_window="sun:06:00-sun:07:00",
            # ElastiCache turns minor upgrades off in a Global Datastore's clusters and refuses them back on: their
            # versions move together, through the datastore's engine_version below.
            auto_minor_version_upgrade=not s.global_datastore,
        )
        self.global_datastore_id = None
        if args.joins_global_datastore is not None:
            # A secondary takes its engine, version, node type, parameters and encryption from the Global Datastore
            # (the provider refuses them beside global_replication_group_id). Joining replaces a standalone group by a
            # new, empty one under the same id, which ElastiCache creates only once the old one is gone.
            self.group = aws.elasticache.ReplicationGroup(
                name, global_replication_group_id=args.joins_global_datastore, **common,
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True))
            self.global_datastore_id = pulumi.Output.from_input(args.joins_global_datastore)
        else:
            parameters = aws.elasticache.ParameterGroup(
                name, family=s.parameter_family, description=f"{args.identifier}: broker-safe settings",
                # The cache is also the Celery broker: evicting keys would silently drop queued tasks (a Global
                # Datastore's secondary gets a copy of these parameters).
                parameters=[aws.elasticache.ParameterGroupParameterArgs(name="maxmemory-policy", value="noeviction")],
                opts=child)
            self.group = aws.elasticache.ReplicationGroup(
                name,
                engine=s.engine,
                engine_version=s.engine_version,
                node_type=args.node_type,
                at_rest_encryption_enabled=True,
                transit_encryption_enabled=True,
                transit_encryption_mode="required",
                parameter_group_name=parameters.name,
                **common,
                # A Global Datastore's clusters change node type together, through it: ElastiCache rejects a
                # member's own ModifyReplicationGroup of it.
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["nodeType"]) if s.global_datastore else child,
            )
            if s.global_datastore:
                # The id is AWS's: a prefix of the creating region before this suffix.
                datastore = aws.elasticache.GlobalReplicationGroup(
                    name,
                    global_replication_group_id_suffix=args.identifier,
                    primary_replication_group_id=self.group.id,
                    global_replication_group_description=f"{args.identifier}: cache and Celery broker, both regions",
                    # Set rather than inherited, so that the stack files scale and upgrade every cluster at once (the
                    # engine too: the provider assumes redis for a version without one).
                    engine=s.engine,
                    engine_version=s.engine_version,
                    cache_node_type=args.node_type,
                    opts=child)
                self.global_datastore_id = datastore.global_replication_group_id
        self.register_outputs({"primary_endpoint": self.group.primary_endpoint_address})
