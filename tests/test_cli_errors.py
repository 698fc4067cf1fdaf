"""Every entry point, given bad input, answers with one line naming what is wrong and exit 2: no traceback, no
`None`. Files written by Windows tools (UTF-8 with a byte-order mark, UTF-16) are read."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import drills.__main__ as drills_cli
import drills.sandbox as sandbox
import synth.__main__ as synth_cli
from drills import reconcile
from drills.outputs import InputError
from drills.sandbox import stack_outputs, write_outputs
from regions import terraform_import
from synth import stored
from synth.__main__ import main as synth_main
from synth.engine import REPO

UNUSED = "http://127.0.0.1:9/api/health"


def one_line(text: str) -> str:
    assert text.count("\n") == 1 and "Traceback" not in text and "None" not in text, text
    return text.strip()


@pytest.fixture
def outputs(tmp_path):
    return write_outputs(tmp_path, stack_outputs(UNUSED, UNUSED))


def test_an_outputs_file_that_is_a_directory(tmp_path, outputs, capsys):
    (tmp_path / "dir.json").mkdir()
    args = [a if a != str(tmp_path / "primary.json") else str(tmp_path / "dir.json") for a in outputs]
    assert drills_cli.main(["plan", "--scenario", "dns-failover", *args]) == 2
    assert one_line(capsys.readouterr().err) == f"drills: {tmp_path / 'dir.json'}: is a directory, not a file"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_outputs_written_by_powershell_are_read(tmp_path, outputs, capsys, encoding):
    """`pulumi stack output --json > f` in PowerShell writes UTF-16 with a byte-order mark."""
    for role in ("primary", "backup"):
        path = tmp_path / f"{role}.json"
        path.write_text(path.read_text(), encoding=encoding)
    assert drills_cli.main(["plan", "--scenario", "dns-failover", *outputs]) == 0
    assert "dns-failover: us-east-1 -> us-west-2" in capsys.readouterr().out


def test_a_report_dir_that_is_a_file_is_refused_before_anything(tmp_path, outputs, capsys):
    (tmp_path / "reports").write_text("")
    assert drills_cli.main(["run", "--scenario", "dns-failover", "--execute", "--confirm", "us-west-2",
                            "--report-dir", str(tmp_path / "reports"), "--no-db-probe", *outputs]) == 2
    assert one_line(capsys.readouterr().err) == f"drills: --report-dir {tmp_path / 'reports'}: a file, not a directory"


def test_a_report_dir_under_a_file_is_refused_too(tmp_path, capsys):
    (tmp_path / "some.json").write_text("{}")
    assert drills_cli.main(["report", "--journal", str(tmp_path / "j.json"), "--report-dir",
                            str(tmp_path / "some.json" / "sub")]) == 2
    assert one_line(capsys.readouterr().err) == (f"drills: --report-dir {tmp_path / 'some.json' / 'sub'}: a file, not "
                                                 f"a directory ({tmp_path / 'some.json'} is a file)")


def test_a_graph_path_that_is_a_directory(tmp_path, capsys):
    (tmp_path / "graph.mmd").mkdir()
    assert synth_main(["--graph", str(tmp_path / "graph.mmd")]) == 2
    assert one_line(capsys.readouterr().err).startswith(f"synth: --graph {tmp_path / 'graph.mmd'}: cannot be written")


def test_a_missing_confirm_says_not_given(outputs, capsys):
    assert drills_cli.main(["run", "--scenario", "dns-failover", "--execute", "--no-db-probe", *outputs]) == 2
    assert one_line(capsys.readouterr().err) == ("drills: --confirm must be the region users go to, us-west-2 "
                                                 "(not given); nothing was called")


@pytest.mark.parametrize(("option", "value", "words"), [
    ("--hold", "-5", "argument --hold: must be 0 or more, found -5"),
    ("--probe-interval", "0", "argument --probe-interval: must be more than 0, found 0"),
    ("--probe-timeout", "soon", "argument --probe-timeout: a number of seconds, found 'soon'"),
    ("--hold", "1e400", "argument --hold: a finite number of seconds, found 1e400"),
    ("--max-lag", "-1", "argument --max-lag/--max-replica-lag: must be 0 or more, found -1"),
    ("--db-probe-interval", "0", "argument --db-probe-interval: must be more than 0, found 0"),
])
def test_durations_out_of_range_are_refused(outputs, capsys, option, value, words):
    with pytest.raises(SystemExit) as exited:
        drills_cli.main(["run", "--scenario", "dns-failover", option, value, *outputs])
    assert exited.value.code == 2
    # One line, the reason first: not the usage.
    assert one_line(capsys.readouterr().err) == f"python -m drills run: {words} (--help lists the options)"


def test_synth_checks_its_paths_before_evaluating(tmp_path, capsys):
    assert synth_main(["--graph", str(tmp_path / "missing" / "graph.mmd")]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"synth: --graph {tmp_path / 'missing' / 'graph.mmd'}: the directory {tmp_path / 'missing'} does not exist")
    assert synth_main(["--program", str(tmp_path / "nope.py")]) == 2
    assert one_line(capsys.readouterr().err) == f"synth: --program {tmp_path / 'nope.py'}: no such file"


def _project(tmp_path, **files: str):
    for name in ("Pulumi.yaml", "Pulumi.primary.yaml", "Pulumi.backup.yaml"):
        shutil.copy(REPO / name, tmp_path / name)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_yaml_error_is_one_line_with_line_and_column(tmp_path, capsys):
    text = (REPO / "Pulumi.backup.yaml").read_text().replace("  trading-platform:role: backup",
                                                             "  trading-platform:role: [backup")
    assert synth_main(["--project-dir", str(_project(tmp_path, **{"Pulumi.backup.yaml": text}))]) == 2
    error = one_line(capsys.readouterr().err)
    assert error.startswith("synth: Pulumi.backup.yaml: not valid YAML at line ") and ", column " in error


def test_a_secure_value_where_no_secret_belongs(tmp_path, capsys):
    text = (REPO / "Pulumi.primary.yaml").read_text().replace("monthlyUsd: 9000",
                                                              "monthlyUsd:\n      secure: AAABAKxq")
    assert synth_main(["--project-dir", str(_project(tmp_path, **{"Pulumi.primary.yaml": text}))]) == 2
    error = one_line(capsys.readouterr().err)
    assert error.startswith("synth: Pulumi.primary.yaml: trading-platform:budget '(hidden)' holds a secure: value, "
                            "but this setting cannot be a secret") and "synth-secret" not in error


def test_a_secret_in_the_backup_file_would_be_ignored_so_it_is_refused(tmp_path, capsys):
    text = (REPO / "Pulumi.backup.yaml").read_text() + "  trading-platform:googleClientId:\n    secure: AAAB\n"
    assert synth_main(["--project-dir", str(_project(tmp_path, **{"Pulumi.backup.yaml": text}))]) == 2
    assert one_line(capsys.readouterr().err).startswith(
        "synth: Pulumi.backup.yaml: trading-platform:googleClientId '(hidden)' is set, but the primary creates the "
        "shared secrets")


def test_terraform_import_answers_help_and_reads_any_state_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        terraform_import.main(["--help"])
    assert exited.value.code == 0 and "STATE.json" in capsys.readouterr().out
    assert terraform_import.main([str(tmp_path)]) == 2
    assert one_line(capsys.readouterr().err) == f"terraform_import: {tmp_path}: is a directory, not a file"
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"version": 4, "resources": []}), encoding="utf-16")
    assert terraform_import.main([str(state)]) == 0
    assert json.loads(capsys.readouterr().out) == {"resources": []}


def test_the_sandbox_answers_help_without_starting_anything(capsys):
    with pytest.raises(SystemExit) as exited:
        sandbox.main(["--help"])
    assert exited.value.code == 0 and "usage: python -m drills.sandbox" in capsys.readouterr().out


def test_a_stack_file_that_is_a_directory(tmp_path, capsys):
    project_dir = _project(tmp_path)
    (project_dir / "Pulumi.backup.yaml").unlink()
    (project_dir / "Pulumi.backup.yaml").mkdir()
    assert synth_main(["--project-dir", str(project_dir), "--stack", "backup"]) == 2
    error = one_line(capsys.readouterr().err)
    assert error == f"synth: Pulumi.backup.yaml: a directory, not a stack file ({project_dir})"


@pytest.mark.parametrize(("probe", "line"), [
    ("not an object", "output 'replication_probe' must be a dict, found \"not an object\""),
    ({"namespace": "N", "metrics": {}, "dimensions": {}, "writer_dimension": "W", "interval_seconds": 1,
      "max_replication_age_seconds": 60}, "missing output 'replication_probe.metrics.last_acknowledged_write'"),
    ({**sandbox.asdict(sandbox.PROBE), "interval_seconds": "1"},
     "output 'replication_probe.interval_seconds' must be a number, found \"1\""),
    ({**sandbox.asdict(sandbox.PROBE), "dimensions": {"Environment": 3}},
     "output 'replication_probe.dimensions' must map names to strings, found {\"Environment\": 3}"),
])
def test_a_bad_replication_probe_output_is_named(tmp_path, capsys, probe, line):
    documents = stack_outputs(UNUSED, UNUSED)
    documents["backup"]["replication_probe"] = probe
    args = write_outputs(tmp_path, documents)
    assert drills_cli.main(["status", *args]) == 2
    assert one_line(capsys.readouterr().err) == f"drills: {tmp_path / 'backup.json'}: {line}"


def test_status_with_its_region_out_is_not_ready_in_one_line(outputs, capsys, monkeypatch):
    """A region that does not answer is a reason, not a traceback (and still exit 3, not ready)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "operator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "operator")
    assert drills_cli.main(["status", "--endpoint-url", "us-west-2=http://127.0.0.1:9", *outputs]) == 3
    out = capsys.readouterr().out
    assert "Traceback" not in out and out.strip().splitlines()[-1].startswith("NOT READY: us-west-2 did not answer")


