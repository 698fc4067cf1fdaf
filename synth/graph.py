"""The architecture graph: both stacks of the pair in one drawing, grouped by stack and region, then by the part
of the platform (data, services, dns, ...), with the links that explain the architecture.

A link reads as a sentence, "source <label> target": `api reads secrets from shared-secrets`, `alb routes to api`, the
backup's `database replicates from` the primary's `database`. It comes from what the resources say about each
other: a resource depends on another (its URN in `dependencies`) or names it in its inputs by ARN, id, name or host
(an ARN inside a JSON policy, an image in a container definition, a metric's dimensions, the host inside the secret
field a task reads). Across the stacks the same values join them: the backup's replica names the primary's instance
ARN, the primary's replication rule the backup's bucket ARN. A replica that one stack keeps in the other region is
named by its own ARN there (the primary's secrets read by the backup's services), and drawn at the other stack's
component of the same name when it has one (the primary's images replicated into the backup's `images`).

At component level (the default for .mmd and .md) component A -> B when a resource under A has a link to one
under B, parallel links collapsed into one edge, and the links of several components of one kind (the four
services) to the same component drawn once from their group. Not drawn, as they explain nothing at a glance: links
inside a component, to the plumbing every component has (subnets, security groups, KMS keys, IAM roles, log
groups) and dependencies that only order the deployment. `--graph-detail resources` draws every resource, with the
same links between resources of different components.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from synth.engine import PEER_KEY, REPO, Evaluation, Registration, evaluate

FORMATS = (".dot", ".mmd", ".md", ".svg")


class GraphError(Exception):
    pass


@dataclass(frozen=True)
class Link:
    """One resource's link to another (or to a component standing for a replica), read "source <label> target"."""

    source: str
    target: str
    label: str


@dataclass(frozen=True)
class Edge:
    """A drawn edge between nodes: component URNs (resource URNs at resource detail), or `group:` ids for
    several components of one kind; `cross` when it joins the stacks or the regions."""

    source: str
    target: str
    label: str
    cross: bool


