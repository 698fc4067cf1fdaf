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
- the master password rotates only while the primary's region is active: the rotation function lives there,
  and the backup's secret is a read-only replica;
- the non-active region copies the writer's automated backups into its own region.

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
class Roles:
    active: bool
    database: DatabaseRole
    # Where the writer is: this region when active, else the active one.
    writer_region: str
    rotates_password: bool

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
                 rotates_password=settings.role == "primary" and active)


def writer_arn(settings: StackSettings, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The active writer's ARN, derived: both stacks' instances have the same identifier."""
    return pulumi.Output.concat("arn:", settings.region.partition, ":rds:", settings.active_region, ":", account_id,
                                ":db:", settings.resource_prefix)