@pytest.mark.parametrize(("body", "said"), [
    # botocore reads an HTML page as an empty answer: the drill's lookup would be a KeyError.
    (b"<html><body>Please sign in to the network</body></html>",
     "DescribeAlarms: the endpoint answered 200 with a web page, not AWS"),
    # ... and what its JSON protocol cannot parse as a message (CloudWatch's calls are JSON).
    (b"<?xml version='1.0'?><Describe", "DescribeAlarms: the endpoint answered 200 with a body that is not JSON"),
])
def test_an_endpoint_that_answers_with_a_web_page_is_a_reason_too(outputs, capsys, monkeypatch, body, said):
    """A proxy's or captive portal's page with status 200, where AWS's answer was due."""

    class Portal(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "operator")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "operator")
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert drills_cli.main(["status", "--endpoint-url", f"us-west-2={url}", *outputs]) == 3
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("NOT READY: us-west-2 did not answer"), out
    assert said in out


# --- pipes and Ctrl-C


def _piped_to_head(command: list[str]) -> subprocess.CompletedProcess:
    """`command | head -1`, as a shell runs it: the reader leaves after one line."""
    writer = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=writer.stdout, capture_output=True, text=True, check=True)
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    writer.stderr.close()
    return subprocess.CompletedProcess(command, writer.wait(timeout=60), head.stdout, stderr)


