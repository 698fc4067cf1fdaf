"""The guardrails, as CrossGuard policies. Importable: the pack (`__main__.py`) and the offline synth run the
same functions. Each description names the equivalent checkov check, so checkov users recognise it.

Mandatory: data exposure and encryption. Advisory: resilience and hygiene.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
RDS = "aws:rds/instance:Instance"
BUCKET = "aws:s3/bucket:Bucket"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
GLOBAL_DATASTORE = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
COST_TAGS = ("Project", "Environment", "CostCenter", "Owner", "Stack", "Region", "Role", "ManagedBy")
TLS12_POLICIES = re.compile(r"ELBSecurityPolicy-(TLS13-1-[23]-|FS-1-2-|TLS-1-2-)")
WORLD = ("0.0.0.0/0", "::/0")
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.IGNORECASE)
SECRET_VALUE = re.compile(r"(AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----|[A-Za-z0-9+/=_-]{40,})")
# A Secrets Manager secret's ARN names a secret without holding it: a task that reads its secret itself, with its
# task role (the replication probe, which reads the password again after a rotation), is given the ARN.
SECRET_REFERENCE = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+")


def _given(value: object) -> str:
    """A value for a message: never `None`."""
    return "not set" if value is None else str(value)


def _resource(name: str, description: str, level: EnforcementLevel, types: Iterable[str],
              check) -> ResourceValidationPolicy:
    wanted = tuple(types)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in wanted:
            for message in check(args.props):
                report(message, None)

    return ResourceValidationPolicy(name=name, description=description, enforcement_level=level, validate=validate)


def _stack(name: str, description: str, level: EnforcementLevel, check) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for urn, message in check(args.resources):
            report(message, urn)

    return StackValidationPolicy(name=name, description=description, enforcement_level=level, validate=validate)


def _require(props: dict, key: str, wanted: Any, message: str) -> list[str]:
    return [] if props.get(key) == wanted else [message]


# --- RDS


def _is_writer(props: dict) -> bool:
    return not props.get("replicateSourceDb")


RDS_POLICIES = [
    _resource("rds-storage-encrypted", "RDS storage is encrypted (checkov CKV_AWS_16).", MANDATORY, [RDS],
              lambda p: _require(p, "storageEncrypted", True, "storage_encrypted must be true")),
    _resource("rds-not-public", "RDS instances are not publicly accessible (checkov CKV_AWS_17).", MANDATORY, [RDS],
              lambda p: ["publicly_accessible must be false"] if p.get("publiclyAccessible") else []),
    _resource("rds-writer-multi-az", "The writer runs Multi-AZ (checkov CKV_AWS_157).", ADVISORY, [RDS],
              lambda p: ["a writer should be Multi-AZ"] if _is_writer(p) and not p.get("multiAz") else []),
    _resource("rds-backup-retention", "Automated backups are kept 7 days or more (checkov CKV_AWS_133).", MANDATORY,
              [RDS], lambda p: [] if (p.get("backupRetentionPeriod") or 0) >= 7 else
              [f"backup_retention_period is {_given(p.get('backupRetentionPeriod'))}, needs 7 or more"]),
    _resource("rds-deletion-protection", "Deletion protection is on (checkov CKV_AWS_293).", MANDATORY, [RDS],
              lambda p: _require(p, "deletionProtection", True, "deletion_protection must be true")),
    _resource("rds-iam-auth", "IAM database authentication is on (checkov CKV_AWS_161).", ADVISORY, [RDS],
              lambda p: _require(p, "iamDatabaseAuthenticationEnabled", True,
                                 "iam_database_authentication_enabled should be true")),
    _resource("rds-performance-insights", "Performance Insights is on and encrypted (checkov CKV_AWS_353, "
              "CKV_AWS_354).", ADVISORY, [RDS],
              lambda p: [] if p.get("performanceInsightsEnabled") and p.get("performanceInsightsKmsKeyId") else
              ["performance insights should be enabled with a KMS key"]),
]

# --- ElastiCache


def _cache(props: dict) -> list[str]:
    problems = []
    # A Global Datastore's secondary takes encryption at rest and in transit from the datastore and may set neither
    # (elasticache-global-datastore-constraints); the datastore's primary, which sets both, is checked here.
    if not _known(props, "globalReplicationGroupId"):
        if not props.get("atRestEncryptionEnabled"):
            problems.append("at_rest_encryption_enabled must be true")
        if not props.get("transitEncryptionEnabled"):
            problems.append("transit_encryption_enabled must be true")
    if not (props.get("authToken") or props.get("authTokenWo")):
        problems.append("an auth token is required")
    return problems


def _failover_constraints(props: dict) -> list[str]:
    """What ElastiCache refuses (CreateReplicationGroup, ModifyReplicationGroup) and the provider checks at plan
    time: automatic failover below 2 nodes, Multi-AZ without automatic failover."""
    problems = []
    nodes = props.get("numCacheClusters") or 1
    if props.get("automaticFailoverEnabled") and nodes < 2:
        problems.append(f"automatic_failover_enabled needs num_cache_clusters of 2 or more, found {_given(nodes)}")
    if props.get("multiAzEnabled") and not props.get("automaticFailoverEnabled"):
        problems.append("multi_az_enabled needs automatic_failover_enabled")
    return problems


# What a Global Datastore's secondary takes from the datastore (ElastiCache infers it from the primary): the provider
# refuses each of these beside global_replication_group_id.
INHERITED_BY_SECONDARY = {
    "nodeType": "node_type", "engine": "engine", "engineVersion": "engine_version",
    "parameterGroupName": "parameter_group_name", "atRestEncryptionEnabled": "at_rest_encryption_enabled",
    "transitEncryptionEnabled": "transit_encryption_enabled", "transitEncryptionMode": "transit_encryption_mode",
    "snapshotName": "snapshot_name", "snapshotArns": "snapshot_arns", "numNodeGroups": "num_node_groups",
    "securityGroupNames": "security_group_names",
}
# Burstable, or smaller than large: node types no Global Datastore runs on.
NOT_GLOBAL_NODE = re.compile(r"cache\.(t\d[a-z]*\.\w+|\w+\.(micro|small|medium))")


def _primary_of(datastore: PolicyResource, group: PolicyResource) -> bool:
    """Whether `group` is the datastore's primary: by id, or while a preview does not know it, by parent and name."""
    primary = _known(datastore.props, "primaryReplicationGroupId")
    if primary:
        return primary == _known(group.props, "replicationGroupId")
    same_parent = (datastore.parent.urn if datastore.parent else None) == (group.parent.urn if group.parent else None)
    return same_parent and datastore.name == group.name


