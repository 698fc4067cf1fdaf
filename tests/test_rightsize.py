"""python -m rightsize against moto: metric series written with PutMetricData over the window, an RDS instance as
RDS would describe it, and the stack files of this repository (the database one class larger, so that it has a
smaller one). The tool runs in-process; the saving is checked against python -m synth on the files it writes."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from drills import reconcile
from drills.sandbox import MotoServer
from regions.settings import load_settings
from regions.stackfile import read_stack_file
from rightsize import inputs, report, rules, trial
from rightsize.__main__ import main
from rightsize.metrics import Series, growth_per_day, metric
from rightsize.sandbox import BACKUP, PERIOD, PRIMARY, project_copy, put, seed
from synth.__main__ import main as synth_main
from synth.engine import REPO

GIB = 1024 ** 3
ARGS = ["--period", str(PERIOD), "--format", "json"]
def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory, evaluations):
    directory = tmp_path_factory.mktemp("rightsize")
    server = MotoServer().start()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in server.environment().items():
            patch.setenv(key, value)
        files = {}
        for stack in ("primary", "backup"):
            files[stack] = directory / f"{stack}-outputs.json"
            files[stack].write_text(json.dumps(evaluations[stack].outputs))
        seed(server, evaluations["primary"].outputs)
        project = project_copy(directory / "project")
        code, out, err = _run("--outputs", str(files["primary"]), "--stack-file", str(project / "Pulumi.primary.yaml"),
                              *ARGS)
        assert code == 0, err
        yield {"server": server, "outputs": files, "project": project, "report": json.loads(out), "stderr": err,
               "directory": directory}
    server.stop()


def _finding(report: dict, resource: str) -> dict:
    return next(f for f in report["recommendations"] + report["unchanged"] if f["resource"] == resource)


def _changes(finding: dict) -> dict[tuple[str, str], tuple[Any, Any]]:
    return {(c["file"], c["key"].split(":", 1)[1]): (c["current"], c["proposed"]) for c in finding["changes"]}


def test_an_over_provisioned_api_gets_the_next_smaller_fargate_size_in_both_files(world):
    api = _finding(world["report"], "service api")
    assert api["status"] == "change" and api["rule"] == "service-smaller"
    assert _changes(api) == {
        ("Pulumi.primary.yaml", "services.api.cpu"): (1024, 512),
        ("Pulumi.primary.yaml", "services.api.memory"): (2048, 1024),
        # The standby runs the active's tasks after a failover: its sizes follow.
        ("Pulumi.backup.yaml", "services.api.cpu"): (1024, 512),
        ("Pulumi.backup.yaml", "services.api.memory"): (2048, 1024)}
    cpu = next(e for e in api["evidence"]
               if e["metric"] == "AWS/ECS CPUUtilization" and e["statistic"].startswith("p95"))
    assert cpu["value"] == 12 and cpu["period_seconds"] == 3600 and cpu["days"] >= 13
    assert cpu["dimensions"] == {"ClusterName": "trading-platform-production", "ServiceName": "api"}
    # Fargate prices half the vCPU and half the memory: 2 tasks in the primary, 1 in the standby.
    hourly = 0.5 * 0.04048 + 1 * 0.004445
    assert api["monthly_saving_usd"] == pytest.approx((2 + 1) * hourly * 730, abs=0.02)


def test_an_over_provisioned_database_gets_one_class_smaller_and_its_memory_parameters_follow(world):
    db = _finding(world["report"], "database")
    assert db["status"] == "change" and db["rule"] == "database-smaller"
    assert _changes(db) == {("Pulumi.primary.yaml", "database.instanceClass"): ("db.r6g.xlarge", "db.r6g.large"),
                            ("Pulumi.backup.yaml", "database.instanceClass"): ("db.r6g.xlarge", "db.r6g.large")}
    # Multi-AZ in the primary (two instances), Single-AZ replica in the backup: 3 x (0.45 - 0.225) an hour.
    assert db["monthly_saving_usd"] == pytest.approx(3 * 0.225 * 730, abs=0.02)
    parameters = {p["name"]: (p["current_mib"], p["proposed_mib"]) for p in db["parameters"]}
    assert parameters["shared_buffers"] == (8192, 4096)
    free = next(e for e in db["evidence"] if e["metric"] == "AWS/RDS FreeableMemory")
    assert free["value"] == 24 and free["unit"] == "GiB" and free["statistic"] == "min of 3600-second Minimum"


def test_a_memory_idle_cache_gets_its_general_purpose_sibling(world):
    cache = _finding(world["report"], "cache")
    assert _changes(cache) == {("Pulumi.primary.yaml", "cache.nodeType"): ("cache.r7g.large", "cache.m7g.large")}
    # Two nodes of valkey: (0.1752 - 0.1264) an hour each.
    assert cache["monthly_saving_usd"] == pytest.approx(2 * (0.1752 - 0.1264) * 730, abs=0.02)


def test_a_busy_service_at_its_maximum_gets_a_larger_size_and_costs_more(world):
    web = _finding(world["report"], "service web")
    assert web["rule"] == "service-larger"
    assert _changes(web)[("Pulumi.primary.yaml", "services.web.cpu")] == (256, 512)
    assert _changes(web)[("Pulumi.primary.yaml", "services.web.memory")] == (512, 1024)
    assert web["monthly_saving_usd"] < 0


def test_too_little_data_is_insufficient_data_never_a_guess(world):
    worker, beat = _finding(world["report"], "service worker"), _finding(world["report"], "service beat")
    assert worker["status"] == beat["status"] == "insufficient data"
    assert worker["changes"] == beat["changes"] == []
    assert "no datapoints at all" in worker["reason"]
    assert "on 3 of the 7 days" in beat["reason"] or "on 4 of the 7 days" in beat["reason"]


def test_storage_growth_raises_the_ceiling_in_both_files_at_no_cost(world):
    found = _finding(world["report"], "database storage")
    # 20 GiB used two weeks ago, 55 now: 505 GiB in 180 days, over 80 % of 500; 631 GiB would be 80 %.
    assert "55 GiB used, growing 2.50 GiB a day: 505 GiB in 180 days" in found["reason"]
    assert _changes(found) == {("Pulumi.primary.yaml", "database.maxAllocatedStorageGb"): (500, 700),
                               ("Pulumi.backup.yaml", "database.maxAllocatedStorageGb"): (500, 700)}
    assert found["monthly_saving_usd"] == 0


def test_the_savings_add_up_to_the_totals(world):
    report = world["report"]
    per_finding = sum(f["monthly_saving_usd"] for f in report["recommendations"])
    assert per_finding == pytest.approx(report["monthly_saving_usd"], abs=0.05)
    assert report["monthly_saving_usd"] == pytest.approx(
        sum(c["before"] - c["after"] for c in report["cost"].values()), abs=0.01)
    assert report["traffic"]["requests_per_day"] == 9000 * 8


def test_write_leaves_stack_files_that_validate_keep_their_comments_and_price_as_reported(world, tmp_path):
    project = project_copy(tmp_path / "project")
    code, out, err = _run("--outputs", str(world["outputs"]["primary"]), "--stack-file",
                          str(project / "Pulumi.primary.yaml"), "--write", *ARGS)
    assert code == 0, err
    report = json.loads(out)
    assert report["written"] and "wrote Pulumi.backup.yaml: trading-platform:services.api.cpu: 512 (was 1024)" in err
    # The writer queues its class change for the maintenance window (database.applyImmediately: false, as the files
    # ship); the replica applies its own at the `up`, unsaid.
    assert ("rightsize: Pulumi.primary.yaml: db.r6g.xlarge -> db.r6g.large waits for the maintenance window "
            "sun:05:00-sun:06:00 UTC (database.applyImmediately: false), its outage then; to apply it now, after "
            "`pulumi up -s primary`: aws rds modify-db-instance --region us-east-1 --db-instance-identifier "
            "trading-platform-production --db-instance-class db.r6g.large --apply-immediately\n") in err
    assert "Pulumi.backup.yaml: db.r6g.xlarge" not in err
    text = (project / "Pulumi.primary.yaml").read_text()
    assert "# us-east-1: full capacity, takes all traffic." in text
    assert "api: {cpu: 512, memory: 1024, min: 2, max: 10, desired: 2}" in text
    for stack in ("primary", "backup"):
        raw, secret_keys = read_stack_file(project / f"Pulumi.{stack}.yaml")
        load_settings(raw, stack, project, secret_keys=secret_keys)
    synth = io.StringIO()
    with contextlib.redirect_stdout(synth), contextlib.redirect_stderr(io.StringIO()):
        assert synth_main(["--project-dir", str(project), "--cost", "--format", "json"]) == 0
    priced = json.loads(synth.getvalue())
    for stack in ("primary", "backup"):
        assert priced[stack]["monthly_usd"] == report["cost"][f"Pulumi.{stack}.yaml"]["after"]
        assert report["cost"][f"Pulumi.{stack}.yaml"]["before"] > priced[stack]["monthly_usd"]
    # Until the new sizes are deployed, the metrics are of sizes the files no longer say: nothing is proposed on them.
    code, out, _ = _run("--outputs", str(world["outputs"]["primary"]), "--stack-file",
                        str(project / "Pulumi.primary.yaml"), *ARGS)
    again = json.loads(out)
    assert _finding(again, "service api")["status"] == "insufficient data"
    assert "0 of the 14 days measured ran 512 CPU / 1024 MiB" in _finding(again, "service api")["reason"]
    assert _finding(again, "database")["status"] == "no change"
    assert "the instance runs db.r6g.xlarge" in _finding(again, "database")["reason"]


def test_the_standby_follows_the_active_and_its_own_metrics_size_nothing(world, tmp_path):
    project = project_copy(tmp_path / "project")
    # The active's file says 512/1024; the standby's still 1024/2048.
    reconcile.write(project, [{"file": "Pulumi.primary.yaml", "key": f"trading-platform:services.api.{k}", "value": v}
                              for k, v in (("cpu", 512), ("memory", 1024))])
    # An idle standby: its own metrics would shrink everything if they were read.
    cw = world["server"].client("cloudwatch", BACKUP)
    put(cw, "AWS/ECS", "CPUUtilization", {"ClusterName": "trading-platform-production", "ServiceName": "web"}, 1)
    code, out, err = _run("--outputs", str(world["outputs"]["backup"]), "--stack-file",
                          str(project / "Pulumi.backup.yaml"), *ARGS)
    assert code == 0, err
    report = json.loads(out)
    assert report["standby"] and "CloudWatch" not in err
    api = _finding(report, "service api")
    assert api["rule"] == "follows-active"
    assert _changes(api) == {("Pulumi.backup.yaml", "services.api.cpu"): (1024, 512),
                             ("Pulumi.backup.yaml", "services.api.memory"): (2048, 1024)}
    assert {e["file"] for e in api["evidence"]} == {"Pulumi.primary.yaml"}
    assert [f["resource"] for f in report["recommendations"]] == ["service api"]
    assert _finding(report, "cache")["status"] == "no change"


def test_growth_ignores_storage_that_autoscaling_added():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    series = Series(metric("AWS/RDS", "FreeStorageSpace", "Minimum", "Bytes"), 3600, start)
    # 1 GiB a day used; on day 5 autoscaling adds 50 GiB.
    series.points = [(start + timedelta(days=d / 4), (40 - d / 4 + (50 if d >= 20 else 0)) * GIB) for d in range(40)]
    # The period of the jump loses its own use (a quarter of a day's): within 5 %. Without the adjustment the trend
    # would say the storage is shrinking.
    assert growth_per_day(series, 5 * GIB) / GIB == pytest.approx(1.0, rel=0.05)
    assert growth_per_day(series, 100 * GIB) < 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--days", "3"], "--days 3 is fewer than the 7 days (threshold minDays)"),
    (["--days", "500"], "--days 500: CloudWatch keeps metrics for at most 455 days"),
    (["--days", "30", "--period", "120"], "--period 120: a window starting 30 days ago takes a multiple of 300"),
    (["--threshold", "cpuLow=3"], "--threshold cpuLow=3: unknown threshold 'cpuLow'"),
    (["--threshold", "serviceLowPercent=abc"], "'abc' is not a number from 1 to 100"),
    (["--threshold", "minDays=7.5"], "'7.5' is not a whole number from 1 to 455"),
    (["--threshold", "serviceLowPercent=85"], "serviceLowPercent 85 must stay under serviceHighPercent 80"),
    (["--stack-file", "README.md"], "--stack-file README.md: a stack file is named Pulumi.<stack>.yaml"),
])
def test_bad_options_are_one_line_and_exit_2(world, argv, message):
    code, out, err = _run("--outputs", str(world["outputs"]["primary"]), *argv)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and message in err


def test_bad_outputs_are_one_line_and_exit_2(world, tmp_path):
    outputs = json.loads(world["outputs"]["primary"].read_text())
    cases = {"missing.json": None, "broken.json": "{", "list.json": "[]",
             "old.json": json.dumps({k: v for k, v in outputs.items() if k != "cache_member_clusters"}),
             "other-region.json": json.dumps({**outputs, "region": BACKUP})}
    expected = {"missing.json": "missing.json", "broken.json": "not valid JSON", "list.json": "expected a JSON object",
                "old.json": "missing output 'cache_member_clusters'",
                "other-region.json": "output 'region' is us-west-2"}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        code, out, err = _run("--outputs", str(tmp_path / name), "--stack-file",
                              str(world["project"] / "Pulumi.primary.yaml"), *ARGS)
        assert (code, out) == (2, ""), name
        assert err.count("\n") == 1 and expected[name] in err, err


def test_no_credentials_exit_2_and_an_aws_error_exit_3_naming_the_call(world, monkeypatch, tmp_path):
    args = ("--outputs", str(world["outputs"]["primary"]),
            "--stack-file", str(world["project"] / "Pulumi.primary.yaml"), *ARGS)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, _, err = _run(*args)
    assert (code, err.count("\n")) == (2, 1) and "rightsize: no AWS credentials: set AWS_PROFILE" in err
    # A standby reads no metrics: it needs none.
    code, _, err = _run("--outputs", str(world["outputs"]["backup"]),
                        "--stack-file", str(world["project"] / "Pulumi.backup.yaml"), *ARGS)
    assert code == 0, err
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    outputs = json.loads(world["outputs"]["primary"].read_text())
    (tmp_path / "gone.json").write_text(json.dumps({**outputs, "db_instance_identifier": "gone"}))
    code, out, err = _run("--outputs", str(tmp_path / "gone.json"), *args[2:])
    assert (code, out) == (3, "")
    assert "rds:DescribeDBInstances in us-east-1 failed: DBInstanceNotFound" in err


# The rules on their own: series built in memory, settings from edited stack files.

def _subject(project_dir: Path, values: dict[str, float], days: float = 14, stack: str = "primary"):
    """A Subject whose every series holds `values[name]` (by the rules' own series names, per resource) hourly."""
    raw, secret_keys = read_stack_file(project_dir / f"Pulumi.{stack}.yaml")
    settings = load_settings(raw, stack, project_dir, secret_keys=secret_keys)
    outputs = {"region": PRIMARY, "role": stack, "active_region": PRIMARY, "cluster": "c",
               "services": {n: n for n in ("api", "web", "worker", "beat")}, "db_instance_identifier": "db",
               "alb_arn_suffix": "app/a/1", "cache_member_clusters": ("g-001", "g-002")}
    targets = rules.Targets(**outputs)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    series = {}
    sizes = {s.name: (s.cpu, s.memory) for s in settings.services.services}
    named = [(f"service {n}", k, m) for n in sizes for k, m in rules.service_metrics(targets, n).items()]
    named += [("database", k, m) for k, m in rules.database_metrics(targets).items()]
    named += [("cache", k, m) for member in targets.cache_member_clusters
              for k, m in rules.cache_metrics(member).items()]
    for resource, name, m in named:
        tasks = values.get(f"{resource}.tasks", 2)
        value = {"cpu_reserved": tasks * sizes.get(resource[8:], (0, 0))[0],
                 "memory_reserved": tasks * sizes.get(resource[8:], (0, 0))[1],
                 "tasks_average": tasks}.get(name, values.get(f"{resource}.{name}", 10))
        series[m] = Series(m, 3600, start, [(start + timedelta(hours=h), float(value)) for h in range(int(days * 24))])
    limits = {n: t.default for n, t in rules.THRESHOLDS.items()}
    peer = "Pulumi.backup.yaml" if stack == "primary" else "Pulumi.primary.yaml"
    raw, secret_keys = read_stack_file(project_dir / peer)
    peer_settings = load_settings(raw, peer[7:-5], project_dir, secret_keys=secret_keys)
    return rules.Subject(settings, f"Pulumi.{stack}.yaml", peer, peer_settings, targets, series, limits,
                         rules.DatabaseState(settings.database.instance_class, 100))


def test_a_service_at_fargates_smallest_size_pinned_at_its_minimum_starts_fewer_tasks_never_below_two(project):
    directory = project(primary={"trading-platform:services.web.min": 6, "trading-platform:services.web.desired": 6},
                        backup={"trading-platform:services.web.min": 6, "trading-platform:services.web.desired": 6})
    web = rules.service(_subject(directory, {"service web.tasks": 6, "service web.cpu": 20, "service web.memory": 30}),
                        "web")
    # 6 tasks at p95 30 %: 3 would have kept p95 under 80 % (6 x 30 / 80 = 2.25).
    assert web.rule == "service-minimum"
    assert {(c.file, c.key, c.proposed) for c in web.changes} == {
        (f, f"trading-platform:services.web.{k}", 3) for f in ("Pulumi.primary.yaml", "Pulumi.backup.yaml")
        for k in ("min", "desired")}
    idle = rules.service(_subject(directory, {"service web.tasks": 6, "service web.cpu": 1, "service web.memory": 1}),
                         "web")
    assert {c.proposed for c in idle.changes} == {2}
    # At the floor already: nothing.
    floor = rules.service(_subject(project(), {"service web.tasks": 2, "service web.cpu": 1, "service web.memory": 1}),
                          "web")
    assert floor.status == "no change" and "floor of 2" in floor.reason


def test_a_busy_service_with_room_to_scale_out_is_left_to_autoscaling(project):
    api = rules.service(_subject(project(), {"service api.tasks": 6, "service api.cpu": 90}), "api")
    assert (api.status, api.changes) == ("no change", [])
    assert "autoscaling has room (at most 6 of 10 tasks ran)" in api.reason


def test_memory_pressure_asks_for_the_next_class_in_both_files(project):
    found = rules.database(_subject(project(), {"database.free_memory": 1 * GIB, "database.cpu": 20}))
    assert found.rule == "database-larger"
    assert {(c.file, c.proposed) for c in found.changes} == {("Pulumi.primary.yaml", "db.r6g.xlarge"),
                                                             ("Pulumi.backup.yaml", "db.r6g.xlarge")}


@pytest.mark.parametrize(("setting", "waiting"), [(False, ["Pulumi.primary.yaml"]), (True, [])])
def test_a_class_change_waits_for_the_maintenance_window_unless_the_writer_applies_immediately(project, setting,
                                                                                               waiting):
    edit = {"trading-platform:database.applyImmediately": setting}
    directory = project(primary=edit, backup=edit)
    subject = _subject(directory, {"database.free_memory": 1 * GIB, "database.cpu": 20})
    stacks = inputs.Stacks(subject.settings, subject.stack_file, directory, subject.peer, subject.peer_file)
    lines = report.waiting([rules.database(subject)], stacks)
    # The backup's replica applies its change at the `up` either way.
    assert [line.split(":")[0] for line in lines] == waiting
    assert all("db.r6g.large -> db.r6g.xlarge waits for the maintenance window sun:05:00-sun:06:00 UTC" in line
               for line in lines)


def test_connections_near_max_connections_are_said_but_no_class_raises_them(project):
    # max_connections is the services' budget (820 here), not the class's: a larger class would not help.
    subject = _subject(project(), {"database.connections": 700, "database.free_memory": 8 * GIB, "database.cpu": 5})
    found = rules.database(subject)
    assert (found.rule, found.status, found.changes) == ("database-connections", "no change", [])
    assert f"peak connections 700 of max_connections {subject.settings.database.max_connections}" in found.reason


def test_a_smaller_class_must_keep_memory_free(project):
    directory = project(primary={"trading-platform:database.instanceClass": "db.r6g.xlarge"},
                        backup={"trading-platform:database.instanceClass": "db.r6g.xlarge"})
    # 17 of 32 GiB free (53 %) passes the first test, but db.r6g.large would keep 1 of its 16 GiB free.
    found = rules.database(_subject(directory, {"database.free_memory": 17 * GIB, "database.cpu": 5}))
    assert (found.status, found.changes) == ("no change", [])
    assert "db.r6g.large would keep only 6.2 % of its 16 GiB free" in found.reason
    roomy = rules.database(_subject(directory, {"database.free_memory": 28 * GIB, "database.cpu": 5}))
    assert roomy.rule == "database-smaller" and "about 75.0 % of its 16 GiB free there" in roomy.reason


def test_a_smaller_size_that_would_run_hot_is_not_proposed(project):
    subject = _subject(project(), {"service api.cpu": 55, "service api.memory": 20})
    subject.thresholds["serviceLowPercent"] = 60
    found = rules.service(subject, "api")
    assert (found.status, found.changes) == ("no change", [])
    assert "512 CPU / 1024 MiB would run at about 110.0 %, over 80 %" in found.reason


def test_a_change_settles_beside_a_project_whose_terraform_state_is_outside_it(project, tmp_path):
    """A scratch copy in /tmp would lose a state path relative to the project (../infra/...)."""
    outside = tmp_path.parent / f"{tmp_path.name}-infra"
    outside.mkdir()
    shutil.copy(REPO / "tests" / "fixtures" / "terraform" / "vpc-state.json", outside / "vpc.json")
    directory = project(primary={"trading-platform:network": {
        "source": "terraform", "flowLogRetentionDays": 90,
        "terraformState": {"backend": "local", "path": f"../{outside.name}/vpc.json"}}})
    finding = rules.Finding("service api", "service-smaller", "change", "idle", changes=[
        rules.Change("Pulumi.primary.yaml", f"trading-platform:services.api.{k}", old, new)
        for k, old, new in (("cpu", 1024, 512), ("memory", 2048, 1024))], cost_items=(("api", rules.ECS_SERVICE),))
    costs = trial.settle([finding], directory, ["Pulumi.primary.yaml", "Pulumi.backup.yaml"])
    assert finding.status == "change" and finding.monthly_saving_usd > 0
    assert costs["Pulumi.primary.yaml"]["saving"] == finding.monthly_saving_usd
    assert not list(directory.parent.glob(f".{directory.name}-rightsize-*"))


def test_the_smallest_class_of_a_family_is_said_not_guessed(project):
    found = rules.database(_subject(project(), {"database.free_memory": 15 * GIB, "database.cpu": 2}))
    assert (found.status, found.changes) == ("no change", [])
    assert "db.r6g.large is the smallest class of its family" in found.reason


def test_a_change_the_stack_files_refuse_is_not_proposed_and_says_why(project):
    directory = project()
    finding = rules.Finding("database", "database-smaller", "change", "idle", changes=[rules.Change(
        "Pulumi.primary.yaml", "trading-platform:database.instanceClass", "db.r6g.large", "db.t4g.micro")],
        cost_items=(("database", rules.RDS_INSTANCE),))
    costs = trial.settle([finding], directory, ["Pulumi.primary.yaml", "Pulumi.backup.yaml"])
    assert (finding.status, finding.changes) == ("no change", [])
    assert "not proposed: the stack files would not validate" in finding.reason
    assert "cannot hold max_connections" in finding.reason
    assert all(c["before"] == c["after"] and c["saving"] == 0 for c in costs.values())


def test_a_cache_measured_on_too_few_days_is_insufficient(project):
    found = rules.cache(_subject(project(), {}, days=5))
    assert found.status == "insufficient data" and "on 5 of the 7 days" in found.reason


def test_the_stacks_export_what_the_metrics_are_named_by(evaluations):
    for stack, nodes in (("primary", 2), ("backup", 1)):
        outputs = evaluations[stack].outputs
        group = outputs["cache_replication_group_id"]
        assert outputs["cache_member_clusters"] == [f"{group}-{n:03d}" for n in range(1, nodes + 1)]
        alb = next(r for r in evaluations[stack].resources if r.type == "aws:lb/loadBalancer:LoadBalancer")
        assert outputs["alb_arn_suffix"] == alb.state["arnSuffix"] and outputs["alb_arn_suffix"].startswith("app/")


def test_outputs_through_the_pulumi_cli_and_the_stack_file_beside_pulumi_yaml(world, tmp_path, monkeypatch,
                                                                              fake_pulumi):
    """`--stack NAME` runs `pulumi stack output --json -s NAME` (no secrets needed) and finds Pulumi.<name>.yaml
    beside the nearest Pulumi.yaml, from the working directory up."""
    project = project_copy(tmp_path / "project")
    (project / "sub").mkdir()
    calls = fake_pulumi({"org/trading-platform/primary": world["outputs"]["primary"]})
    monkeypatch.chdir(project / "sub")
    code, out, err = _run("--stack", "org/trading-platform/primary", *ARGS)
    assert code == 0, err
    assert json.loads(out)["stack_file"] == "Pulumi.primary.yaml"
    assert calls.read_text().splitlines() == ["stack output --json -s org/trading-platform/primary"]
    code, out, err = _run("--stack", "org/trading-platform/nope", *ARGS)
    assert (code, out) == (2, "")
    assert err == ("rightsize: stack org/trading-platform/nope: `pulumi stack output --json -s "
                   "org/trading-platform/nope` failed: error: no stack named 'nope'\n")
