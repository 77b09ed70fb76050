"""Tokenizer of the selection language (see ``jaas.engine.lang.expr`` for the grammar).

Hand-written rather than Python's ``tokenize``/``ast``: user text is never handed to the
Python compiler, every token keeps its character position for error carets, and the
characters Python would accept but we refuse (quotes, dots, brackets, ``;``) are rejected
here with a message saying why.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Literal

from jaas.errors import SelectionError

__all__ = ["MAX_LENGTH", "Token", "tokenize"]

MAX_LENGTH = 10_000  # characters; a selection is short text, not a program

TokenKind = Literal["num", "ident", "op", "eof"]

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)  # 0-9 only
_DIGITS = frozenset("0123456789")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = ("**", "<=", ">=", "==", "!=", "*", "/", "+", "-", "<", ">", "(", ")", ",")
_OURS = {"and", "or", "not", "True", "False"}  # Python keywords that are also ours
_MU = ("µ", "μ")  # micro sign U+00B5 and Greek mu U+03BC, for "µs"

# Characters (or pairs) Python would accept but the selection language refuses, with why.
_REFUSED = {
    "//": "'//' (floor division) is not supported; use '/'",
    "&&": "use 'and' instead of '&&'",
    "||": "use 'or' instead of '||'",
    "&": "use 'and' instead of '&'",
    "|": "use 'or' instead of '|'",
    "~": "use 'not' instead of '~'",
    "!": "use 'not' instead of '!'",
    "^": "use '**' for powers ('^' is not an operator here)",
    "=": "'=' is assignment; use '==' to compare",
    '"': "strings are not allowed in a selection",
    "'": "strings are not allowed in a selection",
    ".": "attribute access ('.') is not allowed",
    "[": "subscripts ('[') are not allowed",
    "]": "subscripts (']') are not allowed",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
    ";": "';' is not allowed: a selection is a single expression",
    ":": "':' is not allowed (no lambdas, slices or dictionaries)",
    "%": "'%' (modulo) is not supported",
}


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its text (units normalised: 'µs' -> 'us') and its position."""

    kind: TokenKind
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``eof`` token.

    Raises:
        SelectionError: a character outside the language, with its position.
    """
    if len(text) > MAX_LENGTH:
        raise SelectionError(
            f"selection is too long ({len(text)} characters, limit {MAX_LENGTH})",
            position=MAX_LENGTH,
        )
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
            assert m is not None  # a digit or ".digit" always matches
            tokens.append(Token("num", m.group(), i))
            i = m.end()
            continue
        if c.isascii() and (c.isalpha() or c == "_"):
            m = _IDENT.match(text, i)
            assert m is not None
            if keyword.iskeyword(m.group()) and m.group() not in _OURS:
                message = f"{m.group()!r} is not part of the selection language"
                raise SelectionError(message, text=text, position=i)
            tokens.append(Token("ident", m.group(), i))
            i = m.end()
            continue
        if c in _MU and text.startswith("s", i + 1):
            end = i + 2
            if end == n or not (text[end].isalnum() or text[end] == "_"):
                tokens.append(Token("ident", "us", i))
                i = end
                continue
        two = text[i : i + 2]
        if two in _REFUSED:
            raise SelectionError(_REFUSED[two], text=text, position=i)
        op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("op", op, i))
            i += len(op)
            continue
        reason = _REFUSED.get(c, f"unexpected character {c!r}")
        raise SelectionError(reason, text=text, position=i)
    tokens.append(Token("eof", "", n))
    return tokens