def _global_datastore_members(resources: list[PolicyResource]):
    """(replication group, is a secondary) for each member of a Global Datastore in the stack: one that joins a
    datastore, or a datastore's primary."""
    datastores = [r for r in resources if r.resource_type == GLOBAL_DATASTORE]
    for group in (r for r in resources if r.resource_type == CACHE):
        if _known(group.props, "globalReplicationGroupId"):
            yield group, True
        elif any(_primary_of(datastore, group) for datastore in datastores):
            yield group, False


def _global_datastore_constraints(resources: list[PolicyResource]):
    """What ElastiCache requires of a Global Datastore's clusters (User Guide, global datastores, "Prerequisites and
    limitations") and the provider checks at plan time."""
    for group, secondary in _global_datastore_members(resources):
        props, problems = group.props, []
        if secondary:
            problems += [f"{snake} is the Global Datastore's (the provider refuses it beside "
                         "global_replication_group_id)" for key, snake in INHERITED_BY_SECONDARY.items()
                         if props.get(key) is not None]
        elif NOT_GLOBAL_NODE.fullmatch(_known(props, "nodeType") or ""):
            problems.append(f"node_type {props.get('nodeType')}: a Global Datastore runs on no burstable node and none "
                            "smaller than large")
        if (props.get("numCacheClusters") or 1) < 2:
            problems.append("num_cache_clusters must be 2 or more: a secondary inherits the primary's automatic "
                            "failover, which ElastiCache allows only with a replica")
        if props.get("autoMinorVersionUpgrade"):
            problems.append("auto_minor_version_upgrade must be false: ElastiCache turns it off in a Global "
                            "Datastore's clusters and refuses it back on")
        if props.get("networkType") in ("ipv6", "dual_stack"):
            problems.append(f"network_type {props.get('networkType')}: Global Datastores support IPv4 only")
        for message in problems:
            yield group.urn, f"replication group {_known(props, 'replicationGroupId') or group.name}: {message}"


