"""Resource quantities in the canonical form `resource.Quantity.String()` prints.

Printers show capacities, quota usage and HPA metric values through Quantity.String(),
which re-renders the parsed value canonically: "1024Mi" reads "1Gi", "0.5" reads
"500m", "1.5Gi" reads "1536Mi", "2000" reads "2k". A stored object may still carry the
form a client sent, so cells go through `canonical()` to read like a real cluster's.

The rules, from apimachinery's quantity.go: values are kept exact (here as Fractions)
and rounded away from zero to nano precision; BinarySI values under 1024 in magnitude
or not whole switch to DecimalSI; decimal forms use a mantissa without trailing zeros
and an exponent that is a multiple of three.
"""

from __future__ import annotations

import re
from fractions import Fraction

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([a-zA-Z]*|[eE][+-]?[0-9]+)$")
_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_BY_EXPONENT = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_POWER = {0: "", **{v: k for k, v in _BINARY_SUFFIXES.items()}}
_NANO = Fraction(1, 10**9)


def parse(text: str) -> tuple[Fraction, str]:
    """The exact value and format ("DecimalSI", "BinarySI", "DecimalExponent") of a
    quantity string; ValueError if it is not one."""
    m = _QUANTITY.match(text.strip())
    if not m:
        raise ValueError(f"quantities must match the regular expression: {text!r}")
    number, suffix = Fraction(m.group(1)), m.group(2)
    if suffix in _BINARY_SUFFIXES:
        value, fmt = number * 1024 ** _BINARY_SUFFIXES[suffix], "BinarySI"
    elif suffix in _DECIMAL_SUFFIXES:
        value, fmt = number * Fraction(10) ** _DECIMAL_SUFFIXES[suffix], "DecimalSI"
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        value, fmt = number * Fraction(10) ** int(suffix[1:]), "DecimalExponent"
    else:
        raise ValueError(f"unable to parse quantity's suffix: {text!r}")
    return _round_up_to_nano(value), fmt


def _round_up_to_nano(value: Fraction) -> Fraction:
    """Kubernetes keeps at most nano precision and rounds away from zero."""
    scaled = value / _NANO
    if scaled.denominator == 1:
        return value
    whole = -(-abs(scaled.numerator) // scaled.denominator)
    return Fraction(whole if value > 0 else -whole) * _NANO


def _remove_factors(value: int, base: int) -> tuple[int, int]:
    times = 0
    while value != 0 and value % base == 0:
        value //= base
        times += 1
    return value, times


def _decimal(value: Fraction, fmt: str) -> str:
    # value is a multiple of 1e-9, so value * 1e9 is an integer mantissa at exponent -9
    mantissa, exponent = int(value / _NANO), -9
    mantissa, times = _remove_factors(mantissa, 10)
    exponent += times
    shift = exponent % 3
    mantissa, exponent = mantissa * 10**shift, exponent - shift
    if fmt == "DecimalExponent":
        return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
    return f"{mantissa}{_DECIMAL_BY_EXPONENT.get(exponent, '')}"


def format_value(value: Fraction, fmt: str) -> str:
    """Quantity.String() of an exact value in the given format."""
    if value == 0:
        return "0"
    if fmt == "BinarySI":
        if -1024 < value < 1024 or value.denominator != 1:
            return _decimal(value, "DecimalSI")
        mantissa, power = _remove_factors(int(value), 1024)
        return f"{mantissa}{_BINARY_BY_POWER.get(power, '')}"
    return _decimal(value, fmt)


def canonical(raw: object) -> str:
    """Quantity.String() of a stored quantity (string or JSON number).

    None renders "<nil>" (a nil *Quantity's String()); an unparsable value is shown as
    it is, since the real API server would never have stored it.
    """
    if raw is None:
        return "<nil>"
    if isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, int | float):
        raw = repr(raw) if isinstance(raw, float) else str(raw)
    try:
        value, fmt = parse(str(raw))
    except (ValueError, ZeroDivisionError):
        return str(raw)
    return format_value(value, fmt)


def zero_or(raw: object) -> str:
    """A map lookup's Quantity.String(): a missing key is the zero Quantity, "0"."""
    return "0" if raw is None else canonical(raw)
