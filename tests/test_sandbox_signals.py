"""A sandbox stopped at any moment (SIGTERM from `kill` or a CI timeout, SIGHUP from a closed terminal, Ctrl-C) says so
in one line and leaves nothing behind: no PostgreSQL server, no moto server, no probe, no temporary folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from synth import stored
from synth.engine import REPO


def _left(session: int, tmp: str) -> str:
    """Processes of the sandbox's session, or started on its temporary folder (PostgreSQL's servers daemonize into a
    session of their own, their data directories under it)."""
    found = [subprocess.run(["pgrep", "-a", *selector], capture_output=True, text=True).stdout
             for selector in (["-s", str(session)], ["-f", tmp])]
    return "".join(found)


@pytest.mark.parametrize(("module", "after", "stop"), [
    ("drills.sandbox", 1.5, signal.SIGTERM),  # while its PostgreSQL servers start
    ("drills.sandbox", 7.0, signal.SIGHUP),  # inside the evacuation, the program evaluated under mocks meanwhile
    ("rightsize.sandbox", 3.0, signal.SIGINT),
])
def test_a_stopped_sandbox_leaves_nothing_behind(tmp_path, module, after, stop):
    # The sandbox's temporary folder, where the postgres user can reach (pytest's are its owner's only).
    tmp = Path(tempfile.mkdtemp(prefix="sandbox-signals-"))
    tmp.chmod(0o711)
    work = tmp_path / "work"
    work.mkdir()
    started = subprocess.Popen([sys.executable, "-m", module], cwd=work, start_new_session=True,
                               env={**{k: v for k, v in os.environ.items() if k != stored.VARIABLE},
                                    "TMPDIR": str(tmp), "PYTHONPATH": str(REPO)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(after)
    started.send_signal(stop)
    _, stderr = started.communicate(timeout=90)
    assert started.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == f"{module}: interrupted" and "Traceback" not in stderr
    deadline = time.time() + 10  # an immediate stop's servers take a moment to go
    while _left(started.pid, str(tmp)) and time.time() < deadline:
        time.sleep(0.2)
    assert _left(started.pid, str(tmp)) == ""
    assert list(tmp.iterdir()) == []
    tmp.rmdir()


def test_a_sandbox_whose_moto_dies_says_so_without_a_traceback(tmp_path):
    """moto killed under a running drill sandbox: the drill's calls fail as AWS calls do (the front answers 502 for
    what it cannot reach), the sandbox ends non-zero with what happened, and leaves nothing behind."""
    tmp = Path(tempfile.mkdtemp(prefix="sandbox-moto-"))
    tmp.chmod(0o711)
    started = subprocess.Popen([sys.executable, "-m", "drills.sandbox", "--evacuation-only"], cwd=tmp_path,
                               start_new_session=True, env={**{k: v for k, v in os.environ.items()
                                                               if k != stored.VARIABLE}, "TMPDIR": str(tmp)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Once the evacuation runs (its journal named), moto goes.
    for line in started.stdout:
        if line.startswith("journal:"):
            break
    assert subprocess.run(["pkill", "-s", str(started.pid), "-f", "moto_server"]).returncode == 0
    out, err = started.communicate(timeout=90)
    assert started.returncode not in (0, 130) and "Traceback" not in err + out, err
    deadline = time.time() + 10
    while _left(started.pid, str(tmp)) and time.time() < deadline:
        time.sleep(0.2)
    assert _left(started.pid, str(tmp)) == ""
    assert list(tmp.iterdir()) == []
    tmp.rmdir()
