"""Adopting the network from Terraform state, and turning a state into a `pulumi import` document."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from regions.settings import SettingsError
from regions.terraform_import import import_document
from synth.engine import REPO, evaluate

NS = "trading-platform"
FIXTURES = REPO / "tests" / "fixtures" / "terraform"
STATE = json.loads((FIXTURES / "vpc-state.json").read_text())
OUT = {name: output["value"] for name, output in STATE["outputs"].items()}
ADOPT = {"source": "terraform", "flowLogRetentionDays": 90,
         "terraformState": {"backend": "local", "path": "terraform/vpc.json"}}
CREATED = ("aws:ec2/vpc:Vpc", "aws:ec2/subnet:Subnet", "aws:ec2/natGateway:NatGateway", "aws:ec2/eip:Eip",
           "aws:ec2/internetGateway:InternetGateway", "aws:ec2/routeTable:RouteTable", "aws:ec2/flowLog:FlowLog")


def adopted(project, state_file="vpc-state.json", **network):
    project_dir = project(primary={f"{NS}:network": {**ADOPT, **network}})
    (project_dir / "terraform").mkdir()
    shutil.copy(FIXTURES / state_file, project_dir / "terraform" / "vpc.json")
    return project_dir


def test_the_adopted_network_is_used_and_none_is_created(project):
    primary = evaluate("primary", adopted(project))
    assert not [r.name for r in primary.resources if r.type in CREATED]
    ids = {r.id: r for r in primary.resources if r.id}
    groups = primary.of_type("aws:ec2/securityGroup:SecurityGroup")
    assert groups and {g.inputs["vpcId"] for g in groups} == {OUT["vpc_id"]}
    endpoints = {r.name: r.inputs for r in primary.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")}
    assert endpoints["endpoints-s3"]["routeTableIds"] == OUT["private_route_table_ids"] + OUT[
        "database_route_table_ids"]
    assert endpoints["endpoints-logs"]["subnetIds"] == OUT["private_subnets"]
    assert primary.named("aws:rds/subnetGroup:SubnetGroup", "database").inputs["subnetIds"] == OUT["database_subnets"]
    assert primary.named("aws:elasticache/subnetGroup:SubnetGroup", "cache").inputs["subnetIds"] == OUT[
        "database_subnets"]
    assert primary.named("aws:lb/loadBalancer:LoadBalancer", "alb").inputs["subnets"] == OUT["public_subnets"]
    service = primary.named("aws:ecs/service:Service", "api").inputs
    assert service["networkConfiguration"]["subnets"] == OUT["private_subnets"]
    assert primary.outputs["vpc_id"] == OUT["vpc_id"]
    assert not ids.get(OUT["vpc_id"])  # adopted, not registered


def test_output_names_can_be_mapped(project):
    state = dict(STATE, outputs={("vpc" if k == "vpc_id" else k): v for k, v in STATE["outputs"].items()})
    project_dir = adopted(project, terraformOutputs={"vpcId": "vpc"})
    (project_dir / "terraform" / "vpc.json").write_text(json.dumps(state))
    assert evaluate("primary", project_dir).outputs["vpc_id"] == OUT["vpc_id"]


def test_a_state_without_database_subnets_is_named(project):
    with pytest.raises(SettingsError) as raised:
        evaluate("primary", adopted(project, "vpc-state-without-database-subnets.json"))
    message = str(raised.value)
    assert message.startswith(
        "Pulumi.primary.yaml: trading-platform:network.terraformOutputs.databaseSubnets 'database_subnets' "
        "is not an output of local state terraform/vpc.json")


def test_the_synth_command_exits_2_for_a_missing_output(project):
    project_dir = adopted(project, "vpc-state-without-database-subnets.json")
    result = subprocess.run([sys.executable, "-m", "synth", "--stack", "primary", "--project-dir", str(project_dir)],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "'database_subnets' is not an output of local state terraform/vpc.json" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("network", "words"), [
    ({"cidr": "10.30.0.0/16"}, "not set when network.source is terraform"),
    ({"terraformState": None}, "is missing"),
    ({"terraformState": {"backend": "gcs", "path": "x"}}, "one of local, s3"),
    ({"terraformState": {"backend": "s3", "bucket": "tf-state", "key": "vpc/terraform.tfstate"}},
     "cannot be read offline"),
])
def test_terraform_settings_errors(project, network, words):
    with pytest.raises(SettingsError, match="Pulumi.primary.yaml: trading-platform:network") as raised:
        evaluate("primary", project(primary={f"{NS}:network": {k: v for k, v in {**ADOPT, **network}.items()
                                                                 if v is not None}}))
    assert words in str(raised.value)


def test_a_local_state_that_is_not_there_is_named(project):
    with pytest.raises(SettingsError, match="trading-platform:network.terraformState.path 'terraform/vpc.json' "
                                           "does not exist"):
        evaluate("primary", project(primary={f"{NS}:network": ADOPT}))


def test_state_settings_on_a_created_network_are_refused(project):
    with pytest.raises(SettingsError, match="terraformState .* is set but not used"):
        evaluate("primary", project(primary={f"{NS}:network.terraformState": {"backend": "local", "path": "x"}}))


def test_import_document_from_a_terraform_state():
    document, skipped = import_document(STATE)
    by_name = {r["name"]: r for r in document["resources"]}
    assert by_name["vpc-vpc-this-0"] == {"type": "aws:ec2/vpc:Vpc", "name": "vpc-vpc-this-0", "id": OUT["vpc_id"]}
    assert [by_name[f"vpc-subnet-database-{i}"]["id"] for i in range(3)] == OUT["database_subnets"]
    assert by_name["vpc-route-table-association-private-1"]["id"] == (
        f"{OUT['private_subnets'][1]}/{OUT['private_route_table_ids'][1]}")
    assert by_name["primary-region-db-instance-this"] == {
        "type": "aws:rds/instance:Instance", "name": "primary-region-db-instance-this",
        "id": "trading-platform-production"}
    assert by_name["primary-region-ecs-service-api"]["id"] == "trading/api"
    assert by_name["primary-region-ecs-cluster-this"]["id"] == "trading"
    assert len(document["resources"]) == len(by_name)  # names are unique
    assert not any("availability" in r["name"] for r in document["resources"])  # data sources are not resources
    assert skipped == ["module.primary_region.aws_sqs_queue.legacy (aws_sqs_queue is not a kind this program manages)"]


def test_import_command(tmp_path):
    done = subprocess.run([sys.executable, "-m", "regions.terraform_import", str(FIXTURES / "vpc-state.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert len(json.loads(done.stdout)["resources"]) == 33
    assert "left out module.primary_region.aws_sqs_queue.legacy" in done.stderr
    (tmp_path / "old.json").write_text(json.dumps({"version": 3}))
    done = subprocess.run([sys.executable, "-m", "regions.terraform_import", str(tmp_path / "old.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "format version 4" in done.stderr
