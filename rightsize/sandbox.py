"""A world to right-size, in moto_server on loopback: 14 days of metrics written with PutMetricData, the RDS
instance as RDS describes it, and a copy of this repository's stack files with the database one class larger (so
that it has a smaller one). The tests use it; `python -m rightsize.sandbox` runs the tool on it, writes, and prices
the result with synth:

    .venv/bin/python -m rightsize.sandbox            # or: make rightsize-sandbox
"""

from __future__ import annotations

from regions import console

if __name__ == "__main__":  # before the imports below; the installed commands: regions/commands.py
    console.stop_at_once("rightsize.sandbox")

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from drills import reconcile
from drills.sandbox import MotoServer
from rightsize.__main__ import main as rightsize
from synth.__main__ import main as synth
from synth.engine import REPO, evaluate

PRIMARY, BACKUP = "us-east-1", "us-west-2"
GIB = 1024 ** 3


# One datapoint every three hours for 14 days, read back in hourly periods: moto computes GetMetricData period by
# period over every datapoint it holds, so a real 300-second read of a fine series would take minutes here.
STEP = timedelta(hours=3)
PERIOD = 3600


def put(cw: Any, namespace: str, name: str, dimensions: dict[str, str], value: Any, days: float = 14,
         unit: str = "Percent") -> None:
    """A datapoint every STEP over the last `days`; `value` is a number or a function of the days since the first."""
    now = datetime.now(UTC)
    count = int(timedelta(days=days) / STEP)
    data = [{"MetricName": name, "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
             "Timestamp": now - (count - i) * STEP, "Unit": unit,
             "Value": float(value(i * STEP / timedelta(days=1)) if callable(value) else value)} for i in range(count)]
    for first in range(0, len(data), 500):
        cw.put_metric_data(Namespace=namespace, MetricData=data[first:first + 500])


def _service(cw: Any, outputs: dict, name: str, cpu: float, memory: float, tasks: int, days: float = 14) -> None:
    d = {"ClusterName": outputs["ecs_cluster_name"], "ServiceName": outputs["ecs_services"][name]}
    put(cw, "AWS/ECS", "CPUUtilization", d, cpu, days)
    put(cw, "AWS/ECS", "MemoryUtilization", d, memory, days)
    put(cw, "ECS/ContainerInsights", "RunningTaskCount", d, tasks, days, unit="Count")
    # Container Insights: what the running tasks reserve, the size the percentages are of (the stack file's).
    cpu_units, mib = {"api": (1024, 2048), "web": (256, 512), "worker": (1024, 2048), "beat": (256, 512)}[name]
    put(cw, "ECS/ContainerInsights", "CpuReserved", d, tasks * cpu_units, days, unit="None")
    put(cw, "ECS/ContainerInsights", "MemoryReserved", d, tasks * mib, days, unit="Megabytes")


def seed(moto: MotoServer, outputs: dict) -> None:
    """An over-provisioned api, database and cache; a busy web at its maximum; a worker never measured; a beat
    measured on 3 days; storage used up at 2.5 GiB a day."""
    cw = moto.client("cloudwatch", PRIMARY)
    _service(cw, outputs, "api", cpu=12, memory=25, tasks=2)
    _service(cw, outputs, "web", cpu=91, memory=40, tasks=10)
    _service(cw, outputs, "beat", cpu=5, memory=10, tasks=1, days=3)
    db = {"DBInstanceIdentifier": outputs["db_instance_identifier"]}
    put(cw, "AWS/RDS", "CPUUtilization", db, lambda day: 8 + (day % 1) * 10)
    put(cw, "AWS/RDS", "FreeableMemory", db, 24 * GIB, unit="Bytes")
    put(cw, "AWS/RDS", "DatabaseConnections", db, 120, unit="Count")
    put(cw, "AWS/RDS", "ReadIOPS", db, 300, unit="Count/Second")
    put(cw, "AWS/RDS", "WriteIOPS", db, 200, unit="Count/Second")
    put(cw, "AWS/RDS", "FreeStorageSpace", db, lambda day: (80 - 2.5 * day) * GIB, unit="Bytes")
    for member in outputs["cache_member_clusters"]:
        node = {"CacheClusterId": member, "CacheNodeId": "0001"}
        put(cw, "AWS/ElastiCache", "CPUUtilization", node, 6)
        put(cw, "AWS/ElastiCache", "EngineCPUUtilization", node, 4)
        put(cw, "AWS/ElastiCache", "DatabaseMemoryUsagePercentage", node, 11)
        put(cw, "AWS/ElastiCache", "CurrConnections", node, 180, unit="Count")
    put(cw, "AWS/ApplicationELB", "RequestCount", {"LoadBalancer": outputs["alb_arn_suffix"]}, 9000, unit="Count")
    moto.client("rds", PRIMARY).create_db_instance(
        DBInstanceIdentifier=outputs["db_instance_identifier"], DBInstanceClass="db.r6g.xlarge", Engine="postgres",
        AllocatedStorage=100, MasterUsername="trading_admin", MasterUserPassword="not-a-secret-0")


def project_copy(directory: Path) -> Path:
    """This repository's stack files, comments kept, with the database one class larger in both."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "Pulumi.primary.yaml", "Pulumi.backup.yaml"):
        shutil.copy(REPO / name, directory / name)
    reconcile.write(directory, [{"file": f"Pulumi.{s}.yaml", "key": "trading-platform:database.instanceClass",
                                 "value": "db.r6g.xlarge"} for s in ("primary", "backup")])
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rightsize.sandbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="build the project copy and outputs here and keep them (default: a temporary directory)")
    args = parser.parse_args(argv)

    directory = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="rightsize-sandbox-"))
    server = MotoServer()
    saved = {k: os.environ.get(k) for k in server.environment()}
    try:
        server.start()
        os.environ.update(server.environment())
        print(f"rightsize sandbox: moto at {server.url}; project copy in {directory / 'project'}", file=sys.stderr)
        outputs = evaluate("primary", REPO).outputs
        (directory / "primary-outputs.json").write_text(json.dumps(outputs, indent=2))
        seed(server, outputs)
        project = project_copy(directory / "project")
        argv = ["--outputs", str(directory / "primary-outputs.json"), "--stack-file",
                str(project / "Pulumi.primary.yaml"), "--period", str(PERIOD)]
        for step in (argv, [*argv, "--write"]):
            print(f"\n$ python -m rightsize {' '.join(step)}", flush=True)
            if rightsize(step) != 0:
                return 1
        print(f"\n$ python -m synth --project-dir {project} --cost", flush=True)
        return synth(["--project-dir", str(project), "--cost"])
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    console.run(main, "rightsize.sandbox")
