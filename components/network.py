"""VPC with public, private (app) and isolated (data) subnets per AZ, NAT and flow logs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import service_role
from regions.addressing import plan_subnets


@dataclass
class NetworkArgs:
    cidr: str
    # AZ IDs (use1-az1, ...), as checked against the account; their count is static, so the plan is too.
    availability_zone_ids: pulumi.Input[Sequence[str]]
    az_count: int
    # A NAT gateway per AZ (`network-nat-<i>`), or one in the first; between the two, gateways are added or removed
    # and the private routes repointed in place (ReplaceRoute): network-nat-0 and every route keep their names.
    nat_per_az: bool
    flow_log_group_name: str
    flow_log_retention_days: int
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]


class Network(pulumi.ComponentResource):
    vpc: aws.ec2.Vpc
    vpc_id: pulumi.Output[str]
    public_subnet_ids: list[pulumi.Output[str]]
    private_subnet_ids: list[pulumi.Output[str]]
    isolated_subnet_ids: list[pulumi.Output[str]]
    private_route_table_ids: list[pulumi.Output[str]]
    endpoint_route_table_ids: list[pulumi.Output[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("trading-platform:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        plan = plan_subnets(args.cidr, args.az_count)
        zone_ids = pulumi.Output.from_input(args.availability_zone_ids)

        self.vpc = aws.ec2.Vpc(name, cidr_block=args.cidr, enable_dns_support=True, enable_dns_hostnames=True,
                               tags={"Name": name}, opts=child)
        vpc_id = self.vpc.id
        # Strip the default security group's allow-all rules so nothing can fall back on it.
        aws.ec2.DefaultSecurityGroup(name, vpc_id=vpc_id, ingress=[], egress=[], opts=child)
        igw = aws.ec2.InternetGateway(name, vpc_id=vpc_id, tags={"Name": name}, opts=child)

        # Logical names number the zones, so both stacks name their subnets alike.
        def subnet(tier: str, index: int, cidr: str) -> aws.ec2.Subnet:
            label = f"{name}-{tier}-{index}"
            return aws.ec2.Subnet(label, vpc_id=vpc_id, availability_zone_id=zone_ids[index], cidr_block=cidr,
                                  map_public_ip_on_launch=False, tags={"Name": label, "Tier": tier}, opts=child)

        zones = range(args.az_count)
        public = [subnet("public", i, plan.public[i]) for i in zones]
        private = [subnet("private", i, plan.private[i]) for i in zones]
        isolated = [subnet("isolated", i, plan.isolated[i]) for i in zones]

        public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=vpc_id, tags={"Name": f"{name}-public"}, opts=child)
        aws.ec2.Route(f"{name}-public-internet", route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0",
                      gateway_id=igw.id, opts=child)
        for i in zones:
            aws.ec2.RouteTableAssociation(f"{name}-public-{i}", subnet_id=public[i].id, route_table_id=public_rt.id,
                                          opts=child)

        # One NAT per AZ keeps an AZ outage from cutting the others off; a standby can share one.
        nats = []
        for i in zones if args.nat_per_az else zones[:1]:
            label = f"{name}-nat-{i}"
            eip = aws.ec2.Eip(label, domain="vpc", tags={"Name": label}, opts=child)
            nats.append(aws.ec2.NatGateway(label, subnet_id=public[i].id, allocation_id=eip.id, tags={"Name": label},
                                           opts=pulumi.ResourceOptions(parent=self, depends_on=[igw])))

        self.private_route_table_ids = []
        for i in zones:
            label = f"{name}-private-{i}"
            rt = aws.ec2.RouteTable(label, vpc_id=vpc_id, tags={"Name": label}, opts=child)
            aws.ec2.Route(f"{label}-nat", route_table_id=rt.id, destination_cidr_block="0.0.0.0/0",
                          nat_gateway_id=nats[i if args.nat_per_az else 0].id, opts=child)
            aws.ec2.RouteTableAssociation(label, subnet_id=private[i].id, route_table_id=rt.id, opts=child)
            self.private_route_table_ids.append(rt.id)

        # The data tier has no route out of the VPC at all.
        isolated_rt = aws.ec2.RouteTable(f"{name}-isolated", vpc_id=vpc_id, tags={"Name": f"{name}-isolated"},
                                         opts=child)
        for i in zones:
            aws.ec2.RouteTableAssociation(f"{name}-isolated-{i}", subnet_id=isolated[i].id,
                                          route_table_id=isolated_rt.id, opts=child)

        self._flow_logs(name, args, child)

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = [s.id for s in public]
        self.private_subnet_ids = [s.id for s in private]
        self.isolated_subnet_ids = [s.id for s in isolated]
        # The S3 gateway endpoint serves the app and the data tier.
        self.endpoint_route_table_ids = [*self.private_route_table_ids, isolated_rt.id]
        self.register_outputs({
            "vpc_id": vpc_id,
            "public_subnet_ids": self.public_subnet_ids,
            "private_subnet_ids": self.private_subnet_ids,
            "isolated_subnet_ids": self.isolated_subnet_ids,
        })

    def _flow_logs(self, name: str, args: NetworkArgs, child: pulumi.ResourceOptions) -> None:
        group = aws.cloudwatch.LogGroup(f"{name}-flow-logs", name=args.flow_log_group_name,
                                        retention_in_days=args.flow_log_retention_days,
                                        kms_key_id=args.kms_key_arn, opts=child)
        role = service_role(f"{name}-flow-logs", "vpc-flow-logs.amazonaws.com", self, source_account=args.account_id)
        aws.iam.RolePolicy(f"{name}-flow-logs", role=role.id, policy=pulumi.Output.json_dumps({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    "Resource": [group.arn, pulumi.Output.concat(group.arn, ":*")],
                },
                {
                    # The service checks the group exists; describe calls cannot be narrowed to one group.
                    "Effect": "Allow",
                    "Action": "logs:DescribeLogGroups",
                    "Resource": "*",
                },
            ],
        }), opts=child)
        aws.ec2.FlowLog(name, vpc_id=self.vpc.id, traffic_type="ALL", log_destination_type="cloud-watch-logs",
                        log_destination=group.arn, iam_role_arn=role.arn, max_aggregation_interval=60,
                        tags={"Name": name}, opts=child)
