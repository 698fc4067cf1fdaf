"""The installed commands (pyproject.toml's scripts): each makes a stop during its imports one line
(console.stop_at_once) before it imports the tool, as `python -m` does in the tool's own first lines."""

from __future__ import annotations

import importlib

from regions import console


def _start(module: str, name: str) -> None:
    console.stop_at_once(name)
    importlib.import_module(module).entry()


def synth() -> None:
    _start("synth.__main__", "synth")


def drills() -> None:
    _start("drills.__main__", "drills")


def rightsize() -> None:
    _start("rightsize.__main__", "rightsize")
