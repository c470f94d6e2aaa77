"""The report's tables for one run folder: the step CSVs read in, the Run sheet and the Errors.

Floor 2 (part of ``recon.report``): reads the CSVs the steps wrote into
``Table``s (money as exact ``Decimal``, counts as int, rates as ``Decimal``,
dates as ``date``, a missing CSV as one ``note`` row saying why), and builds
the Run table (run, steps, context, parameters with secrets masked, versions,
per-currency totals; ``csv/summary.csv``, its name since the first reports) and
the Errors table. Writes nothing.
"""

from __future__ import annotations

import csv
import platform
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from importlib import metadata
from pathlib import Path
from typing import Any

from recon.cells import unescape
from recon.money import ZERO
from recon.outcomes import (
    AllocationOutcome,
    Outcome,
    PaymentOutcome,
    TransferOutcome,
    Verdict,
    XeroChangeOutcome,
)
from recon.params import RunParams
from recon.report.runs import StepRun, StepStatus, iso

# The packages whose versions an auditor needs to reproduce a run.
VERSIONED = ("recon", "pandas", "httpx", "authlib", "papermill", "nbconvert", "openpyxl")
SENSITIVE = ("secret", "password", "token")
MONEY_COLUMNS = frozenset(
    {
        "total",
        "nexudus_total",
        "xero_total",
        "difference",
        "amount",
        "amount_due",
        "xero_amount_paid",
        "xero_amount_due",
        "nexudus_paid_amount",
        "transferred_total",
        "transferable_amount",
        "blocked_amount",
        "in_scope_total",
        "blocked_total",
        "deferred_total",
        "nexudus_total_at_transfer",
        "nexudus_credited",
        "xero_amount_credited",
        "nexudus_due",
        "nexudus_subtotal",
        "nexudus_tax",
        "xero_subtotal",
        "xero_tax",
        # the Summary's tie-out (csv/tie_out.csv)
        "in_scope_amount",
        "transferred_amount",
        "held_back_amount",
        "failed_amount",
        "excluded_amount",
    }
)
# Percentages and exchange rates: numbers, but not money.
RATE_COLUMNS = frozenset({"tax_rate", "xero_rate", "currency_rate"})
# Days (``2026-08-15``) and moments (``2026-08-01 06:00:13+01:00``) the steps write as ISO text.
DATE_COLUMNS = frozenset({"xero_paid_on", "paid_on", "due_date", "date"})
# Yes/no columns the steps write as ``True``/``False``.
BOOLEAN_COLUMNS = frozenset({"nexudus_paid"})
COUNT_COLUMNS = frozenset(
    {
        "invoices",
        "lines",
        "invoices_using",
        "lines_using",
        "total_minor",
        "count",
        "invoices_in_scope",
        "blocked",
        "transferred",
        "deferred",
        "failed",
        "status_differences",
        "in_scope_invoices",
        "transferred_invoices",
        "held_back_invoices",
        "failed_invoices",
        "excluded_invoices",
    }
)
# The sheet of the run's details (steps, context, parameters, versions, totals); the Summary sheet
# is the tie-out (``recon.report.summary``).
RUN_SHEET = "Run"
# Which step writes a CSV: the step notebook whose name holds the keyword.
STEP_OF_CSV = (("mapping_", "mapping"), ("transfer_", "transfer"), ("status_", "status"))


@dataclass(frozen=True)
class Table:
    """One table of the report: its sheet name, its CSV file name, columns and rows."""

    sheet: str
    csv_name: str
    columns: list[str]
    rows: list[list[Any]]  # str, int, Decimal or None

    def currency(self, column: str, row: list[Any]) -> str | None:
        """The currency of a money cell: the column's (``blocked_GBP``) or the row's
        ``currency``."""
        if re.fullmatch(r"blocked_[A-Z]{3}", column):
            return column.removeprefix("blocked_")
        if "currency" in self.columns:
            value = row[self.columns.index("currency")]
            return str(value) if value else None
        return None


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]] | None:
    """A CSV file's columns and its rows (as dicts of text), or None if there is no such file.

    A cell written behind a ``'`` so that no spreadsheet reads it as a formula
    (``recon.report.cells``) is read as the text it stands for.
    """
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = [
            {
                unescape(k) if isinstance(k, str) else k: unescape(v) if isinstance(v, str) else v
                for k, v in r.items()
            }
            for r in reader
        ]
        return [unescape(c) for c in reader.fieldnames or []], rows


