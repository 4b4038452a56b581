"""Quantity cells read in the canonical form resource.Quantity.String() produces."""

from __future__ import annotations

import pytest

from apiserver.tables.quantity import canonical, zero_or


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("1Gi", "1Gi", id="binary-kept"),
        pytest.param("1024Mi", "1Gi", id="binary-normalized-up"),
        pytest.param("1536Mi", "1536Mi", id="binary-not-divisible"),
        pytest.param("1.5Gi", "1536Mi", id="binary-fraction-to-smaller-unit"),
        pytest.param("512Ki", "512Ki", id="kibibytes"),
        pytest.param("1000Ki", "1000Ki", id="kibibytes-not-power"),
        pytest.param("1.1Gi", "1181116006400m", id="binary-inexact-becomes-decimal"),
        pytest.param("0.5Ki", "512", id="binary-under-1024-becomes-decimal"),
        pytest.param("0.5", "500m", id="fraction-to-milli"),
        pytest.param("0.1", "100m", id="tenth"),
        pytest.param("100m", "100m", id="milli-kept"),
        pytest.param("1500", "1500", id="no-suffix-when-not-multiple-of-1000"),
        pytest.param("2000", "2k", id="thousands-to-k"),
        pytest.param("10G", "10G", id="giga"),
        pytest.param("1e3", "1e3", id="exponent-kept"),
        pytest.param("1000e0", "1e3", id="exponent-normalized"),
        pytest.param("0", "0", id="zero"),
        pytest.param("-1.5", "-1500m", id="negative"),
        pytest.param("0.0000000001", "1n", id="rounds-up-to-nano"),
        pytest.param(3, "3", id="json-int"),
        pytest.param(0.25, "250m", id="json-float"),
        pytest.param(None, "<nil>", id="nil-quantity"),
        pytest.param("bogus", "bogus", id="unparsable-shown-as-is"),
    ],
)
def test_canonical_quantity_strings(raw: object, expected: str) -> None:
    assert canonical(raw) == expected


def test_missing_map_entry_is_zero_quantity() -> None:
    assert zero_or(None) == "0"
    assert zero_or("2Gi") == "2Gi"
