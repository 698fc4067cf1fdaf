"""The stacks' replication probes as local processes, for the sandbox and the tests: the real probe (`python -m
probe`, what the image runs) in each region, against that region's PostgreSQL server, publishing to moto's
CloudWatch in both regions. Each is started and stopped as its ECS service would be: by the stack files (the
emulated `pulumi up`), or killed as a lost region takes its task with it.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from drills.outputs import ReplicationProbe
from drills.pgpair import PostgresPair, Server
from synth.engine import REPO

PR_SET_PDEATHSIG = 1


# Looked up here, in the parent: between fork and exec the child may only call it (loading a library there could
# deadlock on a lock another of the sandbox's threads held at the fork).
try:
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: the sandbox's own stop is all there is
    _PRCTL = None


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the sandbox's process ends, however it ends (a SIGKILL too), so no
    probe outlives it."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, int(signal.SIGTERM))


@dataclass(frozen=True)
class Mode:
    """What a region's probe does: `writer` beside the active region's writer, `reader` beside the replica."""

    mode: str
    writer_region: str


class ProbeProcesses:
    def __init__(self, probe: ReplicationProbe, environment: str, pair: PostgresPair, databases: dict[str, Server],
                 secret_arns: dict[str, str], aws_environment: dict[str, str], aws_url: str, logs: Path):
        self.probe, self.environment, self.pair = probe, environment, pair
        self.databases, self.secret_arns = databases, secret_arns
        self.aws_environment, self.aws_url, self.logs = aws_environment, aws_url, logs
        self.running: dict[str, tuple[Mode, subprocess.Popen]] = {}

    def _peer(self, region: str) -> str:
        (peer,) = set(self.databases) - {region}
        return peer

    def start(self, region: str, mode: Mode) -> None:
        """Start the region's probe in `mode`; one already running in another mode is replaced (ECS stops the
        old task before it starts the new: the service allows no second probe)."""
        current = self.running.get(region)
        if current and current[0] == mode and current[1].poll() is None:
            return
        self.stop(region)
        server = self.databases[region]
        environment = {
            **self.aws_environment, "PYTHONPATH": str(REPO),
            "PROBE_MODE": mode.mode, "PROBE_REGION": region, "PROBE_PEER_REGION": self._peer(region),
            "PROBE_WRITER_REGION": mode.writer_region, "PROBE_NAMESPACE": self.probe.namespace,
            "PROBE_ENVIRONMENT": self.environment, "PROBE_INTERVAL_SECONDS": f"{self.probe.interval_seconds:g}",
            "DATABASE_HOST": "127.0.0.1", "DATABASE_PORT": str(server.port), "DATABASE_NAME": self.pair.dbname,
            "DATABASE_SECRET_ARN": self.secret_arns[region], "DATABASE_CA_BUNDLE": str(self.pair.ca_bundle),
            "PROBE_ENDPOINTS": ",".join(f"{r}={self.aws_url}" for r in self.databases)}
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"probe-{region}.log").open("ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "probe"], env=environment, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=REPO,
                                       preexec_fn=_die_with_parent)
        self.running[region] = (mode, process)

    def stop(self, region: str) -> None:
        """Stop the region's probe (SIGTERM, as ECS stops a task), or kill it when it does not stop."""
        _, process = self.running.pop(region, (None, None))
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def mode(self, region: str) -> Mode | None:
        current = self.running.get(region)
        return current[0] if current and current[1].poll() is None else None

    def close(self) -> None:
        for region in list(self.running):
            self.stop(region)