def typed(column: str, text: str) -> Any:
    """A CSV cell as the report holds it: money and rates as Decimal, counts as int, dates as
    ``date`` (a moment as ``datetime``), yes/no as bool, the rest as text."""
    if text == "":
        return None
    if (
        column in MONEY_COLUMNS
        or column in RATE_COLUMNS
        or re.fullmatch(r"blocked_[A-Z]{3}", column)
    ):
        try:
            amount = Decimal(text)
        except InvalidOperation:
            return text
        return amount if amount.is_finite() else text
    if column in COUNT_COLUMNS and re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    if column in DATE_COLUMNS:
        return moment(text)
    if column in BOOLEAN_COLUMNS and text in ("True", "False"):
        return text == "True"
    return text


def moment(text: str) -> date | datetime | str:
    """ISO text as a ``date`` (``2026-08-15``) or a ``datetime`` (with a time); other text as it
    is."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return date.fromisoformat(text)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", text):
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    return text


def step_table(
    sheet: str,
    csv_name: str,
    run_dir: Path,
    source: str,
    steps: Sequence[StepRun],
    params: RunParams,
) -> Table:
    """A step's CSV as a report table; if the CSV is missing, one ``note`` row saying why."""
    loaded = read_csv(run_dir / source)
    if loaded is None:
        return Table(sheet, csv_name, ["note"], [[_missing_note(source, steps, params)]])
    columns, records = loaded
    return Table(
        sheet, csv_name, columns, [[typed(c, r.get(c) or "") for c in columns] for r in records]
    )


def _step_for(source: str, steps: Sequence[StepRun]) -> StepRun | None:
    keyword = next((k for prefix, k in STEP_OF_CSV if source.startswith(prefix)), None)
    return next((s for s in steps if keyword and keyword in s.stem), None)


def _missing_note(source: str, steps: Sequence[StepRun], params: RunParams) -> str:
    step = _step_for(source, steps)
    if step is None:
        return f"No data: {source} was not written; no step of this run writes it."
    if step.status == StepStatus.FAILED:
        return f"No data: step {step.stem} failed before writing {source} (see the Errors sheet)."
    if step.status == StepStatus.SKIPPED:
        return f"No data: step {step.stem} was skipped ({step.note or 'an earlier step failed'})."
    if source == "transfer_outcomes.csv" and not params.push:
        return (
            f"Nothing was sent to Xero: push is false in the params, so {step.stem} only planned "
            "(see transfer_plan_eligible.csv and transfer_plan_excluded.csv in the run folder)."
        )
    return f"No data: step {step.stem} ran but wrote no {source}."


def errors_table(run_dir: Path, steps: Sequence[StepRun], folder: str = "") -> Table:
    """What failed in one run folder; ``folder`` (``"hive-shoreditch/"``) is its place in a run over
    locations."""
    columns = ["kind", "where", "what", "meaning", "fix"]
    rows: list[list[Any]] = []
    for i, step in enumerate(steps):
        if step.status != StepStatus.FAILED:
            continue
        later = [s.stem for s in steps[i + 1 :] if s.status == StepStatus.SKIPPED]
        page = (
            f"html/{folder}{step.stem}.html"
            if (run_dir / step.name).exists()
            else "the run's console output"
        )
        rows.append(
            [
                "step failed",
                f"{step.stem}, {step.where or 'before its first cell'}",
                step.error or "(no error text)",
                "The step stopped here"
                + (f"; later steps were skipped: {', '.join(later)}." if later else "."),
                f"Read the error in {page} (or the executed {folder}{step.name}), fix its cause (a "
                "ParamsError names the params file and key), then run again: a re-run never "
                "duplicates a transfer or a payment.",
            ]
        )
    rows += _failed_writes(run_dir / "transfer_outcomes.csv", TransferOutcome, "messages")
    rows += _failed_writes(run_dir / "status_applied.csv", PaymentOutcome, "message")
    if not rows:
        rows.append(
            ["none", "", "Nothing failed: no step, transfer or payment of this run failed.", "", ""]
        )
    return Table("Errors", "errors.csv", columns, rows)


def _failed_writes(path: Path, kind: type[Outcome], what: str) -> list[list[Any]]:
    """An Errors row for each row of a step CSV whose outcome is a failure (``recon.outcomes``):
    what the service said, and the CSV's meaning and fix or else the outcome's own."""
    loaded = read_csv(path)
    rows: list[list[Any]] = []
    for rec in loaded[1] if loaded else []:
        outcome = kind.of(rec.get("outcome"))
        if outcome is None or outcome.verdict is not Verdict.FAILURE:
            continue
        rows.append(
            [
                outcome.about.heading,
                f"invoice {rec.get('invoice_number')}",
                rec.get(what) or "",
                rec.get("meaning") or outcome.about.meaning,
                rec.get("fix") or outcome.about.fix,
            ]
        )
    return rows


