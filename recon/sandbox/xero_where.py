"""Xero's ``where`` filter: a small Dynamic-LINQ-like expression language.

Supported: ``==``/``=``/``!=``/``<>``/``<``/``<=``/``>``/``>=``; ``AND``/``&&``,
``OR``/``||``, ``NOT``/``!``, parentheses; dotted fields (``Contact.ContactID``);
literals ``"text"``, numbers, ``true``/``false``/``null``, ``Guid("…")``,
``DateTime(2026,08,01[,h,m,s])``; methods ``.Contains("x")``,
``.StartsWith("x")``, ``.EndsWith("x")``. String equality is case-insensitive,
as Xero's is for names (shared/reference/xero-api.md §6). A parse error raises
``QueryParseError`` with Xero's message style (``Expression expected``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op>==|!=|<>|<=|>=|&&|\|\||[=<>!(),.])
      | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


class QueryParseError(ValueError):
    """The where expression is not valid (Xero: 400 QueryParseException)."""


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise QueryParseError(f"Syntax error at position {pos}")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


def _lookup(doc: dict[str, Any], path: list[str]) -> Any:
    value: Any = doc
    for part in path:
        if not isinstance(value, dict):
            return None
        if part in value:
            value = value[part]
            continue
        lowered = part.lower()
        value = next((v for k, v in value.items() if k.lower() == lowered), None)
    return value


def _coerce_pair(left: Any, right: Any) -> tuple[Any, Any]:
    """Bring both sides of a comparison to one comparable type."""
    if isinstance(right, date) and isinstance(left, str):
        try:
            left = (
                datetime.fromisoformat(left.replace("Z", "+00:00")).date()
                if "T" in left
                else date.fromisoformat(left[:10])
            )
        except ValueError:
            return left, str(right)
    if isinstance(left, date) and isinstance(right, str):
        right, left = _coerce_pair(right, left)[::-1]
    if isinstance(right, Decimal) and not isinstance(left, (Decimal, bool)) and left is not None:
        try:
            left = Decimal(str(left))
        except InvalidOperation:
            return str(left), str(right)
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold(), right.casefold()
    if isinstance(left, int) and not isinstance(left, bool) and isinstance(right, Decimal):
        left = Decimal(left)
    return left, right


def _compare(op: str, left: Any, right: Any) -> bool:
    if op in ("==", "="):
        if left is None or right is None:
            return left is None and right is None
        left, right = _coerce_pair(left, right)
        return bool(left == right)
    if op in ("!=", "<>"):
        return not _compare("==", left, right)
    if left is None or right is None:
        return False
    left, right = _coerce_pair(left, right)
    try:
        return bool(
            {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
        )
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise QueryParseError("Expression expected")
        if value is not None and tok[1].upper() != value.upper():
            raise QueryParseError(f"'{value}' expected")
        self.i += 1
        return tok

    def at(self, *values: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[1].upper() in values

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise QueryParseError("Syntax error")
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.at("OR", "||"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda d: any(p(d) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.unary()]
        while self.at("AND", "&&"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda d: all(p(d) for p in parts))

    def unary(self) -> Predicate:
        if self.at("NOT", "!"):
            self.take()
            inner = self.unary()
            return lambda d: not inner(d)
        if self.at("("):
            self.take("(")
            inner = self.or_expr()
            self.take(")")
            return inner
        return self.comparison()

    def operand(self) -> Callable[[dict[str, Any]], Any]:
        tok = self.take()
        kind, text = tok
        if kind == "str":
            value = (
                bytes(text[1:-1], "utf-8").decode("unicode_escape") if "\\" in text else text[1:-1]
            )
            return lambda d: value
        if kind == "num":
            num = Decimal(text)
            return lambda d: num
        if kind != "id":
            raise QueryParseError("Expression expected")
        upper = text.upper()
        if upper in ("TRUE", "FALSE"):
            flag = upper == "TRUE"
            return lambda d: flag
        if upper == "NULL":
            return lambda d: None
        if upper == "GUID" and self.at("("):
            self.take("(")
            value = self.take()[1].strip('"').lower()
            self.take(")")
            return lambda d: value
        if upper == "DATETIME" and self.at("("):
            self.take("(")
            nums = [int(self.take()[1])]
            while self.at(","):
                self.take(",")
                nums.append(int(self.take()[1]))
            self.take(")")
            if len(nums) < 3:
                raise QueryParseError("DateTime needs year, month and day")
            value_d = date(nums[0], nums[1], nums[2])
            return lambda d: value_d
        path = [text]
        while self.at("."):
            self.take(".")
            name = self.take()[1]
            if self.at("("):  # a method call on the field
                return self._method(path, name)
            path.append(name)
        return lambda d: _lookup(d, path)

    def _method(self, path: list[str], name: str) -> Callable[[dict[str, Any]], Any]:
        self.take("(")
        kind, text = self.take()
        if kind != "str":
            raise QueryParseError("String literal expected")
        self.take(")")
        needle = text[1:-1].casefold()
        fn = {
            "CONTAINS": str.__contains__,
            "STARTSWITH": str.startswith,
            "ENDSWITH": str.endswith,
        }.get(name.upper())
        if fn is None:
            raise QueryParseError(f"No applicable method '{name}' exists")
        return lambda d: bool(fn(str(_lookup(d, path) or "").casefold(), needle))

    def comparison(self) -> Predicate:
        left = self.operand()
        tok = self.peek()
        if tok is None or tok[1] not in ("==", "=", "!=", "<>", "<", "<=", ">", ">="):
            # A bare operand: a boolean field or a method call.
            return lambda d: bool(left(d))
        op = self.take()[1]
        right = self.operand()
        return lambda d: _compare(op, left(d), right(d))


def compile_where(text: str) -> Predicate:
    """Compile a Xero ``where`` expression into a predicate over API-shaped dicts."""
    if not text or not text.strip():
        raise QueryParseError("Expression expected")
    return _Parser(text).parse()
