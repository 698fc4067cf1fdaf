"""The architecture graph: the component tree and the links across regions."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from synth.engine import REPO
from synth.graph import GraphError, links, to_dot, to_mermaid, write


def test_cross_region_links(evaluations):
    primary, backup = evaluations["primary"], evaluations["backup"]
    backup_links = {(link.label, link.target) for link in links(backup)}
    assert ("replicates from", "ext:" + primary.outputs["db_instance_arn"]) in backup_links
    assert ("copies backups of", "ext:" + primary.outputs["db_instance_arn"]) in backup_links
    assert any(label == "SECONDARY record checks" for label, _ in backup_links)
    assert not [link for link in backup_links if link[0] == "lives in"]  # nothing of the backup is in us-east-1
    primary_links = {(link.label, link.target) for link in links(primary)}
    assert ("replicates to", "ext:" + backup.outputs["backup_bucket_arn"]) in primary_links
    assert ("lives in", "ext:region us-west-2") in primary_links  # the switch, the replica key, ...
    assert ("copies recovery points to",
            "ext:arn:aws:backup:us-west-2:123456789012:backup-vault:trading-platform-production") in primary_links
    assert any(label == "PRIMARY record checks" for label, _ in primary_links)


def test_dot_is_a_tree_of_components_with_dashed_cross_links(evaluations):
    dot = to_dot(evaluations["backup"])
    assert dot.startswith('digraph "backup"') and dot.rstrip().endswith("}")
    assert dot.count('subgraph "cluster_') >= 20
    assert 'label="replicates from", style=dashed' in dot
    assert to_dot(evaluations["backup"]) == dot  # stable between runs


def test_mermaid_is_balanced_and_component_level(evaluations):
    mermaid = to_mermaid(evaluations["primary"])
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    opened = sum(1 for line in lines if line.strip().startswith("subgraph"))
    assert opened == sum(1 for line in lines if line.strip() == "end")
    assert "database<br/>Database<br/>7 resources" in mermaid
    assert "copies recovery points to" in mermaid


@pytest.mark.skipif(shutil.which("dot") is not None, reason="graphviz is installed here")
def test_svg_without_graphviz_says_so(evaluations, tmp_path):
    with pytest.raises(GraphError, match="graphviz's `dot` is not installed"):
        write(evaluations["primary"], tmp_path / "primary.svg")


def test_graph_option_writes_one_file_per_stack(tmp_path):
    result = subprocess.run([sys.executable, "-m", "synth", "--graph", str(tmp_path / "arch.dot")], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "arch-primary.dot").read_text().startswith('digraph "primary"')
    assert (tmp_path / "arch-backup.dot").read_text().startswith('digraph "backup"')
