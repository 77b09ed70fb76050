"""Random expressions: the parser + evaluator agree with numpy applied to the same tree."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaas.engine.lang.expr import parse, parse_condition
from jaas.errors import SelectionError

UNITS: dict[str, str | None] = {"a": None, "b": None, "c": None}
Ref = Callable[[dict[str, np.ndarray]], object]
Gen = tuple[str, Ref]

_BINARY = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide}
_UNARY = {"abs": np.abs, "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10}
_COMPARE = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


def _f64(v: object) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


def _column(name: str) -> Gen:
    return name, lambda d: d[name]


def _int(v: int) -> Gen:
    return str(v), lambda d: np.int64(v)


def _float(v: float) -> Gen:
    return repr(v), lambda d: np.float64(v)


def _binary(op: str, left: Gen, right: Gen) -> Gen:
    if op == "**":
        return f"({left[0]} ** {right[0]})", lambda d: np.power(_f64(left[1](d)), _f64(right[1](d)))
    return f"({left[0]} {op} {right[0]})", lambda d: _BINARY[op](left[1](d), right[1](d))


def _unary(fn: str, arg: Gen) -> Gen:
    if fn == "-":
        return f"(-{arg[0]})", lambda d: np.negative(arg[1](d))
    return f"{fn}({arg[0]})", lambda d: _UNARY[fn](arg[1](d))


def _minmax(fn: str, x: Gen, y: Gen) -> Gen:
    f = np.minimum if fn == "min" else np.maximum
    return f"{fn}({x[0]}, {y[0]})", lambda d: f(x[1](d), y[1](d))


leaves = st.one_of(
    st.sampled_from(sorted(UNITS)).map(_column),
    st.integers(0, 1000).map(_int),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(_float),
)


def _extend(children: st.SearchStrategy[Gen]) -> st.SearchStrategy[Gen]:
    return st.one_of(
        st.builds(_binary, st.sampled_from([*_BINARY, "**"]), children, children),
        st.builds(_unary, st.sampled_from(["-", *_UNARY]), children),
        st.builds(_minmax, st.sampled_from(["min", "max"]), children, children),
    )


numbers = st.recursive(leaves, _extend, max_leaves=10)


def _compare(op: str, x: Gen, y: Gen) -> Gen:
    return f"({x[0]} {op} {y[0]})", lambda d: _COMPARE[op](x[1](d), y[1](d))


def _logic(op: str, x: Gen, y: Gen) -> Gen:
    f = np.logical_and if op == "and" else np.logical_or
    return f"({x[0]} {op} {y[0]})", lambda d: f(x[1](d), y[1](d))


def _not(x: Gen) -> Gen:
    return f"(not {x[0]})", lambda d: np.logical_not(x[1](d))


conditions = st.recursive(
    st.builds(_compare, st.sampled_from(sorted(_COMPARE)), numbers, numbers),
    lambda inner: st.one_of(
        st.builds(_logic, st.sampled_from(["and", "or"]), inner, inner),
        st.builds(_not, inner),
    ),
    max_leaves=4,
)


@st.composite
def data(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(1, 6))
    values = st.floats(-1e3, 1e3) | st.just(np.nan) | st.sampled_from([0.0, -1.0, 2.0])
    return {k: np.array(draw(st.lists(values, min_size=n, max_size=n))) for k in UNITS}


def _reference(ref: Ref, cols: dict[str, np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        out = np.asarray(ref(cols))
    return np.broadcast_to(out, (len(cols["a"]),))


@settings(max_examples=150, deadline=None)
@given(numbers, data())
def test_random_arithmetic_matches_numpy(gen: Gen, cols: dict[str, np.ndarray]) -> None:
    text, ref = gen
    try:
        expr = parse(text, UNITS)
    except SelectionError as exc:  # a constant part is not finite (e.g. "0 / 0"): refused
        reason = exc.reason
    else:
        reason = ""
    if reason:
        assert "division by zero" in reason or "not a finite number" in reason, text
        return
    np.testing.assert_array_equal(expr.evaluate(cols), _reference(ref, cols), err_msg=text)
    again = parse(str(expr), UNITS)
    assert again == expr
    np.testing.assert_array_equal(again.evaluate(cols), expr.evaluate(cols))


@settings(max_examples=100, deadline=None)
@given(conditions, data())
def test_random_conditions_match_numpy(gen: Gen, cols: dict[str, np.ndarray]) -> None:
    text, ref = gen
    try:
        expr = parse_condition(text, UNITS)
    except SelectionError as exc:  # a constant part is not finite (e.g. "0 / 0"): refused
        reason = exc.reason
    else:
        reason = ""
    if reason:
        assert "division by zero" in reason or "not a finite number" in reason, text
        return
    out = expr.evaluate(cols)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, _reference(ref, cols), err_msg=text)
    assert pickle.loads(pickle.dumps(expr)) == expr
    assert parse_condition(str(expr), UNITS) == expr
