"""The fake Nexudus API's list queries: paging, order and filters translated to SQL.

``Lister`` serves one entity's list and get-by-id endpoints as
``shared/reference/nexudus.md`` §3 describes them: ``page``/``size`` (1-based,
default 25, capped at 1000), ``orderBy``/``dir``, equality filters
``{Entity}_{Property}=v`` on the entity's own properties (a foreign key also by
its navigation name: ``CoworkerInvoice_Business=<id>``), the one-hop properties
§3 names, and inclusive ``from_``/``to_`` ranges on its own date, integer and
decimal properties. Every other query name is ignored, so the answer widens
(§3, §13). Answers use the §3 list envelope; a missing record is §4's 404.

No joins: the one-hop properties §3 names are echoed on the record itself
(``CoworkerInvoice.BusinessName``, ``CoworkerInvoiceLine.CoworkerInvoicePaid``
…), and ``nexudus_billing`` keeps a line's echoes in step with its invoice.

Imports nothing of recon outside ``recon.sandbox``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from recon.sandbox import jsonutil
from recon.sandbox.http import Request, Response
from recon.sandbox.nexudus_records import (
    INVOICE,
    LINE,
    Entity,
    FieldError,
    Rejected,
    field_kind,
    iso,
    parse_when,
)
from recon.sandbox.store import Store

# --------------------------------------------------------------------------- §3 rules, in one place

DEFAULT_PAGE_SIZE: Final = 25  # §3 "size: default 25"
# §3 "maximum 1000"; §13 choice: a larger size is capped (not refused), and CurrentPageSize says so.
MAX_PAGE_SIZE: Final = 1000
_RESERVED: Final = frozenset({"page", "size", "orderby", "dir"})  # §3: key case does not matter
# §13 "unknown filter names": ignored (widen results). A query name is a filter only when it is
# `[from_|to_]{Entity}_{Property}` with an own property (or its navigation name, or a §2 id list)
# or a ONE_HOP path below, and not one of the IGNORED names; any other name is skipped.
# §3 "named properties one hop away", lower-cased path after the entity prefix -> the record's own
# echo of that property. Only these two-part names are honoured (equality only: §3 documents
# ranges on a record's own properties).
ONE_HOP: Final[Mapping[Entity, Mapping[str, str]]] = {
    INVOICE: {"business_name": "BusinessName", "currency_code": "CurrencyCode"},
    LINE: {
        "coworkerinvoice_invoicenumber": "CoworkerInvoiceInvoiceNumber",
        "coworkerinvoice_paid": "CoworkerInvoicePaid",
        "coworkerinvoice_paidon": "CoworkerInvoicePaidOn",
        "coworkerinvoice_creditnote": "CoworkerInvoiceCreditNote",
        "coworkerinvoice_currency_code": "CoworkerInvoiceCurrencyCode",
        "coworkerinvoice_duedate": "CoworkerInvoiceDueDate",
    },
}
# §3 "not documented (avoid)" column: names the general rule would otherwise honour. §13 choice:
# ignored like any unknown name. (The line's parent Business and parent CreatedOn are not in
# ONE_HOP, so they are ignored already.)
IGNORED_ALWAYS: Final = frozenset({(INVOICE, "void")})  # CoworkerInvoice_Void: filter client-side
IGNORED_RANGES: Final = frozenset(
    {(LINE, "coworkerinvoice"), (LINE, "coworkerinvoiceid")}  # ranges on the parent Id
)
RANGE_KINDS: Final = frozenset({"date", "int", "decimal"})  # §3 "on date, integer and decimal"
# §3 `dir`: the official pages disagree (1 asc / -1 desc; 0 asc / 1 desc; the words). §13 choice:
# read where they agree and default to ascending: -1, desc, descending sort descending; anything
# else (0, 1, asc, ascending, absent) ascending. The envelope echoes 1 or -1.
DESCENDING: Final = frozenset({"-1", "desc", "descending"})
# §3 default order: Id ascending (CLI) — also the tie-break of every other order, for stable pages.
DEFAULT_ORDER: Final = "Id"

NOT_FOUND_BODY: Final = "Not found"  # §4 "Not found": 404, body the JSON string "Not found"


def not_found() -> Response:
    """§4: 404 with the JSON string ``"Not found"`` as body."""
    return Response.json(NOT_FOUND_BODY, status=404)


@dataclass
class _Query:
    """A list request translated to SQL."""

    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, sql: str, *args: Any) -> None:
        self.where.append(sql)
        self.args.extend(args)


class Lister:
    """One entity's list and get-by-id endpoints."""

    def __init__(self, store: Store, entity: Entity) -> None:
        self.store = store
        self.entity = entity
        self._fields: dict[str, tuple[str, str]] | None = None

    def forget_fields(self) -> None:
        """Drop the cached field list, so ``fields`` looks at the stored documents again."""
        self._fields = None

    def fields(self) -> dict[str, tuple[str, str]]:
        """lower-case name -> (field, kind): documented fields plus those in a stored document."""
        if self._fields is None:
            entity = self.entity
            doc_text = self.store.scalar(f"SELECT doc FROM {entity.table} LIMIT 1")
            sample: dict[str, Any] = jsonutil.loads(doc_text) if doc_text else {}
            names = dict.fromkeys([*entity.fields, *entity.columns, *sample])
            self._fields = {n.lower(): (n, field_kind(n, sample.get(n))) for n in names}
        return self._fields

    def own(self, name: str) -> tuple[str, str] | None:
        """(field, kind) of an own property, case-insensitively; a navigation name means its Id.

        §3: "a foreign key by navigation name with the id" (``CoworkerInvoice_Coworker=<id>``).
        """
        known = self.fields()
        return known.get(name.lower()) or known.get(name.lower() + "id")

    def expr(self, name: str) -> str:
        """The SQL expression of a field: its indexed column, else its value in the JSON document.

        Raises ``Rejected`` for a name that is not plain letters and digits.
        """
        column = self.entity.columns.get(name)
        if column:
            return f"t.{column}"
        if not re.fullmatch(r"[A-Za-z0-9]+", name):  # names come from documents: keep SQL safe
            raise Rejected(f"Cannot filter on {name!r}.")
        return f"json_extract(t.doc, '$.{name}')"

    # ---- filters

    def target(self, key: str) -> tuple[str, str, str] | None:
        """(bound, field, kind) for a query key, or None when §3 does not document it (ignored)."""
        bound, rest = "", key.lower()
        for prefix in ("from_", "to_"):
            if rest.startswith(prefix):
                bound, rest = prefix[:-1], rest[len(prefix) :]
        own_prefix = self.entity.name.lower() + "_"
        if not rest.startswith(own_prefix):
            return None
        path = rest[len(own_prefix) :]
        if (self.entity, path) in IGNORED_ALWAYS:
            return None
        hop = ONE_HOP.get(self.entity, {}).get(path)
        if hop is not None:
            return None if bound else ("", *self.fields().get(hop.lower(), (hop, field_kind(hop))))
        found = self.own(path)
        if found is None:
            return None
        if bound and (found[1] not in RANGE_KINDS or (self.entity, path) in IGNORED_RANGES):
            return None
        return (bound, *found)

    def translate(self, query: Mapping[str, list[str]]) -> _Query:
        """The WHERE clause for the request's filters; names §3 does not document are skipped."""
        out = _Query()
        for key, values in query.items():
            if key.lower() in _RESERVED or not values or values[0] == "":
                continue
            target = self.target(key)
            if target is None:
                continue
            bound, name, kind = target
            self._condition(out, bound, self.expr(name), kind, values[0], key)
        return out

    @staticmethod
    def _condition(out: _Query, bound: str, expr: str, kind: str, raw: str, key: str) -> None:
        """One condition; both range ends inclusive (§3). A value of the wrong type is refused.

        §2 "By ids": ``{Entity}_Id=[1,2]`` matches any of the listed ids (integer properties
        only: a text value such as ``[No Tax]`` is itself).
        """
        text = raw.strip()
        listed = not bound and kind == "int" and text.startswith("[") and text.endswith("]")
        try:
            if listed:
                values = [_filter_value(kind, v) for v in text[1:-1].split(",") if v.strip()]
            else:
                values = [_filter_value(kind, raw)]
        except (ValueError, InvalidOperation) as exc:
            # ASSUMPTION (§3 is silent): a value that cannot be read as the property's type is
            # refused with §4's validation answer, as ASP.NET model binding would.
            message = f"The value '{raw}' is not valid for {key}."
            raise Rejected(f"{key}: {message}", [FieldError(key, message, raw)]) from exc
        if kind == "decimal":
            expr = f"CAST({expr} AS REAL)"
        if listed:
            marks = ", ".join("?" * len(values)) or "NULL"
            out.add(f"{expr} IN ({marks})", *values)
            return
        op = {"": "=", "from": ">=", "to": "<="}[bound]
        out.add(f"{expr} {op} ?", values[0])

    # ---- order and paging

    def order(self, request: Request) -> tuple[str, str, int]:
        """(ORDER BY clause, field name echoed, CurrentSortDirection). §3 orderBy: any property."""
        wanted = request.arg("orderBy") or DEFAULT_ORDER
        found = self.own(wanted)
        name = found[0] if found else DEFAULT_ORDER
        descending = (request.arg("dir") or "").strip().lower() in DESCENDING
        direction = "DESC" if descending else "ASC"
        tiebreak = "" if name == DEFAULT_ORDER else f", t.id {direction}"
        return f"{self.expr(name)} {direction}{tiebreak}", name, -1 if descending else 1

    def page(self, request: Request) -> Response:
        """One page of records in the §3 list envelope."""
        page, size = _paging(request)
        query = self.translate(request.query)
        order_sql, order_name, direction = self.order(request)
        source = f"{self.entity.table} t"
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
        return Response(
            200, body.encode("utf-8"), {"Content-Type": "application/json; charset=utf-8"}
        )

    def one(self, request: Request) -> Response:
        """``GET {entities}/{id}``: the record, or §4's 404 ``"Not found"``."""
        doc = self.doc_text(request.params.get("id"))
        if doc is None:
            return not_found()
        return Response(
            200, doc.encode("utf-8"), {"Content-Type": "application/json; charset=utf-8"}
        )

    def doc_text(self, raw_id: Any) -> str | None:
        """The stored JSON document of the record with this id; None if there is none."""
        if isinstance(raw_id, bool):
            return None
        try:
            record_id = int(str(raw_id))
        except (TypeError, ValueError):
            return None
        value = self.store.scalar(f"SELECT doc FROM {self.entity.table} WHERE id = ?", (record_id,))
        return None if value is None else str(value)


