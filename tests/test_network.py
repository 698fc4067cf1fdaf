"""The network each stack registers: subnets, NAT, routes, endpoints, flow logs, security groups."""

from __future__ import annotations

import ipaddress
import json

import pytest

from regions.addressing import plan_subnets
from regions.settings import SettingsError, check_zone_ids, load_settings
from regions.stackfile import read_stack_file
from synth.engine import evaluate

NS = "trading-platform"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
EXPECTED = {"primary": {"azs": 3, "nats": 3, "cidr": "10.10.0.0/16"},
            "backup": {"azs": 2, "nats": 1, "cidr": "10.20.0.0/16"}}


def ids(stack):
    """Physical id -> registration, to follow references between resources."""
    return {r.id: r for r in stack.resources if r.id}


def tier(stack, name):
    return sorted((r for r in stack.of_type(SUBNET) if r.inputs["tags"]["Tier"] == name),
                  key=lambda r: r.name)


def test_vpc(stack):
    vpc = stack.named("aws:ec2/vpc:Vpc", "network")
    assert vpc.inputs["cidrBlock"] == EXPECTED[stack.stack]["cidr"]
    assert vpc.inputs["enableDnsSupport"] and vpc.inputs["enableDnsHostnames"]


def test_three_tiers_per_az_inside_the_vpc_and_disjoint(stack):
    # By AZ ID: an AZ name is a different zone in each account, an ID the same zone everywhere.
    azs = {"primary": ["use1-az1", "use1-az2", "use1-az4"], "backup": ["usw2-az1", "usw2-az2"]}[stack.stack]
    vpc = ipaddress.ip_network(EXPECTED[stack.stack]["cidr"])
    blocks = []
    for name in ("public", "private", "isolated"):
        subnets = tier(stack, name)
        assert [s.inputs["availabilityZoneId"] for s in subnets] == azs
        assert not any("availabilityZone" in s.inputs for s in subnets)
        assert not any(s.inputs["mapPublicIpOnLaunch"] for s in subnets)
        blocks += [ipaddress.ip_network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(b.subnet_of(vpc) for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])


def test_nat_per_az_in_primary_single_in_backup(stack):
    by_id = ids(stack)
    nats = stack.of_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == EXPECTED[stack.stack]["nats"]
    public_ids = {s.id for s in tier(stack, "public")}
    assert all(n.inputs["subnetId"] in public_ids for n in nats)
    private = tier(stack, "private")
    for subnet in private:
        az = subnet.inputs["availabilityZoneId"]
        assoc = next(a for a in stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
                     if a.inputs["subnetId"] == subnet.id)
        routes = [r for r in stack.of_type(ROUTE) if r.inputs["routeTableId"] == assoc.inputs["routeTableId"]]
        assert [r.inputs["destinationCidrBlock"] for r in routes] == ["0.0.0.0/0"]
        nat_subnet = by_id[by_id[routes[0].inputs["natGatewayId"]].inputs["subnetId"]]
        if stack.stack == "primary":
            assert nat_subnet.inputs["availabilityZoneId"] == az  # an AZ outage spares the others
        else:
            assert nat_subnet.name == "network-public-0"


def test_public_routes_to_internet_and_isolated_has_no_route_out(stack):
    by_id = ids(stack)
    tables = {}
    for assoc in stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation"):
        tables.setdefault(by_id[assoc.inputs["subnetId"]].inputs["tags"]["Tier"], set()).add(
            assoc.inputs["routeTableId"])
    (public_rt,) = tables["public"]
    (isolated_rt,) = tables["isolated"]
    public_routes = [r for r in stack.of_type(ROUTE) if r.inputs["routeTableId"] == public_rt]
    assert [by_id[r.inputs["gatewayId"]].type for r in public_routes] == ["aws:ec2/internetGateway:InternetGateway"]
    assert not [r for r in stack.of_type(ROUTE) if r.inputs["routeTableId"] == isolated_rt]


