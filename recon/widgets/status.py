"""StatusPanel: the status sync's two gated writes, each after a preview and a confirmation.

Floor 3 (see ``recon.widgets``). *Mark N invoices paid in Nexudus* reveals
what would be written; *Confirm* writes it with a progress bar and shows each
invoice's outcome. *Change N invoices in Xero* does the same for the voids and
credit allocations the Nexudus side asks for (``recon.status_xero``): its preview
lists each invoice and change before anything is sent, a credit with the amount
the allocation plan (``plan_allocations``) would allocate. The logic is in
``request``/``confirm``/``cancel`` and ``request_xero``/``confirm_xero``/``cancel_xero``
so tests drive it without a browser. Each part applies at most once; the ledger
would make a second apply harmless anyway.
"""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

import ipywidgets as widgets
import pandas as pd

from recon.display import money_text, outcomes_html, styled
from recon.errors import ReconError, StepError
from recon.ledger import Ledger
from recon.outcomes import PaymentOutcome, XeroChangeOutcome, counts_text
from recon.session import Connection
from recon.status import Difference, StatusDiff, apply_paid
from recon.status_xero import apply_xero_changes, proposed_xero_changes
from recon.transfer import AllocationPlan, plan_allocations

__all__ = ["StatusPanel"]


def _decimal_total(amounts: pd.Series) -> Decimal:
    """Exact sum of one currency's Decimal amounts."""
    return sum(amounts, Decimal("0"))