# Link rules, first match wins: (source type, target type, input path) patterns -> the label, and whether the
# sentence reads from the target (the load balancer routes to the service that names its target group).
# None: plumbing or ordering, not drawn. The path is the input's (`.rules[0].destination.bucket`), `dependency`,
# or `secret:<field>` for the host in a secret field a task reads.
_RULES: tuple[tuple[str, str, str, str | None, bool], ...] = (
    ("*", "aws:ec2/*", "*", None, False),
    ("*", "aws:vpc/*", "*", None, False),
    ("*", "aws:kms/*", "*", None, False),
    ("*", "aws:iam/*", "*", None, False),
    ("*", "aws:acm/*", "*", None, False),
    ("*", "aws:cloudwatch/logGroup:*", "*", None, False),
    ("*", "aws:rds/subnetGroup:*", "*", None, False),
    ("*", "aws:rds/parameterGroup:*", "*", None, False),
    ("*", "aws:elasticache/subnetGroup:*", "*", None, False),
    ("*", "aws:elasticache/parameterGroup:*", "*", None, False),
    ("*", "aws:ecs/clusterCapacityProviders:*", "*", None, False),
    ("*", "pulumi:*", "*", None, False),
    # Waiting for a secret's value before starting orders the deployment; a task reads the secret by its ARN.
    ("*", "aws:secretsmanager/secretVersion:*", "dependency", None, False),
    # A service waits for the listeners; it is routed to through its target group.
    ("aws:ecs/service:*", "aws:lb/listener*", "*", None, False),
    ("aws:ecs/service:*", "aws:lb/targetGroup:*", "*", "routes to", True),
    ("aws:rds/instance:*", "aws:rds/instance:*", "*", "replicates from", False),
    ("*InstanceAutomatedBackupsReplication", "aws:rds/instance:*", "*", "copies backups of", False),
    ("aws:s3/bucketReplicationConfig:*", "aws:s3/bucket:*", "*destination*", "replicates to", False),
    ("aws:s3/bucketReplicationConfig:*", "aws:s3/bucket:*", "*", "reads", False),
    ("aws:ecr/replicationConfiguration:*", "*", "*", "replicates images to", False),
    ("aws:backup/plan:*", "aws:backup/vault:*", "*", "copies recovery points to", False),
    ("aws:acm/certificateValidation:*", "aws:route53/record:*", "*", "validates its certificate with", False),
    ("aws:route53/record:*", "aws:lb/loadBalancer:*", "*", "routes users to", False),
    ("aws:route53/healthCheck:*", "aws:lb/loadBalancer:*", "*", "health-checks", False),
    # A record is healthy only while its calculated check's children are: the switch's check turned unhealthy
    # fails the record over.
    ("aws:route53/healthCheck:*", "aws:route53/healthCheck:*", "*", "forces failover of", True),
    ("aws:route53/*", "aws:route53/*", "*", "checks", False),
    ("*", "aws:sns/topic:*", "*", "alerts to", False),
    ("aws:cloudwatch/metricAlarm:*", "*", "*", "watches", False),
    ("aws:cloudwatch/dashboard:*", "*", "*", "watches", False),
    ("aws:lb/loadBalancer:*", "aws:s3/bucket:*", "*", "writes access logs to", False),
    ("aws:s3/bucketLogging:*", "aws:s3/bucket:*", "*", "writes access logs to", False),
    # A log bucket's policy names the buckets allowed to write to it.
    ("aws:s3/bucketPolicy:*", "aws:s3/bucket:*", "*Condition*", "writes access logs to", True),
    ("*", "aws:s3/bucket*", "*", "writes to", False),
    ("aws:secretsmanager/*", "aws:rds/instance:*", "*", "holds the address of", False),
    ("aws:secretsmanager/*", "aws:elasticache/*", "*", "holds the address of", False),
    ("*", "aws:secretsmanager/*", "*", "reads secrets from", False),
    ("*", "aws:rds/instance:*", "secret:*", "connects to", False),
    # A task given the database's host in its environment (the replication probe) connects to it.
    ("aws:ecs/taskDefinition:*", "aws:rds/instance:*", "*.environment*", "connects to", False),
    ("*", "aws:elasticache/*", "secret:*", "connects to", False),
    ("*", "aws:ecr/*", "*", "pulls images from", False),
    ("aws:ecs/service:*", "aws:ecs/cluster:*", "*", "runs on", False),
    ("aws:sfn/*", "aws:ecs/service:*", "*", "restarts", False),
    # The final snapshot name's suffix: plumbing.
    ("*", "random:index/randomId:*", "*", None, False),
    ("*", "random:*", "*", "takes its password from", False),
)

# The order labels are named in when one edge stands for several links.
_PRIORITY = ("routes users to", "routes to", "replicates from", "replicates to", "replicates images to",
             "copies recovery points to", "copies backups of", "connects to", "reads secrets from", "pulls images from",
             "forces failover of", "restarts", "health-checks", "validates its certificate with",
             "writes access logs to", "writes to", "holds the address of", "runs on", "watches", "alerts to",
             "takes its password from", "reads", "checks", "acts on")
# Said only when nothing more telling links the two.
_GENERIC = ("acts on", "writes to")

_HOST = re.compile(r"^[a-z0-9][a-z0-9.-]*\.amazonaws\.com$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_SECRET_FIELD = re.compile(r"^(arn:[^:]+:secretsmanager:[^:]+:[^:]+:secret:[^:]+)(?::([^:]*))?")
_IMAGE = re.compile(r"^(\d+\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[^@:]+)")

# CloudWatch metric dimensions name a resource by a name of its own, unique within its stack's region only.
_DIMENSIONS: dict[str, tuple[str, Callable[[str], str]]] = {
    "DBInstanceIdentifier": ("aws:rds/instance:Instance", str),
    "CacheClusterId": ("aws:elasticache/replicationGroup:ReplicationGroup", lambda v: v.rsplit("-", 1)[0]),
    "ClusterName": ("aws:ecs/cluster:Cluster", str),
    "ServiceName": ("aws:ecs/service:Service", str),
}


def _stacks(evaluations: Evaluation | Iterable[Evaluation]) -> list[Evaluation]:
    return [evaluations] if isinstance(evaluations, Evaluation) else list(evaluations)


def _short(typ: str) -> str:
    return typ.rsplit(":", 1)[-1]


def _rule(source: str, target: str, path: str) -> tuple[str | None, bool]:
    """The first matching rule's label (None: not drawn) and direction; "acts on" when no rule says more."""
    for source_type, target_type, where, label, reverse in _RULES:
        if fnmatchcase(source, source_type) and fnmatchcase(target, target_type) and fnmatchcase(path, where):
            return label, reverse
    return "acts on", False


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in the inputs with its path; JSON documents (policies, container definitions) opened."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _strings(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _strings(inner, f"{path}[{i}]")
    elif isinstance(value, str):
        if value[:1] in "{[":
            try:
                document = json.loads(value)
            except ValueError:
                document = None
            if isinstance(document, dict | list):
                yield from _strings(document, path)
                return
        yield path, value


def _region_in(identifier: str) -> str:
    """The region an ARN or an AWS host names, or ''."""
    if identifier.startswith("arn:"):
        parts = identifier.split(":")
        return parts[3] if len(parts) > 3 else ""
    return next((part for part in re.split(r"[./]", identifier) if _REGION.match(part)), "")


def _in_region(arn: str, region: str) -> str:
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)


