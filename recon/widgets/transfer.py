"""TransferPanel: preview a transfer plan, narrow it, push it only after *Transfer* then *Confirm*.

Floor 6 (see ``recon.widgets``). *Confirm* takes a lock before any call: the
panel's own, shared by every panel of this kernel writing through the same
ledger to the same organisation, so a double click, or two panels on one plan,
never start two pushes; the click that finds it taken is refused with a
message. After a push the panel writes what ``recon run`` would have: the
step's ``transfer_outcomes.csv``, its step record in ``run.json``
(``recon.report.record_step``) and ``run_context.json``, in the params'
``output_dir``, so the report of a notebook session shows the push.
"""

from __future__ import annotations

import html
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pandas as pd

from recon.errors import ParamsError, ReconError, StepError
from recon.ledger import Ledger
from recon.outcomes import TransferOutcome, Verdict, counts_text
from recon.report import (
    RUN_CONTEXT,
    StepRun,
    StepStatus,
    is_notebook_session,
    record_step,
    unescape,
)
from recon.session import Connection
from recon.transfer import TransferPlan, TransferResult, push

__all__ = ["ALL_CURRENCIES", "OUTCOMES_CSV", "STEP", "TransferPanel", "push_lock"]

# ---- the transfer panel ---------------------------------------------------------------------
# The currency dropdown value meaning "every currency".
ALL_CURRENCIES = ""
# The step this panel runs, named as `recon run` names it (its notebook), so the report of a
# notebook session shows it on the same Summary row as a scheduled run would.
STEP = "02_transfer.ipynb"
# The step CSV the report's Transfers sheet is made from (``TransferResult.save`` writes it).
OUTCOMES_CSV = "transfer_outcomes.csv"
# One lock per ledger file and Xero organisation, shared by every panel of this kernel.
_PUSH_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_PUSH_LOCKS_GUARD = threading.Lock()


def push_lock(ledger: Ledger, tenant_id: str) -> threading.Lock:
    """The lock every panel of this kernel takes before pushing through ``ledger`` to
    ``tenant_id``."""
    key = (str(Path(ledger.path).resolve()), tenant_id)
    with _PUSH_LOCKS_GUARD:
        return _PUSH_LOCKS.setdefault(key, threading.Lock())


