"""Monthly cost of an evaluated stack, from the resources as registered and the price table shipped in
`synth/prices.yaml` (each figure with its source and date). Usage the resources cannot tell (storage,
traffic) comes from the stack file's `usage` settings."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from components.probe import MODE_METRICS
from regions.model import UsageSettings
from regions.settings import load_settings
from regions.stackfile import read_stack_file, stack_file_name
from synth.engine import Evaluation, Registration
from synth.mocks import GLOBAL_DATASTORE
from synth.report import top_component

PRICES = Path(__file__).with_name("prices.yaml")
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
GIB = 1024
SECONDS_PER_HOUR = 3600


class PriceTable:
    def __init__(self, region: str, path: Path = PRICES):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        self.hours = document["hours_per_month"]
        self.region = region
        self.figures = document["regions"].get(region, {})
        self.missing: list[str] = []

    def __call__(self, key: str) -> float:
        if key not in self.figures:
            raise LookupError(f"{PRICES.name} has no figure {key} for {self.region}")
        return self.figures[key]["usd"]

    def optional(self, key: str) -> float | None:
        """For sizes a stack file chooses: an unpriced one is reported, not guessed."""
        if key not in self.figures:
            self.missing.append(key)
            return None
        return self.figures[key]["usd"]


def _task_definition(service: Registration, by_id: dict[str, Registration]) -> Registration | None:
    return by_id.get(service.inputs.get("taskDefinition")) or next(
        (d for d in by_id.values() if d.state.get("arn") == service.inputs.get("taskDefinition")), None)


def _fargate(r: Registration, by_id: dict[str, Registration], price: PriceTable) -> tuple[float | None, str]:
    definition = _task_definition(r, by_id)
    if definition is None:
        return None, "task definition not found"
    vcpu, gb = int(definition.inputs["cpu"]) / 1024, int(definition.inputs["memory"]) / GIB
    count = r.inputs.get("desiredCount", 0)
    spot = any(s.get("capacityProvider") == "FARGATE_SPOT" for s in r.inputs.get("capacityProviderStrategies") or [])
    hourly = [price("fargate.vcpu-hour"), price("fargate.gb-hour"), price("fargate.spot-share") if spot else 1.0]
    usd = count * (vcpu * hourly[0] + gb * hourly[1]) * hourly[2] * price.hours
    return usd, f"{count} x ({vcpu:g} vCPU + {gb:g} GB) x {price.hours} h{' on Spot' if spot else ''}"


def _alarm_metrics(r: Registration) -> int:
    queries = r.inputs.get("metricQueries") or []
    return max(1, sum(1 for q in queries if q.get("metric")))


def _item(r: Registration, by_id: dict, usage: UsageSettings, price: PriceTable) -> tuple[float | None, str] | None:
    i, h = r.inputs, price.hours
    t = r.type
    if t == "aws:rds/instance:Instance":
        copies = 2 if i.get("multiAz") else 1
        hourly, storage = price.optional(f"rds.{i['instanceClass']}.hour"), price("rds.gp3.gb-month")
        if hourly is None:
            return None, f"no price for {i['instanceClass']}"
        return (copies * (hourly * h + i.get("allocatedStorage", 0) * storage),
                f"{i['instanceClass']} x{copies} x {h} h + {i.get('allocatedStorage', 0)} GB gp3 x{copies}")
    if t == CACHE:
        # A Global Datastore's secondary sets neither: it runs the datastore's, as AWS reports them.
        engine, node_type = i.get("engine") or r.state.get("engine"), i.get("nodeType") or r.state.get("nodeType")
        hourly = price.optional(f"elasticache.{engine}.{node_type}.hour")
        nodes = i.get("numCacheClusters", 1)
        joined = i.get("globalReplicationGroupId")
        return (None, f"no price for {engine} {node_type}") if hourly is None else (
            nodes * hourly * h, f"{nodes} x {node_type} ({engine}) x {h} h"
            + (f", joined to Global Datastore {joined}" if joined else ""))
    if t == "aws:ecs/service:Service":
        return _fargate(r, by_id, price)
    if t == "aws:lb/loadBalancer:LoadBalancer":
        return (price("alb.hour") + usage.alb_lcu * price("alb.lcu-hour")) * h, f"{h} h + {usage.alb_lcu:g} LCU (usage)"
    if t == "aws:ec2/natGateway:NatGateway":
        nats = max(1, len([x for x in by_id.values() if x.type == t]))
        return (price("nat.hour") * h + usage.nat_gb_per_month / nats * price("nat.gb"),
                f"{h} h + {usage.nat_gb_per_month / nats:g} GB processed (usage, shared by {nats})")
    if t == "aws:ec2/eip:Eip":
        return price("ipv4.hour") * h, f"public IPv4 x {h} h"
    if t == "aws:ec2/vpcEndpoint:VpcEndpoint" and i.get("vpcEndpointType") == "Interface":
        azs = len(i.get("subnetIds") or [])
        return azs * price("endpoint.az-hour") * h, f"{azs} AZ x {h} h"
    if t == "aws:route53/healthCheck:HealthCheck":
        options = sum([i.get("type") == "HTTPS", i.get("requestInterval") == 10, bool(i.get("measureLatency"))])
        return (price("route53.health-check.month") + options * price("route53.health-check.option-month"),
                f"health check + {options} options (HTTPS, 10 s interval, latency)")
    if t == "aws:route53/zone:Zone":
        return price("route53.zone.month"), "hosted zone"
    if t == "aws:kms/key:Key":
        return price("kms.key-month"), "customer-managed key"
    if t == "aws:secretsmanager/secret:Secret":
        copies = 1 + len(i.get("replicas") or [])
        return copies * price("secretsmanager.secret-month"), f"{copies} secret(s) incl. replicas"
    if t == "aws:cloudwatch/metricAlarm:MetricAlarm":
        metrics = _alarm_metrics(r)
        return metrics * price("cloudwatch.alarm-metric-month"), f"alarm on {metrics} metric(s)"
    if t == "aws:cloudwatch/dashboard:Dashboard":
        return price("cloudwatch.dashboard-month"), "dashboard"
    if t == "aws:wafv2/webAcl:WebAcl":
        rules = len(i.get("rules") or [])
        return (price("waf.acl-month") + rules * price("waf.rule-month")
                + usage.waf_million_requests * price("waf.million-requests"),
                f"web ACL + {rules} rules + {usage.waf_million_requests:g} M requests (usage)")
    if t == "aws:s3/bucket:Bucket" and (i.get("tags") or {}).get("BackupPlan"):
        return usage.s3_storage_gb * price("s3.standard.gb-month"), f"{usage.s3_storage_gb:g} GB stored (usage)"
    if t == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
        gb = usage.replication_gb_per_month
        return gb * (price("s3.inter-region.gb") + price("s3.rtc.gb")), f"{gb:g} GB replicated with RTC (usage)"
    if t == "aws:ecr/repository:Repository":
        # usage.ecrStorageGb is every repository's images together.
        repositories = max(1, len([x for x in by_id.values() if x.type == t]))
        gb = usage.ecr_storage_gb / repositories
        return gb * price("ecr.gb-month"), f"{gb:g} GB images (usage, shared by {repositories} repositories)"
    if t == "aws:ecr/replicationConfiguration:ReplicationConfiguration":
        # ECR stores the replicas in the peer region: the same images again.
        return (usage.ecr_storage_gb * price("ecr.gb-month"),
                f"{usage.ecr_storage_gb:g} GB images replicated to the peer region (usage)")
    if t == "aws:backup/vault:Vault":
        return usage.backup_storage_gb * price("backup.rds.gb-month"), f"{usage.backup_storage_gb:g} GB (usage)"
    return None


def _probe_environment(service: Registration, by_id: dict[str, Registration]) -> dict[str, str] | None:
    """The replication probe's contract (components/probe.py) in a service's container, or None for another."""
    definition = _task_definition(service, by_id)
    try:
        containers = json.loads(definition.inputs.get("containerDefinitions") or "[]") if definition else []
    except (TypeError, json.JSONDecodeError):
        return None
    for container in containers:
        variables = {v.get("name"): v.get("value") for v in container.get("environment") or []}
        if variables.get("PROBE_MODE") in MODE_METRICS:
            return variables
    return None


def _probe_cloudwatch(r: Registration, by_id: dict[str, Registration], price: PriceTable) -> tuple[float, str] | None:
    """What a running probe costs in CloudWatch: its metrics, each stored in both regions it publishes to, and one
    PutMetricData request (all its metrics) per heartbeat to each of them. Its alarm is priced with the alarms."""
    variables = _probe_environment(r, by_id)
    if variables is None:
        return None
    tasks = r.inputs.get("desiredCount", 0)
    regions = len({variables.get("PROBE_REGION"), variables.get("PROBE_PEER_REGION")} - {None})
    metrics = len(MODE_METRICS[variables["PROBE_MODE"]]) * regions
    interval = float(variables.get("PROBE_INTERVAL_SECONDS") or 1)
    requests = tasks * regions * price.hours * SECONDS_PER_HOUR / interval
    usd = (tasks and metrics * price("cloudwatch.custom-metric-month")) + requests / 1000 * price(
        "cloudwatch.thousand-requests")
    return usd, (f"{variables['PROBE_MODE']}: {metrics if tasks else 0} custom metrics "
                 f"({len(MODE_METRICS[variables['PROBE_MODE']])} in each of {regions} regions) + {requests:,.0f} "
                 f"PutMetricData requests ({tasks} task, one every {interval:g} s to each region)")


def _global_datastore_replication(evaluation: Evaluation, by_urn: dict[str, Registration], usage: UsageSettings,
                                  price: PriceTable) -> dict[str, Any] | None:
    """What a Global Datastore replicates, as cross-region data transfer out of its primary's region: the activeRegion's
    (an evacuation promotes the other's cluster, FailoverGlobalReplicationGroup). Its nodes are priced with each
    replication group; the datastore itself bills nothing more."""
    members = [r for r in evaluation.resources
               if r.type == GLOBAL_DATASTORE or (r.type == CACHE and r.inputs.get("globalReplicationGroupId"))]
    if not members or evaluation.outputs.get("active_region") != evaluation.region:
        return None
    top = top_component(members[0], by_urn) or members[0]
    gb = usage.global_datastore_gb_per_month
    return {"resource": "cache replication", "type": GLOBAL_DATASTORE, "component": top.name,
            "monthly_usd": round(gb * price("elasticache.inter-region.gb"), 2),
            "basis": f"{gb:g} GB replicated to the other region (usage), billed to the Global Datastore's primary: "
                     "the activeRegion"}


def estimate(evaluation: Evaluation, usage: UsageSettings) -> dict[str, Any]:
    """The `cost` object of the synth contract."""
    price = PriceTable(evaluation.region)
    by_urn = {r.urn: r for r in evaluation.resources}
    by_id = {r.id: r for r in evaluation.resources if r.id}
    items = []
    for r in evaluation.resources:
        result = _item(r, by_id, usage, price) if r.custom else None
        if result is not None:
            usd, basis = result
            top = top_component(r, by_urn)
            items.append({"resource": r.name, "type": r.type, "component": top.name if top else r.name,
                          "monthly_usd": None if usd is None else round(usd, 2), "basis": basis})
        probe = _probe_cloudwatch(r, by_id, price) if r.custom and r.type == "aws:ecs/service:Service" else None
        if probe is not None:
            top = top_component(r, by_urn)
            items.append({"resource": f"{r.name} metrics", "type": "aws:cloudwatch:PutMetricData",
                          "component": top.name if top else r.name, "monthly_usd": round(probe[0], 2),
                          "basis": probe[1]})
    replication = _global_datastore_replication(evaluation, by_urn, usage, price)
    if replication is not None:
        items.append(replication)
    items.append({"resource": "log ingestion", "type": "aws:cloudwatch/logGroup:LogGroup",
                  "component": "log ingestion",
                  "monthly_usd": round(usage.logs_gb_per_month * price("logs.ingest.gb"), 2),
                  "basis": f"{usage.logs_gb_per_month:g} GB ingested (usage)"})
    total = round(sum(i["monthly_usd"] or 0 for i in items), 2)
    unpriced = sorted({i["resource"] for i in items if i["monthly_usd"] is None} | set(price.missing))
    by_component: dict[str, float] = defaultdict(float)
    for item in items:
        by_component[item["component"]] += item["monthly_usd"] or 0
    provider = next((r for r in evaluation.resources if r.type == "pulumi:providers:aws"), None)
    tags = json.loads(provider.inputs.get("defaultTags", "{}")).get("tags", {}) if provider else {}
    return {
        "monthly_usd": total, "currency": "USD", "hours_per_month": price.hours,
        "items": items,
        "by_component": {k: round(v, 2) for k, v in sorted(by_component.items(), key=lambda kv: -kv[1])},
        # Every resource carries the stack's cost tags, so Cost Explorer groups the whole total under each.
        "by_tag": {key: {value: total} for key, value in sorted(tags.items())},
        "unpriced": unpriced,
        # False when something has no price: the total is then a lower bound, never a sum with zeros in it.
        "complete": not unpriced,
    }


def table(cost: dict[str, Any], stack: str) -> str:
    at_least = "" if cost["complete"] else "at least "
    lines = [f"monthly cost of {stack}: {at_least}{cost['monthly_usd']:,.2f} USD ({cost['hours_per_month']} h a month)"
             + ("" if cost["complete"] else "; INCOMPLETE: some resources have no price (below)")]
    for component, usd in cost["by_component"].items():
        lines.append(f"  {component:<22} {usd:>10,.2f}")
    if cost["unpriced"]:
        lines.append(f"  not priced (no figure in synth/prices.yaml): {', '.join(cost['unpriced'])}")
    return "\n".join(lines)


def standby_share(active: dict[str, Any], standby: dict[str, Any], active_stack: str = "primary",
                  standby_stack: str = "backup") -> str:
    """What the region that is not the activeRegion costs (its standby shape and capacities), against the active's:
    the backup's share of the primary as the files ship, the primary's of the backup after a failover."""
    if not (active["complete"] and standby["complete"]):
        return f"standby ({standby_stack}) share of the {active_stack}: unknown, the estimate is incomplete"
    share = standby["monthly_usd"] / active["monthly_usd"] if active["monthly_usd"] else 0
    return (f"standby ({standby_stack}) costs {share:.0%} of the {active_stack}: {standby['monthly_usd']:,.2f} vs "
            f"{active['monthly_usd']:,.2f} USD a month (aim: 35% or less)")


def usage_of(project_dir: Path, stack: str) -> UsageSettings:
    raw, secret_keys = read_stack_file(project_dir / stack_file_name(stack))
    return load_settings(raw, stack, project_dir, secret_keys=secret_keys).usage
