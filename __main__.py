"""One regional stack of the trading platform: settings -> components -> exports."""

from functools import partial
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.endpoints import Endpoints, EndpointsArgs
from components.kms import StackKey, StackKeyArgs
from components.network import Network, NetworkArgs
from components.security_groups import SecurityGroups, SecurityGroupsArgs
from regions.catalog import SERVICE_PORTS
from regions.settings import check_peer_region, from_pulumi

# The engine runs the program in the project directory, beside the stack files.
settings = from_pulumi(Path.cwd())
prefix = f"{settings.project}/{settings.environment}"

# Every AWS resource goes through this provider, so every one carries the cost tags.
provider = aws.Provider("aws", region=settings.region.name,
                        default_tags=aws.ProviderDefaultTagsArgs(tags=settings.cost_tags))
aws_opts = pulumi.ResourceOptions(providers={"aws": provider})
account_id = aws.get_caller_identity_output().account_id

key = StackKey("stack-key", StackKeyArgs(alias=prefix, account_id=account_id, region=settings.region.name,
                                         partition=settings.region.partition), opts=aws_opts)
network = Network("network", NetworkArgs(
    cidr=settings.network.cidr,
    availability_zones=settings.availability_zones,
    nat_per_az=settings.network.nat_gateways == "perAz",
    flow_log_group_name=f"/{prefix}/vpc-flow-logs",
    flow_log_retention_days=settings.network.flow_log_retention_days,
    kms_key_arn=key.arn,
    account_id=account_id,
), opts=aws_opts)
security_groups = SecurityGroups("security-groups", SecurityGroupsArgs(
    vpc_id=network.vpc.id, app_ports=SERVICE_PORTS), opts=aws_opts)
Endpoints("endpoints", EndpointsArgs(
    region=settings.region.name,
    vpc_id=network.vpc.id,
    subnet_ids=network.private_subnet_ids,
    route_table_ids=[*network.private_route_table_ids, network.isolated_route_table_id],
    security_group_id=security_groups.endpoints.id,
), opts=aws_opts)

if settings.role == "backup":
    primary = pulumi.StackReference("primary", stack_name=settings.peer_stack)
    pulumi.export("peer_region", primary.get_output("region").apply(partial(check_peer_region, settings)))

pulumi.export("region", settings.region.name)
pulumi.export("role", settings.role)
pulumi.export("app_domain", settings.domain.app_domain)
pulumi.export("kms_key_arn", key.arn)
pulumi.export("vpc_id", network.vpc.id)
