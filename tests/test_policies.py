"""Every policy passes a compliant resource and flags a violating one; the project's stacks pass all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from policies.rules import COST_TAGS, POLICIES
from synth.engine import REPO
from synth.findings import evaluate_policies

BY_NAME = {p.name: p for p in POLICIES}
OPTIONS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
TAGGED = PolicyProviderResource("pulumi:providers:aws", {"defaultTags": json.dumps(
    {"tags": {t: "x" for t in COST_TAGS}})}, "urn:provider", "aws")

RDS_OK = {"storageEncrypted": True, "publiclyAccessible": False, "multiAz": True, "backupRetentionPeriod": 14,
          "deletionProtection": True, "iamDatabaseAuthenticationEnabled": True, "performanceInsightsEnabled": True,
          "performanceInsightsKmsKeyId": "arn:aws:kms:us-east-1:1:key/k"}
CACHE_OK = {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": True, "authTokenWo": "t",
            "numCacheClusters": 2, "automaticFailoverEnabled": True}
SECONDARY_OK = {"globalReplicationGroupId": "ldgnf-g", "replicationGroupId": "g", "authTokenWo": "t",
                "numCacheClusters": 2, "automaticFailoverEnabled": True, "autoMinorVersionUpgrade": False}
HTTPS = {"protocol": "HTTPS", "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06"}
REDIRECT = {"protocol": "HTTP", "defaultActions": [{"type": "redirect", "redirect": {"protocol": "HTTPS"}}]}
ALB_OK = {"dropInvalidHeaderFields": True, "accessLogs": {"bucket": "logs", "enabled": True}}
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def _task(environment):
    return {"containerDefinitions": json.dumps([{"name": "api", "environment": environment}])}


# (policy, resource type, compliant props, violating props)
RESOURCE_CASES = [
    ("rds-storage-encrypted", "aws:rds/instance:Instance", RDS_OK, {**RDS_OK, "storageEncrypted": False}),
    ("rds-not-public", "aws:rds/instance:Instance", RDS_OK, {**RDS_OK, "publiclyAccessible": True}),
    ("rds-writer-multi-az", "aws:rds/instance:Instance", {**RDS_OK, "multiAz": False, "replicateSourceDb": "arn"},
     {**RDS_OK, "multiAz": False}),
    ("rds-backup-retention", "aws:rds/instance:Instance", RDS_OK, {**RDS_OK, "backupRetentionPeriod": 1}),
    ("rds-deletion-protection", "aws:rds/instance:Instance", RDS_OK, {**RDS_OK, "deletionProtection": False}),
    ("rds-iam-auth", "aws:rds/instance:Instance", RDS_OK, {**RDS_OK, "iamDatabaseAuthenticationEnabled": False}),
    ("rds-performance-insights", "aws:rds/instance:Instance", RDS_OK, {**RDS_OK, "performanceInsightsEnabled": False}),
    ("elasticache-encrypted-authenticated", "aws:elasticache/replicationGroup:ReplicationGroup", CACHE_OK,
     {**CACHE_OK, "transitEncryptionEnabled": False, "authTokenWo": None}),
    ("elasticache-automatic-failover", "aws:elasticache/replicationGroup:ReplicationGroup", CACHE_OK,
     {**CACHE_OK, "automaticFailoverEnabled": False}),
    # What ElastiCache refuses: automatic failover on one node, Multi-AZ without automatic failover.
    ("elasticache-failover-constraints", "aws:elasticache/replicationGroup:ReplicationGroup",
     {**CACHE_OK, "multiAzEnabled": True}, {**CACHE_OK, "numCacheClusters": 1}),
    ("elasticache-failover-constraints", "aws:elasticache/replicationGroup:ReplicationGroup",
     {**CACHE_OK, "numCacheClusters": 1, "automaticFailoverEnabled": False},
     {**CACHE_OK, "automaticFailoverEnabled": False, "multiAzEnabled": True}),
    # A Global Datastore's secondary inherits its encryption (and may not set it), never its auth token.
    ("elasticache-encrypted-authenticated", "aws:elasticache/replicationGroup:ReplicationGroup", SECONDARY_OK,
     {**SECONDARY_OK, "authTokenWo": None}),
    ("alb-https-tls12", "aws:lb/listener:Listener", HTTPS, {**HTTPS, "sslPolicy": "ELBSecurityPolicy-2016-08"}),
    ("alb-https-tls12", "aws:lb/listener:Listener", REDIRECT, {"protocol": "HTTP", "defaultActions": [
        {"type": "forward", "targetGroupArn": "tg"}]}),
    ("alb-drop-invalid-headers", "aws:lb/loadBalancer:LoadBalancer", ALB_OK,
     {**ALB_OK, "dropInvalidHeaderFields": False}),
    ("alb-access-logs", "aws:lb/loadBalancer:LoadBalancer", ALB_OK, {**ALB_OK, "accessLogs": None}),
    ("ecs-no-public-ip", "aws:ecs/service:Service", {"networkConfiguration": {"assignPublicIp": False}},
     {"networkConfiguration": {"assignPublicIp": True}}),
    ("ecs-container-insights", "aws:ecs/cluster:Cluster", {"settings": [{"name": "containerInsights",
                                                                         "value": "enhanced"}]}, {"settings": []}),
    ("ecs-no-secrets-in-environment", TASK, _task([{"name": "LOG_LEVEL", "value": "INFO"}]),
     _task([{"name": "JWT_SECRET", "value": "hunter2"}])),
    ("ecs-no-secrets-in-environment", TASK, _task([{"name": "REGION", "value": "us-east-1"}]),
     _task([{"name": "CONFIG", "value": "AKIAABCDEFGHIJKLMNOP"}])),
    ("no-world-ingress", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
     {"cidrIpv4": "0.0.0.0/0", "fromPort": 443, "toPort": 443, "ipProtocol": "tcp"},
     {"cidrIpv4": "0.0.0.0/0", "fromPort": 22, "toPort": 22, "ipProtocol": "tcp"}),
    ("no-world-ingress", "aws:ec2/securityGroup:SecurityGroup", {"ingress": []},
     {"ingress": [{"cidrBlocks": ["0.0.0.0/0"], "fromPort": 0, "toPort": 65535, "protocol": "tcp"}]}),
    ("kms-key-rotation", "aws:kms/key:Key", {"enableKeyRotation": True}, {"enableKeyRotation": False}),
    ("ecs-exec-sessions-logged", "aws:ecs/cluster:Cluster", {"configuration": {"executeCommandConfiguration": {
        "kmsKeyId": "k", "logging": "OVERRIDE", "logConfiguration": {
            "cloudWatchLogGroupName": "/exec", "cloudWatchEncryptionEnabled": True}}}},
     {"configuration": {"executeCommandConfiguration": {"kmsKeyId": "k", "logging": "DEFAULT"}}}),
]


def _resource_findings(name, resource_type, props):
    found = []
    args = ResourceValidationArgs(resource_type, props, "urn:r", "r", OPTIONS, TAGGED)
    BY_NAME[name].validate(args, lambda message, urn=None: found.append(message))
    return found


@pytest.mark.parametrize(("name", "resource_type", "good", "bad"), RESOURCE_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(RESOURCE_CASES)])
def test_resource_policy_passes_and_flags(name, resource_type, good, bad):
    assert isinstance(BY_NAME[name], ResourceValidationPolicy)
    assert _resource_findings(name, resource_type, good) == []
    assert _resource_findings(name, resource_type, bad) != []


def _bucket_stack(**overrides):
    """A bucket and its configuration resources, each replaceable (None drops it)."""
    configs = {
        "aws:s3/bucketVersioning:BucketVersioning": {"versioningConfiguration": {"status": "Enabled"}},
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": {
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]},
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
            "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
            "restrictPublicBuckets": True},
        "aws:s3/bucketPolicy:BucketPolicy": {"policy": json.dumps({"Statement": [
            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})},
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {"rules": []},
    }
    configs.update(overrides)
    resources = [PolicyResource("aws:s3/bucket:Bucket", {"bucket": "b"}, "urn:b", "b", OPTIONS, TAGGED, None, [], {})]
    for i, (resource_type, props) in enumerate(configs.items()):
        if props is not None:
            resources.append(PolicyResource(resource_type, {"bucket": "b", **props}, f"urn:c{i}", "b", OPTIONS,
                                            TAGGED, None, [], {}))
    return resources


def _stack_findings(name, resources):
    found = []
    BY_NAME[name].validate(StackValidationArgs(resources), lambda message, urn=None: found.append((urn, message)))
    return found


@pytest.mark.parametrize(("name", "resource_type", "bad"), [
    ("s3-versioning", "aws:s3/bucketVersioning:BucketVersioning", None),
    ("s3-sse-kms", "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
     {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}),
    ("s3-public-access-block", "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
     {"blockPublicAcls": True, "blockPublicPolicy": False, "ignorePublicAcls": True, "restrictPublicBuckets": True}),
    ("s3-tls-only", "aws:s3/bucketPolicy:BucketPolicy", {"policy": json.dumps({"Statement": []})}),
    ("s3-lifecycle", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", None),
])
def test_bucket_policy_passes_and_flags(name, resource_type, bad):
    assert _stack_findings(name, _bucket_stack()) == []
    findings = _stack_findings(name, _bucket_stack(**{resource_type: bad}))
    assert [urn for urn, _ in findings] == ["urn:b"] and findings[0][1].startswith("bucket b: ")


def test_sse_s3_is_accepted_only_for_log_delivery_targets():
    sse_s3 = {"aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": {
        "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}}
    resources = _bucket_stack(**sse_s3)
    assert _stack_findings("s3-sse-kms", resources)
    resources.append(PolicyResource("aws:s3/bucketLogging:BucketLogging", {"bucket": "other", "targetBucket": "b"},
                                    "urn:log", "other", OPTIONS, TAGGED, None, [], {}))
    assert _stack_findings("s3-sse-kms", resources) == []


def test_cost_tags_policy():
    untagged = PolicyProviderResource("pulumi:providers:aws", {"defaultTags": json.dumps({"tags": {"Owner": "x"}})},
                                      "urn:p", "aws")
    key = {"enableKeyRotation": True}
    good = [PolicyResource("aws:kms/key:Key", key, "urn:k", "k", OPTIONS, TAGGED, None, [], {})]
    bad = [PolicyResource("aws:kms/key:Key", key, "urn:k", "k", OPTIONS, untagged, None, [], {})]
    assert _stack_findings("cost-tags-through-provider", good) == []
    ((urn, message),) = _stack_findings("cost-tags-through-provider", bad)
    assert urn == "urn:k" and "Project" in message and "Owner" not in message


def test_waf_logging_policy():
    acl = PolicyResource("aws:wafv2/webAcl:WebAcl", {"arn": "arn:acl"}, "urn:acl", "alb", OPTIONS, TAGGED, None, [],
                         {})

    def logging(**props):
        return PolicyResource("aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
                              {"resourceArn": "arn:acl", **props}, "urn:log", "alb", OPTIONS, TAGGED, None, [], {})

    redacted = {"redactedFields": [{"singleHeader": {"name": "authorization"}}, {"singleHeader": {"name": "cookie"}}]}
    assert _stack_findings("waf-logging", [acl, logging(**redacted)]) == []
    assert _stack_findings("waf-logging", [acl]) == [("urn:acl", "web ACL alb: requests are not logged")]
    assert _stack_findings("waf-logging", [acl, logging()]) == [
        ("urn:acl", "web ACL alb: its log does not redact the authorization header")]


def _global_datastore(primary: dict, secondary: dict) -> list[PolicyResource]:
    """A datastore and its primary (linked by id), and a secondary joining another stack's datastore."""
    def resource(resource_type, props, name):
        return PolicyResource(resource_type, props, f"urn:{name}", name, OPTIONS, TAGGED, None, [], {})

    return [resource("aws:elasticache/globalReplicationGroup:GlobalReplicationGroup",
                     {"primaryReplicationGroupId": "p", "globalReplicationGroupIdSuffix": "p"}, "datastore"),
            resource("aws:elasticache/replicationGroup:ReplicationGroup", primary, "primary"),
            resource("aws:elasticache/replicationGroup:ReplicationGroup", secondary, "secondary")]