def test_endpoints_keep_aws_traffic_off_the_nat(stack):
    by_id = ids(stack)
    endpoints = {r.inputs["serviceName"].removeprefix(f"com.amazonaws.{stack.region}."): r
                 for r in stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert set(endpoints) == {"s3", "ecr.api", "ecr.dkr", "logs", "secretsmanager"}
    s3 = endpoints.pop("s3")
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    private_and_isolated_tables = {
        a.inputs["routeTableId"] for a in stack.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
        if by_id[a.inputs["subnetId"]].inputs["tags"]["Tier"] in ("private", "isolated")}
    assert set(s3.inputs["routeTableIds"]) == private_and_isolated_tables
    private_ids = {s.id for s in tier(stack, "private")}
    for endpoint in endpoints.values():
        assert endpoint.inputs["vpcEndpointType"] == "Interface"
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert set(endpoint.inputs["subnetIds"]) == private_ids
        assert [by_id[g].name for g in endpoint.inputs["securityGroupIds"]] == ["security-groups-endpoints"]


def test_flow_logs_to_an_encrypted_group_with_retention(stack):
    by_id = ids(stack)
    flow = stack.named("aws:ec2/flowLog:FlowLog", "network")
    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["vpcId"] == stack.named("aws:ec2/vpc:Vpc", "network").id
    group = stack.named("aws:cloudwatch/logGroup:LogGroup", "network-flow-logs")
    assert flow.inputs["logDestination"] == group.state["arn"]
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs["kmsKeyId"] == stack.named("aws:kms/key:Key", "stack-key").state["arn"]
    role = stack.named("aws:iam/role:Role", "network-flow-logs")
    assert flow.inputs["iamRoleArn"] == role.state["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"]["Service"] for s in trust] == ["vpc-flow-logs.amazonaws.com"]
    assert trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    policy = json.loads(stack.named("aws:iam/rolePolicy:RolePolicy", "network-flow-logs").inputs["policy"])
    writes = next(s for s in policy["Statement"] if "logs:PutLogEvents" in s["Action"])
    assert set(writes["Resource"]) == {group.state["arn"], group.state["arn"] + ":*"}
    assert by_id[stack.named("aws:iam/rolePolicy:RolePolicy", "network-flow-logs").inputs["role"]] is role


def test_kms_key_rotates_and_lets_only_this_regions_logs_use_it(stack):
    key = stack.named("aws:kms/key:Key", "stack-key")
    assert key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    logs = next(s for s in statements if "Service" in s["Principal"])
    assert logs["Principal"]["Service"] == f"logs.{stack.region}.amazonaws.com"
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"].startswith(
        f"arn:aws:logs:{stack.region}:123456789012:")


def rules(stack, typ):
    by_id = ids(stack)
    out = set()
    for r in stack.of_type(typ):
        peer = r.inputs.get("cidrIpv4") or by_id[r.inputs["referencedSecurityGroupId"]].name.removeprefix(
            "security-groups-")
        out.add((by_id[r.inputs["securityGroupId"]].name.removeprefix("security-groups-"), r.inputs["fromPort"],
                 r.inputs["toPort"], peer))
    return out


