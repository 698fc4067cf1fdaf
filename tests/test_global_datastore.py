"""cache.globalDatastore: the primary's cache creates an ElastiCache Global Datastore, the backup's joins it as a
secondary by the id the primary exports, so queued Celery tasks survive an evacuation. The datastore stays the
primary stack's whichever region is active (AWS moves its primary role with FailoverGlobalReplicationGroup); what AWS
requires of its clusters is refused in the stack files, or by the policy pack."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import STACKS, write_project

from policies.rules import INHERITED_BY_SECONDARY
from regions.catalog import CACHE_VERSIONS
from regions.settings import SettingsError, load_settings
from regions.stackfile import read_stack_file
from synth.cost import PRICES, estimate, usage_of
from synth.engine import evaluate
from synth.findings import evaluate_policies
from synth.mocks import GLOBAL_DATASTORE

NS = "trading-platform"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
PARAMETERS = "aws:elasticache/parameterGroup:ParameterGroup"
IDENTIFIER = "trading-platform-production"
# ElastiCache's prefix for a datastore created in us-east-1, before the suffix (the group's identifier).
DATASTORE_ID = f"ldgnf-{IDENTIFIER}"
# On, with the standby shape a Global Datastore allows: the active's node type, 2 nodes.
ON = {f"{NS}:cache.globalDatastore": True, f"{NS}:cache.standbyNodeType": "cache.r7g.large",
      f"{NS}:cache.standbyNodes": 2}
WEST = {f"{NS}:activeRegion": "us-west-2"}


def _pair(directory) -> dict:
    cache: dict = {}
    evaluate("backup", directory, cache)
    return cache


@pytest.fixture(scope="module")
def on(tmp_path_factory):
    directory = write_project(tmp_path_factory.mktemp("on"), **{stack: ON for stack in STACKS})
    return directory, _pair(directory)


@pytest.fixture(scope="module")
def west(tmp_path_factory):
    """The same after an evacuation: us-west-2 is the activeRegion in both files."""
    directory = write_project(tmp_path_factory.mktemp("west"), **{stack: {**ON, **WEST} for stack in STACKS})
    return directory, _pair(directory)


def test_the_primary_creates_the_global_datastore_from_its_cache(on):
    primary = on[1]["primary"]
    (group,) = primary.of_type(CACHE)
    (datastore,) = primary.of_type(GLOBAL_DATASTORE)
    assert datastore.name == group.name == "cache" and datastore.parent == group.parent
    assert datastore.inputs["globalReplicationGroupIdSuffix"] == IDENTIFIER
    assert datastore.inputs["primaryReplicationGroupId"] == group.inputs["replicationGroupId"] == IDENTIFIER
    # Scaled and upgraded through the datastore, every cluster at once; the member's own node type is ignored.
    assert {k: datastore.inputs[k] for k in ("engine", "engineVersion", "cacheNodeType")} == {
        "engine": "valkey", "engineVersion": "8.1", "cacheNodeType": "cache.r7g.large"}
    assert group.ignore_changes == ("nodeType",) and group.inputs["autoMinorVersionUpgrade"] is False
    assert group.inputs["atRestEncryptionEnabled"] and group.inputs["transitEncryptionMode"] == "required"
    assert primary.outputs["cache_global_datastore"] == DATASTORE_ID


def test_the_backup_joins_it_as_a_secondary_that_sets_nothing_it_inherits(on):
    backup = on[1]["backup"]
    (group,) = backup.of_type(CACHE)
    assert group.inputs["globalReplicationGroupId"] == DATASTORE_ID == backup.outputs["cache_global_datastore"]
    assert not set(INHERITED_BY_SECONDARY) & set(group.inputs)
    assert not backup.of_type(GLOBAL_DATASTORE) and not backup.of_type(PARAMETERS)
    # Its own key and the shared token; what AWS reports for it is the datastore's.
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:us-west-2:") and group.inputs["authTokenWo"]
    assert (group.state["nodeType"], group.state["engine"]) == ("cache.r7g.large", "valkey")
    # Joining replaces the standalone group under the same id: the old one goes first.
    assert group.delete_before_replace and group.inputs["numCacheClusters"] == 2
    assert group.inputs["automaticFailoverEnabled"] and group.inputs["autoMinorVersionUpgrade"] is False


def test_both_stacks_pass_the_policies(on, west):
    for _, stacks in (on, west):
        for stack in stacks.values():
            assert evaluate_policies(stack) == [], stack.stack


def test_the_cost_prices_the_option_in_both_stacks(on):
    """The active region pays the replication (data transfer out of the datastore's primary), the standby the
    secondary's nodes (the active's type, 2 of them); both nonzero."""
    directory, stacks = on
    costs = {stack: estimate(stacks[stack], usage_of(directory, stack)) for stack in STACKS}
    figures = {k: v["usd"] for k, v in yaml.safe_load(PRICES.read_text())["regions"]["us-east-1"].items()}
    (replication,) = [i for i in costs["primary"]["items"] if i["type"] == GLOBAL_DATASTORE]
    assert replication["monthly_usd"] > 0
    assert replication["monthly_usd"] == pytest.approx(100 * figures["elasticache.inter-region.gb"])
    assert replication["component"] == "cache"
    (secondary,) = [i for i in costs["backup"]["items"] if i["type"] == CACHE]
    assert f"joined to Global Datastore {DATASTORE_ID}" in secondary["basis"]
    assert secondary["monthly_usd"] > 0
    assert secondary["monthly_usd"] == pytest.approx(2 * figures["elasticache.valkey.cache.r7g.large.hour"] * 730,
                                                     abs=0.01)
    assert all(cost["complete"] for cost in costs.values())


def test_off_nothing_changes(project, evaluations):
    """Left out, it is false: the same resources as the files ship (false), no datastore, a null output."""
    directory = project(**{stack: {f"{NS}:cache.globalDatastore": None} for stack in STACKS})
    left_out = _pair(directory)
    for stack in STACKS:
        shipped = evaluations[stack]
        assert not shipped.of_type(GLOBAL_DATASTORE) and shipped.outputs["cache_global_datastore"] is None
        group = shipped.named(CACHE, "cache").inputs
        assert "globalReplicationGroupId" not in group and group["autoMinorVersionUpgrade"] is True
        assert [r.urn for r in left_out[stack].resources] == [r.urn for r in shipped.resources]
        caches = [[(r.urn, r.inputs) for r in e.resources if r.type.startswith("aws:elasticache/")]
                  for e in (left_out[stack], shipped)]
        assert caches[0] == caches[1]


def test_after_an_evacuation_the_datastore_stays_the_primarys_and_nothing_is_replaced(on, west):
    """AWS moves the datastore's primary role to us-west-2 (FailoverGlobalReplicationGroup, the drill's call); the
    stacks keep the datastore where it was created, under the same id, and the backup's group stays joined to it.
    Only the usage line moves: the replication is billed to the activeRegion's side."""
    before, after = on[1], west[1]
    assert after["primary"].named(GLOBAL_DATASTORE, "cache").inputs == before["primary"].named(GLOBAL_DATASTORE,
                                                                                             "cache").inputs
    for stack in STACKS:
        old, new = before[stack].named(CACHE, "cache"), after[stack].named(CACHE, "cache")
        assert new.urn == old.urn
        assert {k for k in old.inputs.keys() | new.inputs.keys() if old.inputs.get(k) != new.inputs.get(k)} == set()
        assert after[stack].outputs["cache_global_datastore"] == DATASTORE_ID
    costs = {stack: estimate(after[stack], usage_of(west[0], stack)) for stack in STACKS}
    assert [i["resource"] for i in costs["backup"]["items"] if i["type"] == GLOBAL_DATASTORE] == ["cache replication"]
    assert not [i for i in costs["primary"]["items"] if i["type"] == GLOBAL_DATASTORE]