class _Model:
    """The resources of the stacks, which identifier names which resource, and the component each is drawn in."""

    def __init__(self, evaluations: Sequence[Evaluation]):
        self.stacks = list(evaluations)
        self.by_urn: dict[str, Registration] = {}
        self.stack_of: dict[str, Evaluation] = {}
        for evaluation in self.stacks:
            for r in evaluation.resources:
                self.by_urn[r.urn] = r
                self.stack_of[r.urn] = evaluation
        self._components: dict[str, str | None] = {}
        owners: dict[str, set[str]] = {}
        for r in self.resources():
            for identifier in self._identifiers(r):
                owners.setdefault(identifier, set()).add(r.urn)
        # A value two resources answer to (a name both regions use) identifies neither.
        self.owner = {identifier: next(iter(urns)) for identifier, urns in owners.items() if len(urns) == 1}
        # The JSON fields of each secret, by the secret's URN: a task reading `db_host` connects to that host.
        self.secret_fields: dict[str, dict] = {}
        for r in self.resources():
            if r.type == "aws:secretsmanager/secretVersion:SecretVersion":
                secret = self.owner.get(r.inputs.get("secretId", ""))
                try:
                    fields = json.loads(r.inputs.get("secretString") or "")
                except ValueError:
                    continue
                if secret and isinstance(fields, dict):
                    self.secret_fields.setdefault(secret, {}).update(fields)

    def resources(self) -> Iterator[Registration]:
        return (r for r in self.by_urn.values() if r.custom and not r.type.startswith("pulumi:"))

    def _identifiers(self, r: Registration) -> set[str]:
        state, inputs = r.state, r.inputs
        found = {state.get("arn"), state.get("arnSuffix"), state.get("repositoryUrl")}
        # Its own names too, so that another resource named alike (a dashboard, a budget) identifies neither.
        own = [value for key, value in inputs.items() if key.lower() == _short(r.type).lower() + "name"]
        for value in (r.id, state.get("name"), *own):
            if isinstance(value, str) and len(value) >= 8:  # short names (`api`) are words, not identifiers
                found.add(value)
        found |= {v for v in state.values() if isinstance(v, str) and _HOST.match(v)}
        arn = state.get("arn") or ""
        # Secrets Manager replicas keep the ARN but for the region; ECR replicas the repository's name.
        for replica in inputs.get("replicas") or []:
            if isinstance(replica, dict) and replica.get("region") and arn:
                found.add(_in_region(arn, replica["region"]))
        if r.type == "aws:ecr/repository:Repository":
            home = self.stack_of[r.urn].region
            for region in self._ecr_replica_regions(r):
                found |= {_in_region(arn, region), state.get("repositoryUrl", "").replace(f".{home}.", f".{region}.")}
        return {f for f in found if isinstance(f, str) and f}

    def _ecr_replica_regions(self, repository: Registration) -> set[str]:
        name, regions = repository.inputs.get("name", ""), set()
        for r in self.stack_of[repository.urn].resources:
            if r.type == "aws:ecr/replicationConfiguration:ReplicationConfiguration":
                for rule in (r.inputs.get("replicationConfiguration") or {}).get("rules") or []:
                    filters = rule.get("repositoryFilters") or []
                    if not filters or any(name.startswith(f.get("filter", "")) for f in filters):
                        regions |= {d["region"] for d in rule.get("destinations") or [] if d.get("region")}
        return regions

    def component(self, urn: str) -> str | None:
        """The component a resource is drawn in: its nearest component ancestor (itself, for a component)."""
        if urn not in self._components:
            r = self.by_urn.get(urn)
            while r is not None and (r.custom or r.type == "pulumi:pulumi:Stack"):
                r = self.by_urn.get(r.parent or "")
            self._components[urn] = r.urn if r is not None else None
        return self._components[urn]

    def counterpart(self, urn: str, region: str) -> str:
        """Where something of `urn`'s in `region` is drawn: the component of the same name of the stack in that
        region when there is one (the backup's `images` for the primary's replicated repositories), else `urn`."""
        component = self.by_urn.get(self.component(urn) or "")
        for evaluation in self.stacks:
            if component is not None and evaluation.region == region and evaluation is not self.stack_of[urn]:
                for r in evaluation.resources:
                    if not r.custom and r.name == component.name:
                        return r.urn
        return urn

    def resolve(self, value: str) -> tuple[str, str, str | None] | None:
        """(owner URN, the identifier it answered to, the secret field named) for a value naming a resource."""
        candidates = [value]
        secret = _SECRET_FIELD.match(value)
        if secret:
            candidates.insert(0, secret.group(1))
        image = _IMAGE.match(value)
        if image:
            candidates.append(image.group(1))
        if value.startswith("arn:"):
            trimmed = value.removesuffix("/*").removesuffix(":*")
            candidates += [trimmed, trimmed.rsplit(":", 1)[0]]
        elif ":" in value:
            candidates.append(value.rsplit(":", 1)[0])  # host:port
        for candidate in candidates:
            owner = self.owner.get(candidate)
            if owner:
                field_name = secret.group(2) if secret and candidate == secret.group(1) else None
                return owner, candidate, field_name or None
        return None

    def dimension(self, source: Registration, path: str, value: str) -> str | None:
        """The resource a metric dimension (`.dimensions.DBInstanceIdentifier`) names, in the source's stack."""
        key = path.rsplit(".", 1)[-1]
        if ".dimensions." not in path or key not in _DIMENSIONS:
            return None
        typ, name_of = _DIMENSIONS[key]
        wanted = name_of(value)
        for r in self.stack_of[source.urn].resources:
            if r.type == typ and wanted in (r.id, r.state.get("name"), r.inputs.get("name")):
                return r.urn
        return None


