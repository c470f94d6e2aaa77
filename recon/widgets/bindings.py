"""BindingPanel: show which Xero organisation a location books into, and confirm it with a button.

Floor 6 (see ``recon.widgets``). The panel shows the location's binding as the transfer checks
it (``recon.transfer.plan.settle_binding``): confirmed, not confirmed, bound to another
organisation, or refused for its currency. *Confirm* records a binding nobody has confirmed
yet in the ledger, with who confirmed it; it disables itself before the write and a second
press records nothing. Moving a location that is already bound is never a button: it takes
the params change the panel shows (``rebind: true``), on purpose.
"""

from __future__ import annotations

import getpass
import html
import threading
from typing import Any

import ipywidgets as widgets

from recon.bindings import BindingCheck, BindingState
from recon.errors import StepError
from recon.ledger import Ledger
from recon.session import Connection
from recon.transfer.plan import settle_binding

__all__ = ["BindingPanel"]


class BindingPanel:
    """A location's binding to the Xero organisation this connection reaches, and *Confirm*.

    Parameters
    ----------
    conn
        The connection whose location and organisation are shown.
    ledger
        Where the binding is recorded (``Ledger(conn.ledger_path)``, as the transfer uses).
    """

    def __init__(self, conn: Connection, ledger: Ledger) -> None:
        self.conn = conn
        self.ledger = ledger
        self._lock = threading.Lock()
        self.check = self._settle()
        self.text = widgets.HTML()
        self.button = widgets.Button(button_style="warning", icon="check")
        self.button.on_click(lambda _button: self._clicked())
        self.panel = widgets.VBox([self.text, self.button])
        self._refresh()

    def _settle(self) -> BindingCheck:
        return settle_binding(self.conn, self.ledger, self.conn.xero.fetch_currencies()["Code"])

    @property
    def can_confirm(self) -> bool:
        """Whether *Confirm* may record the binding (nobody has confirmed one yet)."""
        return self.check.state is BindingState.NOT_CONFIRMED

    def confirm(self, confirmed_by: str | None = None) -> BindingCheck:
        """Record the binding shown, confirmed by ``confirmed_by`` (default: this user's login).

        Raises ``StepError`` when there is nothing to confirm (already confirmed, bound to
        another organisation, refused for its currency), or a confirmation is under way.
        """
        if not self._lock.acquire(blocking=False):
            raise StepError("a confirmation of this binding is under way: wait for it")
        try:
            self.button.disabled = True
            if not self.can_confirm:
                raise StepError(f"nothing to confirm: {self.check.reason}")
            target = self.check.target
            self.ledger.record_binding(
                target.business_id,
                target.location,
                target.organisation_id,
                target.organisation_name,
                target.base_currency,
                confirmed_by=confirmed_by or _login(),
                source="notebook BindingPanel",
            )
            self.check = self._settle()
            return self.check
        finally:
            self._lock.release()
            self._refresh()

    def _clicked(self) -> None:
        try:
            self.confirm()
        except StepError as exc:
            self.text.value += f"<p><b>{html.escape(str(exc))}</b></p>"

    def _refresh(self) -> None:
        target = self.check.target
        colour = "green" if self.check.is_confirmed else "firebrick"
        self.text.value = (
            f"<p style='color:{colour}'>{html.escape(self.check.reason)}</p>"
            f"<p>Organisation id {html.escape(target.organisation_id)}: check it in Xero before "
            "confirming; every invoice of the location will be booked there.</p>"
        )
        self.button.description = f"Confirm: {target.location} books into " + (
            target.organisation_name
        )
        self.button.layout.width = "auto"
        self.button.disabled = not self.can_confirm or self._lock.locked()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.panel._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"<BindingPanel {self.check.target.describe()!r}: {self.check.state.value}>"


def _login() -> str:
    """Who is confirming: the login of the notebook's user, else a plain label."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "a notebook user"
