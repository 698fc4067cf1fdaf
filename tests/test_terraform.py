"""Adopting the network from Terraform state, and turning a state into a `pulumi import` document."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from regions.settings import TERRAFORM_OUTPUTS, SettingsError
from regions.terraform_import import (
    COMPONENTS,
    KINDS,
    PROVIDER,
    Stack,
    import_document,
    main,
    stack_from_file,
)
from synth.engine import REPO, evaluate

NS = "trading-platform"
FIXTURES = REPO / "tests" / "fixtures" / "terraform"
STATE = json.loads((FIXTURES / "vpc-state.json").read_text())
OUT = {name: output["value"] for name, output in STATE["outputs"].items()}
ADOPT = {"source": "terraform", "flowLogRetentionDays": 90,
         "terraformState": {"backend": "local", "path": "terraform/vpc.json"}}
STACKS = ("primary", "backup")
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
    # The failure happened inside the program: the next evaluation in this process is not disturbed by what
    # it left behind (the SDK's registry of outputs to await, on a closed loop).
    assert evaluate("primary", REPO).outputs["role"] == "primary"


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


# --- the guide's single state: module.primary_region and module.backup_region, each with its VPC from
# terraform-aws-modules/vpc nested as module.<region>.module.vpc, and the platform's resources beside it.
GUIDE = FIXTURES / "guide-state.json"
GUIDE_STATE = json.loads(GUIDE.read_text())


@pytest.fixture(scope="module")
def guide(tmp_path_factory):
    """The project's stack files, each stack adopting its region's VPC from the guide's state (root outputs
    primary_vpc_id, backup_vpc_id, ...), as the migration's step 2 has them."""
    directory = tmp_path_factory.mktemp("guide")
    shutil.copy(REPO / "Pulumi.yaml", directory / "Pulumi.yaml")
    (directory / "terraform").mkdir()
    shutil.copy(GUIDE, directory / "terraform" / "guide.json")
    for stack in STACKS:
        document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
        document["config"][f"{NS}:network"] = {
            "source": "terraform", "flowLogRetentionDays": 90,
            "terraformState": {"backend": "local", "path": "terraform/guide.json"},
            "terraformOutputs": {ours: f"{stack}_{theirs}" for ours, theirs in TERRAFORM_OUTPUTS.items()}}
        (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    return directory


@pytest.fixture(scope="module")
def guide_stacks(guide):
    """Each stack's registered resources and outputs, as `python -m synth --format json` prints them. In a
    process of its own: an evaluation that failed inside the program (above) leaves the SDK's output tasks
    behind, and the next evaluation in the same process would trip over them."""
    found = {}
    for stack in STACKS:
        done = subprocess.run([sys.executable, "-m", "synth", "--project-dir", str(guide), "--stack", stack,
                               "--format", "json"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        found[stack] = json.loads(done.stdout)
    return found


def imported(guide, stack, module=None):
    return import_document(GUIDE_STATE, stack_from_file(guide / f"Pulumi.{stack}.yaml"),
                           module or f"module.{stack}_region")


def engine_urn(urn):
    """A URN as the engine writes it: the root stack's type does not qualify its children's (the mocks' does)."""
    return urn.replace("::pulumi:pulumi:Stack$", "::")


def instances(module, nested=False):
    """(address prefix, attributes) of every managed instance in a module (with its nested modules or not)."""
    for resource in GUIDE_STATE["resources"]:
        path = resource.get("module", "")
        if resource["mode"] == "managed" and (path == module or nested and path.startswith(f"{module}.")):
            for instance in resource["instances"]:
                yield f"{path}.{resource['type']}.{resource['name']}", instance["attributes"]


def test_the_guide_stacks_adopt_their_vpcs_from_the_single_state(guide_stacks):
    for stack, evaluation in guide_stacks.items():
        assert evaluation["outputs"]["vpc_id"] == GUIDE_STATE["outputs"][f"{stack}_vpc_id"]["value"]
        assert not [r["name"] for r in evaluation["resources"] if r["type"] in CREATED]


@pytest.mark.parametrize("stack", STACKS)
def test_a_module_yields_only_its_own_resources(guide, stack):
    other = next(s for s in STACKS if s != stack)
    region = {"primary": "us-east-1", "backup": "us-west-2"}[stack]
    result = imported(guide, stack)
    entries = [r for r in result.document["resources"] if not r.get("component")]
    assert len(result.addresses) == len(set(result.addresses)) == len(entries) > 40
    assert all(a.startswith(f"module.{stack}_region.") for a in result.addresses)
    # The regions share names (the identifier, log groups): what only the other module has must not come out.
    ids = {a["id"] for _, a in instances(f"module.{stack}_region", nested=True)}
    others = {a["id"] for _, a in instances(f"module.{other}_region", nested=True)} - ids
    assert others and not others & {r["id"] for r in entries}
    assert not [r for r in entries if {"us-east-1", "us-west-2"} - {region} & set(re.split(r"[:/]", r["id"]))]
    by_name = {(r["type"], r["name"]): r for r in entries}
    # The backup's replica is the guide's aws_db_instance.replica: the program's database all the same.
    assert by_name["aws:rds/instance:Instance", "database"]["id"] == "trading-platform-production"
    # for_each instances by their keys: aws_ecs_service.this["api"] is the api service.
    assert f'module.{stack}_region.aws_ecs_service.this["api"]' in result.addresses
    assert by_name["aws:ecs/service:Service", "api"]["id"] == "trading-platform-production/api"
    assert by_name["aws:ec2/securityGroup:SecurityGroup", "security-groups-db"]["id"] == next(
        a["id"] for address, a in instances(f"module.{stack}_region") if address.endswith("aws_security_group.rds"))


@pytest.mark.parametrize("stack", STACKS)
def test_the_adopted_network_is_left_out(guide, stack):
    vpc = f"module.{stack}_region.module.vpc"
    result = imported(guide, stack)
    network = {a["id"] for _, a in instances(vpc)}
    assert network and not network & {r.get("id") for r in result.document["resources"]}
    assert not {r["type"] for r in result.document["resources"]} & set(CREATED)
    assert not [a for a in result.addresses if ".module.vpc." in a]
    # Even what the VPC module made that the program also declares (its DB subnet group, flow-log group)
    # stays with the network in Terraform.
    assert any(address.endswith("aws_db_subnet_group.database") for address, _ in instances(vpc))
    assert result.left_out[0] == (f"{vpc} ({len(network)} resources): the adopted network stays in Terraform "
                                  "(the stack reads it with network.source: terraform)")


@pytest.mark.parametrize("stack", STACKS)
def test_every_imported_resource_is_one_the_program_declares(guide, guide_stacks, stack):
    """What `pulumi import` would create (URN from type, logical name and parent; provider) is, resource for
    resource, what the program registers: the preview that follows matches each import to its declaration."""
    registered = {engine_urn(r["urn"]): r for r in guide_stacks[stack]["resources"]}
    document = imported(guide, stack).document
    project = "trading-platform"
    assert document["nameTable"] == {PROVIDER: f"urn:pulumi:{stack}::{project}::pulumi:providers:aws::aws"}
    provider = registered[document["nameTable"][PROVIDER]]
    assert (provider["type"], provider["name"]) == ("pulumi:providers:aws", PROVIDER)
    components = {r["name"]: r for r in document["resources"] if r.get("component")}
    for component in components.values():
        urn = f"urn:pulumi:{stack}::{project}::{component['type']}::{component['logicalName']}"
        assert registered[urn]["type"] == component["type"] and registered[urn]["provider"] is None
        assert set(component) == {"type", "name", "logicalName", "component"}
    urns = []
    for entry in (r for r in document["resources"] if not r.get("component")):
        parent = components[entry["parent"]]
        urn = f"urn:pulumi:{stack}::{project}::{parent['type']}${entry['type']}::{entry['name']}"
        declared = registered.get(urn)
        assert declared is not None, f"{entry} is not declared by the program"
        assert (declared["type"], declared["name"]) == (entry["type"], entry["name"])
        assert engine_urn(declared["parent"]) == (f"urn:pulumi:{stack}::{project}::{parent['type']}::"
                                                  f"{parent['logicalName']}")
        assert engine_urn(declared["provider"].rsplit("::", 1)[0]) == document["nameTable"][entry["provider"]]
        urns.append(urn)
    assert len(urns) == len(set(urns))  # never two imports onto one declaration
    assert {components[r["parent"]]["logicalName"] for r in document["resources"] if "parent" in r} == {
        c["logicalName"] for c in components.values()}


def test_the_catalog_names_only_what_the_program_declares(guide_stacks):
    """Every resource a Terraform name can map to, in the stacks of its roles: parent, type and name."""
    for role in STACKS:
        by_urn = {r["urn"]: r for r in guide_stacks[role]["resources"]}
        registered = {(r["type"], r["name"], by_urn[r["parent"]]["type"], by_urn[r["parent"]]["name"])
                      for r in by_urn.values() if r["parent"] in by_urn}
        missing = [(terraform_type, target.name) for terraform_type, kind in KINDS.items() for target in kind.targets
                   if role in target.roles
                   and (kind.token, target.name, COMPONENTS[target.parent], target.parent) not in registered]
        assert not missing, role


def test_what_has_no_counterpart_is_reported_not_guessed(guide):
    primary = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in imported(guide, "primary").left_out}
    m = "module.primary_region"
    assert primary[f"{m}.aws_sqs_queue.legacy"] == "aws_sqs_queue has no counterpart in this program"
    assert primary[f"{m}.aws_iam_role.ecs_task_execution"].startswith(
        "no counterpart named 'ecs-task-execution' among the program's aws:iam/role:Role (database-monitoring, ")
    assert "AWS refuses a duplicate rule" in primary[f"{m}.aws_security_group_rule.alb_https_in"]
    assert "nothing in AWS to import" in primary[f"{m}.aws_acm_certificate_validation.this"]
    assert f"{m}.aws_secretsmanager_secret_version.jwt" in primary
    backup = imported(guide, "backup").left_out
    assert "module.backup_region.aws_ecr_repository.api: the backup stack declares no aws:ecr/repository:Repository" \
           in backup


def state_of(*resources):
    return {"version": 4, "resources": [
        {"module": "module.primary_region", "mode": "managed", "type": typ, "name": name,
         "instances": [{"attributes": attributes, **({"index_key": key} if key is not None else {})}
                       for key, attributes in keyed]}
        for typ, name, keyed in resources]}


def test_two_claims_on_one_resource_or_a_vague_name_import_nothing():
    key = {"id": "k-1", "arn": "arn:aws:kms:us-east-1:123456789012:key/k-1"}
    result = import_document(state_of(
        ("aws_kms_key", "this", [(None, key)]),
        ("aws_kms_key", "main", [(None, dict(key, id="k-2"))]),
        ("aws_lb_listener", "this", [(None, {"arn": "arn:aws:elasticloadbalancing:us-east-1:1:listener/x"})]),
        ("aws_ecs_service", "this", [(0, {"name": "a", "cluster": "c"}), (1, {"name": "b", "cluster": "c"})]),
        ("aws_iam_role", "execution", [(None, {"name": "shared"})]),
        ("aws_db_instance", "this", [(None, {"id": "db-1"})]),
    ), Stack("primary", "primary", "us-east-1"), "module.primary_region")
    assert result.document == {"resources": []} and result.addresses == []
    m = "module.primary_region"
    assert result.left_out == [
        f"{m}.aws_lb_listener.this: no counterpart named 'this' among the program's aws:lb/listener:Listener "
        "(alb-http, alb-https)",
        f"{m}.aws_ecs_service.this[0]: one of 2 count-indexed instances: no name to match the program's "
        "aws:ecs/service:Service (api, web, worker, beat)",
        f"{m}.aws_ecs_service.this[1]: one of 2 count-indexed instances: no name to match the program's "
        "aws:ecs/service:Service (api, web, worker, beat)",
        f"{m}.aws_iam_role.execution: 'execution' could be any of api-execution, web-execution, worker-execution, "
        "beat-execution: not guessed",
        f"{m}.aws_db_instance.this: no 'identifier' attribute to import it by",
        f"{m}.aws_kms_key.this: {m}.aws_kms_key.main also names the program's aws:kms/key:Key stack-key: "
        "neither is imported (not guessed)",
        f"{m}.aws_kms_key.main: {m}.aws_kms_key.this also names the program's aws:kms/key:Key stack-key: "
        "neither is imported (not guessed)",
    ]


def test_the_command(guide):
    base = [sys.executable, "-m", "regions.terraform_import", str(GUIDE), "--module", "primary_region",
            "--stack-file", str(guide / "Pulumi.primary.yaml")]
    done = subprocess.run(base, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == imported(guide, "primary").document
    lines = done.stderr.splitlines()
    assert all(line.startswith("terraform_import: left out module.primary_region.") for line in lines[:-1])
    assert lines[-1] == f"terraform_import: {len(imported(guide, 'primary').addresses)} resources to import into " \
                        "the primary stack"
    done = subprocess.run([*base, "--addresses"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines() == imported(guide, "primary").addresses
    # Without the stack file: the stack is the module's, and the same document comes out.
    done = subprocess.run([*base[:6], "--adopted-network"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout)["resources"] == imported(guide, "primary").document[
        "resources"]


@pytest.mark.parametrize(("args", "message"), [
    (["--module", "module.nope", "--adopted-network"],
     f"{GUIDE}: no module.nope in this state (it has: module.backup_region, module.primary_region)"),
    (["--adopted-network"],
     f"{GUIDE}: it holds module.backup_region, module.primary_region: pick one with --module (one stack each)"),
    (["--module", "module.primary_region"],
     "name the stack to import into: --stack-file Pulumi.<stack>.yaml (or --adopted-network once the stack adopts "
     "the Terraform VPC)"),
    (["--module", "module.backup_region", "--stack-file", "{guide}/Pulumi.primary.yaml"],
     f"{GUIDE}: module.backup_region is in us-west-2, but Pulumi.primary.yaml deploys to us-east-1"),
    (["--module", "module.primary_region", "--stack-file", str(REPO / "Pulumi.primary.yaml")],
     "Pulumi.primary.yaml: trading-platform:network.source is create: this stack would create its own VPC and "
     "replace what is imported from Terraform's into it"),
    (["--module", "module.primary_region", "--stack-file", "{guide}/Pulumi.nope.yaml"],
     "Pulumi.nope.yaml: no such stack file in {guide}"),
])
def test_bad_input_exits_2_with_one_line(guide, capsys, args, message):
    assert main([str(GUIDE), *(a.format(guide=guide) for a in args)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1
    assert err.startswith(f"terraform_import: {message.format(guide=guide)}")


def test_a_state_of_another_format_exits_2(tmp_path, capsys):
    (tmp_path / "old.json").write_text(json.dumps({"version": 3}))
    assert main([str(tmp_path / "old.json"), "--adopted-network"]) == 2
    assert capsys.readouterr().err == (f"terraform_import: {tmp_path / 'old.json'}: expected a Terraform state of "
                                       "format version 4, found 3\n")
