"""Values, units, dimensions, derived columns and round trips of the selection language."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from jaas.engine.lang.expr import Expr, parse, parse_condition, schema_units
from jaas.errors import SelectionError
from jaas.formats.schema import INDEX_SCHEMA

UNITS = schema_units(INDEX_SCHEMA)
STANDARD = "0.7 MeV < E < 12 MeV and r < 17.2 m"  # physics.md: prompt energy (V), FV (S)


@pytest.fixture
def cols() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    n = 50
    x, y, z = (rng.uniform(-19, 19, n).astype(np.float32) for _ in range(3))
    return {
        "E": rng.uniform(0, 15, n).astype(np.float32),
        "x": x,
        "y": y,
        "z": z,
        "r": np.sqrt(x * x + y * y + z * z),
        "t": np.arange(n, dtype=np.int64) * 400_000 + 1_700_000_000_000_000_000,
        "cls": rng.integers(0, 3, n).astype(np.uint8),
        "muon": rng.random(n) < 0.3,
        "wp": rng.random(n) < 0.3,
    }


def test_schema_units_reads_metadata_and_marks_booleans():
    assert UNITS["E"] == "MeV"
    assert UNITS["t"] == "ns"
    assert UNITS["x"] == "m"
    assert UNITS["muon"] == "bool"
    assert UNITS["cls"] is None


def test_standard_selection_matches_numpy(cols):
    sel = parse_condition(STANDARD, UNITS)
    E, r = cols["E"], cols["r"]
    expected = (np.float32(0.7) < E) & (E < 12) & (r < np.float32(17.2))
    np.testing.assert_array_equal(sel.evaluate(cols), expected)
    assert sel.columns == {"E", "r"} == sel.required_columns
    assert sel.dimension == "bool"
    assert sel.evaluate(cols).dtype == np.bool_


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("abs(z) < 15 m and sqrt(x**2 + y**2) < 15 m",
         lambda c: (np.abs(c["z"]) < 15) & (np.hypot(c["x"], c["y"].astype(float)) < 15)),
        ("muon and not wp", lambda c: c["muon"] & ~c["wp"]),
        ("E > 20 MeV or cls == 1", lambda c: (c["E"] > 20) | (c["cls"] == 1)),
        ("not (E < 2 MeV or E > 3 MeV)", lambda c: (c["E"] >= 2) & (c["E"] <= 3)),
        ("cls != 0 and not muon or wp", lambda c: ((c["cls"] != 0) & ~c["muon"]) | c["wp"]),
        ("where(muon, E, 0) > 1 MeV", lambda c: np.where(c["muon"], c["E"], 0) > 1),
        ("max(abs(x), abs(y)) <= 10 m", lambda c: np.maximum(np.abs(c["x"]), np.abs(c["y"])) <= 10),
    ],
)  # fmt: skip
def test_conditions_match_numpy(cols, text, reference):
    np.testing.assert_array_equal(parse_condition(text, UNITS).evaluate(cols), reference(cols))


def test_arithmetic_precedence_and_true_division():
    u = {"a": None, "b": None}
    c = {"a": np.array([1.0, 2.0, -3.0]), "b": np.array([2.0, 4.0, 5.0])}
    a, b = c["a"], c["b"]
    cases = {
        "a + b * 2": a + b * 2,
        "(a + b) * 2": (a + b) * 2,
        "-a ** 2": -(a**2),
        "2 ** -1 * b": 0.5 * b,
        "2 ** 3 ** 2 + a": 512 + a,
        "a - b - 1": (a - b) - 1,
        "a / b / 2": (a / b) / 2,
        "7 / 2 + 0 * a": np.full(3, 3.5),
        "exp(log(b)) - b + log10(100)": np.full(3, 2.0),
    }
    for text, expected in cases.items():
        np.testing.assert_allclose(parse(text, u).evaluate(c), expected, rtol=1e-15, err_msg=text)


def test_units_convert_to_internal_values():
    assert parse("1.5 ms", {}).evaluate({}) == 1_500_000
    assert parse("2 us + 3 µs + 4 μs", {}).evaluate({}) == 9000
    assert parse("1 s", {}).evaluate({}) == 1_000_000_000
    assert parse("170 cm", {}).evaluate({}) == pytest.approx(1.7, rel=1e-15)
    assert parse("250 mm", {}).evaluate({}) == 0.25
    assert parse("2.5 GeV", {}).evaluate({}) == 2500
    assert parse("700 keV", {}).evaluate({}) == pytest.approx(0.7, rel=1e-15)
    assert parse("1.5 ms", {}).dimension == "time"
    assert parse("3 m", {}).dimension == "length"
    assert parse("2e3 keV", {}).dimension == "energy"


def test_unit_literals_against_columns(cols):
    np.testing.assert_array_equal(
        parse_condition("170 cm < r", UNITS).evaluate(cols), cols["r"] > np.float32(1.7)
    )
    sel = parse_condition("E > 1500 keV", UNITS)
    np.testing.assert_array_equal(sel.evaluate(cols), cols["E"] > np.float32(1.5))


def test_bare_number_means_internal_unit(cols):
    a = parse_condition("E < 2", UNITS).evaluate(cols)
    b = parse_condition("E < 2 MeV", UNITS).evaluate(cols)
    np.testing.assert_array_equal(a, b)
    assert 0 < a.sum() < len(a)


def test_integer_times_stay_exact():
    t0 = 1_700_000_000_000_000_000
    t = np.array([t0, t0 + 1, t0 + 1_500_000], dtype=np.int64)
    sel = parse_condition(f"t - {t0} >= 1.5 ms", {"t": "ns"})
    np.testing.assert_array_equal(sel.evaluate({"t": t}), [False, False, True])
    sel = parse_condition(f"t > {t0}", {"t": "ns"})  # 1 ns above 1.7e18 is not lost
    np.testing.assert_array_equal(sel.evaluate({"t": t}), [False, True, True])


def test_column_in_other_unit_is_converted():
    units = {"x_mm": "mm", "dt_us": "us"}
    c = {"x_mm": np.array([1500.0, 1600.0]), "dt_us": np.array([999.0, 1001.0])}
    np.testing.assert_array_equal(
        parse_condition("x_mm < 1.55 m", units).evaluate(c), [True, False]
    )
    np.testing.assert_array_equal(parse_condition("dt_us < 1 ms", units).evaluate(c), [1, 0])
    np.testing.assert_allclose(parse("x_mm", units).evaluate(c), [1.5, 1.6])


def test_chained_comparison_means_and():
    u = {"E": "MeV"}
    E = np.array([0.5, 1.0, 2.0, 3.0, np.nan])
    np.testing.assert_array_equal(
        parse_condition("1 < E <= 2.0 MeV", u).evaluate({"E": E}), [0, 0, 1, 0, 0]
    )
    np.testing.assert_array_equal(
        parse_condition("3 > E >= 1 > 0", u).evaluate({"E": E}), [0, 1, 1, 0, 0]
    )
    assert parse("1 < E < 2", u) == parse("1 < E < 2", u)
    assert parse("1 < E < 2", u) != parse("(1 < E) and (E < 2)", u)  # different trees


def test_float32_boundary_is_physical():
    E = np.array([0.7, 12.0], dtype=np.float32)  # stored as 0.7 and 12 MeV
    c = {"E": E}
    np.testing.assert_array_equal(parse_condition("E < 0.7 MeV", UNITS).evaluate(c), [0, 0])
    np.testing.assert_array_equal(parse_condition("E >= 0.7 MeV", UNITS).evaluate(c), [1, 1])
    np.testing.assert_array_equal(parse_condition("E == 700 keV", UNITS).evaluate(c), [1, 0])
    np.testing.assert_array_equal(parse_condition(STANDARD.split(" and")[0], UNITS).evaluate(
        {"E": E}), [0, 0])  # fmt: skip
    # float64 columns keep float64 semantics: 0.7 (float32) is below 0.7 (float64)
    np.testing.assert_array_equal(
        parse_condition("E < 0.7", UNITS).evaluate({"E": E.astype(np.float64)}), [1, 0]
    )


def test_nan_compares_false():
    c = {"E": np.array([np.nan, 1.0], dtype=np.float32)}
    for text in ("E < 2", "E > 0", "E == E", "0 < E < 2", "E >= 1 MeV"):
        assert not parse_condition(text, UNITS).evaluate(c)[0], text
    assert parse_condition("E != 1", UNITS).evaluate(c).tolist() == [True, False]
    assert parse_condition("not (E == 1)", UNITS).evaluate(c).tolist() == [True, False]


def test_invalid_math_gives_nan_not_warning():
    c = {"x": np.array([-1.0, 4.0]), "y": np.array([0.0, 2.0])}
    u = {"x": None, "y": None}
    out = parse("sqrt(x) + x / y + log(y)", u).evaluate(c)
    assert np.isnan(out[0])
    assert out[1] == pytest.approx(2 + 2 + np.log(2))


def test_unsigned_columns_do_not_wrap():
    c = {"cls": np.array([0, 1, 2], dtype=np.uint8)}
    np.testing.assert_array_equal(parse("cls - 1", {"cls": None}).evaluate(c), [-1, 0, 1])
    np.testing.assert_array_equal(parse("-cls", {"cls": None}).evaluate(c), [0, -1, -2])


def test_flag_columns_without_unit_act_as_conditions():
    units = {"muon": None, "wp": None, "E": "MeV"}
    c = {"muon": np.array([1, 0, 2]), "wp": np.array([0, 0, 1]), "E": np.ones(3)}
    np.testing.assert_array_equal(
        parse_condition("muon and not wp", units).evaluate(c), [True, False, False]
    )
    np.testing.assert_array_equal(parse_condition("muon", units).evaluate(c), [1, 0, 1])
    np.testing.assert_array_equal(parse_condition("muon == true", units).evaluate(c), [1, 0, 1])


def test_constant_results_broadcast(cols):
    assert parse_condition("true", UNITS).evaluate(cols).tolist() == [True] * len(cols["E"])
    out = parse("2 * 3 MeV", UNITS).evaluate(cols)
    assert out.shape == cols["E"].shape
    assert (out == 6).all()
    assert parse("1 < 2", {}).evaluate({}).shape == ()


def test_dimensions():
    assert parse("x**2 + y**2", UNITS).dimension == "length**2"
    assert parse("sqrt(x**2 + y**2)", UNITS).dimension == "length"
    assert parse("E / 1 MeV", UNITS).dimension is None
    assert parse("E / t", UNITS).dimension == "energy*time**-1"
    assert parse("pe", UNITS).dimension == "PE"
    assert parse("abs(z)", UNITS).dimension == "length"
    assert parse("E > 1", UNITS).dimension == "bool"
    assert parse("max(E, 1)", UNITS).dimension == "energy"
    assert parse_condition("sqrt(x**2 + y**2) < 15 m", UNITS).dimension == "bool"


def test_derived_columns_expand_and_chain(cols):
    derived = {"rho": "sqrt(x**2 + y**2)", "rho2": "rho * rho", "inner": "rho < 10 m"}
    sel = parse_condition("inner and rho2 > 4 m**2", UNITS, derived)
    assert sel.columns == {"x", "y"}
    x, y = cols["x"].astype(float), cols["y"].astype(float)
    rho = np.sqrt(x**2 + y**2)
    np.testing.assert_array_equal(sel.evaluate(cols), (rho < 10) & (rho * rho > 4))
    assert parse("rho", UNITS, derived).dimension == "length"


def test_canonical_text_reparses_to_equal_expr():
    derived = {"rho": "sqrt(x**2+y**2)"}
    texts = [
        STANDARD,
        "abs(z) < 15 m and sqrt(x**2 + y**2) < 15 m",
        "muon and not wp or not (E > 2 MeV)",
        "-x ** 2 + 2 ** -1 * (y - -z) * 3.25e-3 m",
        "rho < 3 m and where(muon, 1 GeV, E) >= 250 keV",
        "t - 1700000000000000000 < 1.5 ms",
        "E > 1 and (1 + 2) + 3 < 10",
    ]
    for text in texts:
        e = parse(text, UNITS, derived)
        again = parse(str(e), UNITS)
        assert again == e, (text, str(e))
        assert hash(again) == hash(e)
        assert str(again) == str(e)
        assert e.text == text


def test_pickle_round_trip(cols):
    e = parse_condition(STANDARD + " and not muon", UNITS, {"rho": "sqrt(x**2+y**2)"})
    back = pickle.loads(pickle.dumps(e))
    assert back == e
    assert back.text == e.text
    np.testing.assert_array_equal(back.evaluate(cols), e.evaluate(cols))
    assert {e: 1}[back] == 1


def test_expr_is_immutable():
    e = parse("E", UNITS)
    with pytest.raises(AttributeError):
        e.text = "x"  # type: ignore[misc]
    assert isinstance(e, Expr)


def test_missing_and_mismatched_columns_at_evaluation():
    e = parse_condition("E < 1 and r < 2", UNITS)
    with pytest.raises(SelectionError, match="column 'r' is not in the data"):
        e.evaluate({"E": np.ones(3)})
    with pytest.raises(SelectionError, match="differ in length"):
        e.evaluate({"E": np.ones(3), "r": np.ones(4)})


def test_million_rows_well_under_a_second():
    rng = np.random.default_rng(3)
    n = 1_000_000
    c = {
        "E": rng.uniform(0, 15, n).astype(np.float32),
        "r": rng.uniform(0, 18, n).astype(np.float32),
        "muon": rng.random(n) < 0.01,
    }
    sel = parse_condition(STANDARD + " and not muon", UNITS)
    sel.evaluate(c)  # warm up
    start = time.perf_counter()
    out = sel.evaluate(c)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.25
    expected = (c["E"] > np.float32(0.7)) & (c["E"] < 12) & (c["r"] < np.float32(17.2))
    np.testing.assert_array_equal(out, expected & ~c["muon"])
