"""The validated settings of one stack: frozen, typed, passed down to the components."""

from __future__ import annotations

from dataclasses import dataclass, field

from regions.catalog import CACHE_VERSIONS, RegionInfo, Role


@dataclass(frozen=True)
class DomainSettings:
    zone_name: str
    app_record: str

    @property
    def app_domain(self) -> str:
        return f"{self.app_record}.{self.zone_name}"


@dataclass(frozen=True)
class TagSettings:
    cost_center: str
    owner: str


@dataclass(frozen=True)
class TerraformState:
    backend: str
    path: str | None
    bucket: str | None
    key: str | None
    region: str | None
    workspace: str | None
    # Our name (vpcId, ...) -> the state's output name.
    outputs: dict[str, str]

    @property
    def location(self) -> str:
        if self.backend == "local":
            return f"local state {self.path}"
        return f"s3://{self.bucket}/{self.key}" + (f" (workspace {self.workspace})" if self.workspace else "")


@dataclass(frozen=True)
class NetworkSettings:
    cidr: str
    # The zones the subnets go in, by AZ ID.
    availability_zone_ids: tuple[str, ...]
    # `perAz` or `single` while this region is the activeRegion, and while it is not (regions/roles.py picks).
    nat_gateways: str
    standby_nat_gateways: str
    flow_log_retention_days: int
    # `create` the VPC here, or adopt one from `terraform` state.
    source: str = "create"
    terraform: TerraformState | None = None


@dataclass(frozen=True)
class DatabaseSettings:
    engine_version: str
    instance_class: str
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    backup_retention_days: int
    # The writer's Multi-AZ while this region is the activeRegion (kept by a detached former writer), and its
    # replica's while another region is (regions/roles.py picks).
    multi_az: bool
    standby_multi_az: bool
    # The writer's changes (and a detached former writer's) apply at the `up` (true) or at the maintenance window;
    # a replica's always at the `up` (regions/roles.py).
    apply_immediately: bool
    # While another region is active: this region's instance is the former writer, kept as it is (not a
    # replica) until it is rebuilt as one (regions/roles.py).
    detached: bool
    # With detached: deletion protection off and this final snapshot, so that the next `up` may replace it.
    retire_snapshot: str | None
    log_min_duration_ms: int
    log_retention_days: int
    # Secrets Manager rotates the master password this often (the primary owns the secret).
    password_rotation_days: int
    name: str
    username: str
    # Connections each application process keeps (its pool).
    pool_size: int
    # What every service can open at its peak, plus a reserve (regions.tuning.connection_budget).
    max_connections: int

    @property
    def major_version(self) -> str:
        return self.engine_version.split(".")[0]


@dataclass(frozen=True)
class CacheSettings:
    engine: str
    engine_version: str
    # The nodes while this region is the activeRegion, and while it is not (regions/roles.py picks); 2 or more fail
    # over automatically, Multi-AZ.
    node_type: str
    nodes: int
    standby_node_type: str
    standby_nodes: int
    snapshot_retention_days: int
    # cache.authTokenVersion: raising it generates each region's next token.
    auth_token_version: int
    # cache.authTokenSoleVersion equal to it: the caches accept that token only (SET); else the previous one too
    # (ROTATE), while the tasks restart with the new one.
    auth_token_sole: bool
    # cache.globalDatastore: the primary's group replicates to the backup's across regions (an ElastiCache Global
    # Datastore), so queued Celery tasks survive an evacuation; the same in both stack files.
    global_datastore: bool

    @property
    def parameter_family(self) -> str:
        return CACHE_VERSIONS[self.engine][self.engine_version]


@dataclass(frozen=True)
class BackupSettings:
    vault_name: str
    # The backup stack's vault, where the primary's plan copies its recovery points.
    peer_vault_name: str
    daily_retention_days: int
    weekly_retention_days: int
    monthly_retention_days: int
    # None: no cold tier.
    cold_storage_after_days: int | None
    # Primary only: replicate the backups bucket to the peer region's (which must exist first).
    replicate_to_peer: bool


@dataclass(frozen=True)
class AppSecrets:
    """Values from `secure:` config; None where the stack file sets none."""

    jwt_secret: str | None = field(default=None, repr=False)
    google_client_id: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Capacity:
    min: int
    max: int
    desired: int


# Worker and beat in a standby region, and everything in front of a detached former writer.
NOTHING_RUNS = Capacity(0, 0, 0)


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    cpu: int
    memory: int
    active: Capacity
    standby: Capacity
    spot: bool


