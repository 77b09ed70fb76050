"""Hostile and wrong selections are refused with SelectionError, a reason and a position."""

from __future__ import annotations

import sys

import pytest

from jaas.engine.lang.expr import MAX_LENGTH, MAX_NESTING, parse, parse_condition, schema_units
from jaas.errors import SelectionError
from jaas.formats.schema import INDEX_SCHEMA

UNITS = schema_units(INDEX_SCHEMA)


def refused(text: str, units=UNITS, derived=None, *, condition=False) -> SelectionError:
    with pytest.raises(SelectionError) as info:
        (parse_condition if condition else parse)(text, units, derived)
    return info.value


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("E.__class__", 1, "attribute access"),
        ("x.__class__.__bases__", 1, "attribute access"),
        ("E[0] > 1", 1, "subscripts"),
        ("E > 'a'", 4, "strings are not allowed"),
        ('__import__("os")', 11, "strings are not allowed"),
        ("__import__(os)", 0, "'__import__' is not a known function; allowed functions: abs, exp"),
        ("open(E)", 0, "allowed functions: abs, exp, log, log10, max, min, sqrt, where"),
        ("E(1)", 0, "'E' is a column, not a function"),
        ("lambda x: x", 0, "'lambda' is not part of the selection language"),
        ("E > 1 if muon else 2", 6, "'if' is not part of"),
        ("E > 1; x", 5, "a single expression"),
        ("E > {1}", 4, "braces"),
        ("E & muon", 2, "use 'and'"),
        ("E > 1 || muon", 6, "use 'or'"),
        ("~muon", 0, "use 'not'"),
        ("E ^ 2", 2, "use '**'"),
        ("E = 1", 2, "use '=='"),
        ("E // 2", 2, "floor division"),
        ("E @ x", 2, "unexpected character '@'"),
        ("(E < 1", 0, "'(' is never closed"),
        ("sqrt(x", 4, "never closed"),
        ("E < 1)", 5, "no matching '('"),
        ("((E < 1) and x > 0))", 19, "no matching '('"),
        ("E < 1 x", 6, "missing operator between '1' and 'x'"),
        ("E < 1 MeV muon", 10, "unexpected 'muon' after a complete expression"),
        ("E <", 3, "expected a value, got the end"),
        ("E < * 2", 4, "expected a value, got '*'"),
        ("", 0, "empty selection"),
        ("and E", 0, "expected a value before 'and'"),
        ("E < 2 eV", 6, "unknown unit 'eV'"),
        ("1e400 < E", 0, "out of range"),
        ("1e-400 < E", 0, "out of range"),
        ("E < 1e306 GeV", 4, "out of range"),
        ("E < 99999999999999999999", 4, "does not fit in 64 bits"),
        ("t < 9223372036854775808", 4, "does not fit in 64 bits"),
        ("sqrt(E, x)", 0, "sqrt() takes 1 argument(s), got 2"),
        ("max(E)", 0, "max() takes 2 argument(s), got 1"),
        ("1 m**12", 5, "unit power"),
    ],
)
def test_hostile_and_malformed_input(text, position, reason):
    err = refused(text)
    assert reason in str(err)
    assert err.position == position
    assert err.text == text
    # the caret sits under the reported position
    lines = str(err).splitlines()
    assert lines[-1] == "  " + " " * position + "^"


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("E < 17.2 m", 2, "cannot compare energy 'E' and length '17.2 m'"),
        ("0.7 MeV < E < 12 m", 12, "cannot compare energy 'E' and length '12 m'"),
        ("E + x > 1", 2, "cannot add energy 'E' and length 'x'"),
        ("r - 1 ms", 2, "cannot subtract length 'r' and time '1000000 ns'"),
        ("x**2 < 1 m", 5, "cannot compare length**2"),
        ("sqrt(x**2 + y**2) < 15 MeV", 18, "cannot compare length 'sqrt"),
        ("max(E, 1 m)", 0, "cannot take the max of energy 'E' and length '1 m'"),
        ("log(E)", 4, "log() needs a dimensionless argument, got energy 'E'; divide by a unit"),
        ("x ** y", 5, "exponent must be dimensionless"),
        ("x ** cls", 5, "can only be raised to a constant power"),
        ("E + muon", 2, "needs a number, got condition 'muon'"),
        ("muon < wp", 5, "cannot order conditions"),
        ("E < 1 and x", 10, "'and' needs a condition, got length 'x'"),
        ("not E", 4, "'not' needs a condition, got energy 'E'"),
        ("-muon", 0, "unary '-' needs a number"),
        ("where(E, 1, 2)", 6, "where() needs a condition"),
        ("where(muon, E, x)", 0, "cannot choose between energy 'E' and length 'x'"),
    ],
)
def test_dimension_errors_point_at_the_problem(text, position, reason):
    err = refused(text)
    assert reason in str(err)
    assert err.position == position


@pytest.mark.parametrize(
    ("text", "what"),
    [("E", "an energy"), ("x + y", "a length"), ("t", "a time"), ("E / 1 MeV", "a number")],
)
def test_selection_must_be_a_condition(text, what):
    err = refused(text, condition=True)
    assert str(err).startswith(f"selection must be a condition, got {what}")


@pytest.mark.parametrize(
    ("name", "hint"),
    [("Energy", "did you mean 'E'"), ("time", "did you mean 't'"), ("muonn", "'muon'")],
)
def test_unknown_column_suggests_nearest(name, hint):
    err = refused(f"{name} > 1")
    assert f"unknown column {name!r}" in str(err)
    assert hint in str(err)
    assert err.position == 0


