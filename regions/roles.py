"""What follows from which region is active: every choice that changes with `activeRegion`, by name.

Both stack files name the active region (`trading-platform:activeRegion`, validated equal). A stack's `role`
stays its identity: the primary (us-east-1) owns what exists once (the zone, the images, the shared secrets,
the failover switch, the backups' replication), the backup (us-west-2) the drill role. What a region *does*
follows from whether it is active:

- the active region's database is the writer; the other's is a cross-region read replica of it, whose
  source ARN is derived (identifier, region, account), so neither stack references the other for it;
- a former writer (after a failover) cannot become a replica in place: it stays `detached` (kept as it is,
  deletion protection on) until it is retired (`retireWithSnapshot`: protection off, a named final snapshot)
  and then rebuilt: the next `up` deletes it, leaving that snapshot, and creates the replica under the same
  identifier;
- the active region runs the services' active capacities and the one Celery beat; the other its standby's;
- the active region runs its active shape (a Multi-AZ writer, a NAT gateway per AZ, a cache of 2+ nodes that fails
  over), the other its standby shape (`database.standbyMultiAz`, `network.standbyNatGateways`,
  `cache.standbyNodeType`/`standbyNodes`), so a failover needs no other setting than `activeRegion`; a detached
  former writer keeps its Multi-AZ as it is (nothing about it changes until it is retired);
- the master password rotates in the active region only. While that is the primary's, the shared secrets replicate
  to the backup (a read-only copy there, its restarts heard through forwarded events); an evacuation makes the
  backup's copies standalone (drills/scenarios.py), so while the backup's region is active the primary's secrets
  have no replicas, the backup rotates its own copy and nothing in us-east-1 restarts anything in us-west-2. A
  failback copies the password back and the primary replicates over the standalone copies again;
- the writer's changes (and a detached former writer's) wait for the maintenance window unless
  `database.applyImmediately`; a replica's apply at the `up`;
- the non-active region copies the writer's automated backups into its own region.

Not by `activeRegion`: with `cache.globalDatastore` the primary's cache creates the Global Datastore and the backup's
joins it (components/pair.py), whichever region is active. AWS moves the datastore's primary role with
FailoverGlobalReplicationGroup (the drill's call), not by creating it again; both shapes run its one node type.

Traffic is not a setting: the failover switch (a metric) moves users, so a failover needs no `pulumi up`
and no Route53 control-plane call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi

from regions.model import StackSettings

DatabaseRole = Literal["writer", "replica", "detached"]


@dataclass(frozen=True)
class Shape:
    """What the region runs now beside its services' capacities: its active or its standby shape."""

    db_multi_az: bool
    nat_gateways: str
    cache_node_type: str
    cache_nodes: int

    @property
    def nat_per_az(self) -> bool:
        return self.nat_gateways == "perAz"

    @property
    def cache_fails_over(self) -> bool:
        """Automatic failover and Multi-AZ, together: ElastiCache allows automatic failover only with 2 or more nodes
        (CreateReplicationGroup's NumCacheClusters) and Multi-AZ only with automatic failover."""
        return self.cache_nodes >= 2


@dataclass(frozen=True)
class Roles:
    active: bool
    database: DatabaseRole
    # Where the writer is: this region when active, else the active one.
    writer_region: str
    rotates_password: bool
    shape: Shape
    # ModifyDBInstance's ApplyImmediately (applies_immediately): at the `up`, or queued for the maintenance window.
    db_applies_immediately: bool

    @property
    def services_standby(self) -> bool:
        return not self.active

    @property
    def copies_writer_backups(self) -> bool:
        return not self.active


def roles(settings: StackSettings) -> Roles:
    active = settings.active_region == settings.region.name
    database: DatabaseRole = "writer" if active else "detached" if settings.database.detached else "replica"
    return Roles(active=active, database=database, writer_region=settings.active_region,
                 rotates_password=active, shape=shape(settings, active, database),
                 db_applies_immediately=applies_immediately(settings, database))


def applies_immediately(settings: StackSettings, database: DatabaseRole) -> bool:
    """Whether RDS applies this region's database changes at the `up` or at its maintenance window. The writer's is
    `database.applyImmediately` (false: a class change is an outage, at a time chosen for it), and a detached former
    writer keeps it (nothing about it changes until it is retired). A replica applies at once: nobody writes to it,
    a reboot only pauses its replay, and a failover must not promote a class its file no longer says."""
    return database == "replica" or settings.database.apply_immediately


def shape(settings: StackSettings, active: bool, database: DatabaseRole) -> Shape:
    """The active shape while this region is the activeRegion, else the standby shape; a detached former writer keeps
    the Multi-AZ it had as the writer (an in-place change all the same, but nothing about it changes until retired)."""
    network, db, cache = settings.network, settings.database, settings.cache
    return Shape(db_multi_az=db.standby_multi_az if database == "replica" else db.multi_az,
                 nat_gateways=network.nat_gateways if active else network.standby_nat_gateways,
                 cache_node_type=cache.node_type if active else cache.standby_node_type,
                 cache_nodes=cache.nodes if active else cache.standby_nodes)


def writer_arn(settings: StackSettings, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The active writer's ARN, derived: both stacks' instances have the same identifier."""
    return pulumi.Output.concat("arn:", settings.region.partition, ":rds:", settings.active_region, ":", account_id,
                                ":db:", settings.resource_prefix)
