"""An emulated two-region world on this machine, for drills without AWS: `make drill-sandbox`.

It is an emulation: moto stands for AWS (state in memory, nothing really fails over), two HTTP servers on
127.0.0.1 stand for the regions' load balancers, and a front server stands for Route53's failover answer
(it sends requests to the backup when the primary's health check is inverted or disabled in moto, or the
primary endpoint is down). moto does not simulate health-check failure, DNS answers or replica lag, and it
keeps a promoted replica's source link (AWS drops it), so drills here run with --promotion-keeps-source-link.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3

ACCOUNT = "123456789012"
PRIMARY, BACKUP = "us-east-1", "us-west-2"
IDENTIFIER = "trading-platform-production"
ACTIVE = {"api": 2, "web": 2, "worker": 2, "beat": 1}
STANDBY = {"api": 1, "web": 1, "worker": 0, "beat": 0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    """`moto_server` on a loopback port, started and stopped by its owner."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
        self.process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"moto_server did not start on port {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def reset(self, seed: int = 7) -> None:
        """Forget all state, and seed moto's id generator so a rebuilt world gets the same ids."""
        for path in ("/moto-api/reset", f"/moto-api/seed?a={seed}"):
            urllib.request.urlopen(urllib.request.Request(self.url + path, method="POST"), timeout=10).close()

    def environment(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox",
                "AWS_DEFAULT_REGION": PRIMARY}


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _serve(handler: type[BaseHTTPRequestHandler]) -> _Server:
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, region: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("X-Region", region)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class RegionEndpoint:
    """A region's /api/health: 200 with its region, or 503 while `down`."""

    def __init__(self, region: str):
        self.region, self.down = region, False
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                body = json.dumps({"status": "unhealthy" if endpoint.down else "healthy",
                                   "region": endpoint.region}).encode()
                _reply(self, 503 if endpoint.down else 200, body, endpoint.region)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/health"