def _located(model: _Model, owner: str, identifier: str) -> str:
    """A replica named in another region than its owner's home is drawn at its counterpart there."""
    region = _region_in(identifier)
    if region and region != _region_in(model.by_urn[owner].state.get("arn", "")) and \
            region != model.stack_of[owner].region:
        return model.counterpart(owner, region)
    return owner


def _raw_links(model: _Model) -> Iterator[tuple[str, str, str, str]]:
    """(source URN, target URN, the type the target answers as, the input path or `dependency`): every reference and
    every dependency between resources of the stacks."""
    for r in model.resources():
        named = set()
        for path, value in _strings(r.inputs):
            resolved = model.resolve(value)
            if resolved is None:
                dimension = model.dimension(r, path, value)
                if dimension and dimension != r.urn:
                    named.add(dimension)
                    yield r.urn, dimension, model.by_urn[dimension].type, path
                continue
            owner, identifier, field_name = resolved
            if owner == r.urn:
                continue
            named.add(owner)
            yield r.urn, _located(model, owner, identifier), model.by_urn[owner].type, path
            # Reading one field of a secret that holds a host: connecting to what answers at that host.
            host = model.secret_fields.get(owner, {}).get(field_name or "")
            inner = model.resolve(host) if isinstance(host, str) else None
            if inner:
                yield r.urn, inner[0], model.by_urn[inner[0]].type, f"secret:{field_name}"
        for dependency in r.dependencies:
            if dependency not in named and dependency != r.urn and dependency in model.by_urn:
                yield r.urn, dependency, model.by_urn[dependency].type, "dependency"
        if r.type == "aws:ecr/replicationConfiguration:ReplicationConfiguration":
            for rule in (r.inputs.get("replicationConfiguration") or {}).get("rules") or []:
                for destination in rule.get("destinations") or []:
                    target = model.counterpart(r.urn, destination.get("region", ""))
                    if target != r.urn:
                        yield r.urn, target, "component", ".destinations"


