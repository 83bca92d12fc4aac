"""Exact rounding and ratios shared by the host's endpoints."""

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def rounded_mean(total, count) -> int | None:
    """``total / count`` rounded half away from zero, or ``None`` when count is 0."""
    if not count:
        return None
    return round_half_away(Fraction(int(total), int(count)))


def round_half_away(value: Fraction) -> int:
    """Round a fraction to the nearest integer, halves away from zero (PostgreSQL ::int)."""
    quotient = Decimal(value.numerator) / Decimal(value.denominator)
    return int(quotient.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def percentage(part: int, whole: int) -> float:
    """``part / whole * 100``, 0 when whole is 0 (Omni's rates are percentages)."""
    return part / whole * 100 if whole else 0
