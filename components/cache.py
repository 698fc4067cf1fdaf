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


class Cache(pulumi.ComponentResource):
    group: aws.elasticache.ReplicationGroup

    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:data:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        s = args.settings
        subnets = aws.elasticache.SubnetGroup(name, subnet_ids=args.subnet_ids,
                                              description=f"{args.identifier}: isolated subnets", opts=child)
        parameters = aws.elasticache.ParameterGroup(
            name, family=s.parameter_family, description=f"{args.identifier}: broker-safe settings",
            # The cache is also the Celery broker: evicting keys would silently drop queued tasks.
            parameters=[aws.elasticache.ParameterGroupParameterArgs(name="maxmemory-policy", value="noeviction")],
            opts=child)
        # ElastiCache allows automatic failover only with 2 or more nodes and Multi-AZ only with automatic failover:
        # both follow the node count (policies/rules.py checks the pair on every replication group).
        replicated = args.nodes >= 2
        self.group = aws.elasticache.ReplicationGroup(
            name,
            replication_group_id=args.identifier,
            description=f"{args.identifier}: cache and Celery broker",
            engine=s.engine,
            engine_version=s.engine_version,
            node_type=args.node_type,
            num_cache_clusters=args.nodes,
            port=REDIS_PORT,
            automatic_failover_enabled=replicated,
            multi_az_enabled=replicated,
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            # Write-only: the token reaches ElastiCache but never the Pulumi state. ROTATE keeps the old
            # token valid beside the new one, so running tasks keep working through a rotation.
            auth_token_wo=args.auth_token,
            auth_token_wo_version=s.auth_token_version,
            auth_token_update_strategy="ROTATE",
            subnet_group_name=subnets.name,
            security_group_ids=[args.security_group_id],
            parameter_group_name=parameters.name,
            snapshot_retention_limit=s.snapshot_retention_days,
            snapshot_window="04:00-05:00",
            maintenance_window="sun:06:00-sun:07:00",
            auto_minor_version_upgrade=True,
            opts=child,
        )
        self.register_outputs({"primary_endpoint": self.group.primary_endpoint_address})
