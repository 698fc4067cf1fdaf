"""Pulumi mocks that answer like AWS would: stable ids, ARNs and endpoints derived from the inputs.

The SDK's mocks echo inputs; anything the program reads that AWS computes (arn, id, dns_name, ...)
is synthesized here, deterministically, so two runs of synth give the same output.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from regions.catalog import REGIONS
from regions.stackfile import StackFileError

ACCOUNT_ID = "123456789012"

GLOBAL_DATASTORE = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
# ElastiCache prefixes a Global Datastore's id with its creating region's code (ElastiCache User Guide, "Using global
# datastores (CLI)": the table of regions and their prefixes).
_GLOBAL_DATASTORE_PREFIX = {"us-east-1": "ldgnf", "us-west-2": "sgaui"}

# Physical id prefixes AWS gives these resources.
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:route53/healthCheck:HealthCheck": "",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
}

# Resources whose physical name the provider generates from the logical name when none is given.
_AUTONAMED = {
    "aws:iam/role:Role", "aws:cloudwatch/logGroup:LogGroup", "aws:iam/policy:Policy",
    "aws:rds/subnetGroup:SubnetGroup", "aws:rds/parameterGroup:ParameterGroup",
    "aws:elasticache/subnetGroup:SubnetGroup", "aws:elasticache/parameterGroup:ParameterGroup",
    "aws:s3/bucket:Bucket", "aws:ecs/cluster:Cluster", "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup", "aws:sns/topic:Topic", "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup", "aws:cloudwatch/eventRule:EventRule",
}
# Resources whose id AWS (and the provider) report as their name: type -> the name's input.
_ID_IS_NAME = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:backup/vault:Vault": "name",
    "aws:rds/subnetGroup:SubnetGroup": "name",
    "aws:rds/parameterGroup:ParameterGroup": "name",
    "aws:elasticache/subnetGroup:SubnetGroup": "name",
    "aws:elasticache/parameterGroup:ParameterGroup": "name",
    "aws:rds/instance:Instance": "identifier",
    "aws:elasticache/replicationGroup:ReplicationGroup": "replicationGroupId",
    "aws:iam/role:Role": "name",
}
_NAME_INPUT = {"aws:s3/bucket:Bucket": "bucket", "aws:rds/instance:Instance": "identifier",
               "aws:elasticache/replicationGroup:ReplicationGroup": "replicationGroupId"}
# ARN formats AWS uses where they are not `arn:aws:<service>:<region>:<account>:<type>/<id>`.
_ARN = {
    "aws:kms/key:Key": "arn:aws:kms:{region}:{account}:key/{id}",
    "aws:iam/role:Role": "arn:aws:iam::{account}:role/{id}",
    "aws:cloudwatch/logGroup:LogGroup": "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:s3/bucket:Bucket": "arn:aws:s3:::{id}",
    "aws:rds/instance:Instance": "arn:aws:rds:{region}:{account}:db:{id}",
    "aws:elasticache/replicationGroup:ReplicationGroup": "arn:aws:elasticache:{region}:{account}:replicationgroup:{id}",
    GLOBAL_DATASTORE: "arn:aws:elasticache::{account}:globalreplicationgroup:{id}",
    "aws:backup/vault:Vault": "arn:aws:backup:{region}:{account}:backup-vault:{id}",
    "aws:secretsmanager/secret:Secret": "arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}",
    "aws:ecr/repository:Repository": "arn:aws:ecr:{region}:{account}:repository/{name}",
    "aws:ecs/cluster:Cluster": "arn:aws:ecs:{region}:{account}:cluster/{name}",
    "aws:ecs/service:Service": "arn:aws:ecs:{region}:{account}:service/{name}",
    "aws:lb/loadBalancer:LoadBalancer": "arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{id}",
    "aws:lb/targetGroup:TargetGroup": "arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{id}",
    "aws:acm/certificate:Certificate": "arn:aws:acm:{region}:{account}:certificate/{id}",
    "aws:sns/topic:Topic": "arn:aws:sns:{region}:{account}:{name}",
    "aws:route53/healthCheck:HealthCheck": "arn:aws:route53:::healthcheck/{id}",
    "aws:sfn/stateMachine:StateMachine": "arn:aws:states:{region}:{account}:stateMachine:{id}",
}


def read_terraform_outputs(path: Path) -> dict[str, Any]:
    """A Terraform state's outputs (format version 4), as pulumi-terraform returns them."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackFileError(f"Terraform state {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise StackFileError(f"Terraform state {path} is not JSON: {exc}") from None
    return {name: output.get("value") for name, output in (state.get("outputs") or {}).items()}


