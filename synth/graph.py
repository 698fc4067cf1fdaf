"""The architecture graph of an evaluated stack: components and resources as a tree, and the links
that cross to the other region (replica -> writer, replication -> bucket, backup copy -> vault) or tie
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
            found.append(Link(r.urn, _external(f"{i['bucket']} ({i.get('region', evaluation.region)})"),
                              "replicates bucket"))
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


def to_dot(evaluation: Evaluation, detail: str = "resources") -> str:
    nodes, children = _tree(evaluation, detail)
    lines = [f'digraph "{evaluation.stack}" {{', "  rankdir=LR; node [shape=box, fontsize=10];",
             f'  label="stack {evaluation.stack} ({evaluation.region})";']

    def emit(parent: str, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            pad = "  " * depth
            if children.get(r.urn):
                lines.append(f'{pad}subgraph "cluster_{_ident(r.urn)}" {{ label="{r.name} ({_short(r.type)})";')
                emit(r.urn, depth + 1)
                lines.append(f"{pad}}}")
            else:
                lines.append(f'{pad}{_ident(r.urn)} [label="{_short(r.type)}\\n{r.name}"];')

    emit("", 1)
    for link in links(evaluation):
        source = _nearest(link.source, nodes, evaluation)
        if link.target.startswith("ext:"):
            lines.append(f'  {_ident(link.target)} [label="{link.target[4:]}", shape=note, style=dashed];')
            target = link.target
        else:
            target = _nearest(link.target, nodes, evaluation)
        lines.append(f'  {_ident(source)} -> {_ident(target)} [label="{link.label}", style=dashed];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(evaluation: Evaluation, detail: str = "components") -> str:
    nodes, children = _tree(evaluation, detail)
    lines = ["flowchart LR"]

    def emit(parent: str, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            pad = "  " * depth
            inner = sum(1 for x in evaluation.resources if x.parent == r.urn and x.custom)
            label = f"{r.name}<br/>{_short(r.type)}" + (f"<br/>{inner} resources" if inner and detail != "resources"
                                                        else "")
            if children.get(r.urn):
                lines.append(f'{pad}subgraph {_ident(r.urn)}["{label}"]')
                emit(r.urn, depth + 1)
                lines.append(f"{pad}end")
            else:
                lines.append(f'{pad}{_ident(r.urn)}["{label}"]')

    emit("", 1)
    for link in links(evaluation):
        source = _nearest(link.source, nodes, evaluation)
        if link.target.startswith("ext:"):
            lines.append(f'  {_ident(link.target)}[/"{link.target[4:]}"/]')
            target = link.target
        else:
            target = _nearest(link.target, nodes, evaluation)
            if target == source:
                continue  # both ends inside one drawn component
        lines.append(f"  {_ident(source)} -. {link.label} .-> {_ident(target)}")
    return "\n".join(lines) + "\n"


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
