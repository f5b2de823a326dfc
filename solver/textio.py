"""Reading a user's text file ('-' for standard input) with one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import InputError


def read_text(path: str | Path) -> str:
    try:
        return sys.stdin.read() if str(path) == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a puzzle file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