def test_the_catalogs_engines_run_a_global_datastore():
    """Global Datastore needs Redis OSS 5.0.6 or later (the console's "Using global datastores"); every Valkey version
    ElastiCache offers has it."""
    assert all(tuple(map(int, v.split("."))) >= (5, 0, 6) for v in CACHE_VERSIONS["redis"])
    assert all(tuple(map(int, v.split("."))) >= (7, 2) for v in CACHE_VERSIONS["valkey"])


# (stack file the message names, edits per stack, key, words): what ElastiCache refuses, refused in the stack files.
ERRORS = [
    # "All clusters ... should have the same ... node type": the standby's burstable node.
    ("backup", {"primary": ON, "backup": {**ON, f"{NS}:cache.standbyNodeType": "cache.t4g.medium"}},
     "cache.standbyNodeType", "'cache.r7g.large', cache.nodeType, while cache.globalDatastore is true"),
    # Left at its default (cache.t4g.medium, burstable) in both files.
    ("primary", {s: {f"{NS}:cache.globalDatastore": True, f"{NS}:cache.standbyNodes": 2} for s in STACKS},
     "cache.standbyNodeType", "burstable nodes are not supported"),
    # "supported on ... M5, M6g, M7g, ... in size large and above": burstable (and small), previous generation.
    ("primary", {s: {**ON, f"{NS}:cache.nodeType": "cache.t4g.medium"} for s in STACKS}, "cache.nodeType",
     "is a node type Global Datastore does not support"),
    ("primary", {s: {**ON, f"{NS}:cache.nodeType": "cache.m4.large"} for s in STACKS}, "cache.nodeType",
     "cache.<m5|m6g|m7g|m8g|r5|r6g|r6gd|r7g|r8g|c7gn|c8gn>.<large or larger>"),
    # "If you enabled automatic failover on the primary cluster, each secondary cluster must also have at least 1
    # replica": the active region's cache always fails over, so either region's standby needs 2 nodes.
    ("primary", {s: {**ON, f"{NS}:cache.standbyNodes": 1} for s in STACKS}, "cache.standbyNodes",
     "a secondary inherits the primary's automatic failover"),
    # One creates it, the other joins it: both files say so (the one changed from the default is named).
    ("backup", {"backup": ON}, "cache.globalDatastore", "false, the value in Pulumi.primary.yaml (the primary creates"),
    ("primary", {"primary": {f"{NS}:cache.globalDatastore": "yes"}}, "cache.globalDatastore", "true or false"),
    # "the same ... node type, engine version": across the two files.
    ("backup", {"primary": ON, "backup": {**ON, f"{NS}:cache.engineVersion": "8.0"}}, "cache.engineVersion",
     "every cluster of a Global Datastore runs one engine, version and node type"),
    ("backup", {"primary": ON, "backup": {**ON, f"{NS}:cache.nodeType": "cache.r6g.xlarge",
                                          f"{NS}:cache.standbyNodeType": "cache.r6g.xlarge"}},
     "cache.nodeType", "'cache.r7g.large', the value in Pulumi.primary.yaml"),
]