def test_a_reader_that_leaves_ends_synth_and_drills_quietly(outputs):
    synth = _piped_to_head([sys.executable, "-m", "synth", "--format", "json"])
    assert synth.stdout.startswith("{") and "Traceback" not in synth.stderr
    # The drill's plan is longer than a pipe's buffer only with every step described: read one line of it.
    plan = _piped_to_head([sys.executable, "-m", "drills", "plan", "--scenario", "region-evacuation", *outputs])
    assert plan.stdout.strip() and "Traceback" not in plan.stderr and "BrokenPipe" not in plan.stderr


def test_ctrl_c_prints_one_line():
    # Evaluated, not read from the test run's store of evaluations (which would end before the signal).
    environment = {k: v for k, v in os.environ.items() if k != stored.VARIABLE}
    started = subprocess.Popen([sys.executable, "-m", "synth"], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=environment)
    # Inside the evaluation: the program's first warning comes from the primary's, the backup's follows.
    first = started.stderr.readline()
    started.send_signal(signal.SIGINT)
    _, rest = started.communicate(timeout=60)
    assert started.returncode == 130, first + rest
    assert rest.strip().splitlines()[-1] == "synth: interrupted" and "Traceback" not in first + rest


def test_a_stop_that_lands_in_a_finalizer_still_stops_the_command():
    """Python ignores an exception raised in a finalizer: a SIGTERM handled there would be lost, and the command
    would run to its end. It is sent again, and the command stops as for any other stop."""
    program = """
import signal, sys, time
from regions import console

class Finalized:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)
        sum(range(1000))  # the handler runs here, inside the finalizer

def main():
    Finalized()
    time.sleep(20)
    print("ran to the end")
    return 0

console.run(main, "finalized")
"""
    started = time.monotonic()
    ended = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (ended.returncode, ended.stdout, ended.stderr) == (130, "", "finalized: interrupted\n")
    assert time.monotonic() - started < 15


