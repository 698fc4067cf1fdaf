"""Turn a Terraform state into a `pulumi import --file` document for the resources this program manages.

    python -m regions.terraform_import terraform.tfstate > import.json
    pulumi import --file import.json -s primary

Only managed resources of the kinds the program creates are listed (Pulumi type token, a name, the id
`pulumi import` expects); everything else is reported on stderr and left out.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from regions.textfile import UnreadableFile, read_text

# Terraform type -> (Pulumi type token, how to get the import id from the instance's attributes).
TYPES: dict[str, tuple[str, Any]] = {
    "aws_vpc": ("aws:ec2/vpc:Vpc", "id"),
    "aws_subnet": ("aws:ec2/subnet:Subnet", "id"),
    "aws_internet_gateway": ("aws:ec2/internetGateway:InternetGateway", "id"),
    "aws_eip": ("aws:ec2/eip:Eip", "id"),
    "aws_nat_gateway": ("aws:ec2/natGateway:NatGateway", "id"),
    "aws_route_table": ("aws:ec2/routeTable:RouteTable", "id"),
    "aws_route_table_association": ("aws:ec2/routeTableAssociation:RouteTableAssociation",
                                    lambda a: f"{a['subnet_id']}/{a['route_table_id']}"),
    "aws_default_security_group": ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "id"),
    "aws_security_group": ("aws:ec2/securityGroup:SecurityGroup", "id"),
    "aws_vpc_endpoint": ("aws:ec2/vpcEndpoint:VpcEndpoint", "id"),
    "aws_flow_log": ("aws:ec2/flowLog:FlowLog", "id"),
    "aws_kms_key": ("aws:kms/key:Key", "id"),
    "aws_kms_alias": ("aws:kms/alias:Alias", "id"),
    "aws_db_instance": ("aws:rds/instance:Instance", "identifier"),
    "aws_db_subnet_group": ("aws:rds/subnetGroup:SubnetGroup", "id"),
    "aws_db_parameter_group": ("aws:rds/parameterGroup:ParameterGroup", "id"),
    "aws_elasticache_replication_group": ("aws:elasticache/replicationGroup:ReplicationGroup", "id"),
    "aws_elasticache_subnet_group": ("aws:elasticache/subnetGroup:SubnetGroup", "id"),
    "aws_s3_bucket": ("aws:s3/bucket:Bucket", "id"),
    "aws_secretsmanager_secret": ("aws:secretsmanager/secret:Secret", "id"),
    "aws_cloudwatch_log_group": ("aws:cloudwatch/logGroup:LogGroup", "id"),
    "aws_iam_role": ("aws:iam/role:Role", "id"),
    "aws_ecs_cluster": ("aws:ecs/cluster:Cluster", "name"),
    "aws_ecs_service": ("aws:ecs/service:Service", lambda a: f"{a['cluster'].rsplit('/', 1)[-1]}/{a['name']}"),
    "aws_lb": ("aws:lb/loadBalancer:LoadBalancer", "id"),
    "aws_lb_target_group": ("aws:lb/targetGroup:TargetGroup", "id"),
    "aws_lb_listener": ("aws:lb/listener:Listener", "id"),
    "aws_ecr_repository": ("aws:ecr/repository:Repository", "id"),
    "aws_route53_health_check": ("aws:route53/healthCheck:HealthCheck", "id"),
    "aws_backup_vault": ("aws:backup/vault:Vault", "id"),
}


class StateError(Exception):
    pass


def _name(resource: dict[str, Any], index: Any) -> str:
    """`module.vpc.aws_subnet.private[1]` -> `vpc-subnet-private-1`: readable, unique, a valid Pulumi name."""
    modules = re.findall(r"module\.([^.\[]+)", resource.get("module", ""))
    parts = [*modules, resource["type"].removeprefix("aws_").replace("_", "-"), resource["name"]]
    if index is not None:
        parts.append(str(index))
    return "-".join(parts).replace("_", "-")


def import_document(state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(state, dict) or state.get("version") != 4:
        found = state.get("version") if isinstance(state, dict) else None
        raise StateError("expected a Terraform state of format version 4, "
                         + (f"found {found!r}" if found is not None else "found no version"))
    resources, skipped = [], []
    for resource in state.get("resources", []):
        address = ".".join(filter(None, [resource.get("module"), resource["type"], resource["name"]]))
        if resource.get("mode") != "managed":
            continue
        if resource["type"] not in TYPES:
            skipped.append(f"{address} ({resource['type']} is not a kind this program manages)")
            continue
        token, id_of = TYPES[resource["type"]]
        for instance in resource.get("instances", []):
            attributes = instance.get("attributes") or {}
            try:
                resource_id = id_of(attributes) if callable(id_of) else attributes[id_of]
            except KeyError as exc:
                skipped.append(f"{address}: no {exc} attribute to import it by")
                continue
            resources.append({"type": token, "name": _name(resource, instance.get("index_key")), "id": resource_id})
    return {"resources": resources}, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m regions.terraform_import",
                                     description="A `pulumi import --file` document from a Terraform state file.",
                                     epilog="usage: python -m regions.terraform_import STATE.json > import.json")
    parser.add_argument("state", type=Path, help="the Terraform state (terraform state pull > STATE.json)")
    path = parser.parse_args(argv).state
    try:
        document, skipped = import_document(json.loads(read_text(path)))
    except UnreadableFile as exc:
        print(f"terraform_import: {exc}", file=sys.stderr)
        return 2
    except (json.JSONDecodeError, StateError) as exc:
        print(f"terraform_import: {path}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(document, indent=2))
    for line in skipped:
        print(f"terraform_import: left out {line}", file=sys.stderr)
    print(f"terraform_import: {len(document['resources'])} resources to import", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
