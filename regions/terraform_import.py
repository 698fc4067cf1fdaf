"""Turn the guide's Terraform state into a `pulumi import --file` document for one region's stack.

    terraform state pull > before.tfstate
    python -m regions.terraform_import before.tfstate --module module.primary_region \\
        --stack-file Pulumi.primary.yaml > import-primary.json
    pulumi import -s primary --file import-primary.json --generate-code=false

A Terraform resource of the chosen module becomes an entry only where the program declares its counterpart:
the program's type, logical name and parent component (the document creates the component empty where the
stack has none yet), on the stack's explicit `aws` provider. The import then attaches to exactly what the
program registers, and `pulumi preview` proposes no replacement for a name, parent or provider that differs.
The adopted network (terraform-aws-modules/vpc, or any VPC, subnet, route or NAT resource) stays in Terraform
and is left out, and so is whatever has no counterpart in the program: stderr says why, one line each.
`--addresses` prints the Terraform addresses the document imports instead, for `terraform state rm`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regions.catalog import ROLES, SERVICE_PORTS, SERVICES
from regions.reader import PROJECT
from regions.stackfile import StackFileError, read_stack_file
from regions.textfile import UnreadableFile, read_text
from regions.workloads import APP_IMAGES, WORKLOADS

# The program's explicit provider (__main__.py): every AWS resource goes through it. Imported on the default
# provider instead, each resource would be replaced by the next `pulumi up` (a change of provider is one).
PROVIDER = "aws"

# The program's component resources that parent what can be imported, by logical name.
COMPONENTS = {
    "stack-key": "trading-platform:security:StackKey",
    "security-groups": "trading-platform:network:SecurityGroups",
    "endpoints": "trading-platform:network:Endpoints",
    "database": "trading-platform:data:Database",
    "cache": "trading-platform:data:Cache",
    "backups": "trading-platform:data:BackupBucket",
    "access-logs": "trading-platform:data:LogBucket",
    "backup-plan": "trading-platform:data:BackupPlan",
    "shared-secrets": "trading-platform:security:SharedSecrets",
    "connection-secret": "trading-platform:security:ConnectionSecret",
    "cache-auth-token": "trading-platform:security:CacheAuthToken",
    "images": "trading-platform:services:Images",
    "cluster": "trading-platform:services:Cluster",
    "alb": "trading-platform:services:LoadBalancer",
    **{service: "trading-platform:services:Service" for service in SERVICES},
    "monitoring": "trading-platform:monitoring:Monitoring",
    "failover": "trading-platform:dns:Failover",
    "failover-switch": "trading-platform:dns:FailoverSwitch",
    "cost": "trading-platform:cost:Cost",
}

# What the adopted network is made of: never imported, wherever it sits in the state.
NETWORK_TYPES = frozenset({
    "aws_vpc", "aws_subnet", "aws_internet_gateway", "aws_egress_only_internet_gateway", "aws_nat_gateway",
    "aws_eip", "aws_route_table", "aws_route", "aws_route_table_association", "aws_default_route_table",
    "aws_main_route_table_association", "aws_network_acl", "aws_network_acl_rule", "aws_default_network_acl",
    "aws_default_security_group", "aws_flow_log", "aws_vpc_dhcp_options", "aws_vpc_dhcp_options_association",
    "aws_default_vpc_dhcp_options", "aws_vpc_ipv4_cidr_block_association",
})

# Terraform types with a counterpart that is not imported, and why.
NOT_IMPORTED = {
    "aws_acm_certificate_validation": "a wait for the certificate's validation, nothing in AWS to import "
                                      "(the program's own CertificateValidation only waits)",
    "aws_security_group_rule": "the program declares its rules as aws:vpc SecurityGroupIngressRule/EgressRule "
                               "resources of its own (remove Terraform's before `pulumi up`: AWS refuses a "
                               "duplicate rule)",
    "aws_vpc_security_group_ingress_rule": "the program declares its own ingress rules (security-groups-*)",
    "aws_vpc_security_group_egress_rule": "the program declares its own egress rules (security-groups-*)",
    "aws_secretsmanager_secret_version": "the program writes the secrets' values itself",
    "aws_s3_bucket_replication_configuration": "the program writes its own (backups-replication, only with "
                                               "backups.replicateToPeer)",
}


@dataclass(frozen=True)
class Target:
    """One resource the program declares: its parent component, logical name, and the Terraform names
    (resource names or for_each keys, `_` read as `-`) that name it besides its own."""

    parent: str
    name: str
    aliases: tuple[str, ...] = ()
    roles: tuple[str, ...] = ROLES

    def keys(self) -> set[str]:
        keys = {self.name, *self.aliases}
        if self.name.startswith(f"{self.parent}-"):
            keys.add(self.name.removeprefix(f"{self.parent}-"))
        return keys


def _t(parent: str, name: str | None = None, *aliases: str, roles: tuple[str, ...] = ROLES) -> Target:
    return Target(parent, name or parent, aliases, roles)


@dataclass(frozen=True)
class Kind:
    """A Terraform type: the Pulumi type token, how `pulumi import` identifies one (an attribute of the
    Terraform instance, or a function of its attributes), and the program's resources of that type."""

    token: str
    import_id: str | Callable[[dict[str, Any]], str]
    targets: tuple[Target, ...]


