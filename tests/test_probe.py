"""The replication probe (`python -m probe`) as real processes against two PostgreSQL servers with streaming
replication (drills/pgpair.py) and a moto server standing for CloudWatch and Secrets Manager in both regions.

One pair for the module: the tests run in file order and the heartbeats accumulate (a writer started again goes
on from the last seq); the stream cut comes last. The probes run from a directory holding only the package, as
in the image. moto's GetMetricStatistics is the reader of the metrics here: it filters by namespace and by
dimensions (GetMetricData ignores the namespace when dimensions are given) and its 1-second buckets start at
the first datapoint, so a bucket's maxima of a seq and of its write are the same heartbeat's.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import probe
from drills.pgpair import PostgresPair, Server
from probe import config as probe_config
from probe import database, loop
from probe.credentials import Credentials
from probe.database import Heartbeat
from synth.engine import REPO

A, B = "us-east-1", "us-west-2"
NAMESPACE = "TradingPlatform/Replication"
ENVIRONMENT = "probe-test"
INTERVAL = 0.1
PACKAGE = REPO / "probe"
DIMENSIONS = {probe.ENVIRONMENT_DIMENSION: ENVIRONMENT, probe.WRITER_DIMENSION: A}


# -- helpers ------------------------------------------------------------------------------------------------------

def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)
    return value


class Probe:
    """One `python -m probe` process; its stdout and stderr go to files."""

    def __init__(self, name: str, env: dict[str, str], cwd: Path):
        self.name, self.out, self.err = name, cwd / f"{name}.out", cwd / f"{name}.err"
        with self.out.open("w") as stdout, self.err.open("w") as stderr:
            self.process = subprocess.Popen([sys.executable, "-m", "probe"], cwd=cwd, env=env, stdout=stdout,
                                            stderr=stderr)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]
        return [e for e in lines if name is None or e["event"] == name]

    def stop(self, signum: int = signal.SIGTERM) -> float:
        """Signals the probe and waits for it; returns how long it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signum)
        self.process.wait(timeout=10)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return f"--- {self.name} stdout\n{self.out.read_text()}--- {self.name} stderr\n{self.err.read_text()}"


@pytest.fixture(scope="module")
def pair() -> Iterator[PostgresPair]:
    with PostgresPair() as started:
        yield started


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory) -> Path:
    """A directory with only the package in it: `python -m probe` there imports nothing else of this repository."""
    directory = tmp_path_factory.mktemp("probe-image")
    (directory / "probe").symlink_to(PACKAGE, target_is_directory=True)
    return directory


@pytest.fixture
def secrets(moto, pair) -> dict[str, str]:
    """A fresh moto with the database-credentials secret in both regions; its ARN per region."""
    moto.reset()
    value = json.dumps({"username": pair.username, "password": pair.password, "dbname": pair.dbname})
    return {region: moto.client("secretsmanager", region).create_secret(
        Name="trading-platform/probe-test/database-credentials", SecretString=value)["ARN"] for region in (A, B)}


@pytest.fixture
def environment(moto, pair, secrets) -> Callable[..., dict[str, str]]:
    """environment(mode, server, **settings): a probe's environment, the writer in A and the reader in B."""

    def make(mode: str, server: Server, **settings: str) -> dict[str, str]:
        region = A if mode == "writer" else B
        env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PROBE_", "DATABASE_"))}
        return {**env, **moto.environment(), "PROBE_MODE": mode, "PROBE_REGION": region,
                "PROBE_PEER_REGION": B if region == A else A, "PROBE_WRITER_REGION": A, "PROBE_NAMESPACE": NAMESPACE,
                "PROBE_ENVIRONMENT": ENVIRONMENT, "PROBE_INTERVAL_SECONDS": str(INTERVAL),
                "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(server.port), "DATABASE_NAME": pair.dbname,
                "DATABASE_SECRET_ARN": secrets[region], "DATABASE_CA_BUNDLE": str(pair.ca_bundle), **settings}

    return make


@pytest.fixture
def launch(environment, package_dir) -> Iterator[Callable[..., Probe]]:
    """launch(mode, server, **settings) starts a probe; every one is killed at the end of the test."""
    started: list[Probe] = []

    def start(mode: str, server: Server, **settings: str) -> Probe:
        started.append(Probe(f"{mode}-{len(started)}", environment(mode, server, **settings), package_dir))
        return started[-1]

    yield start
    for process in started:
        process.kill()
        print(process.output())  # shown when the test failed


