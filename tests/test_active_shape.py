"""Whichever region is active runs the active shape (a Multi-AZ writer, a cache of 2+ nodes with automatic failover and
Multi-AZ, a NAT gateway per AZ); the other region its standby shape. The shape follows `activeRegion` alone, as the
services' capacities do, so the drill's reconcile writes nothing else; between the two shapes nothing stateful is
replaced (every change is an update in place, or a NAT gateway added or removed)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from drills import phases, reconcile
from regions.settings import SettingsError, load_settings
from regions.stackfile import read_stack_file
from rightsize import rules, trial
from rightsize.metrics import Series
from synth.__main__ import cost_text
from synth.cost import estimate, usage_of
from synth.engine import REPO, evaluate
from synth.findings import evaluate_policies

NS = "trading-platform"
REGIONS = {"primary": "us-east-1", "backup": "us-west-2"}
STACKS = {"primary": "primary", "backup": "backup"}
INSTANCE = "aws:rds/instance:Instance"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
ROUTE = "aws:ec2/route:Route"
# What each shape changes in place (pulumi-aws 7 / terraform-provider-aws: none of these is ForceNew; the replication
# group adds replicas first, modifies, then removes replicas; RDS converts Multi-AZ with ModifyDBInstance).
CACHE_SHAPE = {"nodeType", "numCacheClusters", "automaticFailoverEnabled", "multiAzEnabled"}
PROMOTION = {"replicateSourceDb", "multiAz", "applyImmediately", "skipFinalSnapshot", "finalSnapshotIdentifier"}
IDENTIFIER = "trading-platform-production"
SNAPSHOT = phases.retire_snapshot(IDENTIFIER, "20261130T0100Z-b2")
# (phase, its settings), as the drill tool writes them: an evacuation to us-west-2, then back, us-west-2 rebuilt.
PHASES = [
    ("evacuated", phases.switched_to("backup", REGIONS)),
    ("switched back", phases.switched_to("primary", REGIONS)),
    ("us-west-2 rebuilt", [*phases.retiring("backup", SNAPSHOT), *phases.rebuilt("backup")]),
]


@pytest.fixture(scope="module")
def after(tmp_path_factory):
    """Both stacks evaluated after each phase, the stack files written by the drill's own writer."""
    directory = tmp_path_factory.mktemp("active-shape")
    for name in ("Pulumi.yaml", "Pulumi.primary.yaml", "Pulumi.backup.yaml"):
        shutil.copy(REPO / name, directory / name)
    found = {}
    for phase, settings in PHASES:
        reconcile.write(directory, reconcile.files(settings, STACKS))
        cache: dict = {}
        evaluate("backup", directory, cache)
        found[phase] = {"files": {role: (directory / f"Pulumi.{role}.yaml").read_text() for role in REGIONS},
                        "stacks": cache, "costs": {role: estimate(cache[role], usage_of(directory, role))
                                                   for role in REGIONS}}
        if phase == "evacuated":
            evacuated = tmp_path_factory.mktemp("evacuated")
            for name in ("Pulumi.yaml", "Pulumi.primary.yaml", "Pulumi.backup.yaml"):
                shutil.copy(directory / name, evacuated / name)
            found[phase]["directory"] = evacuated
    return found


def shape(stack) -> dict:
    (db,) = stack.of_type(INSTANCE)
    (group,) = stack.of_type(CACHE)
    g = group.inputs
    return {"multiAz": db.inputs["multiAz"], "replica": "replicateSourceDb" in db.inputs,
            "cache": (g["nodeType"], g["numCacheClusters"], g["automaticFailoverEnabled"], g["multiAzEnabled"]),
            "nats": len(stack.of_type(NAT))}


ACTIVE_CACHE = ("cache.r7g.large", 2, True, True)
STANDBY_CACHE = ("cache.t4g.medium", 1, False, False)


def test_the_drill_writes_only_the_active_region_and_the_former_writers_steps():
    """No shape key to write: the shape follows activeRegion."""
    for _, settings in PHASES:
        assert {s["key"] for s in settings} <= {f"{NS}:activeRegion", f"{NS}:database.detached",
                                                f"{NS}:database.retireWithSnapshot"}


def test_as_the_files_ship_the_backup_is_the_standby_shape_and_the_primary_the_active(evaluations):
    assert shape(evaluations["primary"]) == {"multiAz": True, "replica": False, "cache": ACTIVE_CACHE, "nats": 3}
    assert shape(evaluations["backup"]) == {"multiAz": False, "replica": True, "cache": STANDBY_CACHE, "nats": 1}