def test_global_datastore_policy():
    """What ElastiCache and the provider refuse of a Global Datastore's clusters; a standalone group is not one."""
    primary = {**CACHE_OK, "replicationGroupId": "p", "nodeType": "cache.r7g.large", "autoMinorVersionUpgrade": False}
    name = "elasticache-global-datastore-constraints"
    assert _stack_findings(name, _global_datastore(primary, SECONDARY_OK)) == []
    standalone = {**primary, "replicationGroupId": "other", "nodeType": "cache.t4g.medium", "numCacheClusters": 1}
    assert _stack_findings(name, _global_datastore(primary, standalone)) == []
    findings = _stack_findings(name, _global_datastore(
        {**primary, "nodeType": "cache.t4g.medium", "autoMinorVersionUpgrade": True},
        {**SECONDARY_OK, "nodeType": "cache.r7g.large", "transitEncryptionEnabled": True, "numCacheClusters": 1,
         "networkType": "dual_stack"}))
    assert [(urn, message.split(": ", 1)[0]) for urn, message in findings] == [
        ("urn:primary", "replication group p"), ("urn:primary", "replication group p"),
        *[("urn:secondary", "replication group g")] * 4]
    text = " | ".join(message for _, message in findings)
    for words in ("node_type cache.t4g.medium", "auto_minor_version_upgrade must be false", "node_type is the Global "
                  "Datastore's", "transit_encryption_enabled is the Global Datastore's", "num_cache_clusters must be 2",
                  "IPv4 only"):
        assert words in text, words


