"""Reading a text file a user points a tool at: one line for whatever is wrong with it, never a traceback.

Windows tools write UTF-8 with a byte-order mark or UTF-16 (PowerShell's `pulumi stack output --json > f`):
both are accepted.
"""

from __future__ import annotations

import codecs
from pathlib import Path


class UnreadableFile(Exception):
    """The message names the file and what is wrong with it."""


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFile(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise UnreadableFile(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(f"{path}: not text in UTF-8 or UTF-16") from None
