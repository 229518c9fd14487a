"""How the playbook writes numbers for learners: one rule per kind of number, used by every page, chart and sentence.

A number shown in two places must read the same in both, so every percentage, percentage-point difference,
norm and list in the app's text goes through these functions.
"""

from __future__ import annotations

from collections.abc import Sequence


def pct(x: float) -> str:
    """A fraction as a whole percentage: 0.925 -> "92%" (Python's round-half-even on the percentage)."""
    return f"{100 * x:.0f}%"


def points(diff: float) -> str:
    """A signed difference of two fractions in percentage points: 0.031 -> "+3.1 points"."""
    return f"{100 * diff:+.1f} points"


def sci(x: float) -> str:
    """A norm or ratio for a sentence: 0.42, 0.031, 3.2e-04."""
    if x == 0:
        return "0"
    return f"{x:.2g}" if x >= 0.01 else f"{x:.1e}"


def and_list(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th", 23 -> "23rd"."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