def summary_table(
    run_dir: Path,
    params: RunParams,
    started: datetime | None,
    finished: datetime | None,
    steps: Sequence[StepRun],
    context: Mapping[str, Any],
) -> Table:
    """The Run sheet of one run folder (``csv/summary.csv``): the run, its steps, the context, the
    parameters, versions and the totals."""
    columns = ["section", "item", "value", "currency", "count", "detail"]
    failed = [s.stem for s in steps if s.status == StepStatus.FAILED]
    ran = [s for s in steps if s.status == StepStatus.OK]
    skipped = [s.stem for s in steps if s.status == StepStatus.SKIPPED]
    result = (
        f"FAILED: {', '.join(failed)}"
        if failed
        else f"{len(ran)} of {len(steps)} steps ran"
        + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    )
    rows: list[list[Any]] = [
        ["run", "run id", run_dir.name, None, None, "the run folder's name"],
        ["run", "started", utc(started) or "not recorded", None, None, "UTC"],
        ["run", "finished", utc(finished) or "not recorded", None, None, "UTC"],
        ["run", "result", result, None, None, ""],
        ["run", "report built", utc(datetime.now(tz=UTC)), None, None, "UTC"],
    ]
    rows += [step_row(s) for s in steps]
    if not steps:
        rows.append(
            [
                "step",
                "(none recorded)",
                "",
                None,
                None,
                "built from the CSVs in the folder, outside `recon run`",
            ]
        )
    rows += [
        ["context", "location", context.get("location") or params.location, None, None, ""],
        [
            "context",
            "organisation",
            context.get("organisation")
            or params.organisation
            or "not recorded (no step connected)",
            None,
            None,
            "",
        ],
        [
            "context",
            "target",
            params.target,
            None,
            None,
            "sandbox = the embedded sandbox; live = the real services",
        ],
    ]
    if context.get("tenant_id"):
        rows.append(["context", "tenant id", context["tenant_id"], None, None, ""])
    rows += [
        ["parameter", key, parameter_value(value), None, None, ""]
        for key, value in parameter_rows(params)
    ]
    rows += [["version", name, version, None, None, ""] for name, version in versions()]
    rows += totals_rows(run_dir)
    return Table(RUN_SHEET, "summary.csv", columns, rows)


def utc(moment: datetime | None) -> datetime | None:
    """A moment in UTC to the second (the Run sheet shows it as a date and time, UTC)."""
    return moment.astimezone(UTC).replace(microsecond=0) if moment else None