@dataclass(frozen=True)
class ServicesSettings:
    # True while another region is active (from activeRegion): the warm standby's capacities.
    standby: bool
    # True while this region's database is a detached former writer: nothing runs against it (it is writable,
    # and it is not the writer).
    idle: bool
    log_level: str
    log_retention_days: int
    exec_enabled: bool
    services: tuple[ServiceSettings, ...]

    def __getitem__(self, name: str) -> ServiceSettings:
        return next(s for s in self.services if s.name == name)

    @property
    def sized_by_peer(self) -> bool:
        """Another region serves, or nothing runs here: what this region runs once active is the active's to size."""
        return self.standby or self.idle

    def running(self, name: str) -> Capacity:
        if self.idle:
            return NOTHING_RUNS
        return self[name].standby if self.standby else self[name].active


@dataclass(frozen=True)
class ImageSource:
    """Built from `context` with pulumi-docker and pushed to the stack's ECR, or pulled from `uri`."""

    context: str | None
    dockerfile: str
    uri: str | None


@dataclass(frozen=True)
class ImageSettings:
    tag: str | None
    keep: int
    # What the primary builds or pulls, by image; empty in the backup, which runs the replicated digests.
    sources: dict[str, ImageSource]
    # The images the pair runs, in both stacks: the application's, and the probe's while it is enabled.
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbeSettings:
    """The replication probe (components/probe.py): the same in both stack files."""

    enabled: bool
    # A heartbeat this often (seconds), written by the active region's probe and looked for by the standby's.
    interval_seconds: float
    # The standby's alarm: its replica's newest heartbeat is older than this.
    max_replication_age_seconds: int
    # The active region's alarm: no heartbeat acknowledged for this many minutes.
    silent_minutes: int


@dataclass(frozen=True)
class MonitoringSettings:
    alarm_email: str
    alb_5xx_percent: float
    p95_latency_seconds: float
    ecs_cpu_percent: float
    ecs_memory_percent: float
    rds_cpu_percent: float
    rds_free_storage_gb: float
    rds_connections: int
    replica_lag_seconds: int
    redis_cpu_percent: float
    redis_memory_percent: float


@dataclass(frozen=True)
class BudgetSettings:
    monthly_usd: int
    actual_percent: int
    forecast_percent: int
    # AWS activates a cost-allocation tag only once billing has seen it (up to a day after the first tagged
    # resource): a first deployment may set this false and turn it on the next day.
    activate_cost_tags: bool


@dataclass(frozen=True)
class DrillSettings:
    # IAM principals that may assume the drill operator role; empty: the account's own principals.
    principals: tuple[str, ...]
    require_mfa: bool


@dataclass(frozen=True)
class UsageSettings:
    s3_storage_gb: float
    replication_gb_per_month: float
    nat_gb_per_month: float
    alb_lcu: float
    waf_million_requests: float
    logs_gb_per_month: float
    ecr_storage_gb: float
    backup_storage_gb: float
    # What the Global Datastore replicates to the other region (the broker's writes), when cache.globalDatastore.
    global_datastore_gb_per_month: float


@dataclass(frozen=True)
class StackSettings:
    project: str
    stack: str
    stack_file: str
    environment: str
    role: Role
    region: RegionInfo
    # The region that serves and writes, the same in both stack files (regions/roles.py).
    active_region: str
    peer_stack: str | None
    domain: DomainSettings
    tags: TagSettings
    network: NetworkSettings
    database: DatabaseSettings
    cache: CacheSettings
    backups: BackupSettings
    services: ServicesSettings
    images: ImageSettings
    # Primary only: create the hosted zone rather than look it up by name.
    create_zone: bool
    monitoring: MonitoringSettings
    budget: BudgetSettings
    drill: DrillSettings
    usage: UsageSettings
    probe: ProbeSettings
    secrets: AppSecrets

    @property
    def name_prefix(self) -> str:
        """`trading-platform/production`: secrets, aliases and log groups live under it."""
        return f"{self.project}/{self.environment}"

    @property
    def resource_prefix(self) -> str:
        """`trading-platform-production`: names AWS restricts to letters, digits and hyphens."""
        return f"{self.project}-{self.environment}"

    @property
    def cost_tags(self) -> dict[str, str]:
        """The cost-allocation tags every taggable resource carries (DESIGN.md contract)."""
        return {
            "Project": self.project,
            "Environment": self.environment,
            "CostCenter": self.tags.cost_center,
            "Owner": self.tags.owner,
            "Stack": self.stack,
            "Region": self.region.name,
            "Role": self.role,
            "ManagedBy": "pulumi",
        }
