"""Typed, path-aware access to one stack's raw config; every problem is one SettingsError."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pulumi

PROJECT = "trading-platform"
MISSING = object()
# A top-level setting: a scalar (None), or an object given as a tuple of scalar fields or a mapping of
# fields to their own schema.
Schema = tuple[str, ...] | dict[str, "Schema | None"]


class SettingsError(pulumi.RunError):
    """A bad setting. A RunError, so the Pulumi CLI prints the message without a traceback."""

    def __init__(self, stack_file: str, key: str, found: Any, allowed: str, problem: str = "is not allowed"):
        self.stack_file, self.key, self.found, self.allowed = stack_file, key, found, allowed
        if found is MISSING:
            text = f"{stack_file}: {key} is missing; allowed: {allowed}"
        else:
            text = f"{stack_file}: {key} {show(found)} {problem}; allowed: {allowed}"
        super().__init__(text)


def show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


class Reader:
    """Typed access to one stack's raw config, raising SettingsError with the full key path."""

    def __init__(self, stack_file: str, raw: Mapping[str, str], secret_keys: Collection[str] = (),
                 project_dir: Path = Path(".")):
        self.stack_file = stack_file
        # This file's role, once read: a disagreement between the pair's files blames the backup's by default.
        self.role: str | None = None
        self.raw = raw
        self.secret_keys = set(secret_keys)
        # Where paths in the settings start: the engine runs the program there.
        self.project_dir = project_dir
        self.objects: dict[str, dict[str, Any]] = {}
        # What each typed read allowed and its default (MISSING: required), by path: docs/settings.md is made of
        # these (regions/settingsdoc.py), so the reference cannot drift from what is enforced.
        self.rules: dict[str, tuple[str, Any]] = {}

    def read(self, path: str, allowed: str, default: Any = MISSING) -> Any:
        """The value at `path`, recording what it allows for docs/settings.md; the caller checks it."""
        self.rules[path] = (allowed, default)
        return self.get(path, default)

    def fail(self, key: str, found: Any, allowed: str, problem: str = "is not allowed") -> SettingsError:
        return SettingsError(self.stack_file, key, found, allowed, problem)

    def check_known_keys(self, schema: Mapping[str, Schema | None]) -> None:
        # A typo must not be silently ignored: an unknown key stops the program.
        prefix = f"{PROJECT}:"
        for key in sorted(self.raw):
            if not key.startswith(prefix):
                continue
            name = key[len(prefix):]
            if name not in schema:
                raise self.fail(key, self.raw[key], f"the keys {', '.join(prefix + k for k in schema)}",
                                "is not a known setting")
            fields = schema[name]
            if fields is None:
                continue
            try:
                value = json.loads(self.raw[key])
            except json.JSONDecodeError:
                value = self.raw[key]
            self._check_object(key, value, fields)
            self.objects[name] = value

    def _check_object(self, key: str, value: Any, fields: Schema) -> None:
        """`fields` is a tuple of scalar fields, or a mapping of field -> its own fields (None: scalar)."""
        names = tuple(fields)
        if not isinstance(value, dict):
            raise self.fail(key, value, f"an object with the fields {', '.join(names)}", "is not an object")
        for member, inner in value.items():
            if member not in names:
                raise self.fail(f"{key}.{member}", inner, f"the fields {', '.join(names)}", "is not a known setting")
            nested = fields.get(member) if isinstance(fields, dict) else None
            if nested is not None:
                self._check_object(f"{key}.{member}", inner, nested)

    def get(self, path: str, default: Any = MISSING) -> Any:
        """Value at `name` or `name.field` under the project namespace, or `ns:key` as is."""
        if ":" in path:
            return self.raw.get(path, default)
        name, *fields = path.split(".")
        if not fields:
            return self.raw.get(f"{PROJECT}:{name}", default)
        value: Any = self.objects.get(name, {})
        for member in fields:
            if not isinstance(value, dict) or member not in value:
                return default
            value = value[member]
        return value

    def key(self, path: str) -> str:
        return path if ":" in path else f"{PROJECT}:{path}"

    def string(self, path: str, pattern: re.Pattern[str], allowed: str, default: Any = MISSING) -> str:
        value = self.read(path, allowed, default)
        if value is MISSING:
            raise self.fail(self.key(path), MISSING, allowed)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(self.key(path), value, allowed)
        return value

    def choice(self, path: str, choices: tuple[str, ...], default: Any = MISSING) -> str:
        allowed = "one of " + ", ".join(choices)
        value = self.read(path, allowed, default)
        if value is MISSING:
            raise self.fail(self.key(path), MISSING, allowed)
        if value not in choices:
            raise self.fail(self.key(path), value, allowed)
        return value

    def boolean(self, path: str, default: Any = MISSING) -> bool:
        value = self.read(path, "true or false", default)
        if value in ("true", "false"):  # top-level scalars arrive as strings
            value = value == "true"
        if not isinstance(value, bool):
            raise self.fail(self.key(path), value, "true or false")
        return value

    def secret(self, path: str) -> str | None:
        """A `secure:` value. A plaintext one is refused, and its value is never echoed."""
        value = self.get(path, None)
        allowed = f"a non-empty secure: value set with `pulumi config set --secret {self.key(path)} ...`"
        if value is not None and (not isinstance(value, str) or not value):
            raise self.fail(self.key(path), "(hidden)", allowed)
        if value is not None and self.key(path) not in self.secret_keys:
            raise self.fail(self.key(path), "(hidden)", allowed, "is stored in plaintext in the stack file")
        return value

    def number(self, path: str, lo: float, hi: float, default: Any = MISSING) -> float:
        allowed = f"a number from {lo:g} to {hi:g}"
        value = self.read(path, allowed, default)
        if value is MISSING:
            raise self.fail(self.key(path), MISSING, allowed)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(self.key(path), value, allowed, "is not a number")
        if not lo <= value <= hi:
            raise self.fail(self.key(path), value, allowed)
        return value

    def choice_int(self, path: str, choices: tuple[int, ...], default: int, what: str) -> int:
        allowed = f"one of {', '.join(map(str, choices))} ({what})"
        value = self.read(path, allowed, default)
        if isinstance(value, bool) or value not in choices:
            raise self.fail(self.key(path), value, allowed)
        return value

    def integer(self, path: str, lo: int, hi: int, default: Any = MISSING, why: str = "") -> int:
        allowed = f"an integer from {lo} to {hi}{why}"
        value = self.read(path, allowed, default)
        if value is MISSING:
            raise self.fail(self.key(path), MISSING, allowed)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(self.key(path), value, allowed, "is not an integer")
        if not lo <= value <= hi:
            raise self.fail(self.key(path), value, allowed)
        return value