def test_after_an_evacuation_us_west_2_runs_the_active_shape(after):
    stacks = after["evacuated"]["stacks"]
    assert shape(stacks["backup"]) == {"multiAz": True, "replica": False, "cache": ACTIVE_CACHE, "nats": 2}
    # us-east-1's former writer is kept as it is (Multi-AZ, detached); its cache and NAT are the standby's.
    assert shape(stacks["primary"]) == {"multiAz": True, "replica": False, "cache": STANDBY_CACHE, "nats": 1}
    # The cache's node ids follow: the alarms watch both nodes, the outputs name both clusters (rightsize reads them).
    backup = stacks["backup"]
    assert backup.outputs["cache_member_clusters"] == [f"{IDENTIFIER}-001", f"{IDENTIFIER}-002"]
    cpu = backup.named("aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-redis-cpu").inputs
    assert [q["metric"]["dimensions"]["CacheClusterId"] for q in cpu["metricQueries"] if "metric" in q] == [
        f"{IDENTIFIER}-001", f"{IDENTIFIER}-002"]
    assert [q["expression"] for q in cpu["metricQueries"] if q.get("returnData")] == ["MAX([m0, m1])"]


def test_after_an_evacuation_each_private_subnet_of_us_west_2_leaves_through_its_own_az(after):
    backup = after["evacuated"]["stacks"]["backup"]
    by_id = {r.id: r for r in backup.resources if r.id}
    nats = backup.of_type(NAT)
    assert sorted(n.name for n in nats) == ["network-nat-0", "network-nat-1"]
    private = [s for s in backup.of_type("aws:ec2/subnet:Subnet") if s.inputs["tags"]["Tier"] == "private"]
    assert len(private) == 2  # the backup's azCount
    for subnet in private:
        association = next(a for a in backup.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
                           if a.inputs["subnetId"] == subnet.id)
        (route,) = [r for r in backup.of_type(ROUTE) if r.inputs["routeTableId"] == association.inputs["routeTableId"]]
        nat_subnet = by_id[by_id[route.inputs["natGatewayId"]].inputs["subnetId"]]
        assert nat_subnet.inputs["availabilityZoneId"] == subnet.inputs["availabilityZoneId"]


def test_with_us_east_1_active_again_the_backup_returns_to_its_standby_shape(after):
    # Switched back: us-west-2's former writer is kept as it is (detached, Multi-AZ); its cache and NAT shrink.
    stacks = after["switched back"]["stacks"]
    assert shape(stacks["backup"]) == {"multiAz": True, "replica": False, "cache": STANDBY_CACHE, "nats": 1}
    assert shape(stacks["primary"]) == {"multiAz": True, "replica": False, "cache": ACTIVE_CACHE, "nats": 3}
    # Rebuilt: a Single-AZ replica again, and the stack files as they ship.
    rebuilt = after["us-west-2 rebuilt"]
    assert shape(rebuilt["stacks"]["backup"]) == {"multiAz": False, "replica": True, "cache": STANDBY_CACHE,
                                                  "nats": 1}
    assert rebuilt["files"] == {role: (REPO / f"Pulumi.{role}.yaml").read_text() for role in REGIONS}


def _changed(before, after) -> set[str]:
    return {k for k in before.inputs.keys() | after.inputs.keys() if before.inputs.get(k) != after.inputs.get(k)}


def test_from_standby_to_active_the_backups_resources_keep_their_urns(evaluations, after):
    """activeRegion us-east-1 -> us-west-2 for the backup: the same URNs, only inputs change, but for the second NAT
    gateway and its address (added) and what the role itself changes (the replica's alarms and backups copy go,
    the writer's heartbeat alarm and the password's rotation, on the secret the evacuation made standalone,
    come)."""
    standby, active = evaluations["backup"], after["evacuated"]["stacks"]["backup"]
    old, new = {r.urn: r for r in standby.resources}, {r.urn: r for r in active.resources}
    assert {(new[u].type, new[u].name) for u in new.keys() - old.keys()} == {
        (NAT, "network-nat-1"), (EIP, "network-nat-1"),
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "replication-probe-heartbeat-silent"),
        ("aws:secretsmanager/secretRotation:SecretRotation", "database-password")}
    assert {(old[u].type, old[u].name) for u in old.keys() - new.keys()} == {
        ("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication", "database"),
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "monitoring-rds-replica-lag"),
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "replication-probe-replication-age")}
    for urn in old.keys() & new.keys():
        assert (new[urn].replace_on_changes, new[urn].delete_before_replace) == ((), False), urn
    # The stateful resources: updated in place, on the shape's inputs only.
    assert _changed(standby.named(CACHE, "cache"), active.named(CACHE, "cache")) == CACHE_SHAPE
    assert _changed(standby.named(INSTANCE, "database"), active.named(INSTANCE, "database")) == PROMOTION
    for typ in (NAT, EIP, "aws:ec2/subnet:Subnet", "aws:ec2/routeTable:RouteTable", "aws:ec2/vpc:Vpc",
                "aws:elasticache/subnetGroup:SubnetGroup", "aws:elasticache/parameterGroup:ParameterGroup"):
        for resource in standby.of_type(typ):
            assert _changed(resource, active.named(typ, resource.name)) == set(), (typ, resource.name)
    # The second AZ's private route is repointed at its own NAT gateway (ReplaceRoute, in place).
    routes = {r.name: _changed(r, active.named(ROUTE, r.name)) for r in standby.of_type(ROUTE)}
    assert {name: changed for name, changed in routes.items() if changed} == {"network-private-1-nat": {"natGatewayId"}}