CACHE_POLICIES = [
    _resource("elasticache-encrypted-authenticated", "ElastiCache encrypts at rest and in transit and requires an "
              "auth token (checkov CKV_AWS_29, CKV_AWS_30, CKV_AWS_31).", MANDATORY, [CACHE], _cache),
    _resource("elasticache-automatic-failover", "A replication group of two or more nodes fails over "
              "automatically (checkov CKV_AWS_191 family; no exact equivalent).", ADVISORY, [CACHE],
              lambda p: ["automatic_failover_enabled should be true with 2+ nodes"]
              if (p.get("numCacheClusters") or 1) >= 2 and not p.get("automaticFailoverEnabled") else []),
    _resource("elasticache-failover-constraints", "Automatic failover has 2 or more nodes and Multi-AZ has automatic "
              "failover, or ElastiCache refuses the group (no checkov equivalent).", MANDATORY, [CACHE],
              _failover_constraints),
    _stack("elasticache-global-datastore-constraints", "A Global Datastore's clusters: no burstable or small nodes, 2+ "
           "nodes each, minor upgrades off, IPv4, and a secondary that sets nothing it inherits, or ElastiCache or "
           "the provider refuses them (no checkov equivalent).", MANDATORY, _global_datastore_constraints),
]

# --- load balancers


def _listener(props: dict) -> list[str]:
    if props.get("protocol") == "HTTPS":
        policy = props.get("sslPolicy") or ""
        return [] if TLS12_POLICIES.match(policy) else [f"ssl_policy {policy!r} allows TLS below 1.2"]
    actions = props.get("defaultActions") or []
    redirects = [a for a in actions if a.get("type") == "redirect" and
                 (a.get("redirect") or {}).get("protocol") == "HTTPS"]
    return [] if redirects else [f"a {props.get('protocol')} listener must redirect to HTTPS"]


LB_POLICIES = [
    _resource("alb-https-tls12", "Listeners use HTTPS with a TLS 1.2+ policy or redirect HTTP to HTTPS (checkov "
              "CKV_AWS_2, CKV_AWS_103, CKV2_AWS_20).", MANDATORY, LISTENERS, _listener),
    _resource("alb-drop-invalid-headers", "The ALB drops invalid header fields (checkov CKV_AWS_131).", ADVISORY,
              BALANCERS, lambda p: _require(p, "dropInvalidHeaderFields", True,
                                            "drop_invalid_header_fields should be true")),
    _resource("alb-access-logs", "The ALB writes access logs (checkov CKV_AWS_91).", ADVISORY, BALANCERS,
              lambda p: [] if (p.get("accessLogs") or {}).get("enabled") else ["access logs should be enabled"]),
]

# --- ECS


def _container_environment(props: dict) -> list[str]:
    try:
        containers = json.loads(props.get("containerDefinitions") or "[]")
    except (TypeError, json.JSONDecodeError):
        return []
    problems = []
    for container in containers:
        for variable in container.get("environment") or []:
            name, value = variable.get("name", ""), str(variable.get("value", ""))
            if SECRET_REFERENCE.fullmatch(value):
                continue
            if value and (SECRET_NAME.search(name) or SECRET_VALUE.search(value)):
                problems.append(f"container {container.get('name')}: {name} looks like a secret in plain environment; "
                                "inject it through `secrets`")
    return problems


ECS_POLICIES = [
    _resource("ecs-no-public-ip", "ECS services get no public IP (checkov CKV_AWS_333).", MANDATORY,
              ["aws:ecs/service:Service"],
              lambda p: ["assign_public_ip must be false"]
              if (p.get("networkConfiguration") or {}).get("assignPublicIp") else []),
    _resource("ecs-container-insights", "ECS clusters have Container Insights (checkov CKV_AWS_65).", ADVISORY,
              ["aws:ecs/cluster:Cluster"],
              lambda p: [] if any(s.get("name") == "containerInsights" and s.get("value") in ("enabled", "enhanced")
                                  for s in p.get("settings") or []) else ["container insights should be on"]),
    _resource("ecs-no-secrets-in-environment", "No secret-looking value in a container's plain environment; a "
              "Secrets Manager ARN, which the task reads with its own role, is a reference, not a secret (checkov "
              "CKV_AWS_45 for Lambda; CKV_SECRET_* secret scanning).", MANDATORY,
              ["aws:ecs/taskDefinition:TaskDefinition"], _container_environment),
    _resource("ecs-exec-sessions-logged", "ECS Exec sessions are encrypted with a KMS key and logged to an "
              "encrypted destination (checkov CKV_AWS_223, CKV_AWS_224).", MANDATORY,
              ["aws:ecs/cluster:Cluster"], lambda p: _exec_logging(p)),
]