def test_security_groups_are_chained_least_privilege(stack):
    # Both regions deploy the password rotation function: the active one rotates.
    assert rules(stack, INGRESS) == {
        ("alb", 80, 80, "0.0.0.0/0"), ("alb", 443, 443, "0.0.0.0/0"),
        ("app", 8000, 8000, "alb"), ("app", 80, 80, "alb"),
        ("db", 5432, 5432, "app"), ("cache", 6379, 6379, "app"), ("endpoints", 443, 443, "app"),
        ("db", 5432, 5432, "rotation"), ("endpoints", 443, 443, "rotation")}
    assert rules(stack, EGRESS) == {
        ("alb", 8000, 8000, "app"), ("alb", 80, 80, "app"),
        ("app", 5432, 5432, "db"), ("app", 6379, 6379, "cache"), ("app", 443, 443, "0.0.0.0/0"),
        ("rotation", 5432, 5432, "db"), ("rotation", 443, 443, "endpoints")}
    for group in stack.of_type("aws:ec2/securityGroup:SecurityGroup"):
        # Inline rules would clash with the rule resources; none means no default allow-all egress either.
        assert "ingress" not in group.inputs and "egress" not in group.inputs
    default = stack.named("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "network")
    assert default.inputs["ingress"] == [] and default.inputs["egress"] == []


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.16.0.0/18", "192.168.0.0/20"])
@pytest.mark.parametrize("az_count", [1, 2, 3, 4, 5, 6])
def test_subnet_plan_fits_any_allowed_vpc(cidr, az_count):
    plan = plan_subnets(cidr, az_count)
    vpc = ipaddress.ip_network(cidr)
    blocks = [ipaddress.ip_network(c) for c in plan.public + plan.private + plan.isolated]
    assert len(blocks) == 3 * az_count
    assert all(b.subnet_of(vpc) and b.prefixlen <= 28 for b in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1:])


def test_subnet_plan_refuses_what_it_cannot_fit():
    with pytest.raises(ValueError):
        plan_subnets("10.0.0.0/24", 2)
    with pytest.raises(ValueError):
        plan_subnets("10.0.0.0/16", 7)


def test_constrained_zones_are_never_chosen_and_pins_are_honoured(evaluations, project):
    # use1-az3 lacks the Graviton classes the database and cache run on.
    for stack in evaluations.values():
        assert not [s for s in stack.of_type(SUBNET) if s.inputs["availabilityZoneId"] == "use1-az3"]
    pinned = ["use1-az6", "use1-az2", "use1-az5"]
    primary = evaluate("primary", project(primary={f"{NS}:network.availabilityZoneIds": pinned,
                                                   f"{NS}:network.azCount": None}))
    assert [s.inputs["availabilityZoneId"] for s in tier(primary, "isolated")] == pinned


@pytest.mark.parametrize(("value", "words"), [
    (["use1-az1", "use1-az3"], "use1-az3 lacks the instance families used"),
    (["use1-az1", "use1-az1"], "distinct AZ IDs"),
    (["us-east-1a", "us-east-1b"], "AZ IDs of us-east-1 from use1-az1"),
    (["use1-az1"], "a list of 2 to 5"),
    ([{"id": "use1-az1"}, "use1-az2"], "distinct AZ IDs"),  # not a traceback
])
def test_pinned_zone_ids_are_checked(project, value, words):
    with pytest.raises(SettingsError) as raised:
        evaluate("primary", project(primary={f"{NS}:network.availabilityZoneIds": value}))
    assert str(raised.value).startswith(f"Pulumi.primary.yaml: {NS}:network.availabilityZoneIds")
    assert words in str(raised.value)


def test_pinned_zones_must_match_azcount(project):
    with pytest.raises(SettingsError, match="azCount 3 .*disagrees with availabilityZoneIds"):
        evaluate("primary", project(primary={f"{NS}:network.availabilityZoneIds": ["use1-az1", "use1-az2"]}))


def test_a_zone_the_account_does_not_offer_is_named_at_deploy_time(evaluations, project):
    settings = load_settings(*_raw("primary", project()))
    assert check_zone_ids(settings, ["use1-az1", "use1-az2", "use1-az4"]) == ("use1-az1", "use1-az2", "use1-az4")
    with pytest.raises(SettingsError) as raised:
        check_zone_ids(settings, ["use1-az1", "use1-az2", "use1-az3"])
    assert str(raised.value).startswith(f"Pulumi.primary.yaml: {NS}:network.availabilityZoneIds")
    assert "names use1-az4, which this account does not offer" in str(raised.value)


def _raw(stack, project_dir):
    raw, _ = read_stack_file(project_dir / f"Pulumi.{stack}.yaml")
    return raw, stack, project_dir
