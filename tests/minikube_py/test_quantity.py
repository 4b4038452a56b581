"""resource.Quantity parsing, canonical printing, comparison and arithmetic, checked
against the values apimachinery's quantity_test.go and a real API server produce."""

from __future__ import annotations

from fractions import Fraction

import pytest

from minikube_py.api.quantity import (
    BINARY_SI,
    DECIMAL_EXPONENT,
    DECIMAL_SI,
    FORMAT_ERROR,
    SUFFIX_ERROR,
    Quantity,
    QuantityError,
    canonical,
    canonical_resource,
    parse_quantity,
)


@pytest.mark.parametrize(("text", "printed"), [
    pytest.param("250m", "250m", id="milli-kept"),
    pytest.param("1000m", "1", id="thousand-milli-is-one"),
    pytest.param("0.5", "500m", id="half-is-500m"),
    pytest.param("1.5", "1500m", id="fraction-to-milli"),
    pytest.param("1Gi", "1Gi", id="binary-kept"),
    pytest.param("1024Mi", "1Gi", id="binary-promoted"),
    pytest.param("1.5Gi", "1536Mi", id="fractional-binary"),
    pytest.param("0.5Gi", "512Mi", id="half-gibibyte"),
    pytest.param("1536", "1536", id="plain-integer"),
    pytest.param("2000", "2k", id="decimal-promoted"),
    pytest.param("100M", "100M", id="mega-kept"),
    pytest.param("1e3", "1e3", id="exponent-kept"),
    pytest.param("10e2", "1e3", id="exponent-canonicalized"),
    pytest.param("12e-1", "1200e-3", id="negative-exponent"),
    pytest.param("1e1", "10", id="exponent-below-three"),
    pytest.param("1.0", "1", id="trailing-zero-fraction"),
    pytest.param("0.1m", "100u", id="micro"),
    pytest.param("1e-20", "1e-9", id="rounds-up-to-nano"),
    pytest.param("-1", "-1", id="negative"),
    pytest.param("0", "0", id="zero"),
    pytest.param("0Ki", "0", id="binary-zero"),
    pytest.param("1Ki", "1Ki", id="one-kibibyte"),
    pytest.param("1500Ki", "1500Ki", id="not-a-power-of-1024"),
    pytest.param("8Ei", "9223372036854775807", id="binary-capped-at-int64"),
    pytest.param("+5", "+5", id="go-keeps-canonical-looking-text"),
    pytest.param("007", "007", id="go-keeps-leading-zeros"),
])
def test_parse_prints_canonical_form(text: str, printed: str) -> None:
    assert str(parse_quantity(text)) == printed


@pytest.mark.parametrize(("text", "fmt"), [
    pytest.param("1", DECIMAL_SI, id="plain"),
    pytest.param("1k", DECIMAL_SI, id="kilo"),
    pytest.param("1Ki", BINARY_SI, id="kibi"),
    pytest.param("1e3", DECIMAL_EXPONENT, id="exponent"),
    pytest.param("1E", DECIMAL_SI, id="exa-not-exponent"),
    pytest.param("0.5Ki", BINARY_SI, id="binary-even-when-small"),
])
def test_format_comes_from_the_suffix(text: str, fmt: str) -> None:
    assert parse_quantity(text).format == fmt


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("", FORMAT_ERROR, id="empty"),
    pytest.param("abc", FORMAT_ERROR, id="letters"),
    pytest.param("1GB", FORMAT_ERROR, id="gigabytes-with-b"),
    pytest.param("1 Gi", FORMAT_ERROR, id="inner-space"),
    pytest.param("1.5.5", FORMAT_ERROR, id="two-dots"),
    pytest.param("192i", SUFFIX_ERROR, id="lone-i"),
    pytest.param("1K", SUFFIX_ERROR, id="capital-k"),
    pytest.param("1mi", SUFFIX_ERROR, id="lowercase-mi"),
    pytest.param("1e", SUFFIX_ERROR, id="bare-e"),
])
def test_invalid_quantities_carry_kubernetes_messages(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as err:
        parse_quantity(text)
    assert str(err.value) == message


def test_format_error_names_the_regular_expression() -> None:
    assert FORMAT_ERROR == ("quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


@pytest.mark.parametrize(("value", "printed"), [
    pytest.param(1, "1", id="json-int"),
    pytest.param(0.5, "500m", id="json-float"),
    pytest.param(1e-05, "10u", id="json-small-float-plain-notation"),
    pytest.param(None, "0", id="json-null"),
    pytest.param(" 1Gi ", "1Gi", id="surrounding-space-trimmed"),
])
def test_json_values_parse_like_unmarshal_json(value: object, printed: str) -> None:
    assert canonical(value) == printed


@pytest.mark.parametrize(("text", "stored"), [
    pytest.param("0.1m", "1m", id="rounded-up-to-milli"),
    pytest.param("100u", "1m", id="micro-rounded-up"),
    pytest.param("1500u", "2m", id="micro-fraction-rounded-up"),
    pytest.param("250m", "250m", id="milli-untouched"),
    pytest.param("1.5Gi", "1536Mi", id="binary-untouched"),
])
def test_resource_lists_round_up_to_milli(text: str, stored: str) -> None:
    assert canonical_resource(text) == stored


@pytest.mark.parametrize(("text", "milli", "whole"), [
    pytest.param("250m", 250, 1, id="fraction-rounds-up"),
    pytest.param("1500m", 1500, 2, id="one-and-a-half"),
    pytest.param("1Gi", 1073741824000, 1073741824, id="gibibyte"),
    pytest.param("-1500m", -1500, -2, id="negative-rounds-away-from-zero"),
])
def test_milli_and_int_values(text: str, milli: int, whole: int) -> None:
    quantity = parse_quantity(text)
    assert (quantity.milli_value(), quantity.int_value()) == (milli, whole)


def test_comparison_is_exact_across_formats() -> None:
    assert parse_quantity("1Gi") == parse_quantity("1073741824")
    assert parse_quantity("1") == parse_quantity("1000m")
    assert parse_quantity("999m") < parse_quantity("1")
    assert parse_quantity("2").cmp("1500m") == 1
    assert sorted([parse_quantity("1Gi"), parse_quantity("1G"), parse_quantity("1Mi")]) == [
        parse_quantity("1Mi"), parse_quantity("1G"), parse_quantity("1Gi")]


def test_addition_keeps_the_left_format_unless_left_is_zero() -> None:
    assert str(parse_quantity("1Gi") + parse_quantity("512Mi")) == "1536Mi"
    assert str(Quantity(0) + parse_quantity("1Ki")) == "1Ki"
    assert str(parse_quantity("100m") + parse_quantity("900m")) == "1"
    assert str(parse_quantity("1") - parse_quantity("250m")) == "750m"
    assert str(-parse_quantity("1Gi")) == "-1Gi"
    assert str(parse_quantity("250m") * 4) == "1"


def test_constructing_from_exact_values() -> None:
    assert str(Quantity(Fraction(3, 2))) == "1500m"
    assert str(Quantity(1024, BINARY_SI)) == "1Ki"
    assert Quantity(5).sign() == 1 and Quantity(0).is_zero()
