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

Each *Confirm* takes a real lock before any call: one per ledger file and Xero
organisation, shared by every status panel of this kernel, so a double click (or a
second panel) never starts a second apply; the click that finds it taken is refused
with a message (``notice``) and sends nothing. ``apply_paid`` then takes the ledger's
cross-process writer lock, so a scheduled run and a notebook never write at once.
After an apply the panel writes what ``recon run`` would have: ``status_applied.csv``
(or ``status_xero_changes.csv``) and the step's record in ``run.json``
(``recon.report.record_step``), in the params' ``output_dir``, so the report of a
notebook session shows it.
"""

from __future__ import annotations

import html
import threading
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from recon.cells import csv_safe
from recon.display import money_text, outcomes_html, styled
from recon.errors import ReconError, StepError
from recon.ledger import Ledger
from recon.outcomes import PaymentOutcome, XeroChangeOutcome, counts_text
from recon.report import StepRun, StepStatus, is_notebook_session, record_step, unescape
from recon.session import Connection
from recon.status import Difference, StatusDiff, apply_paid
from recon.status_xero import apply_xero_changes, proposed_xero_changes
from recon.transfer import AllocationPlan, plan_allocations

__all__ = ["APPLIED_CSV", "STEP", "XERO_CHANGES_CSV", "StatusPanel", "status_lock"]

# The step this panel is part of, named as `recon run` names it (its notebook).
STEP = "03_status_sync.ipynb"
# The step CSVs the report reads the applies from (the notebook writes the same in a run).
APPLIED_CSV = "status_applied.csv"
XERO_CHANGES_CSV = "status_xero_changes.csv"
# One lock per ledger file and Xero organisation, shared by every status panel of this kernel.
_STATUS_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_STATUS_LOCKS_GUARD = threading.Lock()
REFUSED_CLICK = (
    "An apply is already running for this organisation and ledger: this click was refused and "
    "sent nothing. Wait for the running one to finish."
)


def status_lock(ledger: Ledger, tenant_id: str) -> threading.Lock:
    """The lock every status panel of this kernel takes before writing through ``ledger`` for
    ``tenant_id`` (marking paid in Nexudus, or changing invoices in Xero)."""
    key = (str(Path(ledger.path).resolve()), tenant_id)
    with _STATUS_LOCKS_GUARD:
        return _STATUS_LOCKS.setdefault(key, threading.Lock())


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
        self._lock = status_lock(ledger, str(getattr(conn.xero, "tenant_id", "") or ""))
        self.notice = widgets.HTML()  # a refused click, or a step record that could not be written
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
                self.notice,
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
        outcome.

        Raises ``StepError`` if the Mark paid button was not pressed first, or if an apply
        through the same ledger for the same organisation is running in this kernel (a double
        click: refused, nothing sent for it). After an apply, returns the same result again.
        """
        if not self._lock.acquire(blocking=False):
            self.notice.value = f"<p><i>{html.escape(REFUSED_CLICK)}</i></p>"
            raise StepError(REFUSED_CLICK)
        try:
            if self.result is not None:
                return self.result
            if not self._confirming:
                raise StepError("press the Mark paid button first: it shows what will be written")
            return self._apply_paid()
        finally:
            self._lock.release()

    def _apply_paid(self) -> pd.DataFrame:
        """The apply itself, under the lock; records the step whatever happens."""
        self.button.disabled = self.confirm_button.disabled = self.cancel_button.disabled = True
        self.progress.layout.display = "flex"

        def tick(done: int, total: int) -> None:
            self.progress.max, self.progress.value = max(total, 1), done

        started = datetime.now(tz=UTC)
        try:
            result = apply_paid(self.conn, self.ledger, self.diff, progress=tick)
        except ReconError as exc:
            self._record(StepStatus.FAILED, started, "Status panel, Mark paid, Confirm", exc)
            self.button.disabled = self.confirm_button.disabled = self.cancel_button.disabled = (
                False
            )
            self._say(f"<p><b>Stopped:</b> {html.escape(str(exc))}</p>", f"Stopped: {exc}")
            raise
        self.result = result
        self._confirming = False
        self.confirm_row.layout.display = "none"
        summary = counts_text(PaymentOutcome, result["outcome"])
        self._record(
            StepStatus.OK,
            started,
            "",
            None,
            (APPLIED_CSV, result),
            f"marked paid from the notebook's status panel: {summary or 'nothing to do'}",
        )
        self._say(
            f"<p><b>{html.escape(summary)}</b></p>"
            + outcomes_html(PaymentOutcome, result, money=["amount"]),
            summary,
        )
        return result

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
        invoice's outcome. A click while an apply of this ledger and organisation runs in this
        kernel is refused with ``StepError`` and sends nothing."""
        if not self._lock.acquire(blocking=False):
            self.notice.value = f"<p><i>{html.escape(REFUSED_CLICK)}</i></p>"
            raise StepError(REFUSED_CLICK)
        try:
            if self.xero_result is not None:
                return self.xero_result
            if not self._xero_confirming:
                raise StepError("press the Change in Xero button first: it shows what will be sent")
            return self._apply_xero()
        finally:
            self._lock.release()

    def _apply_xero(self) -> pd.DataFrame:
        """The Xero changes, under the panel's lock and the ledger's writer lock."""
        buttons = (self.xero_button, self.xero_confirm_button, self.xero_cancel_button)
        for b in buttons:
            b.disabled = True
        self.xero_progress.layout.display = "flex"

        def tick(done: int, total: int) -> None:
            self.xero_progress.max, self.xero_progress.value = max(total, 1), done

        started = datetime.now(tz=UTC)
        tenant = str(getattr(self.conn.xero, "tenant_id", "") or "")
        try:
            with self.ledger.writer(tenant, f"change invoices in Xero for {self.conn.location}"):
                result = apply_xero_changes(
                    self.conn, self.ledger, self.diff, confirm=True, progress=tick
                )
        except ReconError as exc:
            self._record(StepStatus.FAILED, started, "Status panel, Change in Xero, Confirm", exc)
            for b in buttons:
                b.disabled = False
            self._say(
                f"<p><b>Stopped:</b> {html.escape(str(exc))}</p>",
                f"Stopped: {exc}",
                self.xero_output,
            )
            raise
        self.xero_result = result
        self._xero_confirming = False
        self.xero_confirm_row.layout.display = "none"
        summary = counts_text(XeroChangeOutcome, result["outcome"])
        self._record(
            StepStatus.OK,
            started,
            "",
            None,
            (XERO_CHANGES_CSV, result),
            f"changed in Xero from the notebook's status panel: {summary or 'nothing to do'}",
        )
        self._say(
            f"<p><b>{html.escape(summary)}</b></p>"
            + outcomes_html(XeroChangeOutcome, result, money=["amount"]),
            summary,
            self.xero_output,
        )
        return result

    # ---- the step files a notebook session's report is built from -------------------------
    @property
    def output_dir(self) -> Path:
        """Where the panel writes the step's files: the params' ``output_dir``."""
        return Path(self.conn.params.output_dir)

    def _record(
        self,
        status: StepStatus,
        started: datetime,
        where: str,
        error: ReconError | None,
        table: tuple[str, pd.DataFrame] | None = None,
        note: str = "",
    ) -> None:
        """Write what ``recon run`` would have: the outcomes CSV (after the rows of earlier
        applies of this notebook session for other invoices) and the step record."""
        folder = self.output_dir
        try:
            if table is not None:
                self._save_table(folder, *table)
            record_step(
                folder,
                self.conn.params,
                StepRun(
                    STEP,
                    status,
                    started,
                    datetime.now(tz=UTC),
                    f"{type(error).__name__}: {error}" if error is not None else "",
                    where,
                    note,
                ),
            )
        except OSError as exc:
            # The apply is done and in the ledger; only the report's copy of it is missing.
            self.notice.value = (
                f"<p><b>The report's record of this apply could not be written</b> to "
                f"{html.escape(str(folder))}: {html.escape(str(exc))}. The apply itself is in "
                "the ledger.</p>"
            )

    @staticmethod
    def _save_table(folder: Path, name: str, frame: pd.DataFrame) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        if path.exists() and is_notebook_session(folder):
            earlier = pd.read_csv(path, dtype=str, keep_default_na=False).map(unescape)
            if "invoice_number" in earlier.columns:
                done = set(frame["invoice_number"].astype(str))
                earlier = earlier[~earlier["invoice_number"].isin(done)]
                frame = pd.concat([earlier.astype(object), frame.astype(object)], ignore_index=True)
        tmp = folder / f".{name}.tmp"
        csv_safe(frame).to_csv(tmp, index=False)
        tmp.replace(path)

    # ---- display -----------------------------------------------------------------------
    def _totals(self) -> str:
        if self.todo.empty:
            return "nothing"
        grouped = self.todo.groupby("currency")["xero_total"].agg(_decimal_total)
        return "; ".join(f"{currency} {money_text(total)}" for currency, total in grouped.items())

    def _safely(self, action: Any, output: widgets.Output | None = None) -> None:
        """Run a button's method; an error a person can act on is shown in the panel. A refused
        click says so in ``notice`` only: the output area belongs to the running apply, whose
        headline must stay the one that agrees with its table."""
        try:
            action()
        except ReconError as exc:
            if str(exc) == REFUSED_CLICK:
                return
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