def _links(model: _Model) -> list[Link]:
    found: dict[tuple[str, str], str] = {}
    for source, target, target_type, path in _raw_links(model):
        label, reverse = _rule(model.by_urn[source].type, target_type, path)
        ends = model.component(source), model.component(target)
        if label is None or None in ends or ends[0] == ends[1]:
            continue  # plumbing, ordering, or inside one component
        key = (target, source) if reverse else (source, target)
        if key not in found or _PRIORITY.index(label) < _PRIORITY.index(found[key]):
            found[key] = label
    return [Link(source, target, label) for (source, target), label in sorted(found.items())]


def links(evaluations: Evaluation | Iterable[Evaluation]) -> list[Link]:
    """The links between resources of different components of the stacks (not plumbing, not ordering), one per
    pair."""
    return _links(_Model(_stacks(evaluations)))


def _region(model: _Model, urn: str) -> str:
    return model.by_urn[urn].inputs.get("region") or model.stack_of[urn].region


def _edges(model: _Model, detail: str) -> list[Edge]:
    labels: dict[tuple[str, str], set[str]] = {}
    crossing: dict[tuple[str, str], bool] = {}
    for link in _links(model):
        a, b = model.component(link.source), model.component(link.target)
        assert a is not None and b is not None
        key = (a, b) if detail == "components" else (link.source, link.target)
        labels.setdefault(key, set()).add(link.label)
        cross = model.stack_of[a] is not model.stack_of[b] or _region(model, link.source) != _region(model,
                                                                                                   link.target)
        crossing[key] = crossing.get(key, False) or cross
    result = []
    for key, found in labels.items():
        ranked = sorted(found, key=_PRIORITY.index)
        ranked = [label for label in ranked if label not in _GENERIC] or ranked
        result.append(Edge(*key, " and ".join(ranked[:2]), crossing[key]))
    return sorted(result, key=lambda e: (e.source, e.target))


def edges(evaluations: Evaluation | Iterable[Evaluation], detail: str = "components") -> list[Edge]:
    """The edges between components (or between resources of different components at resource detail), parallel
    links collapsed into one edge: the graph before links of one group are drawn together."""
    return _edges(_Model(_stacks(evaluations)), detail)


# ---- drawing -------------------------------------------------------------------------------------------------

def _groups(model: _Model) -> dict[str, list[str]]:
    """Three or more components of one kind in a stack (the services) are a group: `group:<stack>:<type>`."""
    found: dict[str, list[str]] = {}
    for evaluation in model.stacks:
        for r in evaluation.resources:
            if not r.custom and r.type != "pulumi:pulumi:Stack":
                found.setdefault(f"group:{evaluation.stack}:{r.type}", []).append(r.urn)
    return {group: sorted(members) for group, members in found.items() if len(members) >= 3}


def drawn_edges(evaluations: Evaluation | Iterable[Evaluation]) -> list[Edge]:
    """The component edges as drawn: the same edge (label, other end) of two or more members of a group is drawn
    once from (or to) the group, naming the members when not all of them have it."""
    model = _Model(_stacks(evaluations))
    result = _edges(model, "components")
    for group, members in _groups(model).items():
        names = {urn: model.by_urn[urn].name for urn in members}
        for outgoing in (True, False):
            shared: dict[tuple[str, str], list[Edge]] = {}
            for e in result:
                mine, other = (e.source, e.target) if outgoing else (e.target, e.source)
                if mine in names:
                    shared.setdefault((other, e.label), []).append(e)
            for (other, label), same in shared.items():
                if len(same) < 2:
                    continue
                who = sorted(names[e.source if outgoing else e.target] for e in same)
                text = label if len(same) == len(members) else f"{label} ({', '.join(who)})"
                cross = any(e.cross for e in same)
                result = [e for e in result if e not in same]
                result.append(Edge(group, other, text, cross) if outgoing else Edge(other, group, text, cross))
    return sorted(result, key=lambda e: (e.source, e.target))