PRIMARY = ("primary",)
BACKUP = ("backup",)
_DB = ("main", "db", "postgres", "postgresql", "rds")
_CACHE = ("main", "redis", "valkey", "elasticache")
_BUCKETS = (_t("backups", None, "backup"), _t("access-logs", None, "logs", "log", "access-log"))
_SCALED = [name for name in SERVICES if WORKLOADS[name].scale_on]
_ALARMS = ["alb-5xx-rate", "alb-p95-latency", "rds-connections", "rds-cpu", "rds-free-storage", "redis-cpu",
           "redis-evictions", "redis-memory",
           *(f"{name}-{metric}" for name in SERVICES for metric in ("cpu", "memory")),
           *(f"{name}-{check}" for name in SERVICE_PORTS for check in ("no-healthy-hosts", "unhealthy-hosts"))]


def _bucket(kind: str, targets: tuple[Target, ...] = _BUCKETS) -> Kind:
    return Kind(f"aws:s3/{kind}", "bucket", targets)


KINDS: dict[str, Kind] = {
    "aws_kms_key": Kind("aws:kms/key:Key", "id", (_t("stack-key", None, "main", "stack", "key"),)),
    "aws_kms_alias": Kind("aws:kms/alias:Alias", "name", (_t("stack-key", None, "main", "stack", "key"),)),
    "aws_security_group": Kind("aws:ec2/securityGroup:SecurityGroup", "id", (
        _t("security-groups", "security-groups-alb", "lb", "load-balancer"),
        _t("security-groups", "security-groups-app", "ecs", "ecs-tasks", "tasks", "service", "services"),
        _t("security-groups", "security-groups-db", "database", "rds", "postgres"),
        _t("security-groups", "security-groups-cache", "redis", "elasticache", "valkey"),
        _t("security-groups", "security-groups-endpoints", "vpc-endpoints"),
        _t("security-groups", "security-groups-rotation", "db-rotation", "password-rotation", roles=PRIMARY),
    )),
    "aws_vpc_endpoint": Kind("aws:ec2/vpcEndpoint:VpcEndpoint", "id", tuple(
        _t("endpoints", f"endpoints-{service}") for service in ("s3", "ecr-api", "ecr-dkr", "logs", "secretsmanager"))),
    "aws_db_instance": Kind("aws:rds/instance:Instance", "identifier",
                            (_t("database", None, *_DB, "primary", "replica"),)),
    "aws_db_parameter_group": Kind("aws:rds/parameterGroup:ParameterGroup", "id", (_t("database", None, *_DB),)),
    "aws_db_subnet_group": Kind("aws:rds/subnetGroup:SubnetGroup", "id", (_t("database", None, *_DB),)),
    "aws_elasticache_replication_group": Kind("aws:elasticache/replicationGroup:ReplicationGroup", "id",
                                              (_t("cache", None, *_CACHE),)),
    "aws_elasticache_subnet_group": Kind("aws:elasticache/subnetGroup:SubnetGroup", "id",
                                         (_t("cache", None, *_CACHE),)),
    "aws_elasticache_parameter_group": Kind("aws:elasticache/parameterGroup:ParameterGroup", "id",
                                            (_t("cache", None, *_CACHE),)),
    "aws_s3_bucket": Kind("aws:s3/bucket:Bucket", "id", _BUCKETS),
    "aws_s3_bucket_versioning": _bucket("bucketVersioning:BucketVersioning"),
    "aws_s3_bucket_server_side_encryption_configuration": _bucket(
        "bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"),
    "aws_s3_bucket_public_access_block": _bucket("bucketPublicAccessBlock:BucketPublicAccessBlock"),
    "aws_s3_bucket_ownership_controls": _bucket("bucketOwnershipControls:BucketOwnershipControls"),
    "aws_s3_bucket_lifecycle_configuration": _bucket("bucketLifecycleConfiguration:BucketLifecycleConfiguration"),
    "aws_s3_bucket_policy": _bucket("bucketPolicy:BucketPolicy"),
    "aws_s3_bucket_logging": _bucket("bucketLogging:BucketLogging", _BUCKETS[:1]),
    "aws_ecs_cluster": Kind("aws:ecs/cluster:Cluster", "name", (_t("cluster", None, "main", "ecs"),)),
    "aws_ecs_cluster_capacity_providers": Kind("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
                                               "cluster_name", (_t("cluster", None, "main", "ecs"),)),
    "aws_ecs_service": Kind("aws:ecs/service:Service",
                            lambda a: f"{a['cluster'].rsplit('/', 1)[-1]}/{a['name']}",
                            tuple(_t(name) for name in SERVICES)),
    "aws_ecs_task_definition": Kind("aws:ecs/taskDefinition:TaskDefinition", "arn",
                                    tuple(_t(name) for name in SERVICES)),
    "aws_cloudwatch_log_group": Kind("aws:cloudwatch/logGroup:LogGroup", "name", (
        *(_t(name) for name in SERVICES),
        _t("cluster", "cluster-exec", "exec", "ecs-exec"),
        _t("database", "database-postgresql", "postgresql", "postgres", "rds-postgresql"),
        _t("database", "database-upgrade", "upgrade", "rds-upgrade"),
        _t("alb", "alb-waf", "waf"),
    )),
    "aws_iam_role": Kind("aws:iam/role:Role", "name", (
        _t("database", "database-monitoring", "rds-monitoring", "rds-enhanced-monitoring", "monitoring"),
        _t("backup-plan", "backup-plan-service", "backup", "aws-backup", "backup-service"),
        *(_t(name, f"{name}-{use}", f"{name}-task-{use}" if use == "execution" else f"{name}-{use}-role")
          for name in SERVICES for use in ("execution", "task")),
    )),
    "aws_lb": Kind("aws:lb/loadBalancer:LoadBalancer", "arn", (_t("alb", None, "main", "lb", "load-balancer"),)),
    "aws_lb_target_group": Kind("aws:lb/targetGroup:TargetGroup", "arn",
                                tuple(_t("alb", f"alb-{name}") for name in SERVICE_PORTS)),
    "aws_lb_listener": Kind("aws:lb/listener:Listener", "arn", (_t("alb", "alb-http"), _t("alb", "alb-https"))),
    "aws_lb_listener_rule": Kind("aws:lb/listenerRule:ListenerRule", "arn", (_t("alb", "alb-api"),)),
    "aws_acm_certificate": Kind("aws:acm/certificate:Certificate", "arn",
                                (_t("alb", None, "main", "app", "certificate", "cert"),)),
    "aws_wafv2_web_acl": Kind("aws:wafv2/webAcl:WebAcl", lambda a: f"{a['id']}/{a['name']}/{a['scope']}",
                              (_t("alb", None, "main", "waf"),)),
    "aws_wafv2_web_acl_association": Kind("aws:wafv2/webAclAssociation:WebAclAssociation", "id",
                                          (_t("alb", None, "main", "waf"),)),
    "aws_wafv2_web_acl_logging_configuration": Kind(
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration", "resource_arn",
        (_t("alb", None, "main", "waf"),)),
    "aws_route53_record": Kind("aws:route53/record:Record", "id", (
        _t("failover", None, "app", "main", "alias"),
        _t("alb", "alb-certificate-validation", "cert-validation", "certificate-validation", "validation",
           "acm-validation", roles=PRIMARY),
    )),
    "aws_route53_health_check": Kind("aws:route53/healthCheck:HealthCheck", "id", (
        _t("failover", None, "app", "main", "alb"),
        _t("failover", "failover-serving", "serving", "calculated", roles=PRIMARY),
        _t("failover-switch", None, "switch", roles=PRIMARY),
    )),
    "aws_cloudwatch_metric_alarm": Kind("aws:cloudwatch/metricAlarm:MetricAlarm", "alarm_name", (
        *(_t("monitoring", f"monitoring-{label}") for label in _ALARMS),
        # Alarms on a replica only: the backup's database is one while the primary is the active region.
        _t("monitoring", "monitoring-rds-replica-lag", "replica-lag", roles=BACKUP),
        _t("failover", "failover-health", "health-check", "route53-health", roles=PRIMARY),
    )),
    "aws_cloudwatch_dashboard": Kind("aws:cloudwatch/dashboard:Dashboard", "dashboard_name",
                                     (_t("monitoring", None, "main", "dashboard"),)),
    "aws_sns_topic": Kind("aws:sns/topic:Topic", "arn", (_t("monitoring", None, "alarms", "alerts", "alarm",
                                                           "alert"),)),
    "aws_sns_topic_policy": Kind("aws:sns/topicPolicy:TopicPolicy", "arn",
                                 (_t("monitoring", None, "alarms", "alerts", "alarm", "alert"),)),
    "aws_sns_topic_subscription": Kind("aws:sns/topicSubscription:TopicSubscription", "arn",
                                       (_t("monitoring", None, "email", "alarms-email", "alerts-email"),)),
    "aws_secretsmanager_secret": Kind("aws:secretsmanager/secret:Secret", "arn", (
        _t("shared-secrets", "shared-secrets-jwt-secret", "jwt", roles=PRIMARY),
        _t("shared-secrets", "shared-secrets-database-credentials", "db-credentials", "database", "db",
           "db-password", roles=PRIMARY),
        # Each region's own (components/pair.py): the cache's token.
        _t("cache-auth-token", None, "redis-auth", "redis-token", "redis"),
        _t("connection-secret", None, "connection"),
    )),
    # The guide's Terraform has the application's repositories; the replication probe's is the program's own.
    "aws_ecr_repository": Kind("aws:ecr/repository:Repository", "name",
                               tuple(_t("images", f"images-{image}", roles=PRIMARY) for image in APP_IMAGES)),
    "aws_ecr_lifecycle_policy": Kind("aws:ecr/lifecyclePolicy:LifecyclePolicy", "repository",
                                     tuple(_t("images", f"images-{image}", roles=PRIMARY) for image in APP_IMAGES)),
    "aws_backup_vault": Kind("aws:backup/vault:Vault", "name", (_t("backup-plan", None, "main", "vault"),)),
    "aws_backup_plan": Kind("aws:backup/plan:Plan", "id", (_t("backup-plan", None, "main", "plan", "daily"),)),
    "aws_backup_selection": Kind("aws:backup/selection:Selection", lambda a: f"{a['plan_id']}|{a['id']}",
                                 (_t("backup-plan", None, "main", "selection", "tagged"),)),
    "aws_appautoscaling_target": Kind(
        "aws:appautoscaling/target:Target",
        lambda a: f"{a['service_namespace']}/{a['resource_id']}/{a['scalable_dimension']}",
        tuple(_t(name) for name in _SCALED)),
    "aws_appautoscaling_policy": Kind(
        "aws:appautoscaling/policy:Policy",
        lambda a: f"{a['service_namespace']}/{a['resource_id']}/{a['scalable_dimension']}/{a['name']}",
        tuple(_t(name, f"{name}-{metric}") for name in _SCALED for metric in WORKLOADS[name].scale_on)),
    "aws_budgets_budget": Kind("aws:budgets/budget:Budget", "id", (_t("cost", None, "main", "monthly"),)),
}


