"""Kubernetes `resource.Quantity`: parse, compare, add, and print exactly like apimachinery.

Every component meets quantities: the API server canonicalizes them on write ("1000m" is
stored and printed as "1", "1.5Gi" as "1536Mi"), validation compares requests with limits,
the scheduler sums requests, the kubelet turns limits into cgroup values. They must all
agree with a real cluster to the last digit, so this module follows
k8s.io/apimachinery/pkg/api/resource/quantity.go rather than a float approximation:

- Values are exact `Fraction`s, rounded away from zero to nano (1e-9) precision when
  parsed, as Go does ("0.1n" becomes "1n").
- A quantity remembers its format from the suffix it was written with: DecimalSI (no
  suffix, m, k, M, G ...), BinarySI (Ki, Mi, Gi ...) or DecimalExponent (e3, E-6).
- Printing is canonical: decimal forms use the largest exponent that is a multiple of
  three without losing digits; binary forms use the largest power of 1024, and fall back
  to DecimalSI below 1024 or when not whole.
- Go keeps the original text when it is already canonical (its "cached string" fast
  path), which preserves a few quirks such as "+5" and "007"; we keep them too.

Parse errors carry apimachinery's exact texts (`quantities must match the regular
expression ...`), which the API server returns in its 400 decode errors.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_ERROR = f"quantities must match the regular expression '{SPLIT_RE}'"
NUMERIC_ERROR = "unable to parse numeric part of quantity"
SUFFIX_ERROR = "unable to parse quantity's suffix"

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {0: "", **{v: k for k, v in _BINARY_SUFFIXES.items()}}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")
_NANO = Fraction(1, 10**9)
_MAX_INT64 = 2**63 - 1


class QuantityError(ValueError):
    """A string that is not a quantity; str(err) is apimachinery's message."""


def _round_away(value: Fraction, step: Fraction) -> Fraction:
    """Round `value` to a multiple of `step`, away from zero (inf.RoundUp)."""
    units = value / step
    if units.denominator == 1:
        return value
    whole = math.ceil(abs(units))
    return (whole if units > 0 else -whole) * step


def _scan_digits(text: str, start: int) -> int:
    """Index of the first non-digit at or after `start`."""
    i = start
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    return i


def _scan(text: str) -> tuple[bool, str, str, str]:
    """Split into (positive, integer digits, fraction digits, suffix), mirroring Go's
    parseQuantityString: leading zeros are dropped from the integer digits."""
    positive, pos, end = True, 0, len(text)
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "", ""
    num_end = _scan_digits(text, pos)
    num = text[pos:num_end] or "0"
    pos, denom = num_end, ""
    if pos < end and text[pos] == ".":
        denom_end = _scan_digits(text, pos + 1)
        denom, pos = text[pos + 1:denom_end], denom_end
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    if _scan_digits(text, pos) != end:
        raise QuantityError(FORMAT_ERROR)
    return positive, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix, as quantitySuffixer.interpret."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        if body and set(body) <= _DIGITS:
            return 10, int(digits), DECIMAL_EXPONENT
    raise QuantityError(SUFFIX_ERROR)


def _fast_path(text: str, positive: bool, num: str, denom: str, exponent: int, fmt: str) -> Quantity | None:
    """Go's int64 fast path; decides whether the original text is kept as the printed form."""
    mantissa, scale = 1, 0
    if fmt == BINARY_SI:
        if exponent < 0 or denom:
            return None
        mantissa = 1 << exponent
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
    else:
        scale = exponent
        precision = 18 - (len(num) + len(denom))
    scale -= len(denom)
    if precision < 0 or scale < -9:
        return None
    shifted = num + denom
    digits = int(shifted)
    result = digits * mantissa
    if result > _MAX_INT64:
        return None
    if not positive:
        result = -result
    if fmt == BINARY_SI:
        keep = exponent % 10 == 0 and digits & 0x07 != 0
    else:
        keep = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
    value = Fraction(result) * Fraction(10) ** scale
    return Quantity(value, fmt, _text=text if keep else None, _scale=scale)


def _parse_text(text: str) -> Quantity:
    if not text:
        raise QuantityError(FORMAT_ERROR)
    if text == "0":
        return Quantity(0, DECIMAL_SI, _text="0", _scale=0)
    positive, num, denom, suffix = _scan(text)
    base, exponent, fmt = _interpret(suffix)
    fast = _fast_path(text, positive, num, denom, exponent, fmt)
    if fast is not None:
        return fast
    if exponent > 1000:
        # Go would build a gigantic decimal here; nothing sane is that large.
        raise QuantityError(NUMERIC_ERROR)
    try:
        amount = Fraction(int(num + denom), 10 ** len(denom))
    except ValueError:
        raise QuantityError(NUMERIC_ERROR) from None
    if exponent < -1000:
        amount = _NANO if amount else Fraction(0)  # rounds up to the smallest unit anyway
    else:
        amount *= Fraction(10) ** exponent if base == 10 else 2**exponent
    if amount != 0:
        amount = _round_away(amount, _NANO)
    if fmt == BINARY_SI and amount > _MAX_INT64:
        amount = Fraction(_MAX_INT64)
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    return Quantity(amount if positive else -amount, fmt)