def _exec_logging(props: dict) -> list[str]:
    config = ((props.get("configuration") or {}).get("executeCommandConfiguration")) or {}
    logs = config.get("logConfiguration") or {}
    to_cloudwatch = logs.get("cloudWatchLogGroupName") and logs.get("cloudWatchEncryptionEnabled")
    to_s3 = logs.get("s3BucketName") and logs.get("s3BucketEncryptionEnabled")
    if config.get("kmsKeyId") and config.get("logging") == "OVERRIDE" and (to_cloudwatch or to_s3):
        return []
    return ["execute_command_configuration needs a kms_key_id and logging OVERRIDE to an encrypted CloudWatch "
            "log group or S3 bucket"]

# --- network and keys


def _world_ingress(props: dict) -> list[str]:
    """Inline rules of a security group, a legacy SecurityGroupRule, or a vpc.SecurityGroupIngressRule."""
    if "ingress" in props:
        rules = props.get("ingress") or []
    elif props.get("type") == "egress":
        rules = []
    else:
        rules = [props]
    problems = []
    for rule in rules:
        sources = [rule.get("cidrIpv4"), rule.get("cidrIpv6"), *(rule.get("cidrBlocks") or []),
                   *(rule.get("ipv6CidrBlocks") or [])]
        if any(s in WORLD for s in sources):
            low, high = rule.get("fromPort"), rule.get("toPort")
            if not (low == high and low in (80, 443)) or rule.get("ipProtocol", rule.get("protocol")) in ("-1", "all"):
                problems.append(f"ingress from anywhere on ports {low}-{high}: only 80 and 443 may be open")
    return problems


NETWORK_POLICIES = [
    _resource("no-world-ingress", "No security-group ingress from anywhere except 80/443 (checkov CKV_AWS_24, "
              "CKV_AWS_25, CKV_AWS_260, CKV_AWS_277).", MANDATORY,
              ["aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "aws:ec2/securityGroup:SecurityGroup",
               "aws:ec2/securityGroupRule:SecurityGroupRule"], _world_ingress),
    _resource("kms-key-rotation", "KMS keys rotate (checkov CKV_AWS_7).", MANDATORY, ["aws:kms/key:Key"],
              lambda p: _require(p, "enableKeyRotation", True, "enable_key_rotation must be true")),
]

# --- S3 (settings live in their own resources: checked across the stack)


def _known(props: Any, key: str) -> Any:
    """The value, or None where a preview does not know it yet (a bucket created in it has no id)."""
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def _configs(bucket: PolicyResource, resources: list[PolicyResource], resource_type: str) -> list[PolicyResource]:
    """The configuration resources of `bucket`: by bucket name when known, else by parent and logical name."""
    name = _known(bucket.props, "bucket")
    found = []
    for r in resources:
        if r.resource_type != resource_type:
            continue
        target = _known(r.props, "bucket")
        same_parent = (r.parent.urn if r.parent else None) == (bucket.parent.urn if bucket.parent else None)
        if (name and target == name) or (not target and same_parent and r.name == bucket.name):
            found.append(r)
    return found


def _log_targets(resources: list[PolicyResource]) -> set[str]:
    """Buckets that receive S3 server access logs or ALB logs: AWS requires SSE-S3 for those."""
    targets = {_known(r.props, "targetBucket") for r in resources
               if r.resource_type == "aws:s3/bucketLogging:BucketLogging"}
    targets |= {_known(_known(r.props, "accessLogs") or {}, "bucket") for r in resources
                if r.resource_type in BALANCERS}
    return {t for t in targets if t}


def _buckets(check):
    def run(resources: list[PolicyResource]):
        for bucket in (r for r in resources if r.resource_type == BUCKET):
            for message in check(bucket, resources):
                yield bucket.urn, f"bucket {bucket.props.get('bucket') or bucket.name}: {message}"
    return run


def _versioned(bucket, resources):
    if not any((c.props.get("versioningConfiguration") or {}).get("status") == "Enabled"
               for c in _configs(bucket, resources, "aws:s3/bucketVersioning:BucketVersioning")):
        yield "versioning is not enabled"