def parameter_value(text: str) -> str | date | int:
    """A parameter's text as the Run sheet holds it: a day (``2026-08-01``) as a ``date``, a whole
    number as an int."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return date.fromisoformat(text)
    return int(text) if re.fullmatch(r"-?\d{1,15}", text) else text


def step_row(s: StepRun) -> list[Any]:
    """A step as a Summary row: its status, with its times, error and note as the detail."""
    times = (
        f"{iso(s.started)} to {iso(s.finished)} ({s.seconds:.1f} s)"
        if s.seconds is not None
        else ""
    )
    detail = "; ".join(p for p in (times, s.error and f"{s.error} at {s.where}", s.note) if p)
    return ["step", s.stem, s.status.value, None, None, detail]


def parameter_rows(params: RunParams | Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every parameter as (dotted key, text), sections flattened.

    A value whose key names a secret, password or token is masked (RunParams
    holds none, but a ``*_secret_env`` with a pasted secret in place of a
    variable name is an easy mistake); ``*_url`` keys are shown without any
    ``user:password@`` part.
    """
    data = dict(params) if isinstance(params, Mapping) else asdict(params)

    def flat(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
        if isinstance(value, Mapping):
            for k, v in value.items():
                yield from flat(f"{prefix}.{k}" if prefix else str(k), v)
        elif any(word in prefix.lower() for word in SENSITIVE) and not prefix.endswith("_url"):
            yield prefix, "(masked)"
        elif prefix.endswith("_url") and isinstance(value, str):
            yield prefix, re.sub(r"//[^/@]*@", "//(masked)@", value)  # no user:password in a URL
        elif isinstance(value, bool):
            yield prefix, "true" if value else "false"
        elif isinstance(value, date):
            yield prefix, value.isoformat()
        else:
            yield prefix, "" if value is None else str(value)

    return list(flat("", data))


def versions() -> list[tuple[str, str]]:
    """recon's version and its key dependencies', and Python's."""
    out = []
    for name in VERSIONED:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return [*out, ("python", platform.python_version())]


def totals_rows(run_dir: Path) -> list[list[Any]]:
    """Counts and Nexudus totals per currency from each step CSV that exists (exact Decimal
    sums)."""
    rows: list[list[Any]] = []

    def add(
        item: str,
        source: str,
        records: Iterable[Mapping[str, str]],
        amount_col: str,
        detail: str,
        currency_of: Mapping[str, str] | None = None,
    ) -> None:
        counts: dict[str, int] = defaultdict(int)
        sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for rec in records:
            currency = rec.get("currency") or (currency_of or {}).get(
                rec.get("invoice_number") or "", ""
            )
            counts[currency] += 1
            sums[currency] += amount_or_zero(rec.get(amount_col))
        for currency in sorted(counts):
            rows.append(
                [
                    "totals",
                    item,
                    sums[currency],
                    currency or None,
                    counts[currency],
                    f"{detail} ({source})",
                ]
            )

    def load(name: str) -> list[dict[str, str]] | None:
        loaded = read_csv(run_dir / name)
        return loaded[1] if loaded else None

    if (invoices := load("mapping_invoices.csv")) is not None:
        add("invoices in scope", "mapping_invoices.csv", invoices, "total", "Nexudus totals")
        add(
            "blocked by the mapping",
            "mapping_invoices.csv",
            [r for r in invoices if r.get("blocked") == "True"],
            "total",
            "Nexudus totals",
        )
    if (eligible := load("transfer_plan_eligible.csv")) is not None:
        add(
            "transfer plan: eligible",
            "transfer_plan_eligible.csv",
            eligible,
            "nexudus_total",
            "Nexudus totals",
        )
    if (excluded := load("transfer_plan_excluded.csv")) is not None:
        add(
            "transfer plan: excluded",
            "transfer_plan_excluded.csv",
            excluded,
            "nexudus_total",
            "Nexudus totals",
        )
    if (outcomes := load("transfer_outcomes.csv")) is not None:
        for outcome in sorted({r.get("outcome") or "" for r in outcomes}):
            add(
                f"transfer: {outcome}",
                "transfer_outcomes.csv",
                [r for r in outcomes if r.get("outcome") == outcome],
                "nexudus_total",
                _labelled(TransferOutcome, outcome, "Nexudus totals; credit notes negative"),
            )
    differences = load("status_differences.csv")
    for kind in sorted({r.get("difference") or "" for r in differences or []}):
        add(
            f"status: {kind}",
            "status_differences.csv",
            [r for r in differences or [] if r.get("difference") == kind],
            "nexudus_total",
            "Nexudus totals",
        )
    if (changes := load("status_xero_changes.csv")) is not None:
        for outcome in sorted({r.get("outcome") or "" for r in changes}):
            add(
                f"changed in Xero: {outcome}",
                "status_xero_changes.csv",
                [r for r in changes if r.get("outcome") == outcome],
                "amount",
                _labelled(XeroChangeOutcome, outcome, "amounts of the invoices changed"),
            )
    if (allocations := load("allocation_outcomes.csv")) is not None:
        for outcome in sorted({r.get("outcome") or "" for r in allocations}):
            add(
                f"credit note allocation: {outcome}",
                "allocation_outcomes.csv",
                [r for r in allocations if r.get("outcome") == outcome],
                "amount",
                _labelled(AllocationOutcome, outcome, "credit note amounts"),
            )
    if (applied := load("status_applied.csv")) is not None:
        currency_of = {
            r.get("invoice_number") or "": r.get("currency") or "" for r in differences or []
        }
        for outcome in sorted({r.get("outcome") or "" for r in applied}):
            add(
                f"marked paid in Nexudus: {outcome}",
                "status_applied.csv",
                [r for r in applied if r.get("outcome") == outcome],
                "amount",
                _labelled(PaymentOutcome, outcome, "amounts recorded as paid"),
                currency_of,
            )
    return rows


def _labelled(kind: type[Outcome], text: str, detail: str) -> str:
    """A totals row's detail, after the outcome's label (``recon.outcomes.TABLE``) if it has one."""
    outcome = kind.of(text)
    return f"{outcome.label}: {detail}" if outcome is not None else detail


def amount_or_zero(text: str | None) -> Decimal:
    """A CSV cell's amount as Decimal; zero when blank or not a number."""
    try:
        return Decimal(text) if text else ZERO
    except InvalidOperation:
        return ZERO
