"""The monthly cost estimate: priced from the shipped table, per resource, with its basis."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from synth.__main__ import main as synth_main
from synth.cost import PRICES, estimate, usage_of
from synth.engine import REPO, evaluate

FIGURES = yaml.safe_load(PRICES.read_text())["regions"]["us-east-1"]


def usd(key):
    return FIGURES[key]["usd"]


@pytest.fixture(scope="module")
def costs(evaluations):
    return {name: estimate(evaluations[name], usage_of(REPO, name)) for name in ("primary", "backup")}


def item(cost, resource, type_suffix):
    (found,) = [i for i in cost["items"] if i["resource"] == resource and i["type"].endswith(type_suffix)]
    return found


def test_every_price_has_a_source_and_a_date():
    for region in ("us-east-1", "us-west-2"):
        for key, figure in yaml.safe_load(PRICES.read_text())["regions"][region].items():
            assert figure["usd"] >= 0 and figure["source"].startswith("https://aws.amazon.com/"), key
            assert len(figure["date"]) >= 7, key


def test_contract_shape_and_totals(costs):
    for cost in costs.values():
        assert cost["currency"] == "USD" and cost["unpriced"] == []
        assert cost["monthly_usd"] == pytest.approx(sum(i["monthly_usd"] for i in cost["items"]), abs=0.05)
        assert sum(cost["by_component"].values()) == pytest.approx(cost["monthly_usd"], abs=0.05)
        assert all(i["basis"] and i["type"] for i in cost["items"])
        assert set(cost["by_tag"]) == {"Project", "Environment", "CostCenter", "Owner", "Stack", "Region", "Role",
                                       "ManagedBy"}


def test_rds_is_priced_per_instance_hour_twice_for_multi_az(costs):
    one = usd("rds.db.r6g.large.hour") * 730 + 100 * usd("rds.gp3.gb-month")
    assert item(costs["primary"], "database", ":Instance")["monthly_usd"] == pytest.approx(2 * one, abs=0.01)
    assert item(costs["backup"], "database", ":Instance")["monthly_usd"] == pytest.approx(one, abs=0.01)


def test_fargate_from_desired_counts_with_the_spot_discount(costs):
    per_task = (1 * usd("fargate.vcpu-hour") + 2 * usd("fargate.gb-hour")) * 730
    assert item(costs["primary"], "api", ":Service")["monthly_usd"] == pytest.approx(2 * per_task, abs=0.01)
    assert item(costs["primary"], "worker", ":Service")["monthly_usd"] == pytest.approx(
        2 * per_task * usd("fargate.spot-share"), abs=0.01)
    assert item(costs["backup"], "worker", ":Service")["monthly_usd"] == 0  # standby: no workers
    assert item(costs["backup"], "api", ":Service")["monthly_usd"] == pytest.approx(per_task, abs=0.01)


def test_network_and_edge_items(costs):
    primary = costs["primary"]
    assert len([i for i in primary["items"] if i["type"].endswith(":NatGateway")]) == 3
    endpoint = item(primary, "endpoints-logs", ":VpcEndpoint")
    assert endpoint["monthly_usd"] == pytest.approx(3 * usd("endpoint.az-hour") * 730, abs=0.01)
    check = item(primary, "failover", ":HealthCheck")
    assert check["monthly_usd"] == usd("route53.health-check.month") + 3 * usd("route53.health-check.option-month")
    waf = item(primary, "alb", ":WebAcl")
    assert waf["monthly_usd"] == pytest.approx(usd("waf.acl-month") + 3 * usd("waf.rule-month")
                                               + 20 * usd("waf.million-requests"), abs=0.01)
    replication = item(primary, "backups-replication", ":BucketReplicationConfig")
    assert replication["monthly_usd"] == pytest.approx(300 * (usd("s3.inter-region.gb") + usd("s3.rtc.gb")), abs=0.01)


def test_an_unpriced_size_is_reported_not_guessed(project, capsys):
    cache: dict = {}
    project_dir = project(backup={"trading-platform:database.instanceClass": "db.m7g.large"})
    evaluate("backup", project_dir, cache)
    cost = estimate(cache["backup"], usage_of(project_dir, "backup"))
    assert item(cost, "database", ":Instance")["monthly_usd"] is None
    assert "rds.db.m7g.large.hour" in cost["unpriced"]
    # The total is a lower bound, said so, not a sum with a zero in it.
    assert cost["complete"] is False
    assert synth_main(["--project-dir", str(project_dir), "--cost"]) == 0
    out = capsys.readouterr().out
    assert "monthly cost of backup: at least " in out and "INCOMPLETE" in out
    assert "standby (backup) share of the primary: unknown, the estimate is incomplete" in out


def test_cost_as_json_is_only_the_cost_and_names_every_item(capsys):
    assert synth_main(["--cost", "--format", "json", "--stack", "primary"]) == 0
    cost = json.loads(capsys.readouterr().out)
    assert set(cost) == {"monthly_usd", "currency", "hours_per_month", "items", "by_component", "by_tag", "unpriced",
                         "complete"}
    assert cost["complete"] is True
    # Stack-level items are named for what they are, not lumped under "stack".
    assert "stack" not in cost["by_component"] and cost["by_component"]["log ingestion"] == 30.0


def test_the_diff_names_each_resources_type(capsys):
    # The buckets' names differ by the region's name only: listed on request.
    assert synth_main(["--diff", "--region-renames"]) == 0
    lines = capsys.readouterr().out.splitlines()
    buckets = [line for line in lines if "  backups  bucket: " in line]
    assert len(buckets) > 1 and len({line.split()[0] for line in buckets}) == len(buckets)


def test_cost_command_prints_both_stacks_and_the_standby_share():
    result = subprocess.run([sys.executable, "-m", "synth", "--cost"], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "monthly cost of primary:" in result.stdout and "monthly cost of backup:" in result.stdout
    assert "standby (backup) costs" in result.stdout and "of the primary" in result.stdout
