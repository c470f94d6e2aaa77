"""The Summary sheet's figures: the tie-out per currency, what the status sync changed, the money
the mapping blocks and the ageing of what Xero shows unpaid.

Floor 2 (part of ``recon.report``): reads the step CSVs of one run folder (or
of each location's folder) and computes, with exact ``Decimal`` sums:

- the **tie-out**, per currency: every invoice and credit note of the period
  (the transfer plan's eligible and excluded rows; the mapping check's invoices
  when the transfer did not plan) lands in exactly one of *transferred* (in
  Xero now), *held back* (not sent yet: a reason to fix, deferred, or planned
  and not pushed), *failed* (Xero or recon refused it, or its answer was lost)
  and *excluded* (never for Xero: void, draft, already in Xero). Each bucket is
  counted from its own file, so ``ties`` is a real check: an outcome for an
  invoice the plan does not have, or one counted twice, makes it false;
- the **activity** after the transfer: status differences, payments marked in
  Nexudus, changes made in Xero (``status_xero_changes.csv``) and credit notes
  allocated (``allocation_outcomes.csv``), per outcome and currency;
- the money **blocked by each mapping problem** (``mapping_mismatches.csv``);
- the **ageing** of what Xero shows unpaid (``status_unpaid.csv``: invoice,
  currency, amount due, due date), by days past due on the run's last day.

Writes nothing; ``recon.report.workbook`` lays it out and charts it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.money import ZERO
from recon.outcomes import (
    AllocationOutcome,
    Outcome,
    PaymentOutcome,
    TransferOutcome,
    Verdict,
    XeroChangeOutcome,
)
from recon.report.tables import Table, amount_or_zero, read_csv

# The tie-out's buckets, in the order an accountant adds them up.
BUCKETS = ("transferred", "held back", "failed", "excluded")
# A plan's exclusion reasons that mean "never for Xero" (recon.transfer.plan): nothing to fix.
# Every other reason holds an invoice back until someone fixes its cause.
NOT_FOR_XERO = (
    "void in Nexudus",
    "draft in Nexudus",
    "already sent to Xero",
    "already transferred",
    "already in Xero",
)
# The ageing buckets: days past due on the run's last day (not yet due counts as 0).
AGEING = ("0-30", "31-60", "61-90", "90+")
UNPAID_CSV = "status_unpaid.csv"


@dataclass(frozen=True)
class Figure:
    """How many invoices and how much money (exact)."""

    count: int = 0
    amount: Decimal = ZERO

    def __add__(self, other: Figure) -> Figure:
        return Figure(self.count + other.count, self.amount + other.amount)


@dataclass(frozen=True)
class TieOut:
    """One currency's invoices in scope (one location's, over several) and where each went."""

    currency: str
    in_scope: Figure
    buckets: dict[str, Figure]  # keyed by BUCKETS
    location: str | None = None
    source: str = ""  # the file the scope comes from

    @property
    def accounted(self) -> Figure:
        """The buckets added up."""
        total = Figure()
        for name in BUCKETS:
            total = total + self.buckets.get(name, Figure())
        return total

    @property
    def ties(self) -> bool:
        """Whether in scope = transferred + held back + failed + excluded, in count and money."""
        return self.in_scope == self.accounted


@dataclass(frozen=True)
class Activity:
    """One line of what happened after the transfer: a step's outcome in one currency."""

    what: str  # "Payments"
    outcome: str  # the outcome's label ("marked paid in Nexudus")
    currency: str
    figure: Figure
    needs_a_look: bool
    source: str
    location: str | None = None


@dataclass(frozen=True)
class SummaryData:
    """Everything on the Summary sheet."""

    title: str
    lines: tuple[str, ...]  # under the title: run, organisation, result, built
    tie_outs: tuple[TieOut, ...]
    activity: tuple[Activity, ...]
    blocked: dict[str, dict[str, Decimal]]  # mapping problem -> currency -> money blocked
    ageing: dict[str, dict[str, Decimal]]  # AGEING bucket -> currency -> amount due
    as_of: date | None  # the day the ageing counts from
    notes: tuple[str, ...] = field(default=())  # what is missing, and why

    @property
    def by_location(self) -> bool:
        """Whether the figures are per location (a run over several)."""
        return any(t.location for t in self.tie_outs)

    @property
    def ties(self) -> bool:
        """Whether every currency ties out."""
        return all(t.ties for t in self.tie_outs)


def _load(folder: Path, name: str) -> list[dict[str, str]] | None:
    loaded = read_csv(folder / name)
    return loaded[1] if loaded else None


