"""The architecture graph of an evaluated stack: components and resources as a tree, and the links
that cross to the other region (replica -> writer, replication -> bucket, backup copy -> vault, a resource
owned here that lives in the other region) or tie
the failover together (record -> health check)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from synth.engine import Evaluation, Registration

FORMATS = (".dot", ".mmd", ".md", ".svg")


class GraphError(Exception):
    pass


@dataclass(frozen=True)
class Link:
    source: str
    target: str
    label: str


def _short(typ: str) -> str:
    return typ.rsplit(":", 1)[-1]


def _external(value: str) -> str:
    """A node for something in the other stack, named by its ARN or name."""
    return "ext:" + value


def links(evaluation: Evaluation) -> list[Link]:
    by_id = {r.id: r for r in evaluation.resources if r.id}
    found = []
    for r in evaluation.resources:
        i = r.inputs
        if r.type == "aws:rds/instance:Instance" and i.get("replicateSourceDb"):
            found.append(Link(r.urn, _external(i["replicateSourceDb"]), "replicates from"))
        if r.type.endswith(":InstanceAutomatedBackupsReplication"):
            found.append(Link(r.urn, _external(i["sourceDbInstanceArn"]), "copies backups of"))
        if r.type == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
            for rule in i.get("rules") or []:
                found.append(Link(r.urn, _external(rule["destination"]["bucket"]), "replicates to"))
        if i.get("region") not in (None, evaluation.region):
            # Owned here, living in the other region (per-resource region).
            found.append(Link(r.urn, _external(f"region {i['region']}"), "lives in"))
        if r.type == "aws:route53/record:Record" and i.get("healthCheckId") in by_id:
            found.append(Link(r.urn, by_id[i["healthCheckId"]].urn, f"{_failover(i)} record checks"))
        if r.type == "aws:backup/plan:Plan":
            copies = {c["destinationVaultArn"] for rule in i.get("rules", []) for c in rule.get("copyActions") or []}
            for arn in sorted(copies):
                found.append(Link(r.urn, _external(arn), "copies recovery points to"))
    return found


def _failover(inputs: dict) -> str:
    policies = inputs.get("failoverRoutingPolicies") or [{}]
    return policies[0].get("type", "")


def _ident(value: str) -> str:
    """A stable node id (the same in every run, unlike `hash`)."""
    return "n" + re.sub(r"[^A-Za-z0-9]", "_", value)[-40:] + hashlib.sha256(value.encode()).hexdigest()[:6]


def _tree(evaluation: Evaluation, detail: str) -> tuple[dict[str, Registration], dict[str, list[Registration]]]:
    """Nodes to draw and children per parent URN ('' for the stack)."""
    nodes = {r.urn: r for r in evaluation.resources if detail == "resources" or not r.custom
             or r.type.startswith("pulumi:")}
    children: dict[str, list[Registration]] = {}
    for r in nodes.values():
        parent = r.parent if r.parent in nodes else ""
        children.setdefault(parent, []).append(r)
    return nodes, children


def _nearest(urn: str, nodes: dict[str, Registration], evaluation: Evaluation) -> str:
    by_urn = {r.urn: r for r in evaluation.resources}
    while urn not in nodes and urn in by_urn:
        urn = by_urn[urn].parent or ""
    return urn


@dataclass(frozen=True)
class _Syntax:
    """How one graph language spells a group, a node, an external node and a dashed edge."""

    group: str
    close: str
    node: str
    external: str
    edge: str


DOT = _Syntax(group='subgraph "cluster_{id}" {{ label="{label}";', close="}}", node='{id} [label="{label}"];',
              external='{id} [label="{label}", shape=note, style=dashed];',
              edge='{source} -> {target} [label="{label}", style=dashed];')
MERMAID = _Syntax(group='subgraph {id}["{label}"]', close="end", node='{id}["{label}"]',
                  external='{id}[/"{label}"/]', edge="{source} -. {label} .-> {target}")


def _render(evaluation: Evaluation, detail: str, syntax: _Syntax, label, lines: list[str]) -> list[str]:
    nodes, children = _tree(evaluation, detail)

    def emit(parent: str, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            pad = "  " * depth
            if children.get(r.urn):
                lines.append(pad + syntax.group.format(id=_ident(r.urn), label=label(r)))
                emit(r.urn, depth + 1)
                lines.append(pad + syntax.close.format())
            else:
                lines.append(pad + syntax.node.format(id=_ident(r.urn), label=label(r)))

    emit("", 1)
    for link in links(evaluation):
        source = _nearest(link.source, nodes, evaluation)
        if link.target.startswith("ext:"):
            lines.append("  " + syntax.external.format(id=_ident(link.target), label=link.target[4:]))
            target = link.target
        else:
            target = _nearest(link.target, nodes, evaluation)
            if target == source:
                continue  # both ends inside one drawn component
        lines.append("  " + syntax.edge.format(source=_ident(source), target=_ident(target), label=link.label))
    return lines


def to_dot(evaluation: Evaluation, detail: str = "resources") -> str:
    header = [f'digraph "{evaluation.stack}" {{', "  rankdir=LR; node [shape=box, fontsize=10];",
              f'  label="stack {evaluation.stack} ({evaluation.region})";']
    lines = _render(evaluation, detail, DOT, lambda r: f"{r.name} ({_short(r.type)})", header)
    return "\n".join([*lines, "}"]) + "\n"


def to_mermaid(evaluation: Evaluation, detail: str = "components") -> str:
    def label(r: Registration) -> str:
        inner = sum(1 for x in evaluation.resources if x.parent == r.urn and x.custom)
        return f"{r.name}<br/>{_short(r.type)}" + (f"<br/>{inner} resources" if inner and detail != "resources"
                                                   else "")

    return "\n".join(_render(evaluation, detail, MERMAID, label, ["flowchart LR"])) + "\n"


def write(evaluation: Evaluation, path: Path, detail: str | None = None) -> None:
    suffix = path.suffix
    if suffix not in FORMATS:
        raise GraphError(f"{path}: the graph is written as {', '.join(FORMATS)}")
    if suffix in (".mmd", ".md"):
        mermaid = to_mermaid(evaluation, detail or "components")
        if suffix == ".md":  # a page GitHub renders
            mermaid = f"# Stack {evaluation.stack} ({evaluation.region})\n\n```mermaid\n{mermaid}```\n"
        path.write_text(mermaid, encoding="utf-8")
        return
    dot = to_dot(evaluation, detail or "resources")
    if suffix == ".dot":
        path.write_text(dot, encoding="utf-8")
        return
    executable = shutil.which("dot")
    if executable is None:
        raise GraphError("graphviz's `dot` is not installed (Debian: apt-get install graphviz); "
                         "write .dot or .mmd instead")
    path.write_bytes(subprocess.run([executable, "-Tsvg"], input=dot.encode(), capture_output=True, check=True,
                                    timeout=120).stdout)
