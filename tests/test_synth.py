"""The offline synth: its JSON contract, determinism, and that the stacks differ only by role."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from conftest import write_project

from synth.engine import REPO, evaluate
from synth.report import diff, table, to_json


@pytest.mark.parametrize("name", ["primary", "backup"])
def test_json_contract_from_the_command_line(name):
    result = subprocess.run([sys.executable, "-m", "synth", "--stack", name, "--format", "json"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # nothing but the JSON object on stdout
    assert set(document) >= {"stack", "region", "resources", "outputs", "cost", "findings"}
    assert document["stack"] == name
    assert document["region"] == {"primary": "us-east-1", "backup": "us-west-2"}[name]
    for resource in document["resources"]:
        assert set(resource) >= {"type", "name", "urn", "parent", "inputs"}
        assert resource["urn"].startswith(f"urn:pulumi:{name}::trading-platform::")
    types = {r["type"] for r in document["resources"]}
    assert {"aws:ec2/vpc:Vpc", "aws:ec2/flowLog:FlowLog", "aws:ec2/vpcEndpoint:VpcEndpoint",
            "aws:ec2/securityGroup:SecurityGroup"} <= types
    assert document["outputs"]["region"] == document["region"]
    assert document["outputs"]["role"] == name
    # The tasks' restart marker has a value: the version ids the mocks give the secrets' values, never the values.
    (api,) = [r for r in document["resources"]
              if r["type"] == "aws:ecs/taskDefinition:TaskDefinition" and r["name"] == "api"]
    (app,) = [c for c in json.loads(api["inputs"]["containerDefinitions"]) if c["name"] == "api"]
    marker = {e["name"]: e["value"] for e in app["environment"]}["ROTATION_GENERATIONS"]
    assert re.fullmatch(r"jwt-secret:[0-9a-f-]{36},redis-auth-token:[0-9a-f-]{36}", marker), marker


def test_backup_reads_the_primary_outputs_through_its_stack_reference(evaluations):
    backup = evaluations["backup"]
    (reference,) = backup.of_type("pulumi:pulumi:StackReference")
    assert reference.inputs["name"] == "organization/trading-platform/primary"
    assert reference.state["outputs"] == evaluations["primary"].outputs
    assert backup.outputs["peer_region"] == "us-east-1"


def test_evaluation_is_deterministic(evaluations):
    again = evaluate("primary", REPO)
    assert to_json(again) == to_json(evaluations["primary"])


# What each role owns alone (DESIGN.md), by logical name or name prefix: primary's third AZ and per-AZ NAT
# gateways (its role profile), the shared secrets and their us-west-2 key, the image builds and their
# replication, the password rotation (and the forwarding of its events to the backup's region), the zone,
# ACM's validation record (the same for both regions) and the account-wide tag
# activation, the S3 replication rule and the failover switch; the backup's reference, replica backups, drill role
# and replica-lag alarm. The replication probe's alarms follow activeRegion: the active region's watches its
# heartbeats, the standby's its replication age.
PRIMARY_OWNS = ("network-nat-1", "network-nat-2", "network-private-2", "network-public-2", "network-isolated-2",
                "replica-key", "shared-secrets", "images", "database-password", "security-groups-rotation",
                "security-groups-db-from-rotation", "security-groups-endpoints-from-rotation",
                "security-groups-rotation-to-db", "security-groups-rotation-to-endpoints", "password-restarts-forward",
                "backups-replication", "failover-switch", "failover-serving", "failover-health",
                "zone", "alb-certificate-validation", "cost-", "replication-probe-heartbeat-silent")
BACKUP_OWNS = ("primary", "database", "images", "drill-operator", "monitoring-rds-replica-lag",
               "replication-probe-replication-age")


def _owned(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p if p.endswith("-") else p + "-") for p in prefixes)


def test_logical_names_are_the_same_and_only_the_role_differs(evaluations):
    d = diff(evaluations["primary"], evaluations["backup"])
    primary_only = [r["name"] for r in d["only_in_primary"]]
    backup_only = [(r["type"].rsplit(":", 1)[1], r["name"]) for r in d["only_in_backup"]]
    assert [n for n in primary_only if not _owned(n, PRIMARY_OWNS)] == []
    assert [r for r in backup_only if not _owned(r[1], BACKUP_OWNS)] == []
    assert ("InstanceAutomatedBackupsReplication", "database") in backup_only  # the only "database" of its own
    assert len([n for n in backup_only if n[1] == "database"]) == 1
    database_changes = {c["input"].split(".")[0] for c in d["changed"] if c["type"] == "aws:rds/instance:Instance"}
    # The replica differs from the writer by its source, by what a replica inherits from it, by applying its
    # changes at once and by leaving no final snapshot.
    assert database_changes == {"replicateSourceDb", "multiAz", "applyImmediately", "username", "dbName", "passwordWo",
                                "passwordWoVersion", "skipFinalSnapshot", "finalSnapshotIdentifier"}


def test_table_names_components_and_references_by_logical_name(evaluations):
    text = table(evaluations["backup"])
    assert "network (trading-platform:network:Network)" in text
    assert "natGatewayId=NatGateway:network-nat-0.id" in text
    vpc_id = evaluations["backup"].named("aws:ec2/vpc:Vpc", "network").id
    assert vpc_id not in text.split("outputs:")[0]  # physical ids are shown as logical names


def test_diff_from_the_command_line():
    result = subprocess.run([sys.executable, "-m", "synth", "--diff"], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("primary vs backup")
    assert "only in backup:" in result.stdout and "pulumi:pulumi:StackReference  primary" in result.stdout


def test_diff_leaves_out_what_differs_by_the_region_name_only(evaluations):
    """An ARN or endpoint naming each stack's region differs in every regional resource; listed, they hide what
    matters. They are counted, and listed on request."""
    quiet = diff(evaluations["primary"], evaluations["backup"])
    full = diff(evaluations["primary"], evaluations["backup"], region_renames=True)
    assert quiet["region_renames"] > 0 and full["region_renames"] is None
    assert len(full["changed"]) == len(quiet["changed"]) + quiet["region_renames"]
    for change in full["changed"]:
        if change not in quiet["changed"]:
            assert str(change["primary"]).replace("us-east-1", "us-west-2") == str(change["backup"]), change
    # A difference that is more than the region's name stays, e.g. the CIDRs.
    assert any(c["input"] == "cidrBlock" for c in quiet["changed"])


def test_the_default_output_is_a_summary_and_tables_come_on_request(capsys):
    """`make synth` prints per stack its resource count and findings, then the cost; every resource with its inputs
    only with --tables."""
    from synth.__main__ import main as synth_main
    assert synth_main([]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("stack primary (us-east-1): ") and "policy findings: none" in summary
    assert "monthly cost of primary:" in summary and "subnetId=" not in summary
    assert len(summary.splitlines()) < 80
    assert synth_main(["--tables", "--stack", "primary"]) == 0
    assert "subnetId=Subnet:network-" in capsys.readouterr().out


def test_an_unknown_graph_format_is_refused_before_the_evaluation(capsys, monkeypatch):
    import synth.__main__ as cli

    def evaluate_nothing(*args, **kwargs):
        raise AssertionError("evaluated before refusing the format")

    monkeypatch.setattr(cli, "evaluate", evaluate_nothing)
    assert cli.main(["--graph", "arch.png"]) == 2
    assert capsys.readouterr().err == "synth: --graph arch.png: the graph is written as .dot, .mmd, .md, .svg\n"


def test_an_evaluation_of_the_repositorys_files_is_stored_once_and_logged_again(tmp_path, monkeypatch, caplog):
    """synth/stored.py: what the test run shares between its processes. The same inputs give the stored evaluation and
    the warnings the program logged; other inputs (another config, another peer) are evaluated."""
    import logging

    from synth import stored

    monkeypatch.setenv(stored.VARIABLE, str(tmp_path))
    runs = []

    def run():
        runs.append(1)
        logging.getLogger().warning("googleClientId is not set")
        return {"evaluated": len(runs)}

    inputs = ["primary", {"aws:region": "us-east-1"}]
    first = stored.stored(REPO, inputs, run)
    caplog.clear()
    again = stored.stored(REPO, ["primary", {"aws:region": "us-east-1"}], run)
    assert first == again == {"evaluated": 1} and len(runs) == 1
    assert [r.getMessage() for r in caplog.records] == ["googleClientId is not set"]
    assert stored.stored(REPO, ["primary", {"aws:region": "us-west-2"}], run) == {"evaluated": 2}
    monkeypatch.delenv(stored.VARIABLE)
    assert stored.stored(REPO, inputs, run) == {"evaluated": 3}  # without the variable: nothing stored


def test_copies_of_the_project_share_an_evaluation_until_what_the_program_reads_differs(tmp_path, monkeypatch):
    """The store's key is everything the program reads (synth/engine.py, _read_beside), not the directory: a copy with
    the same files is a hit; another peer file, or a changed file in an image's build context, is evaluated."""
    from synth import stored

    store = tmp_path / "store"
    monkeypatch.setenv(stored.VARIABLE, str(store))
    first, second, third = (tmp_path / name for name in ("a", "b", "c"))
    for directory in (first, second, third):
        directory.mkdir()
        write_project(directory)

    def entries() -> int:
        return len(list(store.iterdir()))

    assert evaluate("primary", first).outputs == evaluate("primary", second).outputs and entries() == 1
    write_project(third, backup={"trading-platform:budget.monthlyUsd": 9999})
    evaluate("primary", third)
    assert entries() == 2  # the primary's evaluation takes its peer's file too

    context = tmp_path / "api"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\n")
    for directory in (first, second):
        write_project(directory, primary={"trading-platform:images.api": {"context": str(context),
                                                                          "dockerfile": "Dockerfile"}})
    built = evaluate("primary", first)
    assert evaluate("primary", second).resources == built.resources and entries() == 3
    (context / "main.py").write_text("print('a change')\n")
    rebuilt = evaluate("primary", first)
    assert entries() == 4

    def image(evaluation):
        return evaluation.named("docker:index/image:Image", "images-api").inputs["imageName"]

    assert image(rebuilt) != image(built)
