"""StatusPanel: mark in Nexudus the invoices fully paid in Xero, after a confirmation.

Floor 3 (see ``recon.widgets``). *Mark N invoices paid in Nexudus* reveals
what would be written; *Confirm* writes it with a progress bar and shows each
invoice's outcome. The logic is in ``request``/``confirm``/``cancel`` so tests
drive it without a browser. A panel applies at most once; the ledger would
make a second apply harmless anyway.
"""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

import ipywidgets as widgets
import pandas as pd

from recon.display import money_text, outcomes_html
from recon.errors import ReconError, StepError
from recon.ledger import Ledger
from recon.outcomes import PaymentOutcome, counts_text
from recon.session import Connection
from recon.status import StatusDiff, apply_paid

__all__ = ["StatusPanel"]


def _decimal_total(amounts: pd.Series) -> Decimal:
    """Exact sum of one currency's Decimal amounts."""
    return sum(amounts, Decimal("0"))


class StatusPanel:
    """The *Mark N invoices paid in Nexudus* button, its confirmation, progress and results."""

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
        self.panel = widgets.VBox(
            [intro, self.button, self.confirm_row, self.progress, self.output]
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

    # ---- display -----------------------------------------------------------------------
    def _totals(self) -> str:
        if self.todo.empty:
            return "nothing"
        grouped = self.todo.groupby("currency")["xero_total"].agg(_decimal_total)
        return "; ".join(f"{currency} {money_text(total)}" for currency, total in grouped.items())

    def _safely(self, action: Any) -> None:
        try:
            action()
        except ReconError as exc:
            self._say(f"<p><b>Not done:</b> {html.escape(str(exc))}</p>", f"Not done: {exc}")

    def _say(self, html_text: str, plain: str) -> None:
        self.output.outputs = (
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
            f"{'done' if self.result is not None else 'not applied'}>"
        )