def _json_number_text(value: int | float) -> str:
    """The text a JSON number would carry: integers bare, floats in plain notation."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value) or math.isinf(value):
        raise QuantityError(FORMAT_ERROR)
    text = format(Decimal(repr(value)), "f")
    return text[:-2] if text.endswith(".0") else text


def parse_quantity(value: Any) -> Quantity:
    """Parse what may appear in a JSON object where a Quantity belongs: a string
    (surrounding whitespace ignored, as UnmarshalJSON does), a number, or null (zero)."""
    if isinstance(value, Quantity):
        return value
    if value is None:
        return Quantity(0)
    if isinstance(value, bool):
        raise QuantityError(FORMAT_ERROR)
    if isinstance(value, int | float):
        return _parse_text(_json_number_text(value))
    if isinstance(value, str):
        return _parse_text(value.strip())
    raise QuantityError(FORMAT_ERROR)


def _decimal_parts(value: Fraction) -> tuple[int, int]:
    """(mantissa, exponent) with no trailing zeros and exponent a multiple of three."""
    exponent = 0
    while value.denominator != 1:
        value *= 10
        exponent -= 1
    mantissa = value.numerator
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    shift = exponent % 3
    return mantissa * 10**shift, exponent - shift


def _decimal_suffix(exponent: int, fmt: str) -> str:
    if fmt == DECIMAL_SI and exponent in _DECIMAL_BY_EXPONENT:
        return _DECIMAL_BY_EXPONENT[exponent]
    # DecimalExponent, and (a deviation from Go, which prints no suffix at all) DecimalSI
    # values beyond exa that have no SI suffix.
    return "" if exponent == 0 else f"e{exponent}"


@functools.total_ordering
class Quantity:
    """An exact, immutable resource quantity. `str()` gives the canonical serialization."""

    __slots__ = ("value", "format", "_text", "_scale")

    def __init__(self, value: int | Fraction | Decimal | str = 0, format: str = DECIMAL_SI, *,
                 _text: str | None = None, _scale: int | None = None) -> None:
        exact = Fraction(value)
        if (exact / _NANO).denominator != 1:
            exact = _round_away(exact, _NANO)
        self.value = exact
        self.format = format
        self._text = _text
        self._scale = _scale

    @classmethod
    def parse(cls, value: Any) -> Quantity:
        return parse_quantity(value)

    # --- printing -------------------------------------------------------------
    def __str__(self) -> str:
        return self._text if self._text is not None else self.canonical()

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"

    def canonical(self) -> str:
        """CanonicalizeBytes: the canonical text, ignoring any remembered original."""
        if self.value == 0:
            return "0"
        fmt = self.format
        if fmt == BINARY_SI and (-1024 < self.value < 1024 or self.value.denominator != 1):
            fmt = DECIMAL_SI
        if fmt != BINARY_SI:
            mantissa, exponent = _decimal_parts(self.value)
            return f"{mantissa}{_decimal_suffix(exponent, fmt)}"
        amount, power = int(self.value), 0
        while abs(amount) >= 1024 and amount % 1024 == 0:
            amount //= 1024
            power += 10
        return f"{amount}{_BINARY_BY_EXPONENT.get(power, '')}"

    # --- comparison -------------------------------------------------------------
    def _other(self, other: Any) -> Fraction:
        if isinstance(other, Quantity):
            return other.value
        if isinstance(other, int | Fraction):
            return Fraction(other)
        return parse_quantity(other).value

    def cmp(self, other: Any) -> int:
        """-1, 0 or 1, as Quantity.Cmp."""
        theirs = self._other(other)
        return (self.value > theirs) - (self.value < theirs)

    def __eq__(self, other: object) -> bool:
        try:
            return self.value == self._other(other)
        except QuantityError:
            return NotImplemented

    def __lt__(self, other: Any) -> bool:
        return self.value < self._other(other)

    def __hash__(self) -> int:
        return hash(self.value)

    def sign(self) -> int:
        return (self.value > 0) - (self.value < 0)

    def is_zero(self) -> bool:
        return self.value == 0

    # --- arithmetic ---------------------------------------------------------------
    def __add__(self, other: Any) -> Quantity:
        fmt = other.format if self.value == 0 and isinstance(other, Quantity) else self.format
        return Quantity(self.value + self._other(other), fmt)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Quantity:
        fmt = other.format if self.value == 0 and isinstance(other, Quantity) else self.format
        return Quantity(self.value - self._other(other), fmt)

    def __neg__(self) -> Quantity:
        return Quantity(-self.value, self.format)

    def __mul__(self, factor: int) -> Quantity:
        return Quantity(self.value * factor, self.format)

    __rmul__ = __mul__

    # --- conversions --------------------------------------------------------------
    def scaled_value(self, scale: int) -> int:
        """The value in units of 10**scale, rounded away from zero (ScaledValue)."""
        units = self.value / Fraction(10) ** scale
        if units.denominator == 1:
            return units.numerator
        whole = math.ceil(abs(units))
        return whole if units > 0 else -whole

    def int_value(self) -> int:
        """Value(): whole units, rounded away from zero ("1500m" -> 2)."""
        return self.scaled_value(0)

    def milli_value(self) -> int:
        """MilliValue(): thousandths, rounded away from zero ("0.5" -> 500)."""
        return self.scaled_value(-3)

    def as_float(self) -> float:
        return float(self.value)

    def round_up(self, scale: int) -> Quantity:
        """RoundUp(scale): round away from zero to a multiple of 10**scale. Like Go, the
        remembered original text survives only when no rounding was needed at all."""
        if self._scale is not None and self._scale >= scale:
            return self
        rounded = _round_away(self.value, Fraction(10) ** scale)
        return Quantity(rounded, self.format, _scale=scale)


def canonical(value: Any) -> str:
    """How the API server serializes a Quantity field given `value`."""
    return str(parse_quantity(value))


def canonical_resource(value: Any) -> str:
    """How a ResourceList entry is stored: rounded up to milli precision first
    (SetDefaults_ResourceList), then serialized ("0.1m" -> "1m")."""
    return str(parse_quantity(value).round_up(-3))