class Front:
    """Answers like the failover record would: the primary while its health check passes, else the backup."""

    def __init__(self, moto: MotoServer, primary: RegionEndpoint, backup: RegionEndpoint, health_check_id: str):
        front = self
        self.health_check_id = health_check_id
        self.route53 = boto3.client("route53", region_name=PRIMARY, endpoint_url=moto.url,
                                    aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
        self.primary, self.backup = primary, backup

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                target = front.backup if front.primary_failed() else front.primary
                try:
                    with urllib.request.urlopen(target.url, timeout=2) as response:
                        status, body, region = response.status, response.read(), response.headers["X-Region"]
                except urllib.error.HTTPError as exc:
                    status, body, region = exc.code, exc.read(), exc.headers.get("X-Region", "")
                except (urllib.error.URLError, OSError):
                    status, body, region = 502, b"{}", ""
                _reply(self, status, body, region)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/health"

    def primary_failed(self) -> bool:
        try:
            config = self.route53.get_health_check(HealthCheckId=self.health_check_id)["HealthCheck"][
                "HealthCheckConfig"]
        except Exception:  # noqa: BLE001 (moto down: Route53's data plane would keep its last answer)
            config = {}
        if config.get("Inverted") or config.get("Disabled"):
            return True
        try:
            with urllib.request.urlopen(self.primary.url, timeout=1) as response:
                return response.status >= 300
        except (urllib.error.URLError, OSError):
            return True


def _client(moto: MotoServer, service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=moto.url, aws_access_key_id="sandbox",
                        aws_secret_access_key="sandbox")


def build_world(moto: MotoServer, primary_url: str, backup_url: str) -> tuple[dict, dict]:
    """Create in moto what the two stacks would have, and return their outputs (DESIGN.md contract)."""
    outputs = {}
    for region, role, counts in ((PRIMARY, "primary", ACTIVE), (BACKUP, "backup", STANDBY)):
        ec2 = _client(moto, "ec2", region)
        vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16" if role == "primary" else "10.20.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{10 if role == 'primary' else 20}.0.0/19")[
            "Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
        ecs = _client(moto, "ecs", region)
        ecs.create_cluster(clusterName=IDENTIFIER)
        for name, count in counts.items():
            ecs.register_task_definition(family=f"{IDENTIFIER}-{name}", requiresCompatibilities=["FARGATE"],
                                         networkMode="awsvpc", cpu="256", memory="512",
                                         containerDefinitions=[{"name": name, "image": "sandbox", "memory": 512}])
            ecs.create_service(cluster=IDENTIFIER, serviceName=name, taskDefinition=f"{IDENTIFIER}-{name}",
                               desiredCount=count, launchType="FARGATE", networkConfiguration={
                                   "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})
            # moto starts no tasks on create; an update makes its running count follow, as tasks would.
            ecs.update_service(cluster=IDENTIFIER, service=name, desiredCount=count)
        url = primary_url if role == "primary" else backup_url
        host, port = url.split("//")[1].split("/")[0].split(":")
        health = _client(moto, "route53", PRIMARY).create_health_check(
            CallerReference=f"{role}-{time.time()}", HealthCheckConfig={
                "Type": "HTTP", "IPAddress": host, "Port": int(port), "ResourcePath": "/api/health",
                "RequestInterval": 10, "FailureThreshold": 3})["HealthCheck"]["Id"]
        s3 = _client(moto, "s3", region)
        bucket = f"{IDENTIFIER}-backups-{region}-{ACCOUNT}"
        s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else
                                           {"CreateBucketConfiguration": {"LocationConstraint": region}}))
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        outputs[role] = {
            "region": region, "role": role, "app_domain": "app.trading.example.com", "health_check_id": health,
            "db_instance_identifier": IDENTIFIER, "db_instance_arn": f"arn:aws:rds:{region}:{ACCOUNT}:db:{IDENTIFIER}",
            "db_is_replica": role == "backup", "ecs_cluster_name": IDENTIFIER,
            "ecs_services": {n: n for n in ACTIVE},
            "ecs_capacity": {n: {"min": min(c, 1), "max": 10 if n != "beat" else 1, "desired": c}
                             for n, c in ACTIVE.items()},
            "backup_bucket_name": bucket, "backup_bucket_arn": f"arn:aws:s3:::{bucket}",
            "alarm_topic_arn": f"arn:aws:sns:{region}:{ACCOUNT}:alarms", "kms_key_arn": "", "alb_dns_name": url,
        }
    writer = _client(moto, "rds", PRIMARY).create_db_instance(
        DBInstanceIdentifier=IDENTIFIER, DBInstanceClass="db.r6g.large", Engine="postgres", MultiAZ=True,
        MasterUsername="trading_admin", MasterUserPassword="sandbox-only-password", AllocatedStorage=100)
    rds_backup = _client(moto, "rds", BACKUP)
    rds_backup.create_db_instance_read_replica(DBInstanceIdentifier=IDENTIFIER, DBInstanceClass="db.r6g.large",
                                               SourceDBInstanceIdentifier=writer["DBInstance"]["DBInstanceArn"])
    rds_backup.create_db_snapshot(DBSnapshotIdentifier=f"{IDENTIFIER}-nightly", DBInstanceIdentifier=IDENTIFIER)
    _client(moto, "s3", PRIMARY).put_bucket_replication(
        Bucket=outputs["primary"]["backup_bucket_name"], ReplicationConfiguration={
            "Role": f"arn:aws:iam::{ACCOUNT}:role/backups-replication",
            "Rules": [{"ID": "backups-to-peer-region", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
                       "DeleteMarkerReplication": {"Status": "Enabled"},
                       "Destination": {"Bucket": outputs["backup"]["backup_bucket_arn"]}}]})
    return outputs["primary"], outputs["backup"]


class World:
    """moto, the two regions' endpoints and the front, with the stacks' outputs written to `directory`."""

    def __init__(self, directory: Path, moto: MotoServer | None = None):
        self.directory = directory
        self.moto = moto or MotoServer().start()
        self.regions = {PRIMARY: RegionEndpoint(PRIMARY), BACKUP: RegionEndpoint(BACKUP)}
        self.build()

    def build(self) -> None:
        self.moto.reset()
        primary, backup = build_world(self.moto, self.regions[PRIMARY].url, self.regions[BACKUP].url)
        self.front = Front(self.moto, self.regions[PRIMARY], self.regions[BACKUP], primary["health_check_id"])
        self.outputs = {"primary": primary, "backup": backup}
        for role, document in self.outputs.items():
            (self.directory / f"{role}.json").write_text(json.dumps(document, indent=2))

    def args(self) -> list[str]:
        return ["--primary-outputs", str(self.directory / "primary.json"),
                "--backup-outputs", str(self.directory / "backup.json")]

    def close(self, stop_moto: bool = True) -> None:
        for server in (self.front.server, *(r.server for r in self.regions.values())):
            server.shutdown()
        if stop_moto:
            self.moto.stop()


def main() -> int:
    """Build the world, run region-evacuation --execute end to end, print the report."""
    with tempfile.TemporaryDirectory(prefix="drill-sandbox-") as tmp:
        world = World(Path(tmp))
        try:
            print(__doc__.split("\n\n")[1].replace("\n", " "), flush=True)
            os.environ.update(world.moto.environment())
            from drills.__main__ import main as drills
            reports = Path("drill-reports")
            code = drills(["run", "--scenario", "region-evacuation", "--execute", "--confirm", BACKUP,
                           "--probe-url", world.front.url, "--probe-interval", "0.2", "--probe-timeout", "30",
                           "--promotion-keeps-source-link",
                           "--journal-dir", str(Path(tmp) / "journals"), "--report-dir", str(reports),
                           *world.args()])
            newest = max(reports.glob("drill-*.md"), key=lambda p: p.stat().st_mtime, default=None)
            if newest:
                print("\n" + newest.read_text())
            return code
        finally:
            world.close()


if __name__ == "__main__":
    sys.exit(main())