class StateError(Exception):
    """Something wrong with the state or the module picked in it: one line, after the state's path."""


class StackError(Exception):
    """Something wrong with the stack named (or not named): one line."""


@dataclass(frozen=True)
class Stack:
    """The stack the document is for: its name (in the URNs), role, and region where known."""

    name: str
    role: str
    region: str | None = None
    project: str = PROJECT
    # Where the stack and its role were read from, for messages.
    source: str = ""

    def urn(self, typ: str, name: str, parent_type: str | None = None) -> str:
        # As the engine makes them: a child's type is qualified by its parent's; the root stack's is not.
        qualified = f"{parent_type}${typ}" if parent_type else typ
        return f"urn:pulumi:{self.name}::{self.project}::{qualified}::{name}"


@dataclass
class Result:
    document: dict[str, Any]
    left_out: list[str] = field(default_factory=list)
    # The Terraform addresses of what the document imports: `terraform state rm` each once it is imported.
    addresses: list[str] = field(default_factory=list)


_MODULE = re.compile(r'module\.[^.\[]+(?:\[(?:"[^"]*"|[^\]]*)\])?')


def _modules(path: str | None) -> list[str]:
    """`module.primary_region.module.vpc` -> ['module.primary_region', 'module.vpc']."""
    return _MODULE.findall(path or "")