def test_from_active_to_standby_the_primarys_cache_and_writer_are_not_replaced(evaluations, after):
    active, standby = evaluations["primary"], after["evacuated"]["stacks"]["primary"]
    old, new = {r.urn: r for r in active.resources}, {r.urn: r for r in standby.resources}
    gone = {(old[u].type, old[u].name) for u in old.keys() - new.keys()}
    # Two NAT gateways and their addresses go (the routes to them are repointed first, in place).
    assert {g for g in gone if g[0] in (NAT, EIP)} == {(t, f"network-nat-{i}") for t in (NAT, EIP) for i in (1, 2)}
    assert not {g for g in gone if g[0] in (INSTANCE, CACHE, "aws:ec2/subnet:Subnet", "aws:ec2/vpc:Vpc")}
    assert _changed(active.named(CACHE, "cache"), standby.named(CACHE, "cache")) == CACHE_SHAPE
    # The detached former writer keeps its Multi-AZ (nothing about it changes but what the engine ignores).
    writer = standby.named(INSTANCE, "database")
    assert _changed(active.named(INSTANCE, "database"), writer) - set(writer.ignore_changes) == set()


def test_every_phase_passes_the_policies_and_the_failover_constraints(after):
    """ElastiCache refuses automatic failover below 2 nodes and Multi-AZ without automatic failover: the policy pack
    (mandatory) finds neither, in either shape."""
    for phase in after.values():
        for role, stack in phase["stacks"].items():
            assert evaluate_policies(stack) == [], role
            (group,) = stack.of_type(CACHE)
            g = group.inputs
            assert g["automaticFailoverEnabled"] == g["multiAzEnabled"] == (g["numCacheClusters"] >= 2)


def test_the_cost_prices_the_shape_each_region_runs_and_the_standby_share_follows(evaluations, after):
    standby = estimate(evaluations["backup"], usage_of(REPO, "backup"))
    active = after["evacuated"]["costs"]["backup"]

    def of(cost, component):
        return cost["by_component"][component]

    # Active: the writer twice (Multi-AZ), two r7g nodes, two NAT gateways and their addresses.
    assert of(active, "database") == pytest.approx(2 * of(standby, "database"), abs=0.01)
    assert of(active, "cache") == pytest.approx(of(estimate(evaluations["primary"], usage_of(REPO, "primary")),
                                                   "cache"), abs=0.01)
    assert of(active, "network") > of(standby, "network")
    assert active["monthly_usd"] > standby["monthly_usd"] and active["complete"]
    # The share names the stack that is the standby now: the primary after an evacuation.
    text = cost_text(after["evacuated"]["costs"], ["primary", "backup"], after["evacuated"]["stacks"])
    assert "standby (primary) costs" in text and "of the backup" in text
    shipped = {role: estimate(evaluations[role], usage_of(REPO, role)) for role in REGIONS}
    assert "standby (backup) costs 44% of the primary" in cost_text(shipped, ["primary", "backup"], evaluations)


