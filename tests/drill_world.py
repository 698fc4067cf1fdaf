"""The drill world with two real PostgreSQL servers, shared by the drill tests that run on it: the drill's
commands against it, its reports and journal, and waiting for what runs in the background."""

from __future__ import annotations

import json
import threading
import time

import drills.__main__ as cli
from drills import heartbeat
from drills.heartbeat import TABLE
from drills.sandbox import BACKUP

INTERVAL = "0.2"


def evacuate(world, tmp_path, *extra):
    """A region evacuation measured by the replication probes' metrics (the default)."""
    return cli.main(["run", "--scenario", "region-evacuation", "--execute", "--confirm", BACKUP,
                     "--probe-url", world.front.url, "--probe-interval", "0.05", "--probe-timeout", "5",
                     "--promotion-keeps-source-link",
                     "--journal-dir", str(tmp_path / "journals"), "--report-dir", str(tmp_path / "reports"),
                     *world.args(), *extra])


def run(world, tmp_path, *extra):
    """A region evacuation measured by the drill's own database probe."""
    return evacuate(world, tmp_path, "--db-probe", "--db-probe-interval", INTERVAL, *extra)


def report(tmp_path):
    (path,) = (tmp_path / "reports").glob("drill-*.json")
    return json.loads(path.read_text()), path.with_suffix(".md").read_text()


def journal(tmp_path):
    (path,) = (tmp_path / "journals").glob("drill-*.json")
    return json.loads(path.read_text())


def heartbeats(server, dbname="trading"):
    if not server.query("SELECT to_regclass(%s) IS NOT NULL", TABLE, dbname=dbname)[0][0]:
        return []
    return [row[0] for row in server.query(f"SELECT id FROM {TABLE} ORDER BY id", dbname=dbname)]


def acknowledged(tmp_path):
    (path,) = (tmp_path / "journals").glob("drill-*.heartbeat.jsonl")
    return heartbeat.Record(path).entries()


def counted(tmp_path):
    """The acknowledged writes the promotion had to keep: not one acknowledged only after the drill stopped the
    heartbeat at the fence (test_a_write_acknowledged_after_the_stop_is_not_counted), which under load is often the
    write in flight at the stop."""
    return [a for a in acknowledged(tmp_path) if "id" in a and not a.get("after_stop")]


def eventually(condition, timeout=10):
    """The front reads the switch's metric, whose newest datapoint CloudWatch (moto) returns a moment later."""
    deadline = time.time() + timeout
    while not condition():
        if time.time() > deadline:
            return False
        time.sleep(0.2)
    return True


def when(condition, then, timeout=30):
    """Run `then` in the background once `condition` holds: a fault injected while the drill runs."""
    done = {}

    def watch():
        deadline = time.time() + timeout
        while not condition():
            if time.time() > deadline:
                return
            time.sleep(0.05)
        done["at"] = time.time()
        then()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, done


def expected_rpo(tmp_path, server):
    """The RPO computed independently: the last counted write's time against the newest row the promoted server
    holds, read from it directly."""
    last = counted(tmp_path)[-1]["written_at"]
    (newest,) = server.query(f"SELECT extract(epoch FROM max(written_at)) FROM {TABLE}", dbname="trading")[0]
    return round(last - float(newest), 3)

