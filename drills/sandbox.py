"""An emulated two-region world on this machine, for drills without AWS: `make drill-sandbox`.

It is an emulation: moto stands for AWS (state in memory, nothing really fails over), two HTTP servers on
127.0.0.1 stand for the regions' load balancers, a front server stands for Route53's failover answer (the
primary while its endpoint answers and the failover switch is off, read from the latest SwitchToStandby
datapoint in moto's us-west-2 CloudWatch; no data is off; else the backup), and two PostgreSQL servers
stand for the RDS writer and its replica: a streaming standby that the emulated promotion promotes, so the
drill's heartbeat measures the data a failover loses through a real database. moto evaluates no alarms,
simulates no DNS answers or ReplicaLag, and keeps a promoted replica's source link (AWS drops it), so drills
here run with --promotion-keeps-source-link. The switch alarm has a 1-second period (CloudWatch's smallest
is 10 s, the stacks' 60 s) so that a drill runs in seconds. Not exercised here: CloudWatch evaluating the
switch's alarm and Route53's calculated health check (the front reads the metric itself), an impaired
region that times out or answers 5xx (the tests' unreachable us-east-1 refuses connections), and RDS's
ReplicaLag of -1 for a stopped replication (tests inject plain datapoints). AWS calls go through a front that
emulates what moto lacks: Secrets Manager's StopReplicationToReplica (the replica becomes a standalone secret
with the same ARN and value) and ElastiCache's Global Datastores (describe, failover). The password's rotation is
not configured in moto (it would run the function in Docker), so cancelling it is not exercised; the fence at the
database revokes moto's security group rule and reboots moto's instance, which ends no session on the
PostgreSQL servers.
"""

from __future__ import annotations

from regions import console

if __name__ == "__main__":  # before the imports below; the installed commands: regions/commands.py
    console.stop_at_once("drills.sandbox")

import argparse
import http.client
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from drills import replication, switch
from drills.capacity import DIMENSION, NAMESPACE, SCALED
from drills.emulated_pulumi import Pulumi
from drills.loopback import free_port
from drills.outputs import FailoverSwitch, ReplicationProbe
from drills.pgpair import PostgresMissing, PostgresPair, Server
from drills.probes import Mode, ProbeProcesses
from regions.sessions import AWS_ERRORS, new_session
from synth.engine import REPO

ACCOUNT = "123456789012"
PRIMARY, BACKUP = "us-east-1", "us-west-2"
IDENTIFIER = "trading-platform-production"
SECRET_PREFIX = "trading-platform/production"
# The shared secrets the world holds (the stacks have four; these two are one with the password and one without).
SHARED = ("database-credentials", "jwt-secret")
RESTART_RULE = f"{IDENTIFIER}-password-restarts"
# The caches' Global Datastore where a world has one (AWS prefixes the id by the creating region: ldgnf, us-east-1).
GLOBAL_DATASTORE = f"ldgnf-{IDENTIFIER}"
_ELASTICACHE_XMLNS = "http://elasticache.amazonaws.com/doc/2015-02-02/"


def _capacity(low: int, high: int, desired: int) -> dict[str, int]:
    return {"min": low, "max": high, "desired": desired}


# As the stack files have them: what a region runs while active, and while it is the standby.
ACTIVE = {"api": _capacity(2, 10, 2), "web": _capacity(2, 10, 2), "worker": _capacity(1, 10, 2),
          "beat": _capacity(1, 1, 1)}
STANDBY = {"api": _capacity(1, 10, 1), "web": _capacity(1, 10, 1), "worker": _capacity(0, 0, 0),
           "beat": _capacity(0, 0, 0)}
SWITCH = FailoverSwitch(region=BACKUP, namespace="TradingPlatform/Failover", metric_name="SwitchToStandby",
                        dimensions={"Environment": "production"}, alarm_name=f"{IDENTIFIER}-failover-switch")