def _cache_subject(directory, stack: str, active_region: str):
    """A right-sizing subject whose cache nodes used 10 % of memory and CPU for two weeks."""
    raw, secret_keys = read_stack_file(directory / f"Pulumi.{stack}.yaml")
    settings = load_settings(raw, stack, directory, secret_keys=secret_keys)
    peer = "primary" if stack == "backup" else "backup"
    raw, secret_keys = read_stack_file(directory / f"Pulumi.{peer}.yaml")
    peer_settings = load_settings(raw, peer, directory, secret_keys=secret_keys)
    members = tuple(f"{IDENTIFIER}-{n:03d}" for n in range(1, 3))
    targets = rules.Targets(region=REGIONS[stack], role=stack, active_region=active_region, cluster="c",
                            services={n: n for n in ("api", "web", "worker", "beat")}, db_instance_identifier="db",
                            alb_arn_suffix="app/a/1", cache_member_clusters=members)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    series = {m: Series(m, 3600, start, [(start + timedelta(hours=h), 10.0) for h in range(14 * 24)])
              for member in members for m in rules.cache_metrics(member).values()}
    return rules.Subject(settings, f"Pulumi.{stack}.yaml", f"Pulumi.{peer}.yaml", peer_settings, targets, series,
                         {n: t.default for n, t in rules.THRESHOLDS.items()}, None)


def test_right_sizing_an_active_backups_cache_writes_its_active_node_type(after):
    """While us-west-2 is active, its cache runs cache.nodeType: that is the key right-sizing writes (never the
    standby's), in the backup's file only, and the files still validate."""
    directory = after["evacuated"]["directory"]
    found = rules.cache(_cache_subject(directory, "backup", "us-west-2"))
    assert found.rule == "cache-smaller"
    assert [(c.file, c.key, c.current, c.proposed) for c in found.changes] == [
        ("Pulumi.backup.yaml", f"{NS}:cache.nodeType", "cache.r7g.large", "cache.m7g.large")]
    with trial.scratch(directory, [c.setting() for c in found.changes]) as copy:
        trial.validate(copy, ["Pulumi.primary.yaml", "Pulumi.backup.yaml"])
        assert reconcile.current(copy, "Pulumi.backup.yaml", f"{NS}:cache.standbyNodeType") == "cache.t4g.medium"
    # The standby's cache (us-east-1's now) is judged once its region is active again: nothing is read or proposed.
    standby = rules.evaluate(_cache_subject(directory, "primary", "us-west-2"))
    assert [f.changes for f in standby if f.resource == "cache"] == [[]]


# (stack file, edits, key in the message, words in the message): each shape setting refused where it makes no sense.
SHAPE_ERRORS = [
    # CreateReplicationGroup: "If AutomaticFailoverEnabled is true, the value of this parameter [NumCacheClusters] must
    # be at least 2"; the active region's cache needs automatic failover. A backup file of the old kind (nodes: 1)
    # fails here, naming where its standby count now goes.
    ("backup", {"cache.nodes": 1}, "cache.nodes", "automatic failover, which ElastiCache allows only with 2 or more "
                                                  "nodes; a standby's count is cache.standbyNodes"),
    ("primary", {"cache.standbyNodes": 0}, "cache.standbyNodes", "an integer from 1 to 2"),
    ("backup", {"cache.standbyNodes": 3}, "cache.standbyNodes", "at most cache.nodes 2"),
    ("backup", {"cache.standbyNodes": "one"}, "cache.standbyNodes", "is not an integer"),
    ("backup", {"cache.standbyNodeType": "t4g.medium"}, "cache.standbyNodeType", "such as cache.t4g.medium"),
    ("backup", {"cache.standbyNodeType": "cache.x9.huge"}, "cache.standbyNodeType", "is not in the node-type catalog"),
    ("backup", {"database.standbyMultiAz": "no"}, "database.standbyMultiAz", "true or false"),
    ("backup", {"database.multiAz": False}, "database.multiAz",
     "true, the value in Pulumi.primary.yaml (whichever region is active runs its writer alike"),
    ("primary", {"database.multiAz": False}, "database.multiAz", "differs from the other stack's"),
    ("backup", {"network.natGateways": "single"}, "network.natGateways",
     "'perAz', the value in Pulumi.primary.yaml (whichever region is active serves through the same NAT gateways"),
    ("backup", {"network.standbyNatGateways": "none"}, "network.standbyNatGateways", "one of perAz, single"),
    ("backup", {"network.standbyNatGateway": "single"}, "network.standbyNatGateway", "is not a known setting"),
]


@pytest.mark.parametrize(("stack", "edits", "key", "words"), SHAPE_ERRORS,
                         ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(SHAPE_ERRORS)])
def test_shape_settings_are_refused_in_one_line_naming_file_and_key(project, stack, edits, key, words):
    directory = project(**{stack: {f"{NS}:{k}": v for k, v in edits.items()}})
    raw, secret_keys = read_stack_file(directory / f"Pulumi.{stack}.yaml")
    with pytest.raises(SettingsError) as raised:
        load_settings(raw, stack, directory, secret_keys=secret_keys)
    message = str(raised.value)
    assert "\n" not in message and "allowed:" in message
    assert message.startswith(f"Pulumi.{stack}.yaml: {NS}:{key} "), message
    assert words in message, message