def top_modules(state: dict[str, Any]) -> list[str]:
    return sorted({found[0] for r in _resources(state) if (found := _modules(r.get("module")))})


def _resources(state: dict[str, Any]) -> list[dict[str, Any]]:
    resources = state.get("resources") or []
    if not isinstance(resources, list) or not all(
            isinstance(r, dict) and isinstance(r.get("type"), str) and isinstance(r.get("name"), str)
            and isinstance(r.get("module", ""), str) and isinstance(r.get("instances") or [], list)
            for r in resources):
        raise StateError("its 'resources' are not a list of Terraform resources")
    return resources


def check_state(state: Any) -> dict[str, Any]:
    if not isinstance(state, dict) or state.get("version") != 4:
        found = state.get("version") if isinstance(state, dict) else None
        raise StateError("expected a Terraform state of format version 4, "
                         + (f"found {found!r}" if found is not None else "found no version"))
    _resources(state)
    return state


def select(state: dict[str, Any], module: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The managed resources of one top-level module (all of them without `module`), and its address."""
    modules = top_modules(state)
    managed = [r for r in _resources(state) if r.get("mode") == "managed"]
    if module is None:
        if len(modules) > 1:
            raise StateError(f"it holds {', '.join(modules)}: pick one with --module (one stack each)")
        return "", managed
    scope = module if module.startswith("module.") else f"module.{module}"
    if scope not in modules:
        raise StateError(f"no {scope} in this state (it has: {', '.join(modules) or 'no modules'})")
    return scope, [r for r in managed if (_modules(r.get("module")) or [""])[0] == scope]


def _address(resource: dict[str, Any], index: Any = None) -> str:
    base = ".".join(filter(None, [resource.get("module"), resource["type"], resource["name"]]))
    return base if index is None else f"{base}[{json.dumps(index)}]"


def _key(text: str) -> str:
    return text.lower().replace("_", "-")


def _candidates(resource: dict[str, Any], index: Any, single: bool) -> list[str]:
    """The names a Terraform instance could go by: its for_each key, with or without the resource's name, and
    the resource's name when it is the only instance."""
    name = _key(resource["name"])
    found = []
    if isinstance(index, str):
        found += [f"{_key(index)}-{name}", f"{name}-{_key(index)}", _key(index)]
    if single:
        found.append(name)
    return found


def _attributes(instance: Any) -> dict[str, Any]:
    attributes = instance.get("attributes") if isinstance(instance, dict) else None
    return attributes if isinstance(attributes, dict) else {}


def _region_of(attributes: dict[str, Any]) -> str | None:
    """Where an instance lives: its `region` attribute, else its ARN's; None for global ones (IAM, Route53)."""
    if isinstance(attributes.get("region"), str) and attributes["region"]:
        return attributes["region"]
    for name in ("arn", "id"):
        arn = attributes.get(name)
        if isinstance(arn, str) and arn.startswith("arn:") and len(parts := arn.split(":")) > 4:
            return parts[3] or None
    return None


def _import_id(kind: Kind, attributes: dict[str, Any]) -> str:
    try:
        value = kind.import_id(attributes) if callable(kind.import_id) else attributes[kind.import_id]
    except (TypeError, AttributeError):  # an attribute the id is made of is null
        value = None
    if not isinstance(value, str) or not value:
        raise KeyError(kind.import_id if isinstance(kind.import_id, str) else "id")
    return value


def import_document(state: dict[str, Any], stack: Stack, module: str | None = None) -> Result:
    scope, resources = select(check_state(state), module)
    network_modules = sorted({r.get("module") for r in resources if r["type"] == "aws_vpc"
                              and r.get("module") and r.get("module") != (scope or None)})

    def in_network_module(resource: dict[str, Any]) -> str | None:
        path = resource.get("module") or ""
        return next((m for m in network_modules if path == m or path.startswith(f"{m}.")), None)

    found_regions = {region for r in resources for i in r.get("instances") or []
                     if (region := _region_of(_attributes(i)))}
    if stack.region and found_regions and stack.region not in found_regions:
        raise StateError(f"{scope or 'its resources'} {'is' if scope else 'are'} in {', '.join(sorted(found_regions))}"
                         f", but {stack.source or f'the {stack.name} stack'} deploys to {stack.region}")
    result = Result({"resources": []})
    network_counts: dict[str, int] = {}
    claims: dict[tuple[str, str, str], list[tuple[str, dict[str, Any]]]] = {}
    for resource in resources:
        instances = [i for i in resource.get("instances") or [] if isinstance(i, dict)]
        network_module = in_network_module(resource)
        if network_module:
            network_counts[network_module] = network_counts.get(network_module, 0) + len(instances)
            continue
        for instance in instances:
            index = instance.get("index_key")
            address = _address(resource, index)
            why = _why_not(resource, stack)
            if why:
                result.left_out.append(f"{address}: {why}")
                continue
            kind = KINDS[resource["type"]]
            targets = [t for t in kind.targets if stack.role in t.roles]
            target, why = _match(resource, index, len(instances), kind, targets, stack)
            if target is None:
                result.left_out.append(f"{address}: {why}")
                continue
            attributes = _attributes(instance)
            try:
                resource_id = _import_id(kind, attributes)
            except KeyError as exc:
                result.left_out.append(f"{address}: no {exc} attribute to import it by")
                continue
            region = _region_of(attributes)
            if stack.region and region and region != stack.region:
                result.left_out.append(f"{address}: in {region}, but the {stack.name} stack deploys to {stack.region}")
                continue
            entry = {"type": kind.token, "name": target.name, "id": resource_id,
                     "parent": _component_key(target.parent), "provider": PROVIDER}
            claims.setdefault((kind.token, target.parent, target.name), []).append((address, entry))
    result.left_out[:0] = [f"{network_module} ({count} resources): the adopted network stays in Terraform (the "
                           "stack reads it with network.source: terraform)"
                           for network_module, count in network_counts.items()]
    result.left_out += [f"{address}: {', '.join(a for a, _ in found if a != address)} also names the program's "
                        f"{token} {name}: neither is imported (not guessed)"
                        for (token, _, name), found in claims.items() if len(found) > 1 for address, _ in found]
    imported = [(address, entry) for found in claims.values() if len(found) == 1 for address, entry in found]
    if not imported:
        return result
    parents = sorted({entry["parent"] for _, entry in imported})
    result.document = {
        "nameTable": {PROVIDER: stack.urn(f"pulumi:providers:{PROVIDER}", PROVIDER)},
        "resources": [
            # Created empty where the stack has no such component yet, kept where it has (same URN).
            *({"type": COMPONENTS[_component_name(key)], "name": key, "logicalName": _component_name(key),
               "component": True} for key in parents),
            *(entry for _, entry in imported),
        ],
    }
    result.addresses = [address for address, _ in imported]
    return result


def _component_key(parent: str) -> str:
    """The document's name for a component entry: distinct from every resource's logical name."""
    return f"{COMPONENTS[parent]}::{parent}"


def _component_name(key: str) -> str:
    return key.rsplit("::", 1)[1]


def _why_not(resource: dict[str, Any], stack: Stack) -> str | None:
    typ = resource["type"]
    if typ in NETWORK_TYPES:
        return f"{typ} is part of the network, which stays in Terraform (network.source: terraform)"
    if typ in NOT_IMPORTED:
        return NOT_IMPORTED[typ]
    if typ not in KINDS:
        return f"{typ} has no counterpart in this program"
    if not any(stack.role in t.roles for t in KINDS[typ].targets):
        return f"the {stack.role} stack declares no {KINDS[typ].token}"
    return None


def _match(resource: dict[str, Any], index: Any, count: int, kind: Kind, targets: list[Target],
           stack: Stack) -> tuple[Target | None, str]:
    # Terraform's `this` names a module's one resource of a type: the program's, where it declares only one.
    only = kind.targets[0] if len(kind.targets) == 1 else None
    candidates = _candidates(resource, index, count == 1)
    for candidate in candidates:
        found = [t for t in targets if candidate in t.keys() or (candidate == "this" and t is only)]
        if len(found) == 1:
            return found[0], ""
        if len(found) > 1:
            return None, f"'{candidate}' could be any of {', '.join(t.name for t in found)}: not guessed"
    names = ", ".join(t.name for t in targets)
    if not candidates:
        return None, f"one of {count} count-indexed instances: no name to match the program's {kind.token} ({names})"
    elsewhere = [t.name for t in kind.targets if stack.role not in t.roles and set(candidates) & t.keys()]
    if elsewhere:
        return None, f"the {stack.role} stack declares no {kind.token} {elsewhere[0]} (the other stack does)"
    return None, f"no counterpart named '{candidates[-1]}' among the program's {kind.token} ({names})"


def stack_from_file(path: Path) -> Stack:
    """Stack, role and region from a stack file; the stack must adopt its network from Terraform."""
    try:
        raw, _ = read_stack_file(path)
    except StackFileError as exc:
        raise StackError(str(exc)) from None
    matched = re.fullmatch(r"Pulumi\.(.+)\.yaml", path.name)
    if not matched:
        raise StackError(f"{path.name}: not a stack file name (Pulumi.<stack>.yaml)")
    role = raw.get(f"{PROJECT}:role")
    if role not in ROLES:
        raise StackError(f"{path.name}: {PROJECT}:role is {role!r}, expected one of {', '.join(ROLES)}")
    try:
        network = json.loads(raw.get(f"{PROJECT}:network", "{}"))
    except json.JSONDecodeError:
        network = {}
    source = network.get("source", "create") if isinstance(network, dict) else "create"
    if source != "terraform":
        raise StackError(f"{path.name}: {PROJECT}:network.source is {source}: this stack would create its own VPC "
                         "and replace what is imported from Terraform's into it (security groups, database, load "
                         "balancer); adopt the Terraform VPC first (network.source: terraform, docs/terraform.md)")
    return Stack(matched.group(1), role, raw.get("aws:region"), source=path.name)


def stack_from_module(scope: str) -> Stack:
    """The guide's module names: module.primary_region -> the primary stack, module.backup_region -> backup."""
    matched = re.fullmatch(r"module\.(\w+)_region", scope)
    if not matched or matched.group(1) not in ROLES:
        raise StackError(f"which stack {scope or 'this state'} is for cannot be told from its name: "
                         "give --stack-file Pulumi.<stack>.yaml")
    return Stack(matched.group(1), matched.group(1), source=f"the {matched.group(1)} stack")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m regions.terraform_import",
        description="A `pulumi import --file` document for one stack from the guide's Terraform state: the "
                    "program's names, parents and provider; the adopted network and what the program does not "
                    "declare are left out (stderr says why).",
        epilog="usage: python -m regions.terraform_import STATE.json --module module.primary_region "
               "--stack-file Pulumi.primary.yaml > import.json")
    parser.add_argument("state", type=Path, metavar="STATE.json",
                        help="the Terraform state (terraform state pull > STATE.json)")
    parser.add_argument("--module", help="the region's module, e.g. module.primary_region or module.backup_region "
                                         "(required when the state holds more than one)")
    stack_given = parser.add_mutually_exclusive_group()
    stack_given.add_argument("--stack-file", type=Path, metavar="Pulumi.<stack>.yaml",
                             help="the stack to import into: its name, role and region; it must adopt the "
                                  "Terraform VPC (network.source: terraform)")
    stack_given.add_argument("--adopted-network", action="store_true",
                             help="without the stack file: the stack adopts the Terraform VPC, and is named after "
                                  "the module (module.primary_region -> primary)")
    parser.add_argument("--addresses", action="store_true",
                        help="print the Terraform addresses the document imports, one a line, instead of it")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        state = check_state(json.loads(read_text(args.state)))
        scope, resources = select(state, args.module)
        if args.stack_file:
            stack = stack_from_file(args.stack_file)
        elif args.adopted_network or resources:
            if not args.adopted_network:
                raise StackError("name the stack to import into: --stack-file Pulumi.<stack>.yaml (or "
                                 "--adopted-network once the stack adopts the Terraform VPC)")
            stack = stack_from_module(scope)
        else:
            stack = Stack("", "primary")  # nothing to import: no name is used
        result = import_document(state, stack, args.module)
    except (UnreadableFile, StackError) as exc:
        print(f"terraform_import: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except (json.JSONDecodeError, StateError) as exc:
        print(f"terraform_import: {args.state}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    if args.addresses:
        for address in result.addresses:
            print(address)
    else:
        print(json.dumps(result.document, indent=2))
    for line in result.left_out:
        print(f"terraform_import: left out {line}", file=sys.stderr)
    print(f"terraform_import: {len(result.addresses)} resources to import"
          + (f" into the {stack.name} stack" if stack.name else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