# The stacks' replication probe (stack output replication_probe), beating five times a second here.
PROBE = ReplicationProbe(
    namespace="TradingPlatform/ReplicationProbe", dimensions={"Environment": "production"},
    writer_dimension="WriterRegion", interval_seconds=0.2, max_replication_age_seconds=60,
    metrics={"last_acknowledged_write": "LastAcknowledgedWrite", "last_acknowledged_seq": "LastAcknowledgedSeq",
             "newest_replicated_write": "NewestReplicatedWrite", "newest_replicated_seq": "NewestReplicatedSeq",
             "replication_age": "ReplicationAge"})
# How far back the front looks for the switch, in the alarm's 1-second periods: the alarm keeps its state.
FRONT_READ_PERIODS = 3600


class MotoServer:
    """`moto_server` on a loopback port, started and stopped by its owner."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._clients: dict[tuple[str, str], Any] = {}

    def start(self) -> MotoServer:
        executable = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or "moto_server"
        # Without moto's catalogue of public AMIs (nothing here runs EC2 instances): loading it into each region's
        # EC2 backend, again after every reset, was a third of the server's CPU in the tests.
        self.process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"})
        try:
            deadline = time.time() + 20
            while time.time() < deadline:
                try:
                    urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                    return self
                except (urllib.error.URLError, OSError):
                    time.sleep(0.1)
            raise RuntimeError(f"moto_server did not start on port {self.port}")
        except BaseException:  # interrupted while it starts: nobody else knows of it yet
            self.stop()
            raise

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def failure(self) -> str | None:
        """What became of the server, once it is gone (a server that stops refuses connections a moment before it
        exits)."""
        try:
            code = self.process.wait(timeout=2) if self.process else None
        except subprocess.TimeoutExpired:
            return None
        return None if code is None else f"the AWS emulator stopped (moto_server exited with {code})"

    def reset(self, seed: int = 7) -> None:
        """Forget all state, and seed moto's id generator so a rebuilt world gets the same ids."""
        for path in ("/moto-api/reset", f"/moto-api/seed?a={seed}"):
            urllib.request.urlopen(urllib.request.Request(self.url + path, method="POST"), timeout=10).close()

    def client(self, service: str, region: str) -> Any:
        """This server's client of `service` in `region`, made once: a client is thread-safe, and it keeps the
        configuration it was made with (a test may point AWS_CONFIG_FILE at an operator's profile later)."""
        if (service, region) not in self._clients:
            self._clients[service, region] = new_session().client(
                service, region_name=region, endpoint_url=self.url, aws_access_key_id="sandbox",
                aws_secret_access_key="sandbox")
        return self._clients[service, region]

    def environment(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox",
                "AWS_DEFAULT_REGION": PRIMARY}


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def _serve(handler: type[BaseHTTPRequestHandler]) -> _Server:
    server = _Server(("127.0.0.1", 0), handler)
    # shutdown() waits for the loop's next poll: a short one closes a world quickly.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
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
    """Answers like the failover record would: the primary while its endpoint answers and the switch is off
    (the PRIMARY record's calculated health check), else the backup."""

    def __init__(self, moto: MotoServer, primary: RegionEndpoint, backup: RegionEndpoint):
        front = self
        self.cloudwatch = moto.client("cloudwatch", SWITCH.region)
        self.period = switch.alarm(self.cloudwatch, SWITCH)["Period"]
        self.primary, self.backup = primary, backup
        self.switched = False

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                target = front.primary if front.primary_serving() else front.backup
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

    def switch_on(self) -> bool:
        try:
            found = switch.reading(self.cloudwatch, SWITCH, self.period, time.time(), FRONT_READ_PERIODS)
        except (ClientError, BotoCoreError):  # moto down: Route53's data plane would keep its last answer
            return self.switched
        self.switched = found is not None and found[0] >= 1
        return self.switched

    def primary_serving(self) -> bool:
        if self.switch_on():
            return False
        try:
            with urllib.request.urlopen(self.primary.url, timeout=1) as response:
                return response.status < 300
        except (urllib.error.URLError, OSError):
            return False