def test_unit_alone_hints_at_a_number():
    err = refused("E < MeV")
    assert "a unit follows a number, e.g. '1 MeV'" in str(err)
    assert err.position == 4


def test_too_long_input():
    text = "E > 1 and " * 1000 + "E > 1"
    assert len(text) > MAX_LENGTH
    err = refused(text)
    assert "too long" in str(err)
    assert err.position == MAX_LENGTH


def test_long_flat_input_within_limit_is_fine():
    text = " + ".join(["x"] * 3000)[: MAX_LENGTH - 10].rstrip(" +")
    e = parse(text, UNITS)
    assert e.dimension == "length"
    assert parse(str(e), UNITS) == e
    cond = " and ".join(["E > 1"] * 900)
    assert parse_condition(cond, UNITS).columns == {"E"}


@pytest.mark.parametrize(
    ("opening", "closing"),
    [("(", ")"), ("sqrt(", ")"), ("-", ""), ("not ", ""), ("2 ** ", ""), ("abs(-", ")")],
)
def test_deep_nesting_is_refused_without_recursion_error(opening, closing):
    operand = "muon" if opening == "not " else "x"
    depth = 5000 if len(opening) == 1 else 1500
    text = opening * depth + operand + closing * depth
    err = refused(text[:MAX_LENGTH])  # within the length limit, far over the nesting one
    assert "nested too deeply" in str(err)
    assert err.position is not None


def test_nesting_at_the_limit_is_accepted_with_a_small_stack():
    text = "(" * MAX_NESTING + "E" + ")" * MAX_NESTING
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(600)  # as in a constrained worker thread
    try:
        e = parse(text, UNITS)
        assert str(e) == "E"
        text = "-" * (MAX_NESTING // 2) + "sqrt(" * (MAX_NESTING // 2) + "x" + ")" * 50
        e = parse(text, UNITS)
        hash(e)
        str(e)
    finally:
        sys.setrecursionlimit(old)
    assert refused("(" + text + ")").position is not None


def test_derived_cycle_is_refused():
    derived = {"a": "b + 1 m", "b": "c * 2", "c": "a"}
    err = refused("a > 1", derived=derived)
    assert "cycle: a -> b -> c -> a" in str(err)
    assert err.text == "a"  # the text of derived column c
    assert err.position == 0


def test_error_in_derived_column_names_it():
    err = refused("rho < 1 m", derived={"rho": "sqrt(x**2 + y**2 + E)"})
    assert str(err).startswith("in derived column 'rho': cannot add length**2")
    assert err.text == "sqrt(x**2 + y**2 + E)"
    assert err.position == 17


def test_derived_name_clashing_with_a_column_is_refused():
    err = refused("E > 1", derived={"E": "x"})
    assert "['E']" in str(err)


def test_exponential_derived_expansion_is_bounded():
    derived = {"d0": "x"} | {f"d{i}": f"d{i - 1} + d{i - 1}" for i in range(1, 40)}
    err = refused("d39 > 1 m", derived=derived)
    assert "too large" in str(err)
    small = parse("d5", UNITS, derived)  # 2**5 uses of x is fine
    assert str(small).count("x") == 32


def test_non_text_is_refused():
    with pytest.raises(SelectionError, match="must be text"):
        parse(b"E > 1", UNITS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("E > 1 MeV / 0", "division by zero"),
        ("E > 1 MeV / (2 - 2)", "division by zero"),
        ("E > (0 / 0) * 1 MeV", "division by zero"),
        ("E > 1e300 * 1e300 MeV", "not a finite number"),
        ("E > 10 ** 400 * 1 MeV", "not a finite number"),
        ("E > \u0661 MeV", "unexpected character"),  # an Arabic-Indic digit one
        ("E > 1\u0660 MeV", "unexpected character"),
    ],
)
def test_hostile_constants_are_selection_errors(text: str, message: str) -> None:
    from jaas.engine.session.analysis import UNITS

    with pytest.raises(SelectionError, match=message):
        parse_condition(text, UNITS)


@pytest.mark.parametrize("window", ["2e10 s", "1 ms / 0", "-2e10 s",
                                    float("nan"), float("inf")])  # fmt: skip
def test_time_windows_outside_int64_ns_are_refused(window: object) -> None:
    from jaas.engine.session.analysis import build_query, veto

    with pytest.raises(SelectionError):
        build_query(prompt="E > 1 MeV", delayed="E > 1 MeV", dt=window)  # type: ignore[arg-type]
    with pytest.raises(SelectionError):
        build_query(prompt="E > 1 MeV", delayed="E > 1 MeV", dt="1 ms",
                    vetoes=[veto("detector", "muon", window)])  # type: ignore[arg-type]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "dimension"), [("1", "time"), ("1.5", "length"), (" 2 ", "energy")]
)
def test_bare_number_text_needs_a_unit(text: str, dimension: str) -> None:
    from jaas.engine.session.analysis import quantity

    with pytest.raises(SelectionError, match="has no unit"):
        quantity(text, dimension)  # type: ignore[arg-type]
    assert quantity("0", dimension) == 0.0  # zero is zero in any unit  # type: ignore[arg-type]
    assert quantity(1.0, dimension) == 1.0  # numbers are in internal units  # type: ignore[arg-type]