class TransferPanel:
    """Preview a transfer plan, narrow it, and push it to Xero after an explicit confirmation.

    Parameters
    ----------
    conn
        The ``Connection`` the plan was made with (``push`` writes through it).
    plan
        ``plan_transfer``'s result. The panel never changes it; the filter
        narrows a copy (``plan.only``).
    ledger
        The ledger ``push`` records every write in (``Ledger(conn.ledger_path)``).

    Nothing is written until ``request_transfer`` (the *Transfer* button) has
    shown what would be written and ``confirm`` (*Confirm*) is called. A panel
    pushes at most once: after a push the buttons stay disabled and a second
    ``confirm`` returns the same result without calling Xero; a ``confirm``
    while a push through the same ledger to the same organisation is running
    (a double click) is refused with ``StepError`` and says so in ``notice``.
    To transfer more, make a new plan and a new panel.
    """

    def __init__(self, conn: Connection, plan: TransferPlan, ledger: Ledger) -> None:
        tenant = str(getattr(conn.xero, "tenant_id", "") or "")
        if plan.tenant_id and tenant and plan.tenant_id != tenant:
            raise StepError(
                f"this plan was made for Xero organisation {plan.tenant_id}, but the connection "
                f"writes to {tenant}: run plan_transfer again with this connection"
            )
        self.conn = conn
        self.plan = plan
        self.ledger = ledger
        self.organisation = str(
            plan.context.get("organisation") or conn.organisation.get("Name") or "Xero"
        )
        self.result: TransferResult | None = None
        self.error: ReconError | None = None  # why the last push stopped, if it did
        self._text = ""
        self._currency = ALL_CURRENCIES
        self._current = plan
        self._requested: TransferPlan | None = None  # the plan the confirmation row describes
        tenant = str(plan.tenant_id or tenant or "")
        self._lock = push_lock(ledger, tenant)  # what keeps a second push from starting
        self._pushing = False  # for the buttons only: the lock is what guards
        self._syncing = False
        self._build_panel()
        self._show_preview()
        self._refresh()

    # ---- the logic (no widgets needed) ----------------------------------------------
    @property
    def current_plan(self) -> TransferPlan:
        """The plan narrowed by the filter: what the button says and what *Confirm* would push."""
        return self._current

    @property
    def currencies(self) -> list[str]:
        """The currencies of the plan's eligible invoices, for the dropdown."""
        return sorted(str(c) for c in self.plan.eligible["currency"].dropna().unique())

    @property
    def is_confirming(self) -> bool:
        """Whether the confirmation row is showing (Transfer pressed, not yet confirmed or
        cancelled)."""
        return self._requested is not None

    @property
    def is_done(self) -> bool:
        """Whether this panel has pushed (successfully or with per-invoice failures)."""
        return self.result is not None

    def set_filter(self, text: str | None = None, currency: str | None = None) -> TransferPlan:
        """Narrow the preview to invoices whose number or customer name contains ``text``, in
        ``currency``.

        Both filters are set at once; ``None`` or ``""`` means no filter on that
        field. A confirmation showing for the previous filter is withdrawn.
        Returns the narrowed plan.
        """
        if self._pushing or self.is_done:
            raise StepError(
                "this panel has already transferred its plan: run plan_transfer again for a new "
                "preview"
            )
        wanted = (currency or ALL_CURRENCIES).strip().upper()
        if wanted and wanted not in self.currencies:
            raise ParamsError(
                f"no eligible invoice is in {wanted}; the plan's currencies are "
                f"{', '.join(self.currencies) or 'none'}",
                key="currency",
            )
        self._text = (text or "").strip()
        self._currency = wanted
        self._current = self._narrow()
        self._requested = None
        self._sync_filters()
        self._show_preview()
        self._refresh()
        return self._current

    def request_transfer(self) -> None:
        """Show what *Confirm* would write, and where. Writes nothing."""
        if self._pushing or self.is_done:
            raise StepError(
                "this panel has already transferred its plan: run plan_transfer again to transfer "
                "more"
            )
        plan = self.current_plan
        if plan.eligible.empty:
            raise StepError(
                "nothing to transfer: the filter matches no eligible invoice (clear it, or see the "
                "excluded invoices and their reasons)"
            )
        self._requested = plan
        self.confirm_message.value = self._confirmation_html(plan)
        self._say(self.status, "")
        self._refresh()

    def cancel(self) -> None:
        """Withdraw the confirmation; nothing is written."""
        if self._pushing:
            return
        self._requested = None
        self._refresh()

    def confirm(self) -> TransferResult:
        """Push the plan the confirmation showed; returns the per-invoice outcomes.

        Raises ``StepError`` if *Transfer* was not pressed first, or if a push
        through the same ledger to the same organisation is running (this
        click is refused; nothing is sent for it). After a push, returns the
        same result again without writing anything.
        """
        if not self._lock.acquire(blocking=False):
            refused = (
                "A transfer is already running for this organisation and ledger: this click was "
                "refused and sent nothing. Wait for the running transfer to finish."
            )
            self.notice.value = f"<p><i>{html.escape(refused)}</i></p>"
            raise StepError(refused)
        try:
            if self.result is not None:
                return self.result
            plan = self._requested
            if plan is None:
                raise StepError(
                    "press Transfer first (panel.request_transfer()): it shows what would be "
                    "written before anything is"
                )
            return self._push(plan)
        finally:
            self._lock.release()

    def _push(self, plan: TransferPlan) -> TransferResult:
        """The push itself, under the lock; records the step whatever happens."""
        self._pushing = True
        self.error = None
        self._start_progress(len(plan.eligible))
        writing = f"Writing {len(plan.eligible)} invoices to {self.organisation}…"
        self._say(self.status, f"<p>{html.escape(writing)}</p>", writing)
        self._refresh()
        started = datetime.now(tz=UTC)
        try:
            result = push(self.conn, plan, self.ledger, progress=self._progress)
        except Exception as exc:
            self._record(
                StepRun(
                    STEP,
                    StepStatus.FAILED,
                    started,
                    datetime.now(tz=UTC),
                    f"{type(exc).__name__}: {exc}",
                    "Transfer panel, Confirm",
                    "pushed from the notebook's Transfer panel",
                )
            )
            if not isinstance(exc, ReconError):
                raise
            # Whatever reached Xero is in the ledger, so pressing Transfer again is safe.
            self.error = exc
            self.progress.bar_style = "danger"
            self._say(
                self.status,
                f"<p><b>The transfer stopped:</b> {html.escape(str(exc))}</p><p>What was written "
                "is recorded in the ledger; nothing will be written twice if you press Transfer "
                "again.</p>",
                f"The transfer stopped: {exc}",
            )
            raise
        finally:
            self._pushing = False
            self._requested = None
            self._refresh()
        self.result = result
        self._record(
            StepRun(
                STEP,
                StepStatus.OK,
                started,
                datetime.now(tz=UTC),
                note="pushed from the notebook's Transfer panel: "
                + (counts_text(TransferOutcome, result.counts()) or "nothing to do"),
            ),
            result,
        )
        self._finish(result)
        self._refresh()
        return result

    @property
    def output_dir(self) -> Path:
        """Where the panel writes the step's files: the params' ``output_dir``, as the notebook's
        own saves."""
        return Path(self.conn.params.output_dir)

    def _record(self, step: StepRun, result: TransferResult | None = None) -> None:
        """Write the step files ``recon run`` would have written: the outcomes (added to those of
        earlier pushes of this notebook session), the step record and the context."""
        folder = self.output_dir
        try:
            if result is not None:
                self._save_outcomes(folder, result)
            record_step(folder, self.conn.params, step)
            context = {
                "location": self.conn.location,
                "organisation": self.organisation,
                "tenant_id": str(getattr(self.conn.xero, "tenant_id", "") or ""),
            }
            tmp = folder / f".{RUN_CONTEXT}.tmp"
            tmp.write_text(json.dumps(context, indent=2) + "\n", "utf-8")
            tmp.replace(folder / RUN_CONTEXT)
        except OSError as exc:
            # The push is done and in the ledger; only the report's copy of it is missing.
            self.notice.value = (
                f"<p><b>The report's record of this transfer could not be written</b> to "
                f"{html.escape(str(folder))}: {html.escape(str(exc))}. The transfer itself is in "
                "Xero and the ledger.</p>"
            )

    @staticmethod
    def _save_outcomes(folder: Path, result: TransferResult) -> None:
        """``transfer_outcomes.csv`` with this push's rows, after the rows of earlier pushes of
        the same notebook session for other invoices."""
        path = folder / OUTCOMES_CSV
        if path.exists() and is_notebook_session(folder):
            earlier = pd.read_csv(path, dtype=str, keep_default_na=False).map(unescape)
            if "invoice_number" in earlier.columns:
                done = set(result.outcomes["invoice_number"].astype(str))
                earlier = earlier[~earlier["invoice_number"].isin(done)]
                merged = pd.concat(
                    [earlier.astype(object), result.outcomes.astype(object)], ignore_index=True
                )
                replace(result, outcomes=merged).save(folder)
                return
        result.save(folder)

    # ---- helpers ----------------------------------------------------------------------
    def _narrow(self) -> TransferPlan:
        eligible = self.plan.eligible
        if not self._text and not self._currency:
            return self.plan
        keep = pd.Series(True, index=eligible.index)
        if self._text:
            needle = self._text.casefold()
            keep &= eligible["invoice_number"].astype(str).str.casefold().str.contains(
                needle, regex=False
            ) | eligible["contact_name"].astype(str).str.casefold().str.contains(
                needle, regex=False
            )
        if self._currency:
            keep &= eligible["currency"] == self._currency
        return self.plan.only(eligible.loc[keep, "invoice_number"])

    def _confirmation_html(self, plan: TransferPlan) -> str:
        totals = "; ".join(f"{r.currency} {r.total:,.2f}" for r in plan.totals().itertuples())
        contacts = (
            f" and creates {len(plan.new_contacts)} new contact(s) first"
            if len(plan.new_contacts)
            else ""
        )
        where = " (sandbox)" if getattr(self.conn.params, "target", "") == "sandbox" else ""
        return (
            f"<b>This writes {len(plan.eligible)} invoices ({html.escape(totals)}) to "
            f"{html.escape(self.organisation)}{where}</b>{html.escape(contacts)}. Confirm?"
        )

    def _progress(self, done: int, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = min(done, self.progress.max)
        self.progress_label.value = f"{min(done, total)} of {total}"
        if done >= total and self.plan.options.write_back:
            # push writes each new Xero id back to Nexudus after the last batch: say so, or 100%
            # looks stuck.
            self.progress_label.value += " sent to Xero; storing the Xero ids in Nexudus…"

    def _start_progress(self, total: int) -> None:
        self.progress.max = max(total, 1)
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.progress_label.value = f"0 of {total}"
        self.progress_row.layout.display = None

    def _finish(self, result: TransferResult) -> None:
        outcomes = result.outcomes
        # Failed, unknown, or skipped because the run had to stop; an invoice the ledger already had
        # is not news.
        not_sent = outcomes[
            ~outcomes["outcome"].isin(TransferOutcome.judged(Verdict.SUCCESS))
            & (outcomes["messages"] != "already transferred (ledger)")
        ]
        self.progress.value = self.progress.max
        self.progress.bar_style = "warning" if len(not_sent) else "success"
        advice = (
            (
                f" {len(not_sent)} did not go: see the messages and fix columns below, correct "
                "what they say, then run the plan again (the ledger keeps anything from going "
                "twice)."
            )
            if len(not_sent)
            else ""
        )
        self._say(
            self.status,
            f"<p><b>{html.escape(str(result))}.</b>{html.escape(advice)}</p>",
            f"{result}.{advice}",
        )
        self._say(self.result_output, result._repr_html_(), repr(result))

    # ---- the widgets --------------------------------------------------------------------
    def _build_panel(self) -> None:
        self.text_filter = widgets.Text(
            placeholder="invoice number or customer contains…",
            description="Filter",
            continuous_update=False,
            layout=widgets.Layout(width="360px"),
        )
        counts = self.plan.eligible["currency"].value_counts()
        self.currency_filter = widgets.Dropdown(
            options=[("All currencies", ALL_CURRENCIES)]
            + [(f"{c} ({int(counts[c])})", c) for c in self.currencies],
            value=ALL_CURRENCIES,
            layout=widgets.Layout(width="200px"),
        )
        self.text_filter.observe(lambda _: self._filters_changed(), names="value")
        self.currency_filter.observe(lambda _: self._filters_changed(), names="value")
        self.transfer_button = widgets.Button(
            icon="upload", button_style="primary", layout=widgets.Layout(width="auto")
        )
        self.transfer_button.on_click(lambda _: self._clicked(self.request_transfer))
        self.confirm_message = widgets.HTML()
        self.confirm_button = widgets.Button(
            description="Confirm", icon="check", button_style="danger"
        )
        self.cancel_button = widgets.Button(description="Cancel", icon="times")
        self.confirm_button.on_click(lambda _: self._clicked(self.confirm))
        self.cancel_button.on_click(lambda _: self._clicked(self.cancel))
        self.confirm_row = widgets.HBox(
            [self.confirm_message, self.confirm_button, self.cancel_button],
            layout=widgets.Layout(display="none", align_items="center"),
        )
        self.progress = widgets.IntProgress(min=0, max=1, value=0, description="Writing")
        self.progress_label = widgets.Label()
        self.progress_row = widgets.HBox(
            [self.progress, self.progress_label], layout=widgets.Layout(display="none")
        )
        self.notice = widgets.HTML()  # a refused click, or a step record that could not be written
        self.status = widgets.Output()
        self.result_output = widgets.Output()
        self.preview = widgets.Output()
        heading = widgets.HTML(
            f"<h4>Transfer to {html.escape(self.organisation)}</h4><p>Nothing is written until you "
            "press <i>Transfer</i> and then <i>Confirm</i>. Narrow the invoices with the filter; "
            "the preview below shows what would go.</p>"
        )
        self.panel = widgets.VBox(
            [
                heading,
                widgets.HBox([self.text_filter, self.currency_filter]),
                self.transfer_button,
                self.confirm_row,
                self.progress_row,
                self.notice,
                self.status,
                self.result_output,
                self.preview,
            ]
        )

    def _filters_changed(self) -> None:
        if self._syncing:
            return
        self._clicked(lambda: self.set_filter(self.text_filter.value, self.currency_filter.value))

    def _sync_filters(self) -> None:
        """Make the filter widgets show the current filter without that counting as the user's
        change."""
        self._syncing = True
        try:
            if self.text_filter.value != self._text:
                self.text_filter.value = self._text
            if self.currency_filter.value != self._currency:
                self.currency_filter.value = self._currency
        finally:
            self._syncing = False

    def _clicked(self, action: Any) -> None:
        """Run a button's method; an error a person can act on is shown in the panel, not as a
        traceback."""
        try:
            action()
        except ReconError as exc:
            if exc is not self.error:  # a stopped push has already said why, at more length
                self._say(
                    self.status,
                    f"<p><b>Not done:</b> {html.escape(str(exc))}</p>",
                    f"Not done: {exc}",
                )

    def _show_preview(self) -> None:
        plan = self.current_plan
        self._say(self.preview, plan._repr_html_(), repr(plan))

    def _refresh(self) -> None:
        busy_or_done = self._pushing or self.is_done
        plan = self.current_plan
        if self.result is not None:
            counts = ", ".join(f"{v} {k}" for k, v in sorted(self.result.counts().items()))
            self.transfer_button.description = f"Transferred ({counts or 'nothing to do'})"
        else:
            self.transfer_button.description = plan.describe()
        self.transfer_button.disabled = busy_or_done or self.is_confirming or plan.eligible.empty
        self.confirm_row.layout.display = (
            None if self.is_confirming and not busy_or_done else "none"
        )
        self.confirm_button.disabled = busy_or_done or not self.is_confirming
        self.cancel_button.disabled = busy_or_done or not self.is_confirming
        self.text_filter.disabled = busy_or_done
        self.currency_filter.disabled = busy_or_done

    @staticmethod
    def _say(output: widgets.Output, html_text: str, plain: str = "") -> None:
        """Replace what an output area shows (works with or without a running kernel); ``""`` clears
        it."""
        output.outputs = (
            (
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"text/html": html_text, "text/plain": plain},
                },
            )
            if html_text
            else ()
        )

    # ---- display --------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.panel._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):  # the VBox's own text would repeat the whole preview table
            bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        state = "done" if self.is_done else "confirming" if self.is_confirming else "ready"
        return f"<TransferPanel {self.current_plan.describe()} to {self.organisation}: {state}>"
