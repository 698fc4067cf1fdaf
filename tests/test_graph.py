"""The architecture graph: both stacks in one drawing, grouped by stack and region, with the links that explain the
platform (flows, replication across the regions, references) and without the plumbing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from synth.engine import REPO
from synth.graph import GraphError, drawn_edges, edges, links, paired, to_dot, to_markdown, to_mermaid, write

SERVICE_GROUP = "group:{stack}:trading-platform:services:Service"


@pytest.fixture(scope="module")
def pair(evaluations):
    return [evaluations["primary"], evaluations["backup"]]


@pytest.fixture(scope="module")
def named(pair):
    """Component edges as (stack, name, label, stack, name, cross), and the graph's node names."""

    def name(urn: str) -> tuple[str, str]:
        return urn.split("::")[0].removeprefix("urn:pulumi:"), urn.rsplit("::", 1)[1]

    return {(*name(e.source), e.label, *name(e.target), e.cross) for e in edges(pair)}


def has(named, source: str, label: str, target: str, cross: bool | None = None) -> bool:
    """`source` and `target` as `stack/name`; the label is one of the edge's labels."""
    (s_stack, s_name), (t_stack, t_name) = source.split("/"), target.split("/")
    return any(s_stack == e[0] and s_name == e[1] and label in e[2].split(" and ") and t_stack == e[3]
               and t_name == e[4] and (cross is None or e[5] == cross) for e in named)


@pytest.mark.parametrize("stack", ["primary", "backup"])
def test_services_reach_the_data_stores_secrets_and_images(named, stack):
    for service in ("api", "worker"):
        assert has(named, f"{stack}/{service}", "connects to", f"{stack}/database", cross=False)
    for service in ("api", "beat", "worker"):
        assert has(named, f"{stack}/{service}", "connects to", f"{stack}/cache")
        assert has(named, f"{stack}/{service}", "reads secrets from", f"{stack}/connection-secret")
        # The cache's token is the region's own, as its cache's.
        assert has(named, f"{stack}/{service}", "reads secrets from", f"{stack}/cache-auth-token", cross=False)
    assert has(named, f"{stack}/cache", "takes its password from", f"{stack}/cache-auth-token", cross=False)
    for service in ("api", "worker"):
        # The shared secrets are the primary's; the backup's services read their replicas in us-west-2.
        assert has(named, f"{stack}/{service}", "reads secrets from", "primary/shared-secrets",
                   cross=stack == "backup")
    # beat reads only the cache's host and token: nothing of the primary's.
    assert not has(named, f"{stack}/beat", "reads secrets from", "primary/shared-secrets")
    # The web serves static files: no database, no cache, no secret.
    assert not [e for e in named if e[:2] == (stack, "web") and e[4] in ("database", "cache", "shared-secrets")]
    for service in ("api", "beat", "web", "worker"):
        assert has(named, f"{stack}/{service}", "runs on", f"{stack}/cluster")
        assert has(named, f"{stack}/{service}", "pulls images from", f"{stack}/images")
    assert has(named, f"{stack}/worker", "writes to", f"{stack}/backups")


@pytest.mark.parametrize("stack", ["primary", "backup"])
def test_traffic_dns_and_monitoring(named, stack):
    # The load balancer routes to the services with a target group, not to the worker and beat.
    assert has(named, f"{stack}/alb", "routes to", f"{stack}/api")
    assert has(named, f"{stack}/alb", "routes to", f"{stack}/web")
    assert not has(named, f"{stack}/alb", "routes to", f"{stack}/worker")
    assert not has(named, f"{stack}/worker", "acts on", f"{stack}/alb")  # a dependency that only orders
    # Each region's failover record sends users to its own load balancer.
    assert has(named, f"{stack}/failover", "routes users to", f"{stack}/alb", cross=False)
    assert has(named, f"{stack}/alb", "writes access logs to", f"{stack}/access-logs")
    for target in ("alb", "database", "cache", "cluster", "api"):
        assert has(named, f"{stack}/monitoring", "watches", f"{stack}/{target}")
    assert has(named, f"{stack}/cost", "alerts to", f"{stack}/monitoring")