def _excluded_bucket(reason: str) -> str:
    return "excluded" if reason.strip().startswith(NOT_FOR_XERO) else "held back"


def _transfer_bucket(outcome: str | None) -> str:
    verdict = TransferOutcome.of(outcome)
    if verdict is None:
        return "failed"  # an outcome recon does not know: look at it
    return {
        Verdict.SUCCESS: "transferred",
        Verdict.FAILURE: "failed",
    }.get(verdict.verdict, "held back")


def tie_outs(folder: Path, location: str | None = None) -> tuple[list[TieOut], list[str]]:
    """The tie-out of one run folder per currency, and notes on what it could not read."""
    eligible, excluded = (
        _load(folder, "transfer_plan_eligible.csv"),
        _load(folder, "transfer_plan_excluded.csv"),
    )
    outcomes = _load(folder, "transfer_outcomes.csv")
    scope: dict[str, Figure] = defaultdict(Figure)
    buckets: dict[str, dict[str, Figure]] = defaultdict(lambda: defaultdict(Figure))
    notes: list[str] = []
    where = f"{location}: " if location else ""
    if eligible is None and excluded is None:
        invoices = _load(folder, "mapping_invoices.csv")
        if invoices is None:
            notes.append(
                f"{where}no tie-out: neither the transfer plan nor the mapping check's invoices "
                "are in the run folder (see the Run and Errors sheets)."
            )
            return [], notes
        sent = {r.get("invoice_number"): r.get("outcome") for r in outcomes or []}
        for r in invoices:
            one = Figure(1, amount_or_zero(r.get("total")))
            number = r.get("invoice_number")
            scope[r.get("currency") or ""] += one
            bucket = _transfer_bucket(sent[number]) if number in sent else "held back"
            buckets[r.get("currency") or ""][bucket] += one
        notes.append(
            f"{where}no transfer plan in the run folder: the invoices the mapping check saw are "
            "the scope, each counted by its transfer outcome, else as held back."
        )
        source = "mapping_invoices.csv"
    else:
        source = "transfer_plan_eligible.csv + transfer_plan_excluded.csv"
        for r in excluded or []:
            one = Figure(1, amount_or_zero(r.get("nexudus_total")))
            currency = r.get("currency") or ""
            scope[currency] += one
            buckets[currency][_excluded_bucket(r.get("reason") or "")] += one
        attempted = {r.get("nexudus_invoice_id") for r in outcomes or []}
        for r in eligible or []:
            one = Figure(1, amount_or_zero(r.get("nexudus_total")))
            currency = r.get("currency") or ""
            scope[currency] += one
            if r.get("nexudus_invoice_id") not in attempted:
                buckets[currency]["held back"] += one  # planned, not sent (push off, or stopped)
        for r in outcomes or []:
            one = Figure(1, amount_or_zero(r.get("nexudus_total")))
            buckets[r.get("currency") or ""][_transfer_bucket(r.get("outcome"))] += one
        if outcomes is None:
            notes.append(
                f"{where}nothing was sent to Xero (no transfer_outcomes.csv): every eligible "
                "invoice is counted as held back."
            )
    return [
        TieOut(currency, scope.get(currency, Figure()), dict(buckets[currency]), location, source)
        for currency in sorted(set(scope) | set(buckets))
    ], notes


# Each later step's outcomes file: what it did, its outcome kind, its money column.
ACTIVITY_FILES: tuple[tuple[str, str, type[Outcome], str], ...] = (
    ("Payments", "status_applied.csv", PaymentOutcome, "amount"),
    ("Changes in Xero", "status_xero_changes.csv", XeroChangeOutcome, "amount"),
    ("Credit note allocations", "allocation_outcomes.csv", AllocationOutcome, "amount"),
)


def activity(folder: Path, location: str | None = None) -> list[Activity]:
    """What the run did after the transfer, per outcome and currency (exact sums)."""
    rows: list[Activity] = []
    differences = _load(folder, "status_differences.csv")
    if differences is not None:
        for label, mine in (
            ("found", differences),
            ("a person decides", [r for r in differences if r.get("actor") == "person"]),
        ):
            for currency, figure in _per_currency(mine, "nexudus_total").items():
                rows.append(
                    Activity(
                        "Status differences",
                        label,
                        currency,
                        figure,
                        label != "found",
                        "status_differences.csv",
                        location,
                    )
                )
    currency_of = {
        r.get("invoice_number") or "": r.get("currency") or "" for r in differences or []
    }
    for what, name, kind, money in ACTIVITY_FILES:
        records = _load(folder, name)
        for outcome_text in sorted({r.get("outcome") or "" for r in records or []}):
            outcome = kind.of(outcome_text)
            mine = [r for r in records or [] if (r.get("outcome") or "") == outcome_text]
            figures = _per_currency(mine, money, currency_of)
            for currency, figure in figures.items():
                rows.append(
                    Activity(
                        what,
                        outcome.label if outcome else outcome_text,
                        currency,
                        figure,
                        outcome is None or outcome.verdict is Verdict.FAILURE,
                        name,
                        location,
                    )
                )
    return rows