def _category(r: Registration) -> str:
    parts = r.type.split(":")
    return parts[1] if len(parts) == 3 and not r.type.startswith("aws:") else "other"


def _elsewhere(model: _Model, component: str) -> str:
    """`in us-west-2` (or `also in ...`) for a component whose resources or replicas live in another region."""
    home = model.stack_of[component].region
    regions = set()
    for r in model.stack_of[component].resources:
        if r.custom and model.component(r.urn) == component:
            regions.add(r.inputs.get("region") or home)
            regions |= {x.get("region") for x in r.inputs.get("replicas") or [] if isinstance(x, dict)}
    others = sorted(x for x in regions if x and x != home)
    if not others:
        return ""
    return ("in " if home not in regions else "also in ") + ", ".join(others)


@dataclass
class _Node:
    key: str  # a URN, or `stack:`, `part:`, `group:` ids
    name: str  # what its id in the drawing is made of
    label: str
    children: list[_Node] = field(default_factory=list)
    cluster: bool = False


def _layout(model: _Model, detail: str, groups: dict[str, list[str]]) -> list[_Node]:
    """Stack > part of the platform (data, services, ...) > [group of one kind >] component [> resources]."""
    grouped = {urn: group for group, members in groups.items() for urn in members}
    tops = []
    for evaluation in model.stacks:
        stack = evaluation.stack
        parts: dict[str, list[_Node]] = {}
        kinds: dict[str, _Node] = {}
        for c in sorted((r for r in evaluation.resources if not r.custom and r.type != "pulumi:pulumi:Stack"),
                        key=lambda r: (_category(r), r.type, r.name)):
            inner = sorted((r for r in evaluation.resources if r.custom and model.component(r.urn) == c.urn),
                           key=lambda r: (r.type, r.name))
            note = _elsewhere(model, c.urn)
            if detail == "components" or not inner:
                count = f" · {len(inner)} resource{'s' if len(inner) > 1 else ''}" if inner else ""
                node = _Node(c.urn, f"{stack}_{c.name}",
                             "\n".join([c.name, _short(c.type) + count] + ([note] if note else [])))
            else:
                leaves = [_Node(r.urn, f"{stack}_{c.name}_{r.name}_{_short(r.type)}", f"{r.name}\n{_short(r.type)}" + (
                    f"\nin {r.inputs['region']}" if r.inputs.get("region", evaluation.region) != evaluation.region
                    else "")) for r in inner]
                node = _Node(c.urn, f"{stack}_{c.name}", f"{c.name} ({_short(c.type)}" + (
                    f", {note})" if note else ")"), leaves, True)
            siblings = parts.setdefault(_category(c), [])
            if c.urn in grouped and detail == "components":
                group = grouped[c.urn]
                if group not in kinds:
                    kind = f"{_short(c.type).lower()}s"
                    kinds[group] = _Node(group, f"{stack}_{kind}", kind, [], True)
                    siblings.append(kinds[group])
                kinds[group].children.append(node)
            else:
                siblings.append(node)
        tops.append(_Node(f"stack:{stack}", f"stack_{stack}", f"stack {stack} · {evaluation.region}",
                          [_Node(f"part:{stack}:{part}", f"{stack}_{part}_part", part, nodes, True)
                           for part, nodes in sorted(parts.items())], True))
    return tops


def _ids(tops: list[_Node]) -> dict[str, str]:
    """A readable id per node (`primary_database`), unique, the same in every run."""
    ids: dict[str, str] = {}
    taken: set[str] = set()

    def visit(node: _Node) -> None:
        base = re.sub(r"[^A-Za-z0-9]+", "_", node.name).strip("_")
        ident = base if base not in taken else f"{base}_{hashlib.sha256(node.key.encode()).hexdigest()[:6]}"
        taken.add(ident)
        ids[node.key] = ident
        for child in node.children:
            visit(child)

    for top in tops:
        visit(top)
    return ids


LEGEND = ("An arrow A -> B reads \"A <label> B\"; dashed red: across the stacks or the regions. "
          "Not drawn: links inside a component, to the plumbing every component uses (network, security groups, "
          "KMS keys, IAM roles, log groups) and dependencies that only order the deployment.")