def test_links_across_the_regions(named):
    assert has(named, "backup/database", "replicates from", "primary/database", cross=True)
    assert has(named, "backup/database", "copies backups of", "primary/database", cross=True)
    assert has(named, "primary/backups-replication", "replicates to", "backup/backups", cross=True)
    assert has(named, "primary/images", "replicates images to", "backup/images", cross=True)
    assert has(named, "primary/backup-plan", "copies recovery points to", "backup/backup-plan", cross=True)
    assert has(named, "backup/alb", "validates its certificate with", "primary/alb", cross=True)
    # The switch (its alarm in us-west-2, owned by the primary) fails the primary's record over.
    assert has(named, "primary/failover-switch", "forces failover of", "primary/failover")
    # The backup's replication probe reads the replica of the primary's database-credentials secret, as its
    # services do.
    assert has(named, "backup/replication-probe", "reads secrets from", "primary/shared-secrets", cross=True)
    crossing = {(e[0], e[1], e[3], e[4]) for e in named if e[5]}
    assert all(e[0] != e[3] for e in named if e[5])  # only between the stacks here
    assert len(crossing) == 12


def test_no_plumbing_no_self_edges_and_a_readable_count(pair, named):
    plumbing = ("network", "security-groups", "stack-key", "replica-key", "endpoints")
    assert not [e for e in named if e[4] in plumbing or e[1] in plumbing]
    assert not [e for e in named if e[:2] == e[3:5]]
    assert 80 <= len(named) <= 130, len(named)  # one edge per component pair: 2 were drawn before
    drawn = drawn_edges(pair)
    assert 45 <= len(drawn) <= 80, len(drawn)  # the services' shared links drawn once from their group
    assert 150 <= len(edges(pair, "resources")) <= 300
    assert len({(e.source, e.target) for e in drawn}) == len(drawn)  # parallel links collapsed


def test_the_services_group_stands_for_shared_links(pair, evaluations):
    drawn = {(e.source.rsplit("::", 1)[-1], e.label, e.target.rsplit("::", 1)[-1]) for e in drawn_edges(pair)}
    group = SERVICE_GROUP.format(stack="primary")
    assert (group, "connects to (api, worker)", "database") in drawn
    assert (group, "runs on", "cluster") in drawn  # all four: no names
    assert ("alb", "routes to (api, web)", group) in drawn
    assert (SERVICE_GROUP.format(stack="backup"), "reads secrets from (api, worker)", "shared-secrets") in drawn
    assert (SERVICE_GROUP.format(stack="backup"), "reads secrets from (api, beat, worker)", "cache-auth-token") in drawn
    assert ("worker", "writes to", "backups") in drawn  # one member: its own edge


def test_resource_links_name_what_they_resolve(pair):
    found = {(link.source.rsplit("::", 1)[-1], link.source.split("::")[0], link.label, link.target.split("::")[0],
              link.target.rsplit("::", 1)[-1]) for link in links(pair)}
    assert ("database", "urn:pulumi:backup", "replicates from", "urn:pulumi:primary", "database") in found
    # A task definition reading the `db_host` field of the connection secret connects to that host.
    assert ("api", "urn:pulumi:primary", "connects to", "urn:pulumi:primary", "database") in found
    # The backup's tasks read the replica ARNs of the primary's secrets, and pull the replicated images.
    assert ("api", "urn:pulumi:backup", "reads secrets from", "urn:pulumi:primary",
            "shared-secrets-jwt-secret") in found
    assert ("api", "urn:pulumi:backup", "pulls images from", "urn:pulumi:backup", "images") in found


def test_mermaid_groups_by_stack_and_draws_every_edge(pair):
    mermaid = to_mermaid(pair)
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    assert sum(1 for line in lines if line.strip().startswith("subgraph")) == sum(
        1 for line in lines if line.strip() == "end")
    assert '  subgraph stack_primary["stack primary · us-east-1"]' in lines
    assert '  subgraph stack_backup["stack backup · us-west-2"]' in lines
    assert 'primary_database["database<br/>Database · 8 resources"]' in mermaid
    assert 'primary_failover_switch["failover-switch<br/>FailoverSwitch · 2 resources<br/>also in us-west-2"]' \
        in mermaid
    assert '  primary_alb -->|"routes to (api, web)"| primary_services' in lines
    assert '  backup_database -.->|"replicates from and copies backups of"| primary_database' in lines
    assert '  primary_backups_replication -.->|"replicates to"| backup_backups' in lines
    declared = set(re.findall(r"^\s*(?:subgraph )?(\w+)\[", mermaid, re.MULTILINE))
    arrows = [re.match(r"^  (\w+) (-->|-\.->)\|\"[^\"]+\"\| (\w+)$", line) for line in lines if "->|" in line]
    assert all(arrows) and len(arrows) == len(drawn_edges(pair))
    assert {m.group(1) for m in arrows} | {m.group(3) for m in arrows} <= declared
    dashed = [i for i, m in enumerate(arrows) if m.group(2) == "-.->"]
    assert lines[-1] == f"  linkStyle {','.join(map(str, dashed))} stroke:#b22222,stroke-width:2px,color:#b22222"
    assert to_mermaid(pair) == mermaid  # stable between runs