def test_a_key_written_twice_is_refused_by_synth_and_reconcile_alike(tmp_path, capsys):
    """PyYAML keeps the last of two equal keys silently (and the cost changes with it); the Pulumi CLI refuses the
    file. One reader, one verdict: the key and its line, from synth as from `reconcile --write`."""
    text = (REPO / "Pulumi.primary.yaml").read_text() + "  trading-platform:role: primary\n"
    line = text.count("\n")
    project = _project(tmp_path, **{"Pulumi.primary.yaml": text})
    assert synth_main(["--project-dir", str(project)]) == 2
    assert one_line(capsys.readouterr().err) == (
        f"synth: Pulumi.primary.yaml: not valid YAML at line {line}, column 3: duplicate key 'trading-platform:role'")
    with pytest.raises(InputError) as refused:
        reconcile.write(project, [{"file": "Pulumi.primary.yaml", "key": "trading-platform:activeRegion",
                                   "value": "us-west-2"}])
    assert str(refused.value) == (f"{project / 'Pulumi.primary.yaml'}: not valid YAML at line {line}, column 3: "
                                  "duplicate key 'trading-platform:role'")
    assert (project / "Pulumi.primary.yaml").read_text() == text


def test_a_broken_backup_file_is_named_before_any_evaluation(tmp_path, capsys, monkeypatch):
    """Each evaluation takes seconds: every stack file is read and validated first."""
    text = (REPO / "Pulumi.backup.yaml").read_text() + "  trading-platform:role: backup\n"
    project = _project(tmp_path, **{"Pulumi.backup.yaml": text})
    evaluated = []
    monkeypatch.setattr(synth_cli, "evaluate", lambda stack, *args: evaluated.append(stack))
    assert synth_main(["--project-dir", str(project)]) == 2
    assert "Pulumi.backup.yaml: not valid YAML" in capsys.readouterr().err and evaluated == []


