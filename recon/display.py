"""HTML for results in a notebook: summaries first, problems highlighted.

Floor 2 (presentation of step results; no widgets). Each result's
``_repr_html_`` calls one function here, so the look is in one place and the
steps only compute.
"""

from __future__ import annotations

import html
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

from recon.outcomes import Outcome, TransferOutcome, Verdict, counts_text

if TYPE_CHECKING:
    from recon.mapping import MappingResult

SEVERITY_COLOURS = {"blocks": "#f8d7da", "warning": "#fff3cd", "info": "#e2e3e5", "ok": "#d1e7dd"}


def money_text(value: Any) -> str:
    """``1234.5`` -> ``1,234.50``; exact for Decimal."""
    if value is None or (not isinstance(value, Decimal) and pd.isna(value)):
        return ""
    return f"{Decimal(value):,.2f}"


def styled(
    frame: pd.DataFrame,
    *,
    money: list[str] | None = None,
    severity_col: str = "severity",
    max_rows: int = 200,
) -> str:
    """A DataFrame as HTML with money formatted and rows coloured by severity."""
    shown = frame.head(max_rows)
    style = shown.style.hide(axis="index")
    money = [c for c in (money or []) if c in shown.columns]
    if money:
        style = style.format({c: money_text for c in money}, escape="html", na_rep="")
    else:
        style = style.format(escape="html", na_rep="")
    if severity_col in shown.columns:
        colours = shown[severity_col].map(SEVERITY_COLOURS).fillna("")
        style = style.apply(
            lambda row: [f"background-color: {colours.loc[row.name]}"] * len(row), axis=1
        )
    note = (
        f"<p><i>{len(frame) - max_rows} more rows not shown.</i></p>"
        if len(frame) > max_rows
        else ""
    )
    return style.to_html() + note


def mapping_html(result: MappingResult) -> str:
    """A mapping check's result as HTML: its summary, then its mismatches if any."""
    ctx = result.context
    parts = [
        f"<h3>Mapping check — {html.escape(str(ctx.get('location', '')))} "
        f"{html.escape(str(ctx.get('period', '')))}</h3>"
    ]
    parts.append(styled(result.summary, money=["transferable_amount", "blocked_amount"]))
    problems = result.problems
    if problems.empty:
        parts.append("<p>Every account and tax rate used in the period matches Xero.</p>")
    else:
        parts.append(f"<h4>{len(problems)} mismatches</h4>")
        parts.append(styled(problems, money=result.currency_columns))
    return "\n".join(parts)


# How the contact preview's ``match`` reads in a sentence.
CONTACT_MATCHES = {
    "number": "by recon's contact number",
    "pinned": "pinned in the params",
    "name": "by name",
    "email": "by e-mail",
    "new": "new",
    "ambiguous": "ambiguous (held back: pin one)",
    "archived": "archived in Xero (held back)",
}


def transfer_plan_html(plan: Any) -> str:
    """A transfer plan as HTML: warnings, totals, new contacts, the write calls against today's
    limit, then the eligible and the excluded invoices."""
    parts = [
        f"<h3>{html.escape(plan.describe())} to "
        f"{html.escape(str(plan.context.get('organisation', 'Xero')))}</h3>"
    ]
    for warning in plan.context.get("warnings") or []:
        parts.append(f'<p style="color:#9a6700"><b>Warning:</b> {html.escape(str(warning))}</p>')
    parts.append(styled(plan.totals(), money=["total"]))
    if len(plan.new_contacts):
        parts.append(f"<p>{len(plan.new_contacts)} new Xero contacts will be created first.</p>")
    left = plan.context.get("day_calls_left")
    budget_note = f"{plan.write_calls} Xero write calls needed"
    if left is not None:
        budget_note += f"; {left} calls left in today's limit for this organisation"
        if plan.write_calls > max(0, left - 10):
            budget_note += (
                " — <b>does not fit: the oldest invoices go first, the rest wait for "
                "the next run</b>"
            )
    parts.append(f"<p>{budget_note}.</p>")
    ways = plan.ways()
    if ways:
        parts.append(
            "<p>How they go over (each booked by Xero with Nexudus' subtotal, tax and total): "
            + html.escape(", ".join(f"{n} {way}" for way, n in ways.items()))
            + ".</p>"
        )
    for note in sorted(set(plan.eligible.get("rate_note", pd.Series(dtype=str)).dropna()) - {""}):
        parts.append(f"<p>Currency: {html.escape(str(note))}.</p>")
    locked = plan.context.get("lock_date")
    if locked:
        when, label = locked
        parts.append(
            f"<p>Xero's {html.escape(str(label))} is {when.day} {when:%b %Y}: invoices dated on "
            "or before it are held back until the adviser moves it.</p>"
        )
    contacts = plan.contacts()
    if len(contacts):
        counts = contacts["match"].value_counts()
        parts.append(
            "<h4>Contacts</h4><p>Each customer's Xero contact: "
            + html.escape(
                ", ".join(f"{int(n)} {CONTACT_MATCHES.get(m, m)}" for m, n in counts.items())
            )
            + ". The ones matched otherwise than by recon's own contact number, or held back "
            "(a new one is listed in transfer_plan_contacts.csv):</p>"
        )
        others = contacts[~contacts["match"].isin(["number", "new"])]
        wanted = ("coworker_id", "contact_name", "email", "match", "xero_contact_id", "note")
        shown = [c for c in (*wanted, "candidates", "reason") if c in others.columns]
        parts.append(styled(others[shown]))
    parts.append("<h4>Eligible</h4>")
    parts.append(
        styled(
            plan.eligible.drop(columns=["xero_contact_id"], errors="ignore"),
            money=[
                "nexudus_subtotal",
                "nexudus_tax",
                "nexudus_total",
                "xero_subtotal",
                "xero_tax",
                "xero_total",
                "difference",
            ],
        )
    )
    if len(plan.excluded):
        parts.append(f"<h4>Excluded ({len(plan.excluded)})</h4>")
        parts.append(styled(plan.excluded, money=["nexudus_total"]))
    return "\n".join(parts)


