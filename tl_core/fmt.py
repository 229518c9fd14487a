"""How the playbook writes numbers for learners: one rule per kind of number, used by every page, chart and sentence.

A number shown in two places must read the same in both, so every percentage, percentage-point difference,
norm and list in the app's text goes through these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal


def pct(x: float) -> str:
    """A fraction as a whole percentage: 0.925 -> "92%" (Python's round-half-even on the percentage)."""
    return f"{100 * x:.0f}%"


def accuracy_value(x: float) -> float:
    """An accuracy (a fraction) as the percentage the app shows for it: one decimal, halves rounded up.

    0.975 -> 97.5, 0.9125 -> 91.3, 0.94 -> 94.0. Tables that show accuracies as numbers use these values with the
    printf format ACCURACY_PRINTF, so they read exactly as `accuracy` writes them.
    """
    return float(Decimal(repr(round(100 * x, 6))).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


ACCURACY_PRINTF = "%g%%"  # a table column of accuracy_value numbers, written as `accuracy` writes them


def accuracy(x: float) -> str:
    """An accuracy for a sentence, a table or a chart label: 0.975 -> "97.5%", 0.94 -> "94%" (accuracy_value's
    rounding, no trailing ".0")."""
    return f"{accuracy_value(x):g}%"


def accuracy_points(a: float, b: float) -> float:
    """a − b in percentage points, from the two accuracies as shown (so "97.5% vs 94%" is 3.5 points)."""
    return round(accuracy_value(a) - accuracy_value(b), 1)


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