def _services(moto: MotoServer, region: str, capacities: dict[str, dict[str, int]], cidr: str) -> dict[str, Any]:
    """The cluster, its four services at their desired counts, and the scalable targets of api, web and worker;
    the database's security group with its ingress from the tasks'. Returns the stack's `db_fence` output."""
    ec2 = moto.client("ec2", region)
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace("/16", "/19"))["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": group}]}])
    ecs = moto.client("ecs", region)
    ecs.create_cluster(clusterName=IDENTIFIER)
    scaling = moto.client("application-autoscaling", region)
    for name, capacity in capacities.items():
        ecs.register_task_definition(family=f"{IDENTIFIER}-{name}", requiresCompatibilities=["FARGATE"],
                                     networkMode="awsvpc", cpu="256", memory="512",
                                     containerDefinitions=[{"name": name, "image": "sandbox", "memory": 512}])
        ecs.create_service(cluster=IDENTIFIER, serviceName=name, taskDefinition=f"{IDENTIFIER}-{name}",
                           desiredCount=capacity["desired"], launchType="FARGATE", networkConfiguration={
                               "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})
        # moto starts no tasks on create; an update makes its running count follow, as tasks would.
        ecs.update_service(cluster=IDENTIFIER, service=name, desiredCount=capacity["desired"])
        if name in SCALED:
            scaling.register_scalable_target(ServiceNamespace=NAMESPACE, ResourceId=f"service/{IDENTIFIER}/{name}",
                                             ScalableDimension=DIMENSION, MinCapacity=capacity["min"],
                                             MaxCapacity=capacity["max"])
    return {"security_group_id": db, "app_security_group_id": group, "port": 5432}


def _bucket(moto: MotoServer, region: str) -> None:
    s3 = moto.client("s3", region)
    bucket = f"{IDENTIFIER}-backups-{region}-{ACCOUNT}"
    s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else
                                       {"CreateBucketConfiguration": {"LocationConstraint": region}}))
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _switch_alarm(moto: MotoServer) -> None:
    """The switch's alarm, as the primary stack makes it but with a 1-second period (see above)."""
    moto.client("cloudwatch", SWITCH.region).put_metric_alarm(
        AlarmName=SWITCH.alarm_name, Namespace=SWITCH.namespace, MetricName=SWITCH.metric_name,
        Dimensions=SWITCH.cloudwatch_dimensions, Statistic="Maximum", Period=1, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold", TreatMissingData="ignore")


def _secret_arns(region: str) -> dict[str, str]:
    return {name: f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{SECRET_PREFIX}/{name}-a1b2c3" for name in SHARED}


def stack_outputs(primary_url: str, backup_url: str, secret_arns: dict[str, dict[str, str]] | None = None,
                  db_endpoints: dict[str, str] | None = None, probe: bool = False) -> dict[str, dict]:
    """The two stacks' outputs (docs/contracts.md) as the world has them, by role. Without a world behind them,
    the secrets' ARNs are made up and the databases' endpoints a closed port, and no replication probe runs."""
    outputs = {}
    for region, role, url in ((PRIMARY, "primary", primary_url), (BACKUP, "backup", backup_url)):
        bucket = f"{IDENTIFIER}-backups-{region}-{ACCOUNT}"
        outputs[role] = {
            "region": region, "role": role, "app_domain": "app.trading.example.com",
            "db_instance_identifier": IDENTIFIER, "db_instance_arn": f"arn:aws:rds:{region}:{ACCOUNT}:db:{IDENTIFIER}",
            "db_endpoint": (db_endpoints or {}).get(region, "127.0.0.1:9"),
            "db_is_replica": role == "backup", "ecs_cluster_name": IDENTIFIER,
            "ecs_services": {n: n for n in ACTIVE}, "ecs_capacity": ACTIVE, "ecs_standby_capacity": STANDBY,
            "backup_bucket_name": bucket, "backup_bucket_arn": f"arn:aws:s3:::{bucket}",
            "alarm_topic_arn": f"arn:aws:sns:{region}:{ACCOUNT}:alarms", "kms_key_arn": "", "alb_dns_name": url,
            "secret_arns": (secret_arns or {}).get(region) or _secret_arns(region),
            "active_region": PRIMARY, "replication_probe": asdict(PROBE) if probe else None,
        }
    outputs["primary"]["failover_switch"] = asdict(SWITCH)
    return outputs


def write_outputs(directory: Path, outputs: dict[str, dict]) -> list[str]:
    """Write the outputs as files; returns the drill's arguments that read them."""
    args = []
    for role, document in outputs.items():
        path = directory / f"{role}.json"
        path.write_text(json.dumps(document, indent=2))
        args += [f"--{role}-outputs", str(path)]
    return args


def build_world(moto: MotoServer, outputs: dict[str, dict]) -> None:
    """Create in moto what the two stacks would have, and add to their outputs what names it."""
    for role, running, cidr in (("primary", ACTIVE, "10.10.0.0/16"), ("backup", STANDBY, "10.20.0.0/16")):
        outputs[role]["db_fence"] = _services(moto, outputs[role]["region"], running, cidr)
        _bucket(moto, outputs[role]["region"])
    _restarts(moto, outputs)
    _switch_alarm(moto)
    writer = moto.client("rds", PRIMARY).create_db_instance(
        DBInstanceIdentifier=IDENTIFIER, DBInstanceClass="db.r6g.large", Engine="postgres", MultiAZ=True,
        MasterUsername="trading_admin", MasterUserPassword="sandbox-only-password", AllocatedStorage=100,
        DeletionProtection=True)
    rds_backup = moto.client("rds", BACKUP)
    rds_backup.create_db_instance_read_replica(DBInstanceIdentifier=IDENTIFIER, DBInstanceClass="db.r6g.large",
                                               SourceDBInstanceIdentifier=writer["DBInstance"]["DBInstanceArn"])
    rds_backup.create_db_snapshot(DBSnapshotIdentifier=f"{IDENTIFIER}-nightly", DBInstanceIdentifier=IDENTIFIER)
    moto.client("s3", PRIMARY).put_bucket_replication(
        Bucket=outputs["primary"]["backup_bucket_name"], ReplicationConfiguration={
            "Role": f"arn:aws:iam::{ACCOUNT}:role/backups-replication",
            "Rules": [{"ID": "backups-to-peer-region", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
                       "DeleteMarkerReplication": {"Status": "Enabled"},
                       "Destination": {"Bucket": outputs["backup"]["backup_bucket_arn"]}}]})


def _secrets(moto: MotoServer, credentials: dict[str, object]) -> dict[str, dict[str, str]]:
    """The shared secrets, created in us-east-1 with their replicas in us-west-2 as the primary stack makes them:
    {region: {name: ARN}}."""
    secrets = moto.client("secretsmanager", PRIMARY)
    values = {"database-credentials": json.dumps(credentials), "jwt-secret": "sandbox-only-jwt-secret"}
    arns = {name: secrets.create_secret(Name=f"{SECRET_PREFIX}/{name}", SecretString=values[name],
                                        AddReplicaRegions=[{"Region": BACKUP}])["ARN"] for name in SHARED}
    return {region: {name: arn.replace(f":{PRIMARY}:", f":{region}:") for name, arn in arns.items()}
            for region in (PRIMARY, BACKUP)}


def _restarts(moto: MotoServer, outputs: dict[str, dict]) -> None:
    """Each region's rule restarting its services on a new password: the primary's on its secret, forwarding to
    us-west-2, and the backup's on the same (forwarded) events. Not the rotation itself: moto configures one only
    by running its function, in Docker."""
    credentials = outputs["primary"]["secret_arns"]["database-credentials"]
    pattern = json.dumps({"source": ["aws.secretsmanager"], "detail-type": ["Secret Label Updated"],
                          "resources": [credentials], "detail": {"labelUpdated": ["AWSCURRENT"]}})
    for role in ("primary", "backup"):
        region = outputs[role]["region"]
        events = moto.client("events", region)
        events.put_rule(Name=RESTART_RULE, EventPattern=pattern, State="ENABLED")
        if role == "primary":
            events.put_targets(Rule=RESTART_RULE, Targets=[{
                "Id": "forward", "Arn": f"arn:aws:events:{BACKUP}:{ACCOUNT}:event-bus/default",
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/password-restarts-events"}])
        outputs[role]["password_restarts"] = {"rule_name": RESTART_RULE, "secret_arn": credentials}


def stop_replication_to_replica(moto: MotoServer, region: str, secret_id: str) -> dict[str, str]:
    """Secrets Manager's StopReplicationToReplica, which moto lacks, called in the replica's `region`: the replica
    becomes a standalone secret with the same ARN, value and tags, and its primary stops replicating to it."""
    replica = moto.client("secretsmanager", region)
    described = replica.describe_secret(SecretId=secret_id)
    source = described.get("PrimaryRegion")
    if not source or source == region:
        raise ValueError(f"{secret_id} is not a replica in {region}")
    value = replica.get_secret_value(SecretId=secret_id)["SecretString"]
    moto.client("secretsmanager", source).remove_regions_from_replication(
        SecretId=described["Name"], RemoveReplicaRegions=[region])
    # moto takes a resource's id from this tag: the suffix AWS keeps.
    suffix = described["ARN"].rsplit("-", 1)[1]
    arn = replica.create_secret(Name=described["Name"], SecretString=value,
                                Tags=[{"Key": "_custom_id_", "Value": suffix}, *described.get("Tags", [])])["ARN"]
    replica.untag_resource(SecretId=arn, TagKeys=["_custom_id_"])
    return {"ARN": arn}


def _elasticache_error(code: str, message: str) -> bytes:
    return (f"<ErrorResponse xmlns='{_ELASTICACHE_XMLNS}'><Error><Type>Sender</Type><Code>{code}</Code><Message>"
            f"{message}</Message></Error></ErrorResponse>").encode()


def global_datastore_call(datastores: dict[str, dict[str, Any]], form: dict[str, list[str]]) -> tuple[int, bytes]:
    """ElastiCache's DescribeGlobalReplicationGroups and FailoverGlobalReplicationGroup (Query API, XML answers) over
    `datastores`: a failover makes the named member the primary and every other one a secondary."""
    action, name = form["Action"][0], form.get("GlobalReplicationGroupId", [""])[0]
    found = datastores.get(name)
    if found is None:
        return 404, _elasticache_error("GlobalReplicationGroupNotFoundFault", f"{name} not found")
    if action == "FailoverGlobalReplicationGroup":
        region, group = form["PrimaryRegion"][0], form["PrimaryReplicationGroupId"][0]
        if found["members"].get(region) != group:
            return 400, _elasticache_error("InvalidParameterValue", f"{group} in {region} is not a member of {name}")
        found["primary"] = region
    members = "".join(f"<GlobalReplicationGroupMember><ReplicationGroupId>{group}</ReplicationGroupId>"
                      f"<ReplicationGroupRegion>{region}</ReplicationGroupRegion><Role>"
                      f"{'PRIMARY' if region == found['primary'] else 'SECONDARY'}</Role><Status>associated</Status>"
                      "</GlobalReplicationGroupMember>" for region, group in found["members"].items())
    described = (f"<GlobalReplicationGroupId>{name}</GlobalReplicationGroupId><Status>available</Status>"
                 f"<Members>{members}</Members>")
    result = (f"<GlobalReplicationGroups><GlobalReplicationGroup>{described}</GlobalReplicationGroup>"
              "</GlobalReplicationGroups>" if action == "DescribeGlobalReplicationGroups" else
              f"<GlobalReplicationGroup>{described}</GlobalReplicationGroup>")
    return 200, (f"<{action}Response xmlns='{_ELASTICACHE_XMLNS}'><{action}Result>{result}</{action}Result>"
                 f"<ResponseMetadata><RequestId>sandbox</RequestId></ResponseMetadata></{action}Response>").encode()


class AwsFront:
    """Forwards every AWS call to moto, and emulates what moto lacks: where RDS's promotion would promote the
    replica's engine, it promotes the PostgreSQL standby first (moto's promotion changes only its own records), and
    it answers Secrets Manager's StopReplicationToReplica."""

    def __init__(self, moto: MotoServer, pair: PostgresPair | None, databases: dict[str, Server]):
        target = urllib.parse.urlsplit(moto.url)
        # Global Datastores, which moto lacks: id -> {"primary": region, "members": {region: replication group}}.
        self.datastores: dict[str, dict[str, Any]] = {}
        datastores = self.datastores

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                # The signature's scope names the region: .../<date>/<region>/<service>/aws4_request.
                region = self.headers.get("Authorization", "").split("Credential=")[-1].split("/")[2:3]
                if self.headers.get("X-Amz-Target") == "secretsmanager.StopReplicationToReplica":
                    try:
                        answer = stop_replication_to_replica(moto, region[0], json.loads(body)["SecretId"])
                    except (ValueError, ClientError) as exc:
                        error = {"__type": "InvalidRequestException", "message": str(exc)}
                        _reply(self, 400, json.dumps(error).encode(), region[0])
                    else:
                        _reply(self, 200, json.dumps(answer).encode(), region[0])
                    return
                form = urllib.parse.parse_qs(body.decode(errors="replace"))
                if form.get("Action", [""])[0] in ("DescribeGlobalReplicationGroups", "FailoverGlobalReplicationGroup"):
                    status, answer = global_datastore_call(datastores, form)
                    self.send_response(status)
                    self.send_header("Content-Type", "text/xml")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                if pair and b"Action=PromoteReadReplica" in body:
                    pair.promote(databases[region[0]])
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                try:
                    try:
                        upstream.request(self.command, self.path, body, dict(self.headers))
                        response = upstream.getresponse()
                        content = response.read()
                    except (OSError, http.client.HTTPException):
                        # As a gateway answers when what is behind it is gone (no body: the services' protocols
                        # differ, JSON or XML): botocore retries, then raises a ClientError, not a traceback.
                        self.send_response(502)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(response.status)
                    for name, value in response.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                            self.send_header(name, value)
                    self.send_header("Content-Length", str(len(content)))
                    self.end_headers()
                    self.wfile.write(content)
                finally:
                    upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815 (http.server's names)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


class World:
    """moto, the two regions' endpoints and the front, with the stacks' outputs written to `directory`. AWS calls go
    through `environment()`'s endpoint, which emulates what moto lacks (AwsFront). With a PostgreSQL pair, the
    outputs' databases are its servers and a promotion promotes its standby."""

    def __init__(self, directory: Path, moto: MotoServer | None = None, postgres: PostgresPair | None = None,
                 global_datastore: bool = False):
        self.directory, self.postgres, self.global_datastore = directory, postgres, global_datastore
        self.moto = moto or MotoServer().start()
        self._owns_moto = moto is None
        self.regions = {PRIMARY: RegionEndpoint(PRIMARY), BACKUP: RegionEndpoint(BACKUP)}
        # Each region's database server: the RDS instance of that region, whatever its role.
        self.databases = {PRIMARY: postgres.writer, BACKUP: postgres.standby} if postgres else {}
        self.aws = AwsFront(self.moto, postgres, self.databases)
        self.front: Front | None = None
        self.probes: ProbeProcesses | None = None
        try:
            self.build()
        except BaseException:
            self.close(stop_moto=self._owns_moto)
            raise

    def build(self) -> None:
        self.moto.reset()
        pair = self.postgres
        credentials = {"engine": "postgres", "host": "127.0.0.1", "port": pair.writer.port if pair else 9,
                       "dbname": pair.dbname if pair else "trading", "username": pair.username if pair else "trading",
                       "password": pair.password if pair else "sandbox-only-password"}
        endpoints = ({PRIMARY: f"127.0.0.1:{pair.writer.port}", BACKUP: f"127.0.0.1:{pair.standby.port}"}
                     if pair else None)
        secret_arns = _secrets(self.moto, credentials)
        self.outputs = stack_outputs(self.regions[PRIMARY].url, self.regions[BACKUP].url, secret_arns, endpoints,
                                     probe=pair is not None)
        build_world(self.moto, self.outputs)
        if self.global_datastore:
            # As cache.globalDatastore makes it: the primary's cache its primary, the backup's its secondary.
            for role in ("primary", "backup"):
                self.outputs[role].update(cache_global_datastore=GLOBAL_DATASTORE,
                                          cache_replication_group_id=IDENTIFIER)
            self.aws.datastores[GLOBAL_DATASTORE] = {"primary": PRIMARY, "members": {PRIMARY: IDENTIFIER,
                                                                                     BACKUP: IDENTIFIER}}
        if pair:
            # As the stacks deploy them: the writer's beside us-east-1's writer, the reader beside the replica.
            self.probes = ProbeProcesses(PROBE, "production", pair, self.databases,
                                         {region: arns["database-credentials"] for region, arns in secret_arns.items()},
                                         self.moto.environment(), self.moto.url, self.directory / "probe-logs")
            self.probes.start(PRIMARY, Mode("writer", PRIMARY))
            self.probes.start(BACKUP, Mode("reader", PRIMARY))
            # Deployed stacks have been measuring for a while: the drill finds both halves published.
            self.wait_for_probe(BACKUP, PRIMARY)
        self.front = Front(self.moto, self.regions[PRIMARY], self.regions[BACKUP])
        self._args = write_outputs(self.directory, self.outputs)

    def wait_for_probe(self, region: str, writer_region: str, timeout: float = 60) -> None:
        """Until the probe beside `region`'s replica has published a reading of `writer_region`'s heartbeats."""
        cloudwatch = self.client("cloudwatch", region)
        deadline = time.time() + timeout
        while replication.newest_replicated(cloudwatch, PROBE, writer_region, time.time() - 5, time.time()) is None:
            if time.time() > deadline:
                raise RuntimeError(f"the replication probe in {region} published nothing within {timeout:g} s")
            time.sleep(0.2)

    def outputs_args(self) -> list[str]:
        """The arguments that read this world's stack outputs."""
        return list(self._args)

    def args(self) -> list[str]:
        """The drill's arguments for this world's outputs, with its databases' certificate for --db-probe."""
        return self._args + (["--db-ca-bundle", str(self.postgres.ca_bundle)] if self.postgres else [])

    def client(self, service: str, region: str) -> Any:
        return self.moto.client(service, region)

    def environment(self) -> dict[str, str]:
        return {**self.moto.environment(), "AWS_ENDPOINT_URL": self.aws.url}

    def close(self, stop_moto: bool = True) -> None:
        if self.probes:
            self.probes.close()
        servers = [*([self.front.server] if self.front else []), *(r.server for r in self.regions.values())]
        for server in [*servers, self.aws.server]:
            server.shutdown()
        if stop_moto:
            self.moto.stop()


def _setenv(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def main(argv: list[str] | None = None) -> int:
    """Build the world (moto, the regions' endpoints, two PostgreSQL servers, the replication probes), then follow
    docs/runbook.md in it, every command as written: a region evacuation with us-east-1 lost, its reconcile and, once
    us-east-1 is back, the commands that rebuild us-east-1's replica; the planned failback and the commands that
    rebuild us-west-2's; a DNS failover drill. `pulumi` is emulated from the program's own evaluation
    (drills/emulated_pulumi.py). Ends with both stack files compared with the repository's; the drills' reports are
    written to drill-reports/."""
    parser = argparse.ArgumentParser(prog="python -m drills.sandbox", description=main.__doc__)
    parser.add_argument("--evacuation-only", action="store_true",
                        help="follow the runbook's section 1 only (us-east-1 is down), then stop")
    args = parser.parse_args(argv)
    from drills.runbook import RUNBOOK, Runbook, sections  # it builds on this module's RoundTrip
    chosen = sections(RUNBOOK.read_text(encoding="utf-8"))
    reports, cwd = Path("drill-reports").resolve(), Path.cwd()
    try:
        with tempfile.TemporaryDirectory(prefix="drill-sandbox-") as tmp:
            print("starting two PostgreSQL servers (writer and streaming standby) and moto on loopback ...",
                  flush=True)
            with PostgresPair() as pair:
                world = World(Path(tmp), postgres=pair)
                try:
                    print(__doc__.split("\n\n")[1].replace("\n", " "), flush=True)
                    os.environ.update(world.environment())
                    trip = RoundTrip(world, Path(tmp), reports)
                    book = Runbook(trip, _setenv, reports=reports)
                    os.chdir(trip.project)
                    code = book.follow(chosen[:2] if args.evacuation_only else chosen)
                    if code or args.evacuation_only:
                        return code
                    same = [name for name in ("Pulumi.primary.yaml", "Pulumi.backup.yaml")
                            if (trip.project / name).read_text() == (REPO / name).read_text()]
                    print(f"\nstack files as they started: {', '.join(same) or 'neither'}")
                    return 0 if len(same) == 2 else 1
                except AWS_ERRORS as exc:
                    # The sandbox's own calls (the emulated pulumi, the world's readings) go to moto directly.
                    print(f"drills.sandbox: {world.moto.failure() or 'an AWS call failed'}: {exc}", file=sys.stderr)
                    return 1
                finally:
                    os.chdir(cwd)
                    world.close()
    except (PostgresMissing, RuntimeError) as exc:
        print(f"drills.sandbox: {exc}", file=sys.stderr)
        return 2


class RoundTrip:
    """The drill tool's own commands, in the order an operator runs them, with `pulumi` emulated."""

    def __init__(self, world: World, tmp: Path, reports: Path, say: Callable[[str], None] = print):
        self.world, self.reports, self.say = world, reports, say
        self.journals = tmp / "journals"
        self.project = tmp / "project"
        self.project.mkdir()
        for name in ("Pulumi.yaml", "Pulumi.primary.yaml", "Pulumi.backup.yaml"):
            shutil.copy(REPO / name, self.project / name)
        self.pulumi = Pulumi(world, self.project)

    def drills(self, *args: str) -> int:
        from drills.__main__ import main as drills
        return drills(list(args))

    def emulated(self) -> list[str]:
        """What a drill needs in this world beyond what an operator types: the front's health URL, a probe pace for
        a drill of seconds, and --promotion-keeps-source-link (moto keeps a promoted replica's source link)."""
        return ["--probe-url", self.world.front.url, "--probe-interval", "0.2", "--probe-timeout", "30",
                "--promotion-keeps-source-link"]

    def evacuate(self) -> int:
        return self.drills("run", "--scenario", "region-evacuation", "--confirm", BACKUP, "--execute",
                           *self.emulated(), "--journal-dir", str(self.journals), "--report-dir", str(self.reports),
                           *self.world.args())

    def reconcile(self) -> None:
        """`reconcile --write` of the newest journal, then its commands."""
        journal = max(self.journals.glob("drill-*.json"), key=lambda p: p.stat().st_mtime)
        self.say(f"\n== reconcile {journal.name}")
        if self.drills("reconcile", "--journal", str(journal), "--project-dir", str(self.project), "--write"):
            raise RuntimeError(f"reconcile of {journal} failed")
        plan = json.loads(journal.read_text())["reconcile"]
        for command in plan["commands"]:
            self.run(command)

    def run(self, command: str) -> None:
        if command.lstrip().startswith("#"):
            return
        words = shlex.split(command.split("   #")[0])
        self.say(f"$ {command}")
        if words[:2] == ["pulumi", "refresh"]:
            self.say(f"  {self.pulumi.refresh_database(words[3])}")
        elif words[:2] == ["pulumi", "up"]:
            for line in self.pulumi.up(words[3]) or ["no changes"]:
                self.say(f"  {line}")
        elif words[:4] == ["python", "-m", "drills", "failback"]:
            if self.drills(*words[3:], "--project-dir", str(self.project)):
                raise RuntimeError(f"{command} failed")
        else:  # pulumi preview, the AWS CLI: nothing in this world to show or do
            self.say("  (not emulated)")


if __name__ == "__main__":
    console.run(main, "drills.sandbox")