# How an outcome's verdict (recon.outcomes.TABLE) colours its row.
VERDICT_SEVERITY = {
    Verdict.SUCCESS: "ok",
    Verdict.SKIPPED: "info",
    Verdict.WAITING: "warning",
    Verdict.FAILURE: "blocks",
}


def outcome_colours(kind: type[Outcome]) -> dict[Outcome, str]:
    """Each outcome of ``kind`` -> the severity its row is coloured with."""
    return {o: VERDICT_SEVERITY[o.verdict] for o in kind}


OUTCOME_COLOURS = outcome_colours(TransferOutcome)


def outcomes_html(
    kind: type[Outcome], frame: pd.DataFrame, *, money: list[str] | None = None
) -> str:
    """Per-invoice outcomes (a push's ``TransferOutcome``s or an apply's ``PaymentOutcome``s),
    each row coloured by its outcome's verdict."""
    return styled(frame.assign(severity=frame["outcome"].map(outcome_colours(kind))), money=money)


def transfer_result_html(result: Any) -> str:
    """A push's result as HTML: outcome counts, Xero calls and time, then each invoice's outcome."""
    counts = counts_text(TransferOutcome, result.counts())
    parts = [
        f"<h3>Transfer: {html.escape(counts) or 'nothing to do'}</h3>",
        f"<p>{result.calls.get('xero', 0)} Xero calls in {result.seconds:.1f} s.</p>",
    ]
    parts.append(
        outcomes_html(
            TransferOutcome, result.outcomes, money=["nexudus_total", "xero_total", "difference"]
        )
    )
    return "\n".join(parts)


def allocations_html(title: str, frame: pd.DataFrame, *, money: list[str]) -> str:
    """Credit-note allocations (a plan's rows or an allocate's outcomes) under ``title``, each row
    coloured by its ``severity`` column."""
    if frame.empty:
        return f"<h3>{html.escape(title)}</h3><p>No credit notes to allocate.</p>"
    return f"<h3>{html.escape(title)}</h3>\n" + styled(frame, money=money)


# How a status difference's row is coloured (Difference values: that enum lives a floor above).
DIFF_SEVERITY = {
    "paid in Xero, unpaid in Nexudus": "ok",
    "part-paid in Xero": "warning",
    "part-paid in Nexudus, less paid in Xero": "warning",
    "voided in Nexudus, live in Xero": "warning",
    "credit note raised in Nexudus, not allocated in Xero": "warning",
    "draft or awaiting approval in Xero": "info",
}
STATUS_MONEY = [
    "xero_total",
    "xero_amount_paid",
    "xero_amount_due",
    "xero_amount_credited",
    "nexudus_total",
    "nexudus_paid_amount",
    "nexudus_credited",
    "nexudus_due",
    "nexudus_total_at_transfer",
    "transferred_total",
]


def status_diff_html(diff: Any) -> str:
    """A status diff as HTML: the differences by kind with who acts, then each invoice whose sides
    differ, Nexudus' figures beside Xero's."""
    counts = (
        ", ".join(f"{v} {html.escape(str(k))}" for k, v in diff.counts().items())
        or "no differences"
    )
    parts = [
        f"<h3>Status sync — {html.escape(str(diff.context.get('organisation', '')))}: "
        f"{counts}</h3>",
        f"<p>{diff.context.get('transferred', 0)} transferred invoices compared; "
        f"{diff.calls.get('xero', 0)} Xero calls, {diff.calls.get('nexudus', 0)} Nexudus "
        "calls.</p>",
    ]
    if len(diff.differences):
        frame = diff.differences
        if "actor" not in frame.columns:
            frame = frame.assign(actor="")
        kinds = (
            frame.groupby("difference", sort=False)
            .agg(
                invoices=("invoice_number", "size"),
                actor=("actor", "first"),
                action=("action", "first"),
            )
            .reset_index()
        )
        parts.append(
            styled(kinds.assign(severity=kinds["difference"].map(DIFF_SEVERITY).fillna("blocks")))
        )
        # The per-invoice table leaves out ids and the (per-kind) action so it fits a screen; the
        # CSV has everything.
        shown = frame.drop(columns=["xero_id", "nexudus_invoice_id", "action"], errors="ignore")
        shown = shown.assign(severity=shown["difference"].map(DIFF_SEVERITY).fillna("blocks"))
        parts.append(styled(shown, money=STATUS_MONEY))
    return "\n".join(parts)
