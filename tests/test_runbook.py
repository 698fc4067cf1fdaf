"""docs/runbook.md, run as written: every command of its shell blocks, in order, in the sandbox's world (moto, two
PostgreSQL servers, the replication probes), from a copy of the project as the operator's working directory.

What an emulation cannot take as written: `pulumi` is emulated from the program's own evaluation (drills/
emulated_pulumi.py); an `aws` command is checked against what `reconcile` printed (moto has no automated-backups
replication to stop); a drill gets the world's health URL, `--promotion-keeps-source-link` (moto keeps a promoted
replica's source link) and the databases' certificate; the placeholders are filled; section 3's hold is 1 s.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil

from drills.__main__ import main as drills
from drills.sandbox import BACKUP, PRIMARY, RoundTrip
from synth.engine import REPO

RUNBOOK = REPO / "docs" / "runbook.md"
# Trailing comments: two spaces or more, then #.
_COMMENT = re.compile(r"\s{2,}#.*$")


def commands() -> list[str]:
    found = []
    for block in re.findall(r"```sh\n(.*?)```", RUNBOOK.read_text(encoding="utf-8"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = _COMMENT.sub("", line).strip()
            if line and not line.startswith("#"):
                found.append(re.sub(r"\s+", " ", line))
    return found


def test_the_runbook_runs_as_written(world, tmp_path, monkeypatch):
    trip = RoundTrip(world, tmp_path, tmp_path / "unused", lambda line: None)
    monkeypatch.chdir(trip.project)
    # The operator's profile: the drill role, here moto's credentials.
    config = tmp_path / "aws-config"
    config.write_text("[profile drill]\naws_access_key_id = sandbox\naws_secret_access_key = sandbox\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    for region in (PRIMARY, BACKUP):
        world.client("cloudwatch", region).put_metric_alarm(
            AlarmName="api-5xx", Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10, ComparisonOperator="GreaterThanThreshold")
    outputs = dict(zip(("primary", "backup"), world.outputs_args()[1::2], strict=True))
    emulation = {"run": ["--probe-url", world.front.url, "--probe-interval", "0.2", "--probe-timeout", "30",
                         "--promotion-keeps-source-link", "--db-ca-bundle", str(world.postgres.ca_bundle)],
                 "preflight": ["--db-ca-bundle", str(world.postgres.ca_bundle)]}
    ran = []
    for written in commands():
        journals = sorted((trip.project / ".drills").glob("drill-*.json"), key=lambda p: p.stat().st_mtime)
        command = (written.replace("drill-<id>", journals[-1].stem if journals else "drill-<id>")
                   .replace("<your error-rate alarm>", "api-5xx").replace("<account>", "123456789012")
                   .replace("<environment>", "production").replace("--hold 300", "--hold 1"))
        words = shlex.split(command)
        if words[0] == "export":
            monkeypatch.setenv(*words[1].split("=", 1))
        elif words[:3] == ["pulumi", "stack", "output"]:
            shutil.copy(outputs[words[words.index("-s") + 1]], words[-1])
        elif words[0] == "pulumi":
            trip.run(command)
        elif words[0] == "aws":
            printed = json.loads(journals[-1].read_text())["reconcile"]["commands"]
            assert command in printed, f"{written}: not what reconcile printed: {printed}"
        else:
            assert words[:3] == ["python", "-m", "drills"], written
            if words[3:5] == ["failback", "preflight"]:
                world.wait_for_probe(PRIMARY, BACKUP)  # "once it has caught up": the rebuilt replica's first readings
            extra = emulation.get(words[4] if words[3] == "failback" else words[3], [])
            assert drills([*words[3:], *extra]) == 0, written
        ran.append(words[0])
    assert ran.count("python") >= 12 and ran.count("aws") == 2
    # An evacuation and a failback, each reconciled: the stack files are as they were; the dns-failover drill last.
    for name in ("Pulumi.primary.yaml", "Pulumi.backup.yaml"):
        assert (trip.project / name).read_text() == (REPO / name).read_text()
    reports = [json.loads(p.read_text()) for p in (trip.project / ".drills" / "reports").glob("drill-*.json")]
    assert sorted((r["scenario"], r["status"]) for r in reports) == [
        ("dns-failover", "done"), ("failback", "done"), ("region-evacuation", "done")]