def datapoints(moto, region: str, metric: str, stat: str = "Maximum") -> list[tuple[dt.datetime, float]]:
    """(bucket start, statistic) per 1-second bucket, oldest first."""
    now = dt.datetime.now(dt.UTC)
    answer = moto.client("cloudwatch", region).get_metric_statistics(
        Namespace=NAMESPACE, MetricName=metric, Dimensions=[{"Name": k, "Value": v} for k, v in DIMENSIONS.items()],
        StartTime=now - dt.timedelta(minutes=10), EndTime=now + dt.timedelta(minutes=1), Period=1,
        Statistics=[stat])
    return sorted((point["Timestamp"], point[stat]) for point in answer["Datapoints"])


def highest(moto, region: str, metric: str) -> int:
    return int(max((value for _, value in datapoints(moto, region, metric)), default=0))


def samples(moto, region: str, metric: str) -> int:
    return int(sum(value for _, value in datapoints(moto, region, metric, "SampleCount")))


def rows(server: Server, pair: PostgresPair) -> dict[int, float]:
    """The writer region's heartbeats on a server: seq -> written_at (epoch seconds)."""
    if not server.query("SELECT to_regclass(%s) IS NOT NULL", probe.TABLE, dbname=pair.dbname)[0][0]:
        return {}
    return {seq: float(at) for seq, at in server.query(
        f"SELECT seq, extract(epoch FROM written_at) FROM {probe.TABLE} WHERE region = %s ORDER BY seq", A,
        dbname=pair.dbname)}


def assert_same_heartbeats(moto, region: str, seq_metric: str, write_metric: str, truth: dict[int, float]) -> None:
    """Each 1-second bucket's highest seq and highest write are one heartbeat: the one on the writer."""
    writes = dict(datapoints(moto, region, write_metric))
    for bucket, seq in datapoints(moto, region, seq_metric):
        assert writes[bucket] == pytest.approx(truth[int(seq)], abs=1e-3), (region, seq_metric, seq)


def assert_clean_exit(process: Probe, seconds: float) -> None:
    assert process.process.returncode == 0, process.output()
    # An interval, then at most the drain of the last values (a dead region's call is abandoned after it).
    assert seconds < 1 + loop.DRAIN_SECONDS, f"{process.name} took {seconds:.1f} s to stop"
    assert "Traceback" not in process.err.read_text(), process.output()
    assert process.events()[-1]["event"] == "stopped"


# -- configuration ------------------------------------------------------------------------------------------------

GOOD = {"PROBE_MODE": "writer", "PROBE_REGION": A, "PROBE_PEER_REGION": B, "PROBE_WRITER_REGION": A,
        "PROBE_NAMESPACE": NAMESPACE, "PROBE_ENVIRONMENT": ENVIRONMENT, "DATABASE_HOST": "127.0.0.1",
        "DATABASE_NAME": "trading", "DATABASE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x",
        "DATABASE_CA_BUNDLE": "/nonexistent/bundle.pem"}