# The settings both files must share: the primary, validating the pair, names the backup's file too.
ACROSS_FILES = {"cache.globalDatastore", "cache.engineVersion", "cache.nodeType"}


@pytest.mark.parametrize(("named", "edits", "key", "words"), ERRORS,
                         ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(ERRORS)])
def test_what_aws_refuses_is_refused_in_one_line_naming_file_and_key(project, named, edits, key, words):
    directory = project(**edits)
    for stack in STACKS if named == "backup" and key in ACROSS_FILES else (named,):
        raw, secret_keys = read_stack_file(directory / f"Pulumi.{stack}.yaml")
        with pytest.raises(SettingsError) as raised:
            load_settings(raw, stack, directory, secret_keys=secret_keys)
        message = str(raised.value)
        assert "\n" not in message and message.startswith(f"Pulumi.{named}.yaml: {NS}:{key} "), message
        assert words in message, message


def test_the_drill_role_may_move_this_datastore_and_only_with_it(on, evaluations):
    """The drill's promote-backup-broker step: FailoverGlobalReplicationGroup on the datastore (global: no region in
    its ARN) and the member it makes primary, in either region; nothing of it while the option is off."""
    _, stacks = on
    backup = stacks["backup"]
    statements = json.loads(backup.named("aws:iam/rolePolicy:RolePolicy", "drill-operator").inputs["policy"])[
        "Statement"]
    by_sid = {s["Sid"]: s for s in statements}
    datastore = f"arn:aws:elasticache::123456789012:globalreplicationgroup:{backup.outputs['cache_global_datastore']}"
    assert by_sid["ReadTheBroker"]["Action"] == "elasticache:DescribeGlobalReplicationGroups"
    assert by_sid["ReadTheBroker"]["Resource"] == datastore
    assert by_sid["MoveTheBroker"]["Resource"] == [datastore] + [
        f"arn:aws:elasticache:{region}:123456789012:replicationgroup:trading-platform-production"
        for region in ("us-east-1", "us-west-2")]
    off = evaluations["backup"].named("aws:iam/rolePolicy:RolePolicy", "drill-operator").inputs["policy"]
    assert "elasticache:" not in off


