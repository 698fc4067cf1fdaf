"""Fixtures: the registered resources of each stack, evaluated once with synth's engine."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from drills.sandbox import MotoServer
from synth.engine import REPO, Evaluation, evaluate

STACKS = ("primary", "backup")


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


@pytest.fixture
def project(tmp_path) -> Callable[..., Path]:
    """A copy of the project's stack files with edits: project(backup={"key.field": value}, ...)."""

    def make(**edits: dict[str, Any]) -> Path:
        shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
        for stack in STACKS:
            document = yaml.safe_load((REPO / f"Pulumi.{stack}.yaml").read_text())
            for path, value in edits.get(stack, {}).items():
                _set_path(document["config"], path, value)
            (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
        return tmp_path

    return make


@pytest.fixture(scope="module")
def moto():
    """A moto server on a loopback port for a test module; each world resets it."""
    server = MotoServer().start()
    yield server
    server.stop()
