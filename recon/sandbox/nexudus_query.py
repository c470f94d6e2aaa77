"""The fake Nexudus API's list queries: paging, order and filters translated to SQL.

``_Lister`` serves one entity's list endpoint: ``page``/``size``,
``orderBy``/``dir``, ``Entity_Property`` filters with ``from_``/``to_`` ranges,
and, for invoice lines, filters on the parent invoice
(``CoworkerInvoiceLine_CoworkerInvoice_<Field>``), answered in the Nexudus list
envelope.

Floor 0: imports only ``recon.sandbox.*`` and the leaves ``recon.money`` and
``recon.errors``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from recon.sandbox import jsonutil
from recon.sandbox.http import Request, Response
from recon.sandbox.nexudus_records import Entity, FieldError, Rejected, _iso, _kind, _parse_when
from recon.sandbox.store import Store

DEFAULT_PAGE_SIZE = 25
# ASSUMPTION: the maximum page size is undocumented; public scripts use 1000, so
# larger sizes are capped to 1000 (not refused) and CurrentPageSize says so.
MAX_PAGE_SIZE = 1000


@dataclass
class _Query:
    """A list request translated to SQL."""

    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    joins_parent: bool = False

    def add(self, sql: str, *args: Any) -> None:
        self.where.append(sql)
        self.args.extend(args)


_RESERVED = {"page", "size", "orderby", "dir"}


class _Lister:
    """Turns ``Entity_Property`` filters, ranges, paging and order into SQL for one entity."""

    def __init__(self, store: Store, entity: Entity) -> None:
        self.store = store
        self.entity = entity
        self._fields: dict[Entity, dict[str, tuple[str, str]]] = {}

    def forget_fields(self) -> None:
        self._fields.clear()

    def fields(self, entity: Entity) -> dict[str, tuple[str, str]]:
        """lower-case name -> (field, kind): documented fields plus those in a stored document."""
        if entity not in self._fields:
            doc_text = self.store.scalar(f"SELECT doc FROM {entity.table} LIMIT 1")
            sample: dict[str, Any] = jsonutil.loads(doc_text) if doc_text else {}
            names = dict.fromkeys([*entity.fields, *entity.columns, *sample])
            self._fields[entity] = {n.lower(): (n, _kind(n, sample.get(n))) for n in names}
        return self._fields[entity]

    def resolve(self, entity: Entity, name: str) -> tuple[str, str] | None:
        """(field, kind) for a property name, matched case-insensitively.

        ``Coworker`` means ``CoworkerId``: the reference filters foreign keys by
        the navigation name (``CoworkerInvoice_Coworker=<id>``).
        """
        known = self.fields(entity)
        return known.get(name.lower()) or known.get(name.lower() + "id")

    def expr(self, entity: Entity, name: str, alias: str) -> str:
        column = entity.columns.get(name)
        if column:
            return f"{alias}.{column}"
        if not re.fullmatch(r"[A-Za-z0-9]+", name):  # names come from documents: keep SQL safe
            raise Rejected(f"Cannot filter on {name!r}.")
        return f"json_extract({alias}.doc, '$.{name}')"

    def translate(self, query: Mapping[str, list[str]]) -> _Query:
        """The WHERE clause for the request's filters.

        ASSUMPTION: unknown properties and empty values are ignored, as ASP.NET
        model binding ignores what it cannot bind (so a misspelt filter returns
        more, never fewer, records: clients must check what they get).
        """
        out = _Query()
        for key, values in query.items():
            if key.lower() in _RESERVED or not values or values[0] == "":
                continue
            target = self._target(key)
            if target is None:
                continue
            bound, entity, name, kind = target
            alias = "p" if entity is not self.entity else "t"
            out.joins_parent |= alias == "p"
            self._condition(out, bound, self.expr(entity, name, alias), kind, values[0], key)
        return out

    def _target(self, key: str) -> tuple[str, Entity, str, str] | None:
        """(bound, entity, field, kind) for a query key, or None if it is not a filter here."""
        bound, rest = "", key
        for prefix in ("from_", "to_"):
            if key.lower().startswith(prefix):
                bound, rest = prefix[:-1], key[len(prefix):]
        own = self.entity.name.lower() + "_"
        if not rest.lower().startswith(own):
            return None
        rest = rest[len(own):]
        parent = self.entity.parent
        if parent is not None:
            if rest.lower() == parent.name.lower():  # CoworkerInvoiceLine_CoworkerInvoice=<id>
                rest = self.entity.parent_key
            elif rest.lower().startswith(parent.name.lower() + "_"):
                found = self.resolve(parent, rest[len(parent.name) + 1:])
                return (bound, parent, *found) if found else None
        found = self.resolve(self.entity, rest)
        return (bound, self.entity, *found) if found else None

    def _condition(self, out: _Query, bound: str, expr: str, kind: str, raw: str, key: str) -> None:
        try:
            if kind == "date":
                self._date_condition(out, bound, expr, raw)
                return
            value = _filter_value(kind, raw)
        except (ValueError, InvalidOperation) as exc:
            raise Rejected(f"The value of {key} is not valid.", [FieldError(key, f"Not a valid {kind}: {raw!r}.", raw)]) from exc
        op = {"": "=", "from": ">=", "to": "<="}[bound]
        if kind == "decimal":
            expr = f"CAST({expr} AS REAL)"
        out.add(f"{expr} {op} ?", value)

    @staticmethod
    def _date_condition(out: _Query, bound: str, expr: str, raw: str) -> None:
        """Inclusive date ranges: a bare ``to_`` date covers that whole day, ``=date`` the day."""
        when, date_only = _parse_when(raw)
        day_end = _iso(when + timedelta(days=1) - timedelta(seconds=1))
        if bound == "from":
            out.add(f"{expr} >= ?", _iso(when))
        elif bound == "to":
            out.add(f"{expr} <= ?", day_end if date_only else _iso(when))
        elif date_only:
            out.add(f"{expr} BETWEEN ? AND ?", _iso(when), day_end)
        else:
            out.add(f"{expr} = ?", _iso(when))

    def order(self, request: Request) -> tuple[str, str, int]:
        """(ORDER BY clause, field name echoed, CurrentSortDirection).

        ASSUMPTION: default order is Id ascending (stable paging). ``dir`` is read
        under both documented conventions where they agree: -1, ``desc`` or
        ``descending`` sort descending; 0, 1, ``asc`` or ``ascending`` ascending
        (the conventions clash on 1; the envelope example shows 1 on a default
        listing, so 1 is ascending). The envelope echoes 1 or -1.
        """
        wanted = request.arg("orderBy") or "Id"
        found = self.resolve(self.entity, wanted)
        name = found[0] if found else "Id"
        descending = (request.arg("dir") or "").strip().lower() in {"-1", "desc", "descending"}
        direction = "DESC" if descending else "ASC"
        expr = self.expr(self.entity, name, "t")
        tiebreak = "" if name == "Id" else f", t.id {direction}"
        return f"{expr} {direction}{tiebreak}", name, -1 if descending else 1

    def page(self, request: Request) -> Response:
        """One page of records in the Nexudus list envelope."""
        page, size = _paging(request)
        query = self.translate(request.query)
        order_sql, order_name, direction = self.order(request)
        source = f"{self.entity.table} t"
        if query.joins_parent and self.entity.parent is not None:
            source += f" JOIN {self.entity.parent.table} p ON p.id = t.{self.entity.columns[self.entity.parent_key]}"
        where = " AND ".join(query.where) or "1=1"
        total = int(self.store.scalar(f"SELECT COUNT(*) FROM {source} WHERE {where}", query.args))
        rows = self.store.query(
            f"SELECT t.doc FROM {source} WHERE {where} ORDER BY {order_sql} LIMIT ? OFFSET ?",
            [*query.args, size, (page - 1) * size],
        )
        envelope = _envelope(page, size, total, len(rows), order_name, direction)
        # Documents are already JSON: splice them in rather than parse and re-dump.
        records = ",".join(r[0] for r in rows)
        body = '{"Records":[' + records + "]," + jsonutil.dumps(envelope)[1:]
        return Response(200, body.encode("utf-8"), {"Content-Type": "application/json; charset=utf-8"})


def _filter_value(kind: str, raw: str) -> Any:
    if kind == "bool":
        text = raw.strip().lower()
        if text not in {"true", "false", "1", "0"}:
            raise ValueError(raw)
        return int(text in {"true", "1"})
    if kind == "int":
        return int(raw)
    if kind == "decimal":
        return float(Decimal(raw))  # documents hold JSON numbers, which SQLite reads as REAL
    return raw


def _paging(request: Request) -> tuple[int, int]:
    """(page, size) from the query. ASSUMPTION: below 1 means the default; non-numbers are refused."""
    try:
        page = int(request.arg("page") or 1)
        size = int(request.arg("size") or DEFAULT_PAGE_SIZE)
    except ValueError as exc:
        raise Rejected("page and size must be whole numbers.", [FieldError("size", str(exc))]) from exc
    return max(page, 1), min(size if size >= 1 else DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _envelope(page: int, size: int, total: int, count: int, order: str, direction: int) -> dict[str, Any]:
    """The list envelope without Records. ASSUMPTION: an empty page has FirstItem and LastItem 0."""
    first = (page - 1) * size + 1 if count else 0
    pages = math.ceil(total / size) if total else 0
    return {
        "CurrentPage": page,
        "CurrentPageSize": size,
        "CurrentOrderField": order,
        "CurrentSortDirection": direction,
        "FirstItem": first,
        "LastItem": first + count - 1 if count else 0,
        "TotalItems": total,
        "TotalPages": pages,
        "HasNextPage": page < pages,
        "HasPreviousPage": page > 1,
    }