def _digest(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


@dataclass
class Registration:
    """One resource as the program registered it."""

    type: str
    name: str
    urn: str
    id: str | None
    parent: str | None
    provider: str | None
    custom: bool
    inputs: dict[str, Any]
    # Paths in `inputs` that hold secrets, like `.secretString`.
    secret_paths: tuple[str, ...] = ()
    # Resource options the engine acts on.
    ignore_changes: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False
    retain_on_delete: bool = False
    dependencies: tuple[str, ...] = ()
    state: dict[str, Any] = field(default_factory=dict)


class AwsMocks(pulumi.runtime.Mocks):
    def __init__(self, stack: str, region: str, stack_outputs: dict[str, dict[str, Any]] | None = None,
                 global_datastores: dict[str, dict[str, Any]] | None = None,
                 replicated_secrets: dict[str, dict[str, Any]] | None = None):
        self.stack = stack
        self.region = region
        # StackReference name -> that stack's outputs.
        self.stack_outputs = stack_outputs or {}
        # The referenced stacks' Global Datastores (their state) by id.
        self.global_datastores = global_datastores or {}
        # The referenced stacks' secrets replicated to this region, by name: their versions' state.
        self.replicated_secrets = replicated_secrets or {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            name = args.inputs.get("name") or args.name
            if name not in self.stack_outputs:
                raise LookupError(f"synth has no outputs for the stack reference {name!r}")
            return name, {"name": name, "outputs": self.stack_outputs[name], "secretOutputNames": []}
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", dict(args.inputs)

        state = dict(args.inputs)
        region = state.get("region") or self.region
        digest = _digest(self.stack, args.typ, args.name)
        name_input = _NAME_INPUT.get(args.typ, "name")
        if args.typ in _AUTONAMED and not state.get(name_input):
            state[name_input] = f"{args.name}-{digest[:7]}"
        if args.typ in _ID_IS_NAME:
            rid = state[_ID_IS_NAME[args.typ]]
        elif args.typ == "aws:kms/key:Key":
            rid = str(uuid.UUID(_digest(self.stack, args.typ, args.name, length=32)))
            state["keyId"] = rid
        elif args.typ == GLOBAL_DATASTORE:
            rid = state["globalReplicationGroupId"] = (f"{_GLOBAL_DATASTORE_PREFIX[region]}-"
                                                       f"{state['globalReplicationGroupIdSuffix']}")
        else:
            rid = _ID_PREFIX.get(args.typ, "") + digest
        module, resource = args.typ.split(":")[1].split("/")[0], args.typ.rsplit(":", 1)[1].lower()
        template = _ARN.get(args.typ, "arn:aws:{module}:{region}:{account}:{resource}/{id}")
        state.setdefault("arn", template.format(region=region, account=ACCOUNT_ID, id=rid, name=state.get("name"),
                                                module=module, resource=resource, suffix=digest[:6]))
        state.update(self._computed(args.typ, rid, region, state, digest))
        joined = self.global_datastores.get(state.get("globalReplicationGroupId"))
        if joined and args.typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            # A secondary runs what its Global Datastore runs: CreateReplicationGroup infers it from the primary.
            state.update(engine=joined["engine"], engineVersion=joined["engineVersion"],
                         nodeType=joined["cacheNodeType"])
        return state["arn"] if args.typ == "aws:secretsmanager/secret:Secret" else rid, state

    @staticmethod
    def _computed(typ: str, rid: str, region: str, state: dict[str, Any], digest: str) -> dict[str, Any]:
        """Attributes AWS computes that the program reads."""
        if typ == "aws:rds/instance:Instance":
            address = f"{rid}.c{digest[:10]}.{region}.rds.amazonaws.com"
            return {"address": address, "port": 5432, "endpoint": f"{address}:5432"}
        if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            # AWS names a group's clusters after it: <group>-001, <group>-002, ...
            return {"primaryEndpointAddress": f"master.{rid}.{digest[:6]}.{region}.cache.amazonaws.com",
                    "memberClusters": [f"{rid}-{n:03d}" for n in range(1, int(state.get("numCacheClusters", 1)) + 1)]}
        if typ == "random:index/randomPassword:RandomPassword":
            # New keepers replace it: a new value.
            keepers = json.dumps(state.get("keepers"), sort_keys=True)
            return {"result": f"synth-random-{_digest(digest, keepers, length=24)}"}
        if typ == "random:index/randomId:RandomId":
            return {"hex": digest[:2 * int(state["byteLength"])]}
        if typ == "aws:ecr/repository:Repository":
            return {"repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{state['name']}",
                    "registryId": ACCOUNT_ID}
        if typ == "docker:index/image:Image":
            repository = state["imageName"].rsplit(":", 1)[0]
            return {"repoDigest": f"{repository}@sha256:{_digest(state['imageName'], length=64)}"}
        if typ == "aws:lb/loadBalancer:LoadBalancer":
            return {"dnsName": f"{state['name']}-{digest[:9]}.{region}.elb.amazonaws.com",
                    "zoneId": REGIONS[region].alb_zone_id, "arnSuffix": f"app/{state['name']}/{digest[:16]}"}
        if typ == "aws:lb/targetGroup:TargetGroup":
            return {"arnSuffix": f"targetgroup/{state['name']}/{digest[:16]}"}
        if typ == "aws:route53/zone:Zone":
            return {"zoneId": "Z" + _digest(state["name"], length=20).upper()}
        if typ == "aws:acm/certificate:Certificate":
            # ACM's validation record depends on the domain and the account, not the region.
            domain = state["domainName"]
            token = _digest(ACCOUNT_ID, domain, length=32)
            return {"domainValidationOptions": [{
                "domainName": domain, "resourceRecordName": f"_{token}.{domain}.",
                "resourceRecordType": "CNAME", "resourceRecordValue": f"_{token[::-1]}.acm-validations.aws."}]}
        if typ == "aws:serverlessrepository/cloudFormationStack:CloudFormationStack":
            # The rotation application's output.
            return {"outputs": {"RotationLambdaARN": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{state['name']}"}}
        if typ == "aws:secretsmanager/secretVersion:SecretVersion":
            # The ARN of the secret a version belongs to, and a version id (a UUID) new with every value.
            value = json.dumps(state.get("secretString"), sort_keys=True, default=str)
            return {"secretArn": state["secretId"],
                    "versionId": str(uuid.UUID(_digest(state["secretId"], value, length=32)))}
        if typ == "aws:ecs/taskDefinition:TaskDefinition":
            return {"arn": f"arn:aws:ecs:{region}:{ACCOUNT_ID}:task-definition/{state['family']}:1", "revision": 1}
        return {}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/synth",
                    "userId": "AIDASYNTH", "id": ACCOUNT_ID}, []
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            # An account offers the catalog's zones and the constrained ones, named in its own order.
            info = REGIONS[self.region]
            ids = sorted(info.availability_zone_ids + info.constrained_zone_ids)
            names = [f"{self.region}{chr(ord('a') + i)}" for i in range(len(ids))]
            return {"names": names, "zoneIds": ids, "id": self.region, "state": "available"}, []
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            # A replica holds its primary's value, under its name.
            secret_id = args.args["secretId"]
            if secret_id not in self.replicated_secrets:
                raise LookupError(f"synth knows no secret {secret_id!r} replicated to {self.region}")
            version = self.replicated_secrets[secret_id]
            return {"secretId": secret_id, "secretString": version["secretString"], "arn": version["secretArn"],
                    "versionId": version["versionId"], "id": secret_id}, []
        if args.token == "terraform:state:getLocalReference":
            return {"outputs": read_terraform_outputs(Path(args.args["path"]))}, []
        if args.token == "aws:route53/getZone:getZone":
            name = args.args["name"]
            return {"name": name, "zoneId": "Z" + _digest(name, length=20).upper(), "id": name,
                    "privateZone": False}, []
        if args.token == "aws:ecr/getImage:getImage":
            # The replicated image, found with the digest it was asked for.
            return {"repositoryName": args.args["repositoryName"], "imageDigest": args.args["imageDigest"],
                    "registryId": ACCOUNT_ID, "imageTags": [], "id": args.args["imageDigest"]}, []
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"userName": "AWS", "password": "synth-ecr-token", "authorizationToken": "synth",
                    "proxyEndpoint": f"https://{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com", "id": "synth",
                    "expiresAt": "2099-01-01T00:00:00Z"}, []
        raise NotImplementedError(f"synth does not mock the function {args.token}; add it to synth/mocks.py")
