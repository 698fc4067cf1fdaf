"""docs/runbook.md followed in the sandbox's world: every command of its shell blocks, in order and as written, from a
copy of the project as the operator's working directory (`make drill-sandbox`, tests/test_runbook.py). Section 1
("us-east-1 is down") runs with us-east-1 lost until its block that begins once it is back.

What an emulation cannot take as written: `pulumi` is emulated from the program's own evaluation
(drills/emulated_pulumi.py) and `pulumi stack output` gives the world's outputs; an `aws` command is checked against
what `reconcile` printed, not run (moto has no automated-backups replication to stop); a drill also gets the world's
health URL, `--promotion-keeps-source-link` (moto keeps a promoted replica's source link) and the databases'
certificate; the placeholders are filled in, and section 3's hold is 1 s.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drills.loopback import free_port
from drills.sandbox import ACCOUNT, BACKUP, PRIMARY, RoundTrip
from synth.engine import REPO

RUNBOOK = REPO / "docs" / "runbook.md"
# Trailing comments: two spaces or more, then #.
_COMMENT = re.compile(r"\s{2,}#.*$")
# The error-rate alarm section 3's --stop-alarm names, made in both regions of the world.
STOP_ALARM = "api-5xx"
# The page's placeholders filled in for this world, and the one value shortened (a 5-minute hold).
REPLACED = {"<your error-rate alarm>": STOP_ALARM, "<account>": ACCOUNT, "<environment>": "production",
            "--hold 300": "--hold 1"}


@dataclass(frozen=True)
class Section:
    title: str
    blocks: list[list[str]]

    @property
    def commands(self) -> list[str]:
        return [command for block in self.blocks for command in block]

    def region_lost(self, block: int) -> bool | None:
        """In section 1 (us-east-1 is down), whether us-east-1 is lost during the block: in all but the last,
        which begins "once us-east-1 is back". None elsewhere: the region stays as it is."""
        return block < len(self.blocks) - 1 if self.title.startswith("1.") else None


def sections(text: str) -> list[Section]:
    """The page's sections (the part before the first heading is "Before an incident"), each with the commands
    of its `sh` blocks, continuation lines joined and comments dropped."""
    parts = re.split(r"^## (.*)$", text, flags=re.M)
    titled = [("Before an incident", parts[0]), *zip(parts[1::2], parts[2::2], strict=True)]
    found = []
    for title, body in titled:
        blocks = []
        for block in re.findall(r"```sh\n(.*?)```", body, re.S):
            commands = []
            for line in block.replace("\\\n", " ").splitlines():
                line = _COMMENT.sub("", line).strip()
                if line and not line.startswith("#"):
                    commands.append(re.sub(r"\s+", " ", line))
            blocks.append(commands)
        if any(blocks):
            found.append(Section(title.strip(), blocks))
    return found


class Runbook:
    """The runbook's commands run in a RoundTrip's world, with its project as the working directory (the caller's
    chdir). `setenv(name, value)` sets the operator's environment (None unsets): the drill role's profile, then
    what `export` lines set. With `reports`, the drills write their reports there."""

    def __init__(self, trip: RoundTrip, setenv: Callable[[str, str | None], None], say: Callable[[str], None] = print,
                 reports: Path | None = None):
        self.trip, self.world, self.setenv, self.say = trip, trip.world, setenv, say
        self.project = trip.project
        self.unreachable: list[str] = []  # the drill's arguments while us-east-1 is lost
        self.outputs = dict(zip(("primary", "backup"), self.world.outputs_args()[1::2], strict=True))
        certificate = ["--db-ca-bundle", str(self.world.postgres.ca_bundle)] if self.world.postgres else []
        self.emulation = {"run": [*trip.emulated(), *certificate, *(["--report-dir", str(reports)] if reports else [])],
                          "preflight": certificate}
        # The operator's profile: the drill role, here moto's credentials.
        config = self.project.parent / "aws-config"
        config.write_text("[profile drill]\naws_access_key_id = sandbox\naws_secret_access_key = sandbox\n")
        setenv("AWS_CONFIG_FILE", str(config))
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            setenv(name, None)
        for region in (PRIMARY, BACKUP):
            self.world.client("cloudwatch", region).put_metric_alarm(
                AlarmName=STOP_ALARM, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
                Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10,
                ComparisonOperator="GreaterThanThreshold")

    def follow(self, chosen: list[Section]) -> int:
        """Each section's commands in order; the first that fails ends it with its exit code, said."""
        for section in chosen:
            self.say(f"\n== {section.title}")
            for number, block in enumerate(section.blocks):
                lost = section.region_lost(number)
                if lost is not None:
                    self._us_east_1(lost)
                for written in block:
                    code = self.run(written)
                    if code:
                        self.say(f"runbook: `{written}` ended with exit {code}")
                        return code
        return 0

    def _us_east_1(self, lost: bool) -> None:
        """us-east-1 lost, as the drill tool sees it: its AWS endpoints refuse connections, the replication stream
        from its writer is cut, and its probe goes with the region (the writer's last acknowledgements stay in
        us-west-2's CloudWatch). Back: its endpoints answer again."""
        if lost and not self.unreachable:
            self.say(f"(the sandbox: {PRIMARY} is lost: its endpoints refuse connections, its replication stream is "
                     "cut, its probe stops)")
            if self.world.postgres:
                self.world.postgres.cut_stream()
            if self.world.probes:
                self.world.probes.stop(PRIMARY)
            self.unreachable = ["--endpoint-url", f"{PRIMARY}=http://127.0.0.1:{free_port()}"]
        elif not lost and self.unreachable:
            self.say(f"(the sandbox: {PRIMARY} is back)")
            self.unreachable = []

    def _journals(self) -> list[Path]:
        return sorted((self.project / ".drills").glob("drill-*.json"), key=lambda p: p.stat().st_mtime)

    def run(self, written: str) -> int:
        journals = self._journals()
        command = written.replace("drill-<id>", journals[-1].stem if journals else "drill-<id>")
        for written_as, value in REPLACED.items():
            command = command.replace(written_as, value)
        words = shlex.split(command)
        if words[0] == "pulumi" and words[1:3] != ["stack", "output"]:
            self.trip.run(command)  # says the command and what the emulated `pulumi` did
            return 0
        self.say(f"$ {command}")
        if words[0] == "export":
            self.setenv(*words[1].split("=", 1))
        elif words[0] == "pulumi":
            shutil.copy(self.outputs[words[words.index("-s") + 1]], self.project / words[-1])
        elif words[0] == "aws":
            printed = json.loads(journals[-1].read_text()).get("reconcile", {}).get("commands", []) if journals else []
            if command not in printed:
                self.say(f"  not what reconcile printed: {printed}")
                return 1
            self.say("  (not emulated: what reconcile printed)")
        elif words[:3] == ["python", "-m", "drills"]:
            if words[3:5] == ["failback", "preflight"]:
                # "once it has caught up": the rebuilt replica's first readings
                self.world.wait_for_probe(PRIMARY, BACKUP)
            emulated = self.emulation.get(words[4] if words[3] == "failback" else words[3], [])
            calls_aws = words[3] in ("status", "preflight", "run", "resume", "abort")
            return self.trip.drills(*words[3:], *emulated, *(self.unreachable if calls_aws else []))
        else:
            self.say("  not a command the sandbox knows")
            return 1
        return 0
