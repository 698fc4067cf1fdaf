"""The platform's four processes, as the deployment guide runs them."""

from __future__ import annotations

from dataclasses import dataclass

# The application's images the primary builds (worker and beat run the api's), from its repositories.
APP_IMAGES = ("api", "web")
# The replication probe's, built from this repository's probe/ (components/probe.py).
PROBE_IMAGE = "probe"
# Every image the primary builds and ECR replicates to the peer region (the probe's only while it runs).
IMAGES = (*APP_IMAGES, PROBE_IMAGE)
# A rolling deployment starts the new tasks before stopping the old (ECS maximumPercent): a service may run
# twice its count for a while. A singleton never does.
DEPLOYMENT_MAXIMUM_PERCENT = 200

# Environment variable -> (shared or regional secret, JSON key in it or None for the whole value).
SECRET_ENV: dict[str, tuple[str, str | None]] = {
    "DATABASE_USER": ("database-credentials", "username"),
    "DATABASE_PASSWORD": ("database-credentials", "password"),
    "DATABASE_HOST": ("connection", "db_host"),
    "DATABASE_PORT": ("connection", "db_port"),
    "DATABASE_NAME": ("connection", "db_name"),
    "REDIS_HOST": ("connection", "redis_host"),
    "REDIS_PORT": ("connection", "redis_port"),
    "REDIS_AUTH_TOKEN": ("redis-auth-token", None),
    "JWT_SECRET": ("jwt-secret", None),
    "GOOGLE_CLIENT_ID": ("google-client-id", None),
}
_DATABASE = ("DATABASE_USER", "DATABASE_PASSWORD", "DATABASE_HOST", "DATABASE_PORT", "DATABASE_NAME")
_BROKER = ("REDIS_HOST", "REDIS_PORT", "REDIS_AUTH_TOKEN")


@dataclass(frozen=True)
class Workload:
    # Which image it runs: worker and beat run the backend's image with another command.
    image: str
    # `{log_level}` is replaced by the stack's services.logLevel.
    command: tuple[str, ...] | None
    port: int | None
    health_path: str | None
    secrets: tuple[str, ...]
    # uid:gid of the image's unprivileged user.
    user: str
    # What the process writes (files or directories), as the guide runs it.
    writes: tuple[str, ...]
    # The root filesystem is read-only; these paths get a task volume each, owned by `user`.
    writable_paths: tuple[str, ...]
    # Target-tracking metrics it scales on (none: a fixed count).
    scale_on: tuple[str, ...] = ("cpu",)
    # Processes per task that hold database connections (each a pool of database.poolSize).
    db_processes: int = 0
    # At most one task at any time, deployments included (Celery beat).
    singleton: bool = False
    # Writes the guide's daily/weekly/monthly dumps to the backups bucket.
    writes_backups: bool = False
    stop_timeout: int = 30

    @property
    def secret_names(self) -> frozenset[str]:
        """The secrets its task reads (`database-credentials`, `connection`, ...)."""
        return frozenset(SECRET_ENV[env][0] for env in self.secrets)


WORKLOADS: dict[str, Workload] = {
    "api": Workload(
        image="api",
        command=("uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000", "--workers", "4",
                 "--log-level", "{log_level}"),
        port=8000, health_path="/api/health", secrets=tuple(SECRET_ENV),
        user="1000:1000", writes=("/tmp",), writable_paths=("/tmp",), scale_on=("cpu", "memory"), db_processes=4),
    # nginx serving the React build: no secrets at all. It binds port 80 as the nginx user (uid 101),
    # which the task allows through the net.ipv4.ip_unprivileged_port_start sysctl, and writes its pid
    # file and temporary request bodies where the official image puts them.
    "web": Workload(
        image="web", command=None, port=80, health_path="/", secrets=(),
        user="101:101", writes=("/var/cache/nginx/client_temp", "/var/cache/nginx/proxy_temp", "/var/run/nginx.pid"),
        writable_paths=("/tmp", "/var/cache/nginx", "/var/run"), scale_on=("cpu", "memory")),
    # Celery's warm shutdown finishes running tasks: give it the two minutes Fargate allows.
    "worker": Workload(
        image="api", command=("celery", "-A", "celery_app", "worker", "--concurrency=4", "--loglevel={log_level}"),
        port=None, health_path=None, secrets=_DATABASE + _BROKER,
        user="1000:1000", writes=("/tmp",), writable_paths=("/tmp",), writes_backups=True, stop_timeout=120,
        db_processes=4),
    # Its schedule file (--schedule, read from the command by the tests) is what it writes.
    "beat": Workload(
        image="api",
        command=("celery", "-A", "celery_app", "beat", "--loglevel={log_level}",
                 "--schedule", "/tmp/celerybeat-schedule"),
        port=None, health_path=None, secrets=_BROKER,
        user="1000:1000", writes=(), writable_paths=("/tmp",), scale_on=(), singleton=True),
}

# The replication probe (components/probe.py): one task per region, never two at once, writing nothing to disk.
# It is deliberately not in WORKLOADS: autoscaling, the load balancer's targets, the drill's capacities, the
# connection budget (its one connection is in the reserve) and right-sizing iterate those.
PROBE_WORKLOAD = Workload(
    image=PROBE_IMAGE, command=None, port=None, health_path=None, secrets=(),
    user="10001:10001", writes=(), writable_paths=(), scale_on=(), singleton=True)


def peak_tasks(workload: Workload, max_count: int) -> int:
    """The most tasks a service runs: its autoscaling maximum, doubled while a deployment rolls."""
    return max_count if workload.singleton else max_count * DEPLOYMENT_MAXIMUM_PERCENT // 100
