"""Reading a stack file the way the Pulumi CLI hands its config to a program."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from regions.textfile import UnreadableFile, read_text

SECRET_PLACEHOLDER = "synth-secret-{key}"


class StackFileError(Exception):
    """A stack file that cannot be read at all (missing, not YAML, no config mapping)."""


def stack_file_name(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


def stack_of(file: str) -> str:
    """`Pulumi.primary.yaml` -> `primary`; "" for a name of another form."""
    match = re.fullmatch(r"Pulumi\.(.+)\.yaml", file)
    return match.group(1) if match else ""


def given_stack_file(given: Path) -> Path:
    """A `--stack-file FILE` (every tool's option takes a file): an existing Pulumi.<stack>.yaml with the project's
    Pulumi.yaml beside it, resolved."""
    if not given.is_file():
        raise StackFileError(f"--stack-file {given}: no such file")
    if not stack_of(given.name):
        raise StackFileError(f"--stack-file {given}: a stack file is named Pulumi.<stack>.yaml (its stack's name)")
    if not (given.resolve().parent / "Pulumi.yaml").is_file():
        raise StackFileError(f"--stack-file {given}: no Pulumi.yaml beside it (the project's stack files are read "
                             "and evaluated together)")
    return given.resolve()


def _redact(value: Any, key: str, secret_keys: list[str]) -> Any:
    """Replace `secure:` ciphertexts by a placeholder: offline there is no key to decrypt them."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            secret_keys.append(key)
            return SECRET_PLACEHOLDER.format(key=key)
        return {k: _redact(v, f"{key}.{k}", secret_keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, f"{key}[{i}]", secret_keys) for i, v in enumerate(value)]
    return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping: PyYAML would keep the last silently, where the
    Pulumi CLI and `reconcile --write` refuse the file."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> object:
    """A stack file's document; a key written twice is an error (yaml.YAMLError, with where it is)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)


def where(exc: yaml.YAMLError) -> str:
    """` at line L, column C: the problem`, on one line."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return (f" at line {mark.line + 1}, column {mark.column + 1}: " if mark else ": ") + " ".join(problem.split())


def read_stack_file(path: Path) -> tuple[dict[str, str], list[str]]:
    """Config as the engine passes it: every value a string, structured values as JSON.

    Returns the config and the keys holding secrets (top-level keys, as the engine marks them).
    """
    if not path.exists():
        raise StackFileError(f"{path.name}: no such stack file in {path.parent}")
    if path.is_dir():
        raise StackFileError(f"{path.name}: a directory, not a stack file ({path.parent})")
    try:
        document = load_yaml(read_text(path)) or {}
    except UnreadableFile as exc:
        raise StackFileError(str(exc).replace(str(path), path.name, 1)) from None
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path.name}: not valid YAML{where(exc)}") from None
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: 'config' must be a mapping of keys to values")
    raw: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        nested_secrets: list[str] = []
        value = _redact(value, str(key), nested_secrets)
        if nested_secrets:
            secret_keys.append(str(key))
        raw[str(key)] = value if isinstance(value, str) else json.dumps(value)
    return raw, secret_keys