def test_every_policy_is_tested_and_names_a_checkov_equivalent():
    tested = {c[0] for c in RESOURCE_CASES} | {"s3-versioning", "s3-sse-kms", "s3-public-access-block",
                                               "s3-tls-only", "s3-lifecycle", "cost-tags-through-provider",
                                               "waf-logging", "elasticache-global-datastore-constraints"}
    assert tested == set(BY_NAME)
    assert all("checkov" in p.description for p in POLICIES)
    levels = {p.name: p.enforcement_level.value for p in POLICIES}
    assert {levels[n] for n in ("rds-storage-encrypted", "rds-not-public", "s3-sse-kms", "s3-public-access-block",
                                "elasticache-encrypted-authenticated", "elasticache-failover-constraints",
                                "elasticache-global-datastore-constraints",
                                "no-world-ingress")} == {"mandatory"}


def test_the_projects_stacks_violate_no_policy(stack):
    assert evaluate_policies(stack) == []


@pytest.mark.parametrize("name", ["primary", "backup"])
def test_check_exits_0_for_the_projects_stacks(name):
    result = subprocess.run([sys.executable, "-m", "synth", "--stack", name, "--check", "--format", "json"],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["findings"] == []


def test_check_exits_1_for_an_unencrypted_public_database():
    fixture = REPO / "tests" / "fixtures" / "insecure"
    result = subprocess.run([sys.executable, "-m", "synth", "--stack", "dev", "--check", "--project-dir", str(fixture),
                             "--program", str(fixture / "__main__.py")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "mandatory policy rds-storage-encrypted violated by" in result.stderr
    assert "mandatory policy rds-not-public violated by" in result.stderr
    assert "aws:rds/instance:Instance::orders" in result.stderr


def test_bucket_rules_link_by_parent_and_name_while_a_preview_knows_no_ids():
    """In a first preview the configurations' `bucket` is unknown; reading it must not fail the policy."""
    from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

    component = PolicyResource("trading-platform:data:BackupBucket", {}, "urn:c", "backups", OPTIONS, None, None, [],
                               {})
    resources = []
    for resource in _bucket_stack():
        props = dict(resource.props)
        if resource.resource_type != "aws:s3/bucket:Bucket":
            props["bucket"] = UNKNOWN_STRING_VALUE
        resources.append(PolicyResource(resource.resource_type, unknown_checking_proxy(props), resource.urn,
                                        resource.name, OPTIONS, TAGGED, component, [], {}))
    for name in ("s3-versioning", "s3-sse-kms", "s3-public-access-block", "s3-tls-only", "s3-lifecycle"):
        assert _stack_findings(name, resources) == [], name