def _title(stacks: Sequence[Evaluation]) -> str:
    return " and ".join(f"stack {e.stack} ({e.region})" for e in stacks)


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")


def _drawing(evaluations: Evaluation | Iterable[Evaluation], detail: str) -> tuple[
        list[Evaluation], list[_Node], dict[str, str], list[Edge]]:
    """The stacks, the nested nodes, their ids, and the edges in the order drawn."""
    stacks = _stacks(evaluations)
    if detail not in ("components", "resources"):
        raise GraphError(f"graph detail {detail!r}: components or resources")
    model = _Model(stacks)
    if detail == "components":
        tops, drawn = _layout(model, detail, _groups(model)), drawn_edges(stacks)
    else:
        tops, drawn = _layout(model, detail, {}), _edges(model, detail)
    ids = _ids(tops)
    return stacks, tops, ids, sorted(drawn, key=lambda e: (ids[e.source], ids[e.target]))


def to_dot(evaluations: Evaluation | Iterable[Evaluation], detail: str = "resources") -> str:
    stacks, tops, ids, drawn = _drawing(evaluations, detail)
    lines = [f'digraph "{" + ".join(e.stack for e in stacks)}" {{',
             "  rankdir=LR; compound=true; newrank=true; nodesep=0.2; ranksep=0.7; fontname=Helvetica;",
             '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica, fontsize=10];',
             "  edge [fontname=Helvetica, fontsize=9, color=gray35, fontcolor=gray25];",
             f'  label="{_dot_text(_title(stacks))}\\n{_dot_text(LEGEND)}"; labelloc=t;']
    anchor: dict[str, str] = {}  # a cluster's first node, where edges to the cluster attach

    def emit(node: _Node, depth: int) -> str:
        pad = "  " * depth
        if not node.cluster:
            lines.append(f'{pad}{ids[node.key]} [label="{_dot_text(node.label)}"];')
            return ids[node.key]
        fill = "aliceblue" if node.key.startswith("stack:") else "white" if node.key.startswith("part:") else "gray95"
        lines.append(f'{pad}subgraph cluster_{ids[node.key]} {{ label="{_dot_text(node.label)}"; '
                     f'style="rounded,filled"; fillcolor={fill}; color=gray60;')
        first = [emit(child, depth + 1) for child in node.children]
        lines.append(f"{pad}}}")
        anchor[node.key] = first[0] if first else ""
        return anchor[node.key]

    for top in tops:
        emit(top, 1)
    for e in drawn:
        attributes = [f'label="{_dot_text(e.label)}"']
        source, target = ids[e.source], ids[e.target]
        if e.source in anchor:
            source, attributes = anchor[e.source], [*attributes, f"ltail=cluster_{ids[e.source]}"]
        if e.target in anchor:
            target, attributes = anchor[e.target], [*attributes, f"lhead=cluster_{ids[e.target]}"]
        if e.cross:
            attributes.append("style=dashed, color=firebrick, fontcolor=firebrick, penwidth=1.5")
        lines.append(f"  {source} -> {target} [{', '.join(attributes)}];")
    return "\n".join([*lines, "}"]) + "\n"


def to_mermaid(evaluations: Evaluation | Iterable[Evaluation], detail: str = "components") -> str:
    stacks, tops, ids, drawn = _drawing(evaluations, detail)
    lines = ["flowchart LR", f"  %% {_title(stacks)}", f"  %% {LEGEND}"]

    def emit(node: _Node, depth: int) -> None:
        pad = "  " * depth
        if node.cluster:
            lines.append(f'{pad}subgraph {ids[node.key]}["{_mermaid_text(node.label)}"]')
            for child in node.children:
                emit(child, depth + 1)
            lines.append(f"{pad}end")
        else:
            lines.append(f'{pad}{ids[node.key]}["{_mermaid_text(node.label)}"]')

    for top in tops:
        emit(top, 1)
    for e in drawn:
        arrow = "-.->" if e.cross else "-->"
        lines.append(f'  {ids[e.source]} {arrow}|"{_mermaid_text(e.label)}"| {ids[e.target]}')
    cross = [str(i) for i, e in enumerate(drawn) if e.cross]
    if cross:
        lines.append(f"  linkStyle {','.join(cross)} stroke:#b22222,stroke-width:2px,color:#b22222")
    return "\n".join(lines) + "\n"