def _encrypted(bucket, resources):
    algorithms = {((rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm"))
                  for c in _configs(bucket, resources,
                                    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
                  for rule in c.props.get("rules") or []}
    if "aws:kms" in algorithms or "aws:kms:dsse" in algorithms:
        return
    if "AES256" in algorithms and bucket.props.get("bucket") in _log_targets(resources):
        return  # a log delivery target: S3 and ELB log delivery cannot write SSE-KMS
    yield f"default encryption is {sorted(a for a in algorithms if a) or 'not set'}, needs SSE-KMS"


def _blocked(bucket, resources):
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    if not any(all(c.props.get(f) is True for f in flags)
               for c in _configs(bucket, resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")):
        yield "public access is not blocked on all four settings"


def _tls_only(bucket, resources):
    for config in _configs(bucket, resources, "aws:s3/bucketPolicy:BucketPolicy"):
        try:
            statements = json.loads(config.props.get("policy") or "{}").get("Statement", [])
        except (TypeError, json.JSONDecodeError):
            continue
        if any(s.get("Effect") == "Deny" and (s.get("Condition") or {}).get("Bool", {}).get("aws:SecureTransport")
               == "false" for s in statements):
            return
    yield "no policy denies requests without TLS"


def _lifecycle(bucket, resources):
    if not _configs(bucket, resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"):
        yield "no lifecycle configuration"


WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"


def _waf_logged(resources: list[PolicyResource]):
    """Every web ACL has a logging configuration that redacts the authorization header."""
    configs = [r for r in resources if r.resource_type == WAF_LOGGING]
    for acl in (r for r in resources if r.resource_type == "aws:wafv2/webAcl:WebAcl"):
        arn = _known(acl.props, "arn")
        mine = [c for c in configs if (arn and _known(c.props, "resourceArn") == arn)
                or ((c.parent.urn if c.parent else None) == (acl.parent.urn if acl.parent else None)
                    and c.name == acl.name)]
        if not mine:
            yield acl.urn, f"web ACL {acl.name}: requests are not logged"
        elif not any({"singleHeader": {"name": "authorization"}} in (c.props.get("redactedFields") or [])
                     for c in mine):
            yield acl.urn, f"web ACL {acl.name}: its log does not redact the authorization header"


WAF_POLICIES = [
    _stack("waf-logging", "Web ACLs log their requests, with credentials redacted (checkov CKV2_AWS_31).", MANDATORY,
           _waf_logged),
]

S3_POLICIES = [
    _stack("s3-versioning", "S3 buckets are versioned (checkov CKV_AWS_21).", MANDATORY, _buckets(_versioned)),
    _stack("s3-sse-kms", "S3 buckets encrypt with KMS, log delivery targets with SSE-S3 as AWS requires (checkov "
           "CKV_AWS_145).", MANDATORY, _buckets(_encrypted)),
    _stack("s3-public-access-block", "S3 buckets block public access (checkov CKV_AWS_53, CKV_AWS_54, CKV_AWS_55, "
           "CKV_AWS_56).", MANDATORY, _buckets(_blocked)),
    _stack("s3-tls-only", "S3 bucket policies deny non-TLS requests (no checkov equivalent; AWS Security Hub "
           "S3.5).", MANDATORY, _buckets(_tls_only)),
    _stack("s3-lifecycle", "S3 buckets have a lifecycle (checkov CKV2_AWS_61).", ADVISORY, _buckets(_lifecycle)),
]

# --- cost tags


def _provider_tags(provider) -> dict[str, str]:
    tags = (provider.props or {}).get("defaultTags") if provider else None
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except json.JSONDecodeError:
            tags = None
    return (tags or {}).get("tags") or {} if isinstance(tags, dict) else {}


def _tagged(resources: list[PolicyResource]):
    for resource in resources:
        if not resource.resource_type.startswith("aws:"):
            continue
        missing = [t for t in COST_TAGS if not _provider_tags(resource.provider).get(t)]
        if missing:
            yield resource.urn, f"{resource.name}: its provider's default tags lack {', '.join(missing)}"


TAG_POLICIES = [
    _stack("cost-tags-through-provider", "Every AWS resource goes through a provider whose default tags carry the "
           "eight cost-allocation tags (no checkov equivalent).", MANDATORY, _tagged),
]

POLICIES = [*RDS_POLICIES, *CACHE_POLICIES, *LB_POLICIES, *ECS_POLICIES, *NETWORK_POLICIES, *WAF_POLICIES,
            *S3_POLICIES, *TAG_POLICIES]