def test_the_installed_commands_run_from_any_directory(tmp_path):
    """`pip install -e .` (make venv) puts the tools on the virtualenv's PATH; from a directory that is not the
    checkout, `python -m synth` finds no module, the commands work."""
    bin_dir = Path(sys.executable).parent
    synth = subprocess.run([str(bin_dir / "trading-synth"), "--format", "json"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, check=False)
    assert synth.returncode == 0, synth.stderr
    assert set(json.loads(synth.stdout)) == {"primary", "backup"}
    for command in ("trading-drills", "trading-rightsize"):
        helped = subprocess.run([str(bin_dir / command), "--help"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=60, check=False)
        assert helped.returncode == 0 and helped.stdout.startswith("usage: "), (command, helped.stderr)


def _catches_sighup(pid: int) -> bool:
    """Whether the process handles SIGHUP: Python does not by default, console.stop_at_once does, first thing."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & 1 << (signal.SIGHUP - 1))


@pytest.mark.parametrize("command", [[sys.executable, "-m", "synth"], [sys.executable, "-m", "drills.sandbox"],
                                     [str(Path(sys.executable).parent / "trading-drills"), "--help"]])
def test_ctrl_c_while_a_command_imports_prints_one_line(command, tmp_path):
    """The imports take a second or more (pulumi, boto3): a Ctrl-C then is one line too, not a traceback from
    inside an import."""
    started = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 10
    while not _catches_sighup(started.pid) and time.time() < deadline:
        time.sleep(0.005)
    # Caught before any of the virtualenv's compiled modules (grpc, psycopg, yaml) is loaded: while importing.
    assert "site-packages" not in Path(f"/proc/{started.pid}/maps").read_text()
    started.send_signal(signal.SIGINT)
    _, stderr = started.communicate(timeout=60)
    name = command[2] if command[1] == "-m" else "drills"
    assert started.returncode == 130 and stderr == f"{name}: interrupted\n", stderr


def test_stack_file_takes_a_file_in_failback_phase_as_in_rightsize(tmp_path, capsys):
    project = _project(tmp_path)
    stack_file = project / "Pulumi.primary.yaml"
    assert drills_cli.main(["failback", "phase", "retire", "--role", "primary", "--stack-file", str(stack_file)]) == 2
    # The file given is the one read (not Pulumi.<the file>.yaml): here it records no switchover.
    assert one_line(capsys.readouterr().err) == (f"drills: {stack_file}: trading-platform:database.detached is not "
                                                 "true: a rebuild follows a switchover that left this region's former "
                                                 "writer detached (python -m drills reconcile --write)")
    assert drills_cli.main(["failback", "phase", "retire", "--role", "primary", "--stack-file", "primary"]) == 2
    assert one_line(capsys.readouterr().err) == "drills: --stack-file primary: no such file"


def test_every_drills_option_and_command_is_explained():
    import argparse

    missing = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if not sub.description:
                        missing.append(" ".join([*path, name]))
                    walk(sub, [*path, name])
            elif not action.help:
                missing.append(" ".join([*path, *(action.option_strings or [action.dest])]))

    walk(drills_cli.build_parser(), ["drills"])
    assert missing == []


def test_a_preflight_offers_only_what_it_uses(capsys):
    """A preflight starts no heartbeat: the database probe's pace is run's; its promotion options are run's too."""
    for command in (["preflight"], ["failback", "preflight"]):
        with pytest.raises(SystemExit):
            drills_cli.build_parser().parse_args([*command, "--help"])
        helped = capsys.readouterr().out
        assert "--db-probe " in helped and "--db-ca-bundle" in helped
        assert not {"--db-probe-interval", "--db-probe-lead", "--promotion-keeps-source-link"} & set(helped.split())


def test_a_usage_error_is_one_line_with_the_reason_first(capsys):
    with pytest.raises(SystemExit) as exited:
        drills_cli.build_parser().parse_args(["run", "--scenario", "nope"])
    assert exited.value.code == 2
    assert one_line(capsys.readouterr().err).startswith(
        "python -m drills run: argument --scenario: invalid choice: 'nope'")


@pytest.mark.parametrize("command", [["preflight"], ["run", "--scenario", "dns-failover", "--execute", "--confirm",
                                                      "us-west-2"], ["status"], ["failback", "preflight"]])
def test_no_credentials_is_one_line_before_any_call(tmp_path, outputs, monkeypatch, capsys, command):
    """Not one failure per check: the drill says once that it has no credentials, and calls nothing."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)
    assert drills_cli.main([*command, *outputs]) == 2
    assert one_line(capsys.readouterr().err) == (
        "drills: no AWS credentials: set AWS_PROFILE to the drill role's profile (docs/runbook.md), or "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; nothing was called")
    assert not (tmp_path / ".drills").exists()
