"""The app's TLP_* environment settings, read one way: a positive number, or an on/off flag, else the default.

A value that is missing, malformed or not positive falls back to the default (a server must start even when a
setting is mistyped); the README's Classroom section lists every setting and what it does.
"""

from __future__ import annotations

import os


def positive_int(name: str, default: int) -> int:
    """A whole number above 0 from the environment variable `name`, or `default`."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def positive_float(name: str, default: float) -> float:
    """A number above 0 from the environment variable `name`, or `default`."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def flag(name: str, default: bool) -> bool:
    """On unless the variable is "0" (or off unless it is "1", when the default is off)."""
    raw = os.environ.get(name, "").strip()
    return default if raw not in ("0", "1") else raw == "1"