@pytest.mark.parametrize(("changes", "args", "expected"), [
    ({"PROBE_MODE": "both"}, [], "PROBE_MODE='both': must be writer or reader"),
    ({"PROBE_INTERVAL_SECONDS": "0"}, [], "PROBE_INTERVAL_SECONDS='0': must be a number from 0.1 to 60"),
    ({}, ["--interval-seconds", "nan"], "--interval-seconds='nan': must be a number from 0.1 to 60"),
    ({"PROBE_NAMESPACE": ""}, [], "PROBE_NAMESPACE (or --namespace) is required"),
    ({"PROBE_WRITER_REGION": B}, [], "PROBE_WRITER_REGION='us-west-2': in writer mode must equal PROBE_REGION"),
    ({"PROBE_MODE": "reader"}, [], "PROBE_WRITER_REGION='us-east-1': in reader mode must equal PROBE_PEER_REGION"),
    ({"DATABASE_HOST": "db.example.com"}, [], "DATABASE_CA_BUNDLE='/nonexistent/bundle.pem': no such file"),
    ({"PROBE_ENDPOINTS": "us-west-2"}, [], "PROBE_ENDPOINTS='us-west-2': must be region=url"),
    ({}, ["--database-port", "0"], "--database-port='0': must be a TCP port"),
    ({}, ["--no-such-option"], "unrecognized arguments: --no-such-option"),
])
def test_bad_configuration_exits_2_with_one_line(package_dir, changes, args, expected):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PROBE_", "DATABASE_"))}
    done = subprocess.run([sys.executable, "-m", "probe", *args], cwd=package_dir, env={**env, **GOOD, **changes},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and expected in done.stderr, done.stderr


def test_help_lists_every_option_with_its_variable_and_default(package_dir):
    done = subprocess.run([sys.executable, "-m", "probe", "--help"], cwd=package_dir, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())  # argparse wraps lines anywhere
    for option in probe_config.OPTIONS:
        assert option.flag in text and f"env {option.env};" in text
        assert ("required" if option.default is None else f"default {option.default!r}") in text.replace("- ", "-")


def test_options_override_variables_and_a_loopback_host_may_go_unverified():
    loaded = probe_config.load(["--mode", "reader", "--writer-region", B, "--endpoints", f"{B}=http://127.0.0.1:1"],
                               {**GOOD, "PROBE_INTERVAL_SECONDS": "0.5"})
    assert (loaded.mode, loaded.writer_region, loaded.interval_seconds) == ("reader", B, 0.5)
    assert loaded.endpoints == {B: "http://127.0.0.1:1"}
    assert loaded.verify_server is False  # the bundle is missing, the host is loopback: sslmode=require
    assert (loaded.retention_hours, loaded.database_port) == (48, 5432)
    assert probe_config.load([], {**GOOD, "DATABASE_CA_BUNDLE": __file__}).verify_server is True


# -- the image ----------------------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (PACKAGE / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            instruction, _, arguments = line.strip().partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def test_dockerfile_builds_from_this_directory_alone():
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    copies = [shlex.split(arguments) for instruction, arguments in instructions if instruction in ("COPY", "ADD")]
    for *sources, _ in copies:
        for source in sources:
            assert (PACKAGE / source).is_file(), f"COPY {source}: not in probe/"
    modules = [copy for copy in copies if "__main__.py" in copy]
    assert len(modules) == 1 and {path.name for path in PACKAGE.glob("*.py")} <= set(modules[0][:-1]), \
        "a module of the package is not in the image"
    workdir = [arguments for instruction, arguments in instructions if instruction == "WORKDIR"][-1]
    assert modules[0][-1].rstrip("/") == f"{workdir}/probe"  # `python -m probe` from WORKDIR finds it
    run = " ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert "pip install --no-cache-dir -r" in run
    assert "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem" in run
    assert f"chmod 0644 {probe_config.DEFAULT_CA_BUNDLE}" in run  # the probe's default, world-readable
    env = " ".join(arguments for instruction, arguments in instructions if instruction == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    user = [arguments for instruction, arguments in instructions if instruction == "USER"][-1]
    assert re.fullmatch(r"\d+(:\d+)?", user) and all(int(part) > 0 for part in user.split(":")), user
    entrypoint = [json.loads(arguments) for instruction, arguments in instructions if instruction == "ENTRYPOINT"]
    assert entrypoint == [["python", "-m", "probe"]] and (PACKAGE / "__main__.py").is_file()


def test_requirements_are_pinned_and_the_package_imports_nothing_else():
    requirements = [line for line in (PACKAGE / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert all(re.fullmatch(r"[\w.\[\]-]+==[\w.]+", line) for line in requirements), requirements
    assert {line.split("==")[0] for line in requirements} == {"psycopg[binary]", "boto3"}
    allowed = set(sys.stdlib_module_names) | {"probe", "psycopg", "boto3", "botocore"}
    for module in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                assert name.split(".")[0] in allowed, f"{module.name} imports {name}"


# -- the probes on the database pair ------------------------------------------------------------------------------

def test_writer_and_reader_report_in_both_regions(launch, moto, pair):
    reader = launch("reader", pair.standby)
    # Before any heartbeat (no table yet): nothing published, said once.
    wait_for(lambda: reader.events("no_heartbeat"), "the reader to find no heartbeat")
    writer = launch("writer", pair.writer)
    for region in (A, B):
        wait_for(lambda r=region: highest(moto, r, probe.NEWEST_REPLICATED_SEQ) >= 10,
                 f"the reader's seq in {region}")
        wait_for(lambda r=region: highest(moto, r, probe.LAST_ACKNOWLEDGED_SEQ) >= 10, f"the writer's seq in {region}")

    acknowledged = highest(moto, B, probe.LAST_ACKNOWLEDGED_SEQ)
    truth = rows(pair.writer, pair)
    assert list(truth) == list(range(1, len(truth) + 1)) and len(truth) >= acknowledged  # dense from 1
    # With the stream intact the reader catches up with what the writer acknowledged.
    for region in (A, B):
        wait_for(lambda r=region: highest(moto, r, probe.NEWEST_REPLICATED_SEQ) >= acknowledged,
                 f"the reader to catch up in {region}")
    assert_clean_exit(writer, writer.stop(signal.SIGTERM))
    assert_clean_exit(reader, reader.stop(signal.SIGINT))

    truth = rows(pair.writer, pair)
    assert list(truth) == list(range(1, len(truth) + 1))
    assert writer.events("stopped")[0]["acknowledged"] == writer.events("stopped")[0]["last_seq"] == len(truth)
    for region in (A, B):
        assert_same_heartbeats(moto, region, probe.LAST_ACKNOWLEDGED_SEQ, probe.LAST_ACKNOWLEDGED_WRITE, truth)
        assert_same_heartbeats(moto, region, probe.NEWEST_REPLICATED_SEQ, probe.NEWEST_REPLICATED_WRITE, truth)
        ages = [age for _, age in datapoints(moto, region, probe.REPLICATION_AGE, "Minimum")]
        assert ages and min(ages) >= 0 and max(ages) < 5
        # The stop sends the last values still waiting: CloudWatch has the last acknowledgement.
        assert highest(moto, region, probe.LAST_ACKNOWLEDGED_SEQ) == len(truth)
        listed = moto.client("cloudwatch", region).list_metrics(Namespace=NAMESPACE)["Metrics"]
        assert {m["MetricName"] for m in listed} == set(probe.METRICS.values())
        assert all({d["Name"]: d["Value"] for d in m["Dimensions"]} == DIMENSIONS for m in listed)
    assert len(reader.events("no_heartbeat")) == 1
    assert [e["role"] for e in writer.events("database_connected")] == ["writer"]
    assert [e["role"] for e in reader.events("database_connected")] == ["replica"]
    assert writer.events("pruned")[0]["rows"] == 0  # nothing older than 48 hours
    assert pair.password not in writer.out.read_text() + reader.out.read_text()


def test_an_existing_row_is_the_acknowledgement_and_pruning_keeps_the_newest(pair):
    """In process, for a region of its own: the cases the processes above rarely meet."""
    settings = probe_config.load([], {**GOOD, "DATABASE_PORT": str(pair.writer.port), "DATABASE_NAME": pair.dbname,
                                      "DATABASE_CA_BUNDLE": str(pair.ca_bundle)})
    region = "eu-west-1"
    with database.connect(settings, Credentials(pair.username, pair.password)) as conn:
        try:
            assert database.prepare(conn, region) == 0
            # A commit whose acknowledgement was lost (or another task's write): the row there is the ack.
            conn.execute(f"INSERT INTO {probe.TABLE} (region, seq, written_at) VALUES (%s, 1, '2020-01-01Z')",
                         (region,))
            assert database.insert(conn, region, 1) == Heartbeat(1, dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp())
            assert database.insert(conn, region, 2).seq == 2 and database.prepare(conn, region) == 2
            conn.execute(f"UPDATE {probe.TABLE} SET written_at = '2020-01-02Z' WHERE region = %s", (region,))
            assert database.prune(conn, region, 48) == 1  # the old ones but the newest
            assert database.newest(conn, region) == Heartbeat(2, dt.datetime(2020, 1, 2, tzinfo=dt.UTC).timestamp())
            assert database.prune(conn, region, 48) == 0
        finally:
            conn.execute(f"DELETE FROM {probe.TABLE} WHERE region = %s", (region,))


def test_a_closed_stdout_stops_the_logs_not_the_probe(environment, package_dir, pair, moto):
    process = subprocess.Popen([sys.executable, "-m", "probe"], cwd=package_dir,
                               env=environment("reader", pair.standby), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        process.stdout.close()  # nobody reads the logs
        wait_for(lambda: highest(moto, B, probe.NEWEST_REPLICATED_SEQ), "the reader to publish")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert process.stderr.read() == b""
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stderr.close()


def test_writer_reads_the_secret_again_after_the_password_rotates(launch, moto, pair, secrets):
    writer = launch("writer", pair.writer)
    wait_for(lambda: highest(moto, A, probe.LAST_ACKNOWLEDGED_SEQ), "a first acknowledgement")
    time.sleep(1)  # the secret is read again at most once a second
    rotated = pair.password + "-rotated"
    try:
        pair.writer.query(f"ALTER ROLE {pair.username} PASSWORD '{rotated}'")
        moto.client("secretsmanager", A).put_secret_value(
            SecretId=secrets[A], SecretString=json.dumps({"username": pair.username, "password": rotated}))
        before = highest(moto, A, probe.LAST_ACKNOWLEDGED_SEQ)
        pair.writer.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                          "replication-probe")
        wait_for(lambda: highest(moto, A, probe.LAST_ACKNOWLEDGED_SEQ) >= before + 5, "acknowledgements again")
    finally:
        pair.writer.query(f"ALTER ROLE {pair.username} PASSWORD '{pair.password}'")
    assert_clean_exit(writer, writer.stop())
    assert [e["event"] for e in writer.events() if e["event"].startswith("database_")] == [
        "database_connected", "database_lost", "database_connected"]
    truth = rows(pair.writer, pair)
    assert list(truth) == list(range(1, len(truth) + 1))


def test_a_dead_peer_region_holds_up_neither_the_writes_nor_the_local_region(launch, moto, pair):
    # A peer endpoint that accepts connections and never answers: each call there waits for its read timeout.
    with socket.create_server(("127.0.0.1", 0), backlog=1) as silent:
        before = max(rows(pair.writer, pair))
        writer = launch("writer", pair.writer, PROBE_ENDPOINTS=f"{B}=http://127.0.0.1:{silent.getsockname()[1]}")
        # The first call to the peer fails after its read timeout (3 s); heartbeats go on meanwhile.
        wait_for(lambda: writer.events("publishing_failing"), "the peer's publishing to fail", timeout=10)
        time.sleep(0.5)
        seconds = writer.stop()

    truth = rows(pair.writer, pair)
    assert list(truth) == list(range(1, len(truth) + 1))  # dense across the restart
    assert writer.events("writing")[0]["next_seq"] == before + 1
    written = [at for seq, at in truth.items() if seq > before]
    assert len(written) >= 0.6 * 3.5 / INTERVAL
    assert max(b - a for a, b in zip(written, written[1:], strict=False)) < 1  # no stall of a peer timeout
    # The local region got (nearly) every acknowledgement; the peer's failure was said once.
    assert samples(moto, A, probe.LAST_ACKNOWLEDGED_SEQ) >= 0.5 * len(written)
    assert highest(moto, A, probe.LAST_ACKNOWLEDGED_SEQ) == max(truth)
    assert [e["region"] for e in writer.events("publishing_failing")] == [B]
    assert not writer.events("publishing_recovered")
    assert_clean_exit(writer, seconds)


def test_a_cut_stream_shows_as_the_seqs_the_standby_lacks(launch, moto, pair):
    writer = launch("writer", pair.writer)
    reader = launch("reader", pair.standby)
    start = max(rows(pair.writer, pair), default=0)
    wait_for(lambda: highest(moto, B, probe.NEWEST_REPLICATED_SEQ) > start + 3, "the reader to see new heartbeats")
    pair.cut_stream()
    cut_at = dt.datetime.now(dt.UTC)
    # The writer goes on acknowledging; the reader's newest seq stops where the standby's rows stop (once it has
    # replayed what it received before the cut).
    wait_for(lambda: highest(moto, B, probe.LAST_ACKNOWLEDGED_SEQ) >= max(rows(pair.standby, pair)) + 10,
             "acknowledgements after the cut")
    for region in (A, B):
        wait_for(lambda r=region: highest(moto, r, probe.NEWEST_REPLICATED_SEQ) == max(rows(pair.standby, pair)),
                 f"the reader's newest seq in {region}")
    replicated = max(rows(pair.standby, pair))
    frozen = samples(moto, B, probe.NEWEST_REPLICATED_SEQ)
    wait_for(lambda: samples(moto, B, probe.NEWEST_REPLICATED_SEQ) >= frozen + 3, "the reader to keep publishing")

    # What a drill reads from the region users go to: the writer's last ack minus the reader's newest seq.
    acknowledged = highest(moto, B, probe.LAST_ACKNOWLEDGED_SEQ)
    newest = highest(moto, B, probe.NEWEST_REPLICATED_SEQ)
    on_writer = {seq for seq in rows(pair.writer, pair) if seq <= acknowledged}
    missing = on_writer - set(rows(pair.standby, pair))
    assert newest == replicated and acknowledged > newest
    assert acknowledged - newest == len(missing)
    def ages_since_cut() -> list[float]:
        return [age for at, age in datapoints(moto, B, probe.REPLICATION_AGE) if at >= cut_at]

    # The replica's newest heartbeat grows old.
    wait_for(lambda: len(ages := ages_since_cut()) > 1 and ages[-1] > ages[0] + 0.5, "the replication age to grow")

    # Promoted, the standby is a writer: the reader reads it the same way.
    pair.promote()
    promoted = samples(moto, B, probe.NEWEST_REPLICATED_SEQ)
    wait_for(lambda: samples(moto, B, probe.NEWEST_REPLICATED_SEQ) >= promoted + 3, "reads after the promotion")
    assert highest(moto, B, probe.NEWEST_REPLICATED_SEQ) == replicated
    assert_clean_exit(writer, writer.stop())
    assert_clean_exit(reader, reader.stop())