def to_markdown(evaluations: Evaluation | Iterable[Evaluation], detail: str = "components") -> str:
    """A page GitHub renders: the drawing, then the links across the stacks and regions as sentences."""
    stacks = _stacks(evaluations)
    model = _Model(stacks)

    def name(urn: str) -> str:
        return f"{model.stack_of[urn].stack}'s `{model.by_urn[urn].name}`"

    crossing = [f"- {name(e.source)} {e.label} {name(e.target)}" for e in _edges(model, "components") if e.cross]
    return "\n".join([f"# Architecture: {_title(stacks)}", "", LEGEND, "", "```mermaid",
                      to_mermaid(stacks, detail).rstrip("\n"), "```", "", "Across the stacks and regions:", "",
                      *crossing]) + "\n"


# ---- the pair ------------------------------------------------------------------------------------------------

# Stacks given to or evaluated for the graph, by project directory: the peer of the first stack written is the
# next one, evaluated once per process.
_KNOWN: dict[tuple[Path, str], Evaluation] = {}


def _peer_names(evaluation: Evaluation, project_dir: Path) -> list[str]:
    """The stacks paired with this one: named by its stack reference, or naming it as their peer."""
    from regions.stackfile import read_stack_file

    referenced = {r.inputs.get("name", "").rsplit("/", 1)[-1] for r in evaluation.resources
                  if r.type == "pulumi:pulumi:StackReference"}
    names = []
    for path in sorted(project_dir.glob("Pulumi.*.yaml")):
        other = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        if other != evaluation.stack and (other in referenced or read_stack_file(path)[0].get(
                PEER_KEY, "").rsplit("/", 1)[-1] == evaluation.stack):
            names.append(other)
    return names


def paired(evaluation: Evaluation, project_dir: Path = REPO) -> list[Evaluation]:
    """The stack and its peer, evaluated from `project_dir`, primary first: the graph draws the pair. The peer is
    kept only when links join the two; a stack without one is drawn alone."""
    from regions.settings import SettingsError
    from regions.stackfile import StackFileError

    directory = project_dir.resolve()
    cache = {stack: e for (where, stack), e in _KNOWN.items() if where == directory}
    cache[evaluation.stack] = evaluation
    try:
        peers = [evaluate(other, directory, cache) for other in _peer_names(evaluation, directory)]
    except (SettingsError, StackFileError):
        return [evaluation]
    _KNOWN.update({(directory, stack): e for stack, e in cache.items()})
    stacks = sorted([evaluation, *peers], key=lambda e: (e.stack != "primary", e.stack))
    return stacks if len(stacks) > 1 and any(e.cross for e in edges(stacks)) else [evaluation]


def write(evaluations: Evaluation | Iterable[Evaluation], path: Path, detail: str | None = None) -> None:
    """Write the graph of the stacks (.dot, .mmd, .md or .svg); one stack is drawn with its peer."""
    suffix = path.suffix
    if suffix not in FORMATS:
        raise GraphError(f"{path}: the graph is written as {', '.join(FORMATS)}")
    executable = shutil.which("dot")
    if suffix == ".svg" and executable is None:
        raise GraphError("graphviz's `dot` is not installed (Debian: apt-get install graphviz); "
                         "write .dot or .mmd instead")
    stacks = _stacks(evaluations)
    if len(stacks) == 1:
        stacks = paired(stacks[0])
    if suffix == ".mmd":
        path.write_text(to_mermaid(stacks, detail or "components"), encoding="utf-8")
    elif suffix == ".md":
        path.write_text(to_markdown(stacks, detail or "components"), encoding="utf-8")
    elif suffix == ".dot":
        path.write_text(to_dot(stacks, detail or "resources"), encoding="utf-8")
    else:
        # A picture: the components (every resource drew one about 25,000 px tall).
        path.write_bytes(subprocess.run([executable, "-Tsvg"], input=to_dot(stacks, detail or "components").encode(),
                                        capture_output=True, check=True, timeout=120).stdout)