# --- the auth token: one for the datastore, the primary's


RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
SECRET = "aws:secretsmanager/secret:Secret"
VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def _written_token(stack) -> str:
    return stack.named(VERSION, "cache-auth-token").inputs["secretString"]


def _token_generation(stack, service: str) -> str:
    (app,) = [c for c in json.loads(stack.named("aws:ecs/taskDefinition:TaskDefinition", service).inputs[
        "containerDefinitions"]) if c["name"] == service]
    marker = {e["name"]: e["value"] for e in app["environment"]}["ROTATION_GENERATIONS"]
    return dict(part.split(":", 1) for part in marker.split(","))["redis-auth-token"]


@pytest.mark.parametrize("shape", ["on", "west"])
def test_both_caches_use_the_primarys_token_the_backup_from_a_copy_in_its_region(shape, request):
    """A shared token is right whether a secondary has its own or the datastore's (AWS documents one AuthTokenEnabled
    for the datastore): the primary replicates its secret, whichever region is active (nothing writes the replica),
    and the backup copies it into its own region's secret, which its cache and tasks read."""
    primary, backup = request.getfixturevalue(shape)[1].values()
    token = primary.named(RANDOM_PASSWORD, "cache-auth-token").state["result"]
    replica_key = primary.named("aws:kms/key:Key", "replica-key").state["arn"]
    assert primary.named(SECRET, "cache-auth-token").inputs["replicas"] == [
        {"region": "us-west-2", "kmsKeyId": replica_key}]
    assert not [r for r in backup.of_type(RANDOM_PASSWORD) if r.name == "cache-auth-token"]
    own = backup.named(SECRET, "cache-auth-token")
    assert own.inputs["name"] == "trading-platform/production/us-west-2/redis-auth-token"
    assert own.inputs["kmsKeyId"].startswith("arn:aws:kms:us-west-2:") and not own.inputs.get("replicas")
    assert _written_token(backup) == _written_token(primary) == token
    for stack in (primary, backup):
        assert stack.named(CACHE, "cache").inputs["authTokenWo"] == token
    (app,) = [c for c in json.loads(backup.named("aws:ecs/taskDefinition:TaskDefinition", "beat").inputs[
        "containerDefinitions"]) if c["name"] == "beat"]
    assert {s["name"]: s["valueFrom"] for s in app["secrets"]}["REDIS_AUTH_TOKEN"] == own.state["arn"]


def test_a_new_version_reaches_the_backups_copy_and_restarts_its_tasks(on, tmp_path):
    rotated = _pair(write_project(tmp_path, **{stack: {**ON, f"{NS}:cache.authTokenVersion": 2} for stack in STACKS}))
    for stack in STACKS:
        before, after = on[1][stack], rotated[stack]
        assert _written_token(before) != _written_token(after) == _written_token(rotated["primary"])
        assert after.named(CACHE, "cache").inputs["authTokenWoVersion"] == 4
        for service in ("api", "worker", "beat"):
            assert _token_generation(before, service) != _token_generation(after, service), (stack, service)
