"""Engineering formatting and parsing of circuit quantities."""

from __future__ import annotations

import pytest

from npztui.circuit.units import (
    format_parameter,
    format_parameters,
    format_si,
    parse_quantity,
    parse_reference,
)

REF_TEXT = "Rsh=5005,Ra=5005,Ca=25.05e-6,Rb=5005,Cb=25.05e-6"
REF = {"Rsh": 5005.0, "Ra": 5005.0, "Ca": 25.05e-6, "Rb": 5005.0, "Cb": 25.05e-6}


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (5005, "ohm", "5.01 kΩ"),  # decimal half-up, not binary 5.00499…
        (25.05e-6, "farad", "25.1 µF"),
        (230, "ohm", "230 Ω"),
        (10, "ohm", "10.0 Ω"),
        (10_000, "ohm", "10.0 kΩ"),
        (1e-7, "farad", "100 nF"),
        (999.96, "ohm", "1.00 kΩ"),  # rounding carries into the next prefix
        (0.1, "hertz", "100 mHz"),
        (100_000, "hertz", "100 kHz"),
        (0, "ohm", "0 Ω"),
        (-5005, "ohm", "-5.01 kΩ"),
        (1e-20, "farad", "1.00e-20 F"),  # beyond the prefixes: scientific
        (230.1529716797405, "", "230"),
    ],
)
def test_format_si(value, unit, text):
    assert format_si(value, unit) == text


def test_format_ascii_and_digits():
    assert format_si(25.05e-6, "farad", ascii=True) == "25.1 uF"
    assert format_si(5005, "ohm", ascii=True) == "5.01 kohm"
    assert format_si(5005, "ohm", digits=4) == "5.005 kΩ"
    assert format_si(float("nan"), "ohm") == "nan Ω"


def test_format_parameters():
    assert format_parameter("Ca", 25.05e-6) == "25.1 µF"
    assert format_parameter("Rsh", 230) == "230 Ω"
    assert format_parameters(REF) == "Rsh=5.01 kΩ  Ra=5.01 kΩ  Ca=25.1 µF  Rb=5.01 kΩ  Cb=25.1 µF"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5005", 5005.0), ("25.05e-6", 25.05e-6), ("25.05u", 25.05e-6), ("25.05µ", 25.05e-6),
        ("25.05μ", 25.05e-6), ("25.05uF", 25.05e-6), ("2.5uF", 2.5e-6), ("5k", 5000.0), ("5 kΩ", 5000.0),
        ("5kohm", 5000.0), ("1M", 1e6), ("10m", 0.01), (".5n", 0.5e-9), ("+3", 3.0), ("4.7 kohms", 4700.0),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value  # exact: the prefix is applied in decimal


@pytest.mark.parametrize("text", ["", "abc", "5x", "5 kV", "1e999", "k5", "5..0"])
def test_parse_quantity_rejects(text):
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_parse_quantity_checks_the_unit():
    assert parse_quantity("25uF", "farad") == 25e-6
    with pytest.raises(ValueError, match="farad"):
        parse_quantity("25kΩ", "farad")


def test_parse_reference():
    assert parse_reference(REF_TEXT) == REF
    assert parse_reference("rsh=5.005k; ra=5005Ω  ca=25.05u,RB=5.005k,cb=25.05µF") == REF
    assert parse_reference("Ca=1u", defaults=REF) == {**REF, "Ca": 1e-6}
    assert list(parse_reference(REF_TEXT)) == ["Rsh", "Ra", "Ca", "Rb", "Cb"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Rsh=5005", "missing"),
        ("Rx=1," + REF_TEXT, "unknown circuit parameter 'Rx'"),
        (REF_TEXT + ",Rsh=1", "given twice"),
        ("Rsh=-5,Ra=5005,Ca=25.05e-6,Rb=5005,Cb=25.05e-6", "Rsh must be a positive"),
        ("Rsh=5005,Ra=5005,Ca=25uΩ,Rb=5005,Cb=25.05e-6", "Ca"),
        ("Rsh 5005", "NAME=VALUE"),
    ],
)
def test_parse_reference_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_reference(text)


def test_values_may_contain_spaces():
    assert parse_reference("Rsh=5.005 kΩ Ra=5005 ohm, Ca=25.05 uF Rb=5005 Cb=25.05 µF") == REF