def _filter_value(kind: str, raw: str) -> Any:
    if kind == "bool":  # §3 "booleans: true/false"
        text = raw.strip().lower()
        if text not in {"true", "false", "1", "0"}:
            raise ValueError(raw)
        return int(text in {"true", "1"})
    if kind == "int":
        return int(raw)
    if kind == "decimal":
        return float(Decimal(raw))  # documents hold JSON numbers, which SQLite reads as REAL
    if kind == "date":
        # §3 format YYYY-MM-DDTHH:mm[:ss][Z]; §13: zone-less is UTC, no whole-day expansion.
        return iso(parse_when(raw))
    return raw


def _paging(request: Request) -> tuple[int, int]:
    """(page, size) from the query.

    ASSUMPTION (§3 silent): below 1 means the default; non-numbers are refused.
    """
    try:
        page = int(request.arg("page") or 1)
        size = int(request.arg("size") or DEFAULT_PAGE_SIZE)
    except ValueError as exc:
        message = "page and size must be whole numbers."
        raise Rejected(f"size: {message}", [FieldError("size", message)]) from exc
    return max(page, 1), min(size if size >= 1 else DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _envelope(
    page: int, size: int, total: int, count: int, order: str, direction: int
) -> dict[str, Any]:
    """The §3 list envelope without Records; the old docs' PageNumber and PageSize last.

    ASSUMPTION (§3 silent): an empty page has FirstItem and LastItem 0.
    """
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
        "PageNumber": page,
        "PageSize": size,
    }