def _per_currency(
    records: Iterable[Mapping[str, str]], money: str, currency_of: Mapping[str, str] | None = None
) -> dict[str, Figure]:
    out: dict[str, Figure] = defaultdict(Figure)
    for r in records:
        currency = r.get("currency") or (currency_of or {}).get(r.get("invoice_number") or "", "")
        out[currency] += Figure(1, amount_or_zero(r.get(money)))
    return dict(sorted(out.items()))


def blocked_by_problem(folders: Sequence[Path]) -> dict[str, dict[str, Decimal]]:
    """Money blocked per mapping problem and currency (``mapping_mismatches.csv``, blocking rows;
    an invoice with two problems counts under each), the most money first."""
    out: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for folder in folders:
        for r in _load(folder, "mapping_mismatches.csv") or []:
            if r.get("severity") != "blocks":
                continue
            problem = f"{r.get('kind') or ''}: {r.get('problem') or ''}".strip(": ")
            for column, text in r.items():
                if column and column.startswith("blocked_") and len(column) == 11:
                    out[problem][column.removeprefix("blocked_")] += amount_or_zero(text)
    return {
        k: dict(v)
        for k, v in sorted(out.items(), key=lambda kv: (-sum(kv[1].values(), ZERO), kv[0]))
    }


def ageing(folders: Sequence[Path], as_of: date) -> dict[str, dict[str, Decimal]] | None:
    """What Xero shows unpaid per AGEING bucket (days past due on ``as_of``) and currency; None
    when no folder has ``status_unpaid.csv``."""
    out: dict[str, dict[str, Decimal]] = {b: defaultdict(lambda: ZERO) for b in AGEING}
    found = False
    for folder in folders:
        records = _load(folder, UNPAID_CSV)
        if records is None:
            continue
        found = True
        for r in records:
            due = _day(r.get("due_date") or "")
            days = (as_of - due).days if due else 0
            bucket = AGEING[min(max(days - 1, 0) // 30, 3)]  # 0-30, 31-60, 61-90, over 90
            out[bucket][r.get("currency") or ""] += amount_or_zero(r.get("amount_due"))
    return {b: dict(v) for b, v in out.items()} if found else None


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def tie_out_table(data: SummaryData) -> Table:
    """The tie-out as a table (``csv/tie_out.csv``): one row per currency (and location)."""
    columns = ["currency", "in_scope_invoices", "in_scope_amount"]
    for name in BUCKETS:
        key = name.replace(" ", "_")
        columns += [f"{key}_invoices", f"{key}_amount"]
    columns += ["ties_out", "scope_from"]
    rows: list[list[Any]] = []
    for t in data.tie_outs:
        row: list[Any] = [t.currency or None, t.in_scope.count, t.in_scope.amount]
        for name in BUCKETS:
            figure = t.buckets.get(name, Figure())
            row += [figure.count, figure.amount]
        rows.append([*([t.location] if data.by_location else []), *row, t.ties, t.source])
    return Table(
        "Summary", "tie_out.csv", [*(["location"] if data.by_location else []), *columns], rows
    )


def summary_data(
    folders: Sequence[tuple[str | None, Path]],
    title: str,
    lines: Sequence[str],
    as_of: date,
) -> SummaryData:
    """The Summary of a run: ``folders`` are (location, folder) pairs, the location None for a run
    of one location; ``as_of`` is the day the ageing counts from (the run's last day)."""
    found: list[TieOut] = []
    done: list[Activity] = []
    notes: list[str] = []
    for location, folder in folders:
        if not folder.is_dir():
            notes.append(f"{location}: nothing ran, so nothing of it is counted here.")
            continue
        ties, why = tie_outs(folder, location)
        found += ties
        notes += why
        done += activity(folder, location)
    paths = [folder for _, folder in folders]
    unpaid = ageing(paths, as_of)
    if unpaid is None:
        notes.append(
            f"No ageing: no {UNPAID_CSV} in the run folder (the status sync writes what Xero "
            "shows unpaid there)."
        )
    return SummaryData(
        title,
        tuple(lines),
        tuple(found),
        tuple(done),
        blocked_by_problem(paths),
        unpaid or {},
        as_of if unpaid is not None else None,
        tuple(notes),
    )
