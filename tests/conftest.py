"""Fixtures: the registered resources of each stack, evaluated once with synth's engine."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.pgpair import ClusterTemplate, PostgresPair
from drills.sandbox import MotoServer, World
from synth import stored
from synth.engine import REPO, Evaluation, evaluate

STACKS = ("primary", "backup")
# The run's store of evaluations of the repository's own stack files (synth/stored.py), made by the controller
# before its workers start, so that they and the processes they start share it; removed at the end.
_STORE: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _STORE
    if not os.environ.get(stored.VARIABLE):
        _STORE = tempfile.mkdtemp(prefix="synth-evaluations-")
        os.environ[stored.VARIABLE] = _STORE


# The files that wait longest on their servers (moto, PostgreSQL, the probes), longest first: with `make test`'s
# --no-loadscope-reorder, xdist hands whole files to its workers in collection order, and a long file handed out
# last ends the run alone (measured: 170 s with the drill files started late, the whole run's CPU needing 155).
SLOWEST_FIRST = ("test_drills.py", "test_drills_database.py", "test_drills_failback.py", "test_rightsize.py",
                 "test_runbook.py", "test_sandbox_signals.py", "test_drills_probe.py", "test_probe.py", "test_data.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _STORE:
        shutil.rmtree(_STORE, ignore_errors=True)
        os.environ.pop(stored.VARIABLE, None)


@pytest.fixture(scope="session")
def evaluations() -> dict[str, Evaluation]:
    cache: dict[str, Evaluation] = {}
    for stack in STACKS:
        evaluate(stack, REPO, cache)
    return cache


@pytest.fixture(params=STACKS)
def stack(request, evaluations) -> Evaluation:
    """Each test using this runs once per stack."""
    return evaluations[request.param]


def _set_path(config: dict[str, Any], path: str, value: Any) -> None:
    """`trading-platform:services.api.cpu` -> config['trading-platform:services']['api']['cpu'];
    None deletes."""
    key, *fields = path.split(".")
    parent, last = config, key
    for member in fields:
        parent = parent.setdefault(last, {})
        last = member
    if value is None:
        parent.pop(last, None)
    else:
        parent[last] = value


def write_project(directory: Path, **edits: dict[str, Any]) -> Path:
    """A copy of the project's stack files in `directory` with edits: write_project(d, backup={"key.field": value})."""
    shutil.copy(REPO / "Pulumi.yaml", directory / "Pulumi.yaml")
    for stack in STACKS:
        document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
        for path, value in edits.get(stack, {}).items():
            _set_path(document["config"], path, value)
        (directory / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    return directory


@pytest.fixture
def project(tmp_path) -> Callable[..., Path]:
    """A copy of the project's stack files with edits: project(backup={"key.field": value}, ...)."""
    return partial(write_project, tmp_path)


@pytest.fixture(scope="module")
def moto():
    """A moto server on a loopback port for a test module; each world resets it."""
    server = MotoServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_pulumi(tmp_path, monkeypatch) -> Callable[[dict[str, Path]], Path]:
    """A stand-in `pulumi` on PATH (there is no Pulumi CLI on these machines): `stack output ... -s NAME` prints the
    outputs file given for NAME, any other stack fails as the CLI does. Returns the file its arguments are logged to."""

    def install(stacks: dict[str, Path]) -> Path:
        bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
        bin_dir.mkdir(exist_ok=True)
        cases = "".join(f'  *"-s {name}") cat {path} ;;\n' for name, path in stacks.items())
        script = bin_dir / "pulumi"
        script.write_text(f"""#!/bin/sh
echo "$@" >> {calls}
for last; do :; done
case "$*" in
{cases}  *) echo "error: no stack named '${{last##*/}}'" >&2; exit 255 ;;
esac
""")
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
        return calls

    return install


@pytest.fixture(scope="session")
def cluster_template():
    """One initdb per worker, copied for each pair."""
    template = ClusterTemplate()
    yield template
    template.close()


@pytest.fixture
def pair(cluster_template):
    """Two PostgreSQL servers on loopback, a writer and its streaming standby."""
    with PostgresPair(template=cluster_template) as started:
        yield started


@pytest.fixture
def world(moto, pair, tmp_path, monkeypatch):
    """The two-region world on moto with the pair as its databases, its probes running; the test's cwd."""
    built = World(tmp_path, moto, postgres=pair)
    for key, value in built.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.chdir(tmp_path)
    yield built
    built.close(stop_moto=False)