@pytest.mark.parametrize("detail", ["components", "resources"])
def test_dot_clusters_and_edges_between_declared_nodes(pair, detail):
    dot = to_dot(pair, detail)
    assert dot.startswith('digraph "primary + backup"') and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    assert "subgraph cluster_stack_primary {" in dot and "subgraph cluster_stack_backup {" in dot
    nodes = set(re.findall(r"^\s*(\w+) \[label=", dot, re.MULTILINE))
    clusters = set(re.findall(r"subgraph (cluster_\w+) \{", dot))
    found = re.findall(r"^  (\w+) -> (\w+) \[(.*)\];$", dot, re.MULTILINE)
    assert len(found) == len(drawn_edges(pair) if detail == "components" else edges(pair, detail))
    for source, target, attributes in found:
        assert source in nodes and target in nodes
        assert set(re.findall(r"l(?:tail|head)=(cluster_\w+)", attributes)) <= clusters
    assert any('label="replicates from' in a and "style=dashed" in a for *_, a in found)
    if detail == "resources":
        assert dot.count(" -> ") > 150 and 'label="backups\\nBucket"' in dot
    else:
        assert "ltail=cluster_primary_services" in dot and "lhead=cluster_primary_services" in dot
    assert to_dot(pair, detail) == dot


def test_markdown_page_lists_the_links_across_regions(pair):
    page = to_markdown(pair)
    assert page.startswith("# Architecture: stack primary (us-east-1) and stack backup (us-west-2)")
    assert "```mermaid\nflowchart LR\n" in page
    assert "- backup's `database` replicates from and copies backups of primary's `database`" in page
    assert "- primary's `backups-replication` replicates to backup's `backups`" in page


def test_one_stack_is_drawn_with_its_peer(evaluations, tmp_path):
    stacks = paired(evaluations["primary"])
    assert [e.stack for e in stacks] == ["primary", "backup"]
    assert stacks[0] is evaluations["primary"]
    assert len(stacks[1].resources) == len(evaluations["backup"].resources)
    assert paired(evaluations["primary"], tmp_path) == [evaluations["primary"]]  # no stack files: alone


@pytest.mark.skipif(shutil.which("dot") is not None, reason="graphviz is installed here")
def test_svg_without_graphviz_says_so(evaluations, tmp_path):
    with pytest.raises(GraphError, match="graphviz's `dot` is not installed"):
        write(evaluations["primary"], tmp_path / "primary.svg")


def test_unknown_format_and_detail(evaluations, tmp_path):
    with pytest.raises(GraphError, match="written as"):
        write(evaluations["primary"], tmp_path / "primary.png")
    with pytest.raises(GraphError, match="components or resources"):
        to_mermaid(evaluations["primary"], "everything")


def test_graph_option_writes_one_drawing_of_both_stacks(tmp_path):
    result = subprocess.run([sys.executable, "-m", "synth", "--graph", str(tmp_path / "arch.mmd")], cwd=REPO,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["arch.mmd"]
    mermaid = (tmp_path / "arch.mmd").read_text()
    assert "subgraph stack_primary[" in mermaid and "subgraph stack_backup[" in mermaid
    assert "backup_database -.->" in mermaid


def test_svg_draws_the_components_by_default(evaluations, tmp_path, monkeypatch):
    """Every resource drew an SVG about 25,000 px tall: a picture is of the components unless asked. graphviz is not on
    these machines: a `dot` that echoes its input shows what it was given."""
    echo = tmp_path / "dot"
    echo.write_text("#!/bin/sh\ncat\n")
    echo.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    write([evaluations["primary"], evaluations["backup"]], tmp_path / "arch.svg")
    assert (tmp_path / "arch.svg").read_text() == to_dot([evaluations["primary"], evaluations["backup"]], "components")