@pytest.mark.parametrize(("edits", "key", "words"), [
    ({"database.multiAz": False, "database.standbyMultiAz": True}, "database.standbyMultiAz",
     "false while database.multiAz is false"),
    ({"network.natGateways": "single", "network.standbyNatGateways": "perAz"}, "network.standbyNatGateways",
     "single while network.natGateways is single"),
])
def test_a_standby_shape_above_the_active_one_is_refused(project, edits, key, words):
    # Both files agree on the active value (validated equal); the standby asks for more than it.
    same = {f"{NS}:{k}": v for k, v in edits.items() if "standby" not in k}
    directory = project(primary=same, backup={**same, **{f"{NS}:{k}": v for k, v in edits.items()}})
    raw, secret_keys = read_stack_file(directory / "Pulumi.backup.yaml")
    with pytest.raises(SettingsError, match=f"^Pulumi.backup.yaml: {NS}:{key} .*{words}"):
        load_settings(raw, "backup", directory, secret_keys=secret_keys)


def test_left_out_the_active_shape_follows_the_primary_and_the_standby_shape_is_the_catalogs(project):
    backup_shape = {f"{NS}:{section}.{k}": None for section, keys in (
        ("network", ("natGateways", "standbyNatGateways")), ("database", ("multiAz", "standbyMultiAz")),
        ("cache", ("nodeType", "nodes", "standbyNodeType", "standbyNodes"))) for k in keys}
    directory = project(primary={f"{NS}:cache.nodeType": "cache.r6g.xlarge", f"{NS}:cache.nodes": 3},
                        backup=backup_shape)
    raw, secret_keys = read_stack_file(directory / "Pulumi.backup.yaml")
    s = load_settings(raw, "backup", directory, secret_keys=secret_keys)
    assert (s.network.nat_gateways, s.database.multi_az, s.cache.node_type, s.cache.nodes) == (
        "perAz", True, "cache.r6g.xlarge", 3)
    assert (s.network.standby_nat_gateways, s.database.standby_multi_az, s.cache.standby_node_type,
            s.cache.standby_nodes) == ("single", False, "cache.t4g.medium", 1)


def test_a_standby_of_two_nodes_fails_over_and_a_standby_replica_may_run_multi_az(project):
    """RDS creates and runs a read replica Multi-AZ when asked (CreateDBInstanceReadReplica MultiAZ: a standby of the
    replica in another AZ), priced twice; two standby nodes get automatic failover and Multi-AZ, as AWS requires."""
    directory = project(backup={f"{NS}:cache.standbyNodes": 2, f"{NS}:database.standbyMultiAz": True})
    cache: dict = {}
    evaluate("backup", directory, cache)
    assert shape(cache["backup"]) == {"multiAz": True, "replica": True, "cache": ("cache.t4g.medium", 2, True, True),
                                      "nats": 1}
    cost = estimate(cache["backup"], usage_of(directory, "backup"))
    replica = next(i for i in cost["items"] if i["type"] == INSTANCE)
    assert "x2" in replica["basis"]


def test_an_adopted_network_takes_no_nat_setting_and_its_peer_is_not_compared_with_it(project):
    """Terraform decides an adopted VPC's NAT gateways: standbyNatGateways is refused there as natGateways is, and
    the other stack's natGateways has nothing to agree with."""
    adopt = {"source": "terraform", "terraformState": {"backend": "local", "path": "terraform/vpc.json"}}
    directory = project(primary={f"{NS}:network": {**adopt, "standbyNatGateways": "single"}},
                        backup={f"{NS}:network.natGateways": "single"})
    (directory / "terraform").mkdir()
    shutil.copy(REPO / "tests" / "fixtures" / "terraform" / "vpc-state.json", directory / "terraform" / "vpc.json")
    raw, secret_keys = read_stack_file(directory / "Pulumi.primary.yaml")
    with pytest.raises(SettingsError, match=f"^Pulumi.primary.yaml: {NS}:network.standbyNatGateways 'single' is set "
                                            "but not used"):
        load_settings(raw, "primary", directory, secret_keys=secret_keys)
    raw, secret_keys = read_stack_file(directory / "Pulumi.backup.yaml")
    assert load_settings(raw, "backup", directory, secret_keys=secret_keys).network.nat_gateways == "single"