class StatusPanel:
    """The *Mark N invoices paid in Nexudus* and *Change N invoices in Xero* buttons, each with its
    preview, confirmation, progress and results."""

    def __init__(self, conn: Connection, ledger: Ledger, diff: StatusDiff) -> None:
        self.conn = conn
        self.ledger = ledger
        self.diff = diff
        self.todo = diff.paid_in_xero
        self.result: pd.DataFrame | None = None
        self._confirming = False
        n = len(self.todo)
        self.button = widgets.Button(
            description=f"Mark {n} invoices paid in Nexudus",
            button_style="warning",
            disabled=n == 0,
            layout=widgets.Layout(width="auto"),
        )
        self.confirm_button = widgets.Button(description="Confirm", button_style="danger")
        self.cancel_button = widgets.Button(description="Cancel")
        self.question = widgets.HTML()
        self.confirm_row = widgets.HBox(
            [self.question, self.confirm_button, self.cancel_button],
            layout=widgets.Layout(display="none"),
        )
        self.progress = widgets.IntProgress(
            min=0, max=max(n, 1), description="Marked", layout=widgets.Layout(display="none")
        )
        self.output = widgets.Output()
        self.button.on_click(lambda _: self._safely(self.request))
        self.confirm_button.on_click(lambda _: self._safely(self.confirm))
        self.cancel_button.on_click(lambda _: self._safely(self.cancel))
        intro = widgets.HTML(
            f"<h4>Mark paid in Nexudus</h4><p>{n} invoices are fully paid in Xero and unpaid in "
            f"Nexudus ({html.escape(self._totals())}). Other differences are only reported.</p>"
        )
        # The allocation plan reads both sides, so only when the diff has a credit to preview.
        self.allocations: AllocationPlan | None = (
            plan_allocations(conn, ledger)
            if len(diff.of(Difference.CREDIT_NOTE_IN_NEXUDUS))
            else None
        )
        self.xero_todo = proposed_xero_changes(diff, self.allocations)
        self.xero_result: pd.DataFrame | None = None
        self._xero_confirming = False
        m = len(self.xero_todo)
        self.xero_button = widgets.Button(
            description=f"Change {m} invoices in Xero",
            button_style="warning",
            disabled=m == 0,
            layout=widgets.Layout(width="auto"),
        )
        self.xero_confirm_button = widgets.Button(description="Confirm", button_style="danger")
        self.xero_cancel_button = widgets.Button(description="Cancel")
        self.xero_question = widgets.HTML()
        self.xero_preview = widgets.HTML()
        self.xero_confirm_row = widgets.VBox(
            [
                self.xero_preview,
                widgets.HBox(
                    [self.xero_question, self.xero_confirm_button, self.xero_cancel_button]
                ),
            ],
            layout=widgets.Layout(display="none"),
        )
        self.xero_progress = widgets.IntProgress(
            min=0, max=max(m, 1), description="Changed", layout=widgets.Layout(display="none")
        )
        self.xero_output = widgets.Output()
        self.xero_button.on_click(lambda _: self._safely(self.request_xero, self.xero_output))
        self.xero_confirm_button.on_click(
            lambda _: self._safely(self.confirm_xero, self.xero_output)
        )
        self.xero_cancel_button.on_click(lambda _: self._safely(self.cancel_xero, self.xero_output))
        xero_intro = widgets.HTML(
            f"<h4>Void and credit in Xero</h4><p>{m} invoices were voided, deleted or credited in "
            "Nexudus after transfer and can be matched in Xero (void, or allocate the credit "
            "note). Nothing is sent before you confirm.</p>"
        )
        self.panel = widgets.VBox(
            [
                intro,
                self.button,
                self.confirm_row,
                self.progress,
                self.output,
                xero_intro,
                self.xero_button,
                self.xero_confirm_row,
                self.xero_progress,
                self.xero_output,
            ]
        )

    # ---- the logic ---------------------------------------------------------------------
    @property
    def is_confirming(self) -> bool:
        """Whether the confirmation row is showing (the button pressed, not yet confirmed or
        cancelled)."""
        return self._confirming

    def request(self) -> None:
        """Show what *Confirm* would write. Writes nothing."""
        if self.result is not None:
            raise StepError(
                "this panel has already marked its invoices paid: sync again for new differences"
            )
        if self.todo.empty:
            raise StepError("nothing to mark: no invoice is paid in Xero and unpaid in Nexudus")
        self._confirming = True
        self.question.value = (
            f"<b>This marks {len(self.todo)} invoices paid in Nexudus "
            f"({html.escape(self._totals())}) with Xero's payment dates. Confirm?</b>&nbsp;"
        )
        self.confirm_row.layout.display = "flex"

    def cancel(self) -> None:
        """Withdraw the confirmation; nothing is written."""
        self._confirming = False
        self.confirm_row.layout.display = "none"

    def confirm(self) -> pd.DataFrame:
        """Apply: mark the invoices paid (ledger first), with progress; returns each invoice's
        outcome."""
        if self.result is not None:
            return self.result
        if not self._confirming:
            raise StepError("press the Mark paid button first: it shows what will be written")
        self.button.disabled = self.confirm_button.disabled = self.cancel_button.disabled = True
        self.progress.layout.display = "flex"

        def tick(done: int, total: int) -> None:
            self.progress.max, self.progress.value = max(total, 1), done

        try:
            self.result = apply_paid(self.conn, self.ledger, self.diff, progress=tick)
        except ReconError as exc:
            self.button.disabled = self.confirm_button.disabled = self.cancel_button.disabled = (
                False
            )
            self._say(f"<p><b>Stopped:</b> {html.escape(str(exc))}</p>", f"Stopped: {exc}")
            raise
        self._confirming = False
        self.confirm_row.layout.display = "none"
        summary = counts_text(PaymentOutcome, self.result["outcome"])
        self._say(
            f"<p><b>{html.escape(summary)}</b></p>"
            + outcomes_html(PaymentOutcome, self.result, money=["amount"]),
            summary,
        )
        return self.result

    # ---- void and credit in Xero ---------------------------------------------------------
    @property
    def is_confirming_xero(self) -> bool:
        """Whether the Xero changes' preview and confirmation are showing."""
        return self._xero_confirming

    def request_xero(self) -> pd.DataFrame:
        """Show each change *Confirm* would send to Xero; returns that preview. Writes nothing."""
        if self.xero_result is not None:
            raise StepError(
                "this panel has already changed its invoices in Xero: sync again for new "
                "differences"
            )
        if self.xero_todo.empty:
            raise StepError(
                "nothing to change in Xero: no invoice was voided, deleted or "
                "credited in Nexudus after transfer"
            )
        self._xero_confirming = True
        self.xero_preview.value = styled(
            self.xero_todo[
                ["invoice_number", "difference", "change", "currency", "amount", "note"]
            ],
            money=["amount"],
        )
        self.xero_question.value = (
            f"<b>This sends {len(self.xero_todo)} changes to Xero (void, or allocate a credit "
            "note), as listed above. Confirm?</b>&nbsp;"
        )
        self.xero_confirm_row.layout.display = "flex"
        return self.xero_todo

    def cancel_xero(self) -> None:
        """Withdraw the Xero confirmation; nothing is written."""
        self._xero_confirming = False
        self.xero_confirm_row.layout.display = "none"

    def confirm_xero(self) -> pd.DataFrame:
        """Send the previewed changes to Xero (ledger first), with progress; returns each
        invoice's outcome."""
        if self.xero_result is not None:
            return self.xero_result
        if not self._xero_confirming:
            raise StepError("press the Change in Xero button first: it shows what will be sent")
        buttons = (self.xero_button, self.xero_confirm_button, self.xero_cancel_button)
        for b in buttons:
            b.disabled = True
        self.xero_progress.layout.display = "flex"

        def tick(done: int, total: int) -> None:
            self.xero_progress.max, self.xero_progress.value = max(total, 1), done

        try:
            self.xero_result = apply_xero_changes(
                self.conn, self.ledger, self.diff, confirm=True, progress=tick
            )
        except ReconError as exc:
            for b in buttons:
                b.disabled = False
            self._say(
                f"<p><b>Stopped:</b> {html.escape(str(exc))}</p>",
                f"Stopped: {exc}",
                self.xero_output,
            )
            raise
        self._xero_confirming = False
        self.xero_confirm_row.layout.display = "none"
        result = self.xero_result
        summary = counts_text(XeroChangeOutcome, result["outcome"])
        self._say(
            f"<p><b>{html.escape(summary)}</b></p>"
            + outcomes_html(XeroChangeOutcome, result, money=["amount"]),
            summary,
            self.xero_output,
        )
        return result

    # ---- display -----------------------------------------------------------------------
    def _totals(self) -> str:
        if self.todo.empty:
            return "nothing"
        grouped = self.todo.groupby("currency")["xero_total"].agg(_decimal_total)
        return "; ".join(f"{currency} {money_text(total)}" for currency, total in grouped.items())

    def _safely(self, action: Any, output: widgets.Output | None = None) -> None:
        try:
            action()
        except ReconError as exc:
            self._say(
                f"<p><b>Not done:</b> {html.escape(str(exc))}</p>", f"Not done: {exc}", output
            )

    def _say(self, html_text: str, plain: str, output: widgets.Output | None = None) -> None:
        (output or self.output).outputs = (
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"text/html": html_text, "text/plain": plain},
            },
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.panel._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (
            f"<StatusPanel {len(self.todo)} to mark paid, "
            f"{'done' if self.result is not None else 'not applied'}; "
            f"{len(self.xero_todo)} to change in Xero, "
            f"{'done' if self.xero_result is not None else 'not applied'}>"
        )
