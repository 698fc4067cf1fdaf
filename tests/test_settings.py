"""Every bad setting stops the program before any resource registers, with one message naming
the stack file, the key, the value found and what is allowed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from regions.settings import OFFLINE, SettingsError, check_peer_region, load_settings, refuse_placeholders
from regions.stackfile import read_stack_file
from synth.__main__ import main as synth_main
from synth.engine import REPO, evaluate

NS = "trading-platform"

# (stack file edited, edits, stack file named in the message, key in the message, found, words in the message)
CASES = {
    "missing region": ("primary", {"aws:region": None}, "primary", "aws:region", None, "is missing"),
    "region outside the catalog": ("backup", {"aws:region": "eu-west-1"}, "backup", "aws:region", "'eu-west-1'",
                                   "us-east-1, us-west-2"),
    "unknown role": ("primary", {f"{NS}:role": "standby"}, "primary", f"{NS}:role", "'standby'",
                     "one of primary, backup"),
    "two stacks claim one role": ("backup", {f"{NS}:role": "primary", f"{NS}:peerStack": None}, "backup",
                                  f"{NS}:role", "'primary'", "Pulumi.primary.yaml"),
    "malformed cidr": ("primary", {f"{NS}:network.cidr": "10.0.0.0/33"}, "primary", f"{NS}:network.cidr",
                       "'10.0.0.0/33'", "RFC 1918"),
    "cidr with host bits": ("primary", {f"{NS}:network.cidr": "10.10.0.1/16"}, "primary",
                            f"{NS}:network.cidr", "'10.10.0.1/16'", "no host bits"),
    "public cidr": ("primary", {f"{NS}:network.cidr": "8.8.0.0/16"}, "primary", f"{NS}:network.cidr",
                    "'8.8.0.0/16'", "RFC 1918"),
    "overlapping cidrs": ("backup", {f"{NS}:network.cidr": "10.10.128.0/17"}, "backup", f"{NS}:network.cidr",
                          "'10.10.128.0/17'", "overlaps the primary stack's 10.10.0.0/16"),
    "one az": ("primary", {f"{NS}:network.azCount": 1}, "primary", f"{NS}:network.azCount", "1",
               "from 2 to 5"),
    "more azs than the region has": ("backup", {f"{NS}:network.azCount": 5}, "backup",
                                     f"{NS}:network.azCount", "5", "from 2 to 4"),
    "az count as a word": ("primary", {f"{NS}:network.azCount": "three"}, "primary",
                           f"{NS}:network.azCount", "'three'", "is not an integer"),
    "az count as a fraction": ("primary", {f"{NS}:network.azCount": 2.5}, "primary",
                               f"{NS}:network.azCount", "2.5", "is not an integer"),
    "az count as a boolean": ("primary", {f"{NS}:network.azCount": True}, "primary",
                              f"{NS}:network.azCount", "true", "is not an integer"),
    "unknown key": ("primary", {f"{NS}:netwrok": {"cidr": "10.10.0.0/16"}}, "primary", f"{NS}:netwrok",
                    None, "is not a known setting"),
    "unknown field": ("backup", {f"{NS}:network.natGateway": "single"}, "backup", f"{NS}:network.natGateway",
                      "'single'", "natGateways"),
    "unknown nat mode": ("backup", {f"{NS}:network.natGateways": "none"}, "backup",
                         f"{NS}:network.natGateways", "'none'", "one of perAz, single"),
    "backup without its peer": ("backup", {f"{NS}:peerStack": None}, "backup", f"{NS}:peerStack", None,
                                "is missing"),
    "primary with a peer": ("primary", {f"{NS}:peerStack": "organization/trading-platform/backup"}, "primary",
                            f"{NS}:peerStack", None, "only the backup stack"),
    "regions that do not pair": ("backup", {"aws:region": "us-east-1", f"{NS}:network.azCount": 2}, "backup",
                                 "aws:region", "'us-east-1'", "us-west-2"),
    "bad tag value": ("primary", {f"{NS}:tags.owner": "team<script>"}, "primary", f"{NS}:tags.owner",
                      "'team<script>'", "letters, digits"),
    "missing tag": ("primary", {f"{NS}:tags.costCenter": None}, "primary", f"{NS}:tags.costCenter", None,
                    "is missing"),
    "bad zone name": ("primary", {f"{NS}:domain.zoneName": "Trading_Example"}, "primary",
                      f"{NS}:domain.zoneName", "'Trading_Example'", "DNS zone name"),
    "retention AWS does not offer": ("primary", {f"{NS}:network.flowLogRetentionDays": 45}, "primary",
                                     f"{NS}:network.flowLogRetentionDays", "45", "retention periods"),
    "an object that is a string": ("primary", {f"{NS}:network": "10.10.0.0/16"}, "primary", f"{NS}:network",
                                   "'10.10.0.0/16'", "is not an object"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_setting_stops_with_one_message(project, case):
    edited, edits, named, key, found, words = CASES[case]
    project_dir = project(**{edited: edits})
    with pytest.raises(SettingsError) as raised:
        evaluate(named, project_dir)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"Pulumi.{named}.yaml: {key} ")
    if found is not None:
        assert f"{key} {found} " in message
    assert words in message
    assert "allowed:" in message


def test_the_project_stack_files_are_valid():
    for stack in ("primary", "backup"):
        raw, _ = read_stack_file(REPO / f"Pulumi.{stack}.yaml")
        settings = load_settings(raw, stack, REPO)
        assert settings.role == stack
        assert len(settings.network.availability_zone_ids) == {"primary": 3, "backup": 2}[stack]


REAL = {f"{NS}:domain": {"zoneName": "trading.acme.io", "appRecord": "app"},
        f"{NS}:tags": {"costCenter": "CC-1", "owner": "platform@acme.io"}}


@pytest.mark.parametrize(("edits", "key", "value"), [
    ({}, "domain.zoneName", "trading.example.com"),
    ({f"{NS}:domain": REAL[f"{NS}:domain"]}, "tags.owner", "platform-team@example.com"),
    (REAL, "monitoring.alarmEmail", "platform-oncall@example.com"),
])
def test_a_deployment_refuses_the_placeholders_synth_accepts(project, edits, key, value):
    """`pulumi preview`/`up` (from_pulumi, without synth's OFFLINE marker) refuse the shipped example.com values one
    at a time, file and key named; synth evaluates the same files (its engine sets the marker)."""
    project_dir = project(primary=edits)
    raw, secret_keys = read_stack_file(project_dir / "Pulumi.primary.yaml")
    settings = load_settings(raw, "primary", project_dir, secret_keys=secret_keys)
    with pytest.raises(SettingsError) as refused:
        refuse_placeholders(settings)
    assert str(refused.value) == (f"Pulumi.primary.yaml: {NS}:{key} '{value}' is a placeholder; allowed: your own "
                                  "(the stack files ship with placeholders)")
    assert evaluate("primary", project_dir).outputs["region"] == "us-east-1"
    assert OFFLINE not in os.environ


def test_real_values_pass(project):
    project_dir = project(primary={**REAL, f"{NS}:monitoring": {"alarmEmail": "oncall@acme.io"}})
    raw, secret_keys = read_stack_file(project_dir / "Pulumi.primary.yaml")
    refuse_placeholders(load_settings(raw, "primary", project_dir, secret_keys=secret_keys))


def test_role_profiles_fill_what_a_stack_file_leaves_out(project):
    project_dir = project(backup={f"{NS}:network.azCount": None, f"{NS}:network.natGateways": None,
                                  f"{NS}:network.cidr": None})
    raw, _ = read_stack_file(project_dir / "Pulumi.backup.yaml")
    settings = load_settings(raw, "backup", project_dir)
    assert settings.network.availability_zone_ids == ("usw2-az1", "usw2-az2")
    # A NAT gateway per AZ once active (the primary's), one while standby.
    assert (settings.network.nat_gateways, settings.network.standby_nat_gateways) == ("perAz", "single")
    assert settings.network.cidr == "10.20.0.0/16"  # the catalog's default for us-west-2


def test_a_peer_stack_in_the_wrong_region_is_refused():
    raw, _ = read_stack_file(REPO / "Pulumi.backup.yaml")
    settings = load_settings(raw, "backup", REPO)
    assert check_peer_region(settings, "us-east-1") == "us-east-1"
    with pytest.raises(SettingsError, match=r"Pulumi.backup.yaml: trading-platform:peerStack "
                                            r"'organization/trading-platform/primary' leads to a stack whose "
                                            r"region output is 'us-west-2'"):
        check_peer_region(settings, "us-west-2")


def test_a_peer_stack_without_a_stack_file_is_a_settings_error(project):
    project_dir = project(backup={f"{NS}:peerStack": "organization/trading-platform/prod"})
    with pytest.raises(SettingsError, match="Pulumi.backup.yaml: trading-platform:peerStack"):
        evaluate("backup", project_dir)


def test_synth_exits_2_with_the_message_on_stderr_and_no_traceback(project):
    project_dir = project(backup={f"{NS}:network.cidr": "10.10.0.0/16"})
    result = subprocess.run([sys.executable, "-m", "synth", "--stack", "backup", "--project-dir", str(project_dir)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "synth: Pulumi.backup.yaml: trading-platform:network.cidr '10.10.0.0/16' overlaps the primary stack's "
        "10.10.0.0/16 (Pulumi.primary.yaml); allowed: a range disjoint from 10.10.0.0/16 "
        "(the peer VPCs must stay routable to each other)")


def test_a_stack_file_that_is_not_yaml_is_named(project):
    project_dir = project()
    (project_dir / "Pulumi.primary.yaml").write_text("config: [unclosed\n")
    result = subprocess.run([sys.executable, "-m", "synth", "--stack", "primary", "--project-dir", str(project_dir)],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("synth: Pulumi.primary.yaml: not valid YAML")


# (stack file, key under trading-platform:, value, words in the message) for the data and service tiers.
KEY_CASES = [
    ("primary", "database.engineVersion", "sixteen", "a PostgreSQL version 13 to 17"),
    ("primary", "database.engineVersion", "16.x", "MAJOR.MINOR"),
    ("backup", "database.backupRetentionDays", 0, "from 7 to 35"),
    ("primary", "database.backupRetentionDays", 3, "from 7 to 35"),
    ("primary", "database.instanceClass", "r6g.large", "db.r6g.large"),
    ("backup", "database.promoted", True, "is no longer a setting; allowed: not set: the writer follows from"),
    ("primary", "activeRegion", "eu-west-1", "one of us-east-1, us-west-2"),
    ("primary", "activeRegion", "us-west-2", "differs from the other stack's"),
    ("primary", "database.detached", True, "false while this stack's region is the activeRegion"),
    ("backup", "database.retireWithSnapshot", "retired-1", "set only with database.detached: true"),
    ("primary", "database.applyImmediately", "yes", "true or false"),
    ("backup", "database.applyImmediately", 1, "true or false"),
    ("primary", "database.maxAllocatedStorageGb", 50, "at least 10% above allocatedStorageGb"),
    # RDS: "the maximum storage threshold ... at least 10% more than the current allocated storage".
    ("primary", "database.maxAllocatedStorageGb", 109, "an integer from 110 to 65536"),
    ("primary", "cache.nodes", 1, "automatic failover"),
    ("primary", "cache.engine", "memcached", "one of valkey, redis"),
    ("primary", "cache.engineVersion", "6.2", "one of 7.2, 8.0, 8.1"),
    ("backup", "cache.nodeType", "t4g.medium", "cache.r7g.large"),
    ("primary", "services.api.memory", 512, "the memory sizes (MiB) Fargate pairs with 1024 CPU units"),
    ("primary", "services.web.cpu", 300, "Fargate CPU units"),
    ("primary", "services.api.min", 12, "at most max 10"),
    ("backup", "services.web.standbyMin", 20, "at most max 10"),
    ("primary", "services.api.desired", 11, "between min and max"),
    ("backup", "services.standby", False, "is no longer a setting; allowed: not set: the standby follows from"),
    ("primary", "services.api.cpus", 512, "is not a known setting"),
    ("primary", "images.tag", None, "a new tag per build"),
    ("primary", "images.api", {"uri": "nginx"}, "REGISTRY/REPOSITORY@sha256:DIGEST or :TAG"),
    ("primary", "images.web", {"context": "../frontend", "uri": "r.example/web:1"}, "exactly one of"),
    ("backup", "images", {"tag": "1"}, "the primary builds the images and ECR replicates them"),
    ("primary", "domain.zoneName", "https://trading.example.com", "a lowercase DNS zone name"),
    ("primary", "domain.appRecord", "http://app", "a single lowercase DNS label"),
    ("backup", "dns.createZone", True, "false in the backup stack"),
    ("primary", "environment", "staging-euwest1", "up to 11 characters"),
    ("primary", "environment", "prod-", "single '-' inside"),
    ("primary", "environment", "pre--prod", "single '-' inside"),
    ("backup", "environment", "staging", "differs from the other stack's"),
    ("backup", "cache.authTokenVersion", 2, "the value in Pulumi.primary.yaml (one version rotates both stacks)"),
    ("primary", "cache.authTokenSoleVersion", 2, "an integer from 1 to 1 (at most cache.authTokenVersion 1: the "
                                                 "version whose token alone the caches accept"),
    ("primary", "cache.authTokenSoleVersion", "1", "is not an integer"),
    ("backup", "cache.authTokenSoleVersion", 1, "null, the value in Pulumi.primary.yaml (the pair rotates its tokens "
                                                "in the same steps)"),
    ("primary", "database.passwordRotationDays", 0, "from 1 to 1000"),
    ("primary", "jwtSecret", "hunter2-in-plaintext", "is stored in plaintext in the stack file"),
    ("primary", "backups.coldStorageAfterDays", 2500, "at least 90 days before"),
    ("primary", "drill", {"requireMfa": False}, "belongs to the backup stack"),
    ("backup", "drill.principals", ["someone"], "IAM role, user or account-root ARNs"),
    ("primary", "monitoring.alarmEmail", "oncall", "e-mail address"),
    ("backup", "monitoring.alarmEmail", None, "is missing"),
    ("primary", "monitoring.p95LatencySeconds", "fast", "is not a number"),
    ("primary", "monitoring.rdsConnections", 900, "max_connections is 820"),
    ("backup", "database.instanceClass", "db.t4g.medium", "cannot hold max_connections 820"),
    ("backup", "services.api.max", 8, "the replica's max_connections must be at least the writer's"),
    ("primary", "database.poolSize", 10, "differs from the other stack's"),
    ("primary", "budget.monthlyUsd", None, "is missing"),
]


@pytest.mark.parametrize(("stack_name", "key", "value", "words"), KEY_CASES)
def test_tier_settings_errors(project, stack_name, key, value, words):
    with pytest.raises(SettingsError) as raised:
        evaluate(stack_name, project(**{stack_name: {f"{NS}:{key}": value}}))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"Pulumi.{stack_name}.yaml: {NS}:{key}")
    assert words in message and "allowed:" in message


def test_a_rotation_step_written_in_one_file_only_is_refused_naming_that_file(project):
    """Step 2 of a token rotation in the primary's file alone: the backup's evaluation blames the file that changed."""
    both = {f"{NS}:cache.authTokenVersion": 2}
    with pytest.raises(SettingsError) as raised:
        evaluate("backup", project(primary={**both, f"{NS}:cache.authTokenSoleVersion": 2}, backup=both))
    assert str(raised.value).startswith(f"Pulumi.primary.yaml: {NS}:cache.authTokenSoleVersion 2 differs from the "
                                        "other stack's; allowed: null, the value in Pulumi.backup.yaml")


def test_a_plaintext_secret_is_refused_without_echoing_it(project):
    with pytest.raises(SettingsError) as raised:
        evaluate("primary", project(primary={f"{NS}:googleClientId": "1234.apps.example"}))
    assert "1234.apps.example" not in str(raised.value) and "(hidden)" in str(raised.value)


def test_short_monthly_retention_has_no_cold_tier(project):
    raw_dir = project(primary={f"{NS}:backups.monthlyRetentionDays": 60})
    raw, keys = read_stack_file(raw_dir / "Pulumi.primary.yaml")
    assert load_settings(raw, "primary", raw_dir, secret_keys=keys).backups.cold_storage_after_days is None
    primary = evaluate("primary", raw_dir)
    rules = {r["ruleName"]: r for r in primary.named("aws:backup/plan:Plan", "backup-plan").inputs["rules"]}
    assert rules["monthly"]["lifecycle"] == {"deleteAfter": 60}
    with pytest.raises(SettingsError, match="0 \\(off\\) while monthlyRetentionDays is 90 or less"):
        evaluate("primary", project(primary={f"{NS}:backups.monthlyRetentionDays": 60,
                                             f"{NS}:backups.coldStorageAfterDays": 30}))


# (the file edited, its edit, the file the error must name first, words of the one-line message)
PAIR_CASES = [
    ("backup", {f"{NS}:network.cidr": "10.10.0.0/16"}, "backup", "overlaps the primary stack's 10.10.0.0/16"),
    ("primary", {f"{NS}:network.cidr": "10.20.0.0/16"}, "primary", "overlaps the backup stack's 10.20.0.0/16"),
    ("backup", {"aws:region": "us-east-1"}, "backup", "does not pair with the other stack"),
    ("backup", {f"{NS}:environment": "staging"}, "backup", "'production', the value in Pulumi.primary.yaml"),
    # Neither file is at a default: the backup's is named, and the primary's value with it.
    ("primary", {f"{NS}:environment": "staging"}, "backup", "'staging', the value in Pulumi.primary.yaml"),
    ("backup", {f"{NS}:activeRegion": "us-west-2"}, "backup", "'us-east-1', the value in Pulumi.primary.yaml"),
    ("primary", {f"{NS}:activeRegion": "us-west-2"}, "primary", "'us-east-1', the value in Pulumi.backup.yaml"),
    ("backup", {f"{NS}:database.poolSize": 8}, "backup", "5, the value in Pulumi.primary.yaml"),
    ("backup", {f"{NS}:database.applyImmediately": True}, "backup", "false, the value in Pulumi.primary.yaml"),
    ("backup", {f"{NS}:role": "primary"}, "backup", "is already the role of Pulumi.primary.yaml"),
]


@pytest.mark.parametrize(("edited", "edit", "named", "words"), PAIR_CASES)
def test_a_pair_error_names_the_file_that_was_changed(project, capsys, edited, edit, named, words):
    """`python -m synth` evaluates the primary first: a value changed only in the backup's file must still be
    blamed on the backup's file."""
    assert synth_main(["--project-dir", str(project(**{edited: edit}))]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"synth: Pulumi.{named}.yaml: ")
    assert words in error


def test_the_settings_reference_is_made_from_what_validation_enforces(monkeypatch):
    """docs/settings.md's table: every key of the schema, with the allowed values and defaults the typed reads
    recorded; a key without a meaning, or a default changed in the code, shows."""
    from regions import settingsdoc

    assert settingsdoc.main(["--check"]) == 0
    rules = settingsdoc._rules()
    assert rules["primary"]["database.backupRetentionDays"] == (
        "an integer from 7 to 35 (at least a week of point-in-time recovery)", 14)
    changed = {role: {**found, "database.backupRetentionDays": (found["database.backupRetentionDays"][0], 21)}
               for role, found in rules.items()}
    row = ("| `trading-platform:database.backupRetentionDays` | automated backups' retention | an integer from 7 to 35 "
           "(at least a week of point-in-time recovery) | `21` |")
    assert row in settingsdoc.table(changed)
    monkeypatch.delitem(settingsdoc.MEANINGS, "cache.nodes")
    monkeypatch.setitem(settingsdoc.MEANINGS, "cache.nodez", "a typo")
    assert settingsdoc.problems(rules) == ["cache.nodez: names no setting", "cache.nodes: no meaning"]
