"""Exact rounding shared by the plugin's numbers."""

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction


def round_half_away(value: Fraction) -> int:
    """Round to the nearest integer, halves away from zero (as PostgreSQL's ``::int``)."""
    quotient = Decimal(value.numerator) / Decimal(value.denominator)
    return int(quotient.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def rounded_mean(total: int, count: int) -> int | None:
    """``total / count`` rounded half away from zero; ``None`` when ``count`` is 0."""
    return round_half_away(Fraction(total, count)) if count else None
