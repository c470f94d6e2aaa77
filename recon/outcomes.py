"""What one write ended as: a transfer's, a payment's, an allocation's and a Xero change's
outcomes, and one table of what each means.

A leaf (imports nothing of recon). ``push``/``recover`` give every invoice a
``TransferOutcome``; ``apply_paid`` gives every payment a ``PaymentOutcome``;
``allocate`` gives every credit note an ``AllocationOutcome``;
``apply_xero_changes`` gives every invoice it voids or credits a
``XeroChangeOutcome``. Their values are the strings in the step CSVs
(``transfer_outcomes.csv``, ``status_applied.csv``, ``allocation_outcomes.csv``,
``status_xero_changes.csv``) and the ledger, so a member compares equal to the
text read back from either.

``TABLE`` is the one place that says, for every outcome, what people call it
(``label``: "created in Xero"), how it counts (``verdict``: a success, a
failure that goes on the report's Errors sheet, waiting for the next run, or
skipped) and, for a failure, what it means and what to do. The report, the
notebook panels and the HTML of a result all read it.

The enums share values (each has a ``failed`` and an ``unknown``, most a
``skipped`` or a ``refused``), and a StrEnum member equals (and hashes as) its
text, so the table is keyed by the enum and the value together:
``about(outcome)`` (or ``outcome.about``) finds a row.

``ReconReason`` names why recon itself, not Xero or Nexudus, did not write an invoice
or wrote it its own way (a call budget, its own checks, a binding not confirmed, a
lock date, a number clash, a lost answer, ...); ``REASONS`` gives each a plain label,
what it means and what to do, and ``reason_of(message)`` reads one back from the
message recon wrote (``transfer_outcomes.csv``'s ``messages``, a plan's ``reason``), so
that recon's own words are never explained as an unknown Xero message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Self

__all__ = [
    "REASONS",
    "TABLE",
    "About",
    "AllocationOutcome",
    "Outcome",
    "PaymentOutcome",
    "ReasonAbout",
    "ReconReason",
    "TransferOutcome",
    "Verdict",
    "XeroChangeOutcome",
    "about",
    "counts_text",
    "reason_of",
]


class Verdict(StrEnum):
    """How an outcome counts in the report and the panels."""

    SUCCESS = "success"  # written (or found already written): nothing to do
    WAITING = "waiting"  # not written yet by design: the next run writes it
    SKIPPED = "skipped"  # not written this time, and nothing is wrong with it
    FAILURE = "failure"  # not written, or not known to be: on the Errors sheet, needs a look


class Outcome(StrEnum):
    """What the outcome enums share: their row of ``TABLE`` and reading one back from text."""

    @property
    def step(self) -> str:
        """The write the outcome is of, as the report names it ("transfer", "payment",
        "allocation", "Xero change")."""
        raise NotImplementedError

    @property
    def about(self) -> About:
        """This outcome's row of ``TABLE``."""
        return about(self)

    @property
    def label(self) -> str:
        """What people call this outcome ("created in Xero")."""
        return about(self).label

    @property
    def verdict(self) -> Verdict:
        """How this outcome counts in the report and the panels."""
        return about(self).verdict

    @classmethod
    def of(cls, text: str | None) -> Self | None:
        """The member whose value is ``text`` (a CSV cell, a ledger state), or None if none is."""
        if text is None:
            return None
        try:
            return cls(text)
        except ValueError:
            return None

    @classmethod
    def judged(cls, verdict: Verdict) -> tuple[Self, ...]:
        """Every member the table gives ``verdict``, in the enum's order."""
        return tuple(o for o in cls if about(o).verdict is verdict)


class TransferOutcome(Outcome):
    """Every outcome of one invoice or credit note in a push (``transfer_outcomes.csv``).

    ``created`` and ``failed`` are also the states ``recover`` and ``push``
    record in the ledger (an adopted invoice is ``created`` there).
    """

    CREATED = "created"
    ADOPTED = "adopted"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    FAILED = "failed"
    REFUSED = "refused"
    UNKNOWN = "unknown"

    @property
    def step(self) -> str:
        """``"transfer"``: a push's outcomes are of transfers."""
        return "transfer"


class PaymentOutcome(Outcome):
    """Every outcome of marking one invoice paid in Nexudus (``status_applied.csv``).

    ``applied`` and ``failed`` are also the payment states ``apply_paid``
    records in the ledger (an invoice already paid is ``applied`` there).
    """

    APPLIED = "applied"
    ALREADY_PAID = "already paid"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def step(self) -> str:
        """``"payment"``: an apply's outcomes are of payments."""
        return "payment"


class AllocationOutcome(Outcome):
    """Every outcome of allocating one credit note to its original in Xero
    (``allocation_outcomes.csv``).

    ``allocated`` and ``failed`` are also the allocation states ``allocate``
    records in the ledger's ``allocations`` table.
    """

    ALLOCATED = "allocated"  # Xero saved it (or had it already, found after a lost answer)
    NOT_ALLOCATED = "not allocated"  # the plan gave a reason not to
    SKIPPED = "skipped"  # not sent this time: done since the plan was made, or the run stopped
    FAILED = "failed"  # Xero refused it: its words are in the messages
    UNKNOWN = "unknown"  # no answer and Xero could not be asked: the next run resolves it
    REFUSED = "refused"  # the plan is for another organisation than the connection

    @property
    def step(self) -> str:
        """``"allocation"``: an allocate's outcomes are of credit-note allocations."""
        return "allocation"


class XeroChangeOutcome(Outcome):
    """Every outcome of one change the status sync makes in Xero (``status_xero_changes.csv``):
    an invoice voided in Xero, or the credit notes raised against it allocated to it."""

    VOIDED = "voided"
    ALLOCATED = "allocated"
    ALREADY_DONE = "already done"
    REFUSED = "refused"
    WAITING = "waiting"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def step(self) -> str:
        """``"Xero change"``: a status apply's changes in Xero."""
        return "Xero change"


@dataclass(frozen=True)
class About:
    """One outcome: its label for people, how it counts, what it means and (if anything) the fix."""

    outcome: Outcome
    label: str
    verdict: Verdict
    meaning: str
    fix: str = ""

    @property
    def heading(self) -> str:
        """The outcome with its step, as the Errors sheet's ``kind`` ("transfer failed")."""
        return f"{self.outcome.step} {self.outcome.value}"


TABLE: Final[tuple[About, ...]] = (
    About(
        TransferOutcome.CREATED,
        "created in Xero",
        Verdict.SUCCESS,
        "Xero saved it and the ledger holds its Xero id.",
    ),
    About(
        TransferOutcome.ADOPTED,
        "adopted (already in Xero)",
        Verdict.SUCCESS,
        "Xero already had it, same customer and total, from an earlier try; the ledger now holds "
        "it.",
    ),
    About(
        TransferOutcome.SKIPPED,
        "skipped (not sent)",
        Verdict.SKIPPED,
        "Not sent this time: the ledger says it was transferred before, or the run had to stop "
        "(the messages say which).",
        "If the run stopped, run the transfer again: it sends only what is not in Xero yet.",
    ),
    About(
        TransferOutcome.DEFERRED,
        "deferred to the next run",
        Verdict.WAITING,
        "Today's Xero call budget did not reach it; the oldest invoices went first.",
        "Nothing: the next run sends it.",
    ),
    About(
        TransferOutcome.FAILED,
        "rejected by Xero",
        Verdict.FAILURE,
        "Xero did not accept it: its words are in the messages.",
        "Correct what Xero's message says (in Nexudus or the mapping), then run the transfer "
        "again.",
    ),
    About(
        TransferOutcome.REFUSED,
        "refused (wrong location)",
        Verdict.FAILURE,
        "recon did not send it: the plan was for another location or organisation.",
        "Plan and push again through this location's own connection.",
    ),
    About(
        TransferOutcome.UNKNOWN,
        "unknown (no answer from Xero)",
        Verdict.FAILURE,
        "Xero's answer was lost: the invoice may or may not be there.",
        "Run the transfer again: it looks the invoice up in Xero before sending anything.",
    ),
    About(
        PaymentOutcome.APPLIED,
        "marked paid in Nexudus",
        Verdict.SUCCESS,
        "Nexudus recorded the payment with Xero's payment date.",
    ),
    About(
        PaymentOutcome.ALREADY_PAID,
        "already paid in Nexudus",
        Verdict.SUCCESS,
        "Nexudus had it paid already; the ledger records it as applied and nothing was sent.",
    ),
    About(
        PaymentOutcome.SKIPPED,
        "skipped (already marked)",
        Verdict.SKIPPED,
        "The ledger says an earlier run marked it paid; nothing was sent.",
    ),
    About(
        PaymentOutcome.FAILED,
        "rejected by Nexudus",
        Verdict.FAILURE,
        "Nexudus refused to mark the invoice paid.",
        "Check the invoice in Nexudus (void, already part-paid, amount), then apply again.",
    ),
    About(
        PaymentOutcome.UNKNOWN,
        "unknown (no answer from Nexudus)",
        Verdict.FAILURE,
        "Nexudus did not answer; it may or may not have recorded the payment.",
        "Run the status sync with apply again: it reads the invoice first and never pays twice.",
    ),
    About(
        AllocationOutcome.ALLOCATED,
        "allocated in Xero",
        Verdict.SUCCESS,
        "Xero allocated the credit note to its original invoice (or had it already, found after "
        "a lost answer); the ledger records it.",
    ),
    About(
        AllocationOutcome.NOT_ALLOCATED,
        "not allocated (see reason)",
        Verdict.SKIPPED,
        "The plan proposed no allocation: the credit note or its original is not in a state to "
        "take one (the messages give the reason and what to do).",
    ),
    About(
        AllocationOutcome.SKIPPED,
        "skipped (not sent)",
        Verdict.SKIPPED,
        "Not sent this time: the ledger shows it allocated since the plan was made, or the run "
        "had to stop (the messages say which).",
        "If the run stopped, plan and allocate again: only what is still open is sent.",
    ),
    About(
        AllocationOutcome.FAILED,
        "refused by Xero",
        Verdict.FAILURE,
        "Xero did not allocate it: its words are in the messages.",
        "Correct what Xero's message says (the original paid or voided, another customer or "
        "currency), then plan and allocate again, or allocate by hand in Xero.",
    ),
    About(
        AllocationOutcome.UNKNOWN,
        "unknown (no answer from Xero)",
        Verdict.FAILURE,
        "Xero's answer was lost and it could not be asked: the allocation may or may not be there.",
        "Allocate again: it reads the credit note's allocations in Xero before sending anything.",
    ),
    About(
        AllocationOutcome.REFUSED,
        "refused (wrong organisation)",
        Verdict.FAILURE,
        "recon did not send it: the plan was made for another Xero organisation.",
        "Plan and allocate again through this location's own connection.",
    ),
    About(
        XeroChangeOutcome.VOIDED,
        "voided in Xero",
        Verdict.SUCCESS,
        "Xero voided the invoice (deleted it, if it was a draft), as Nexudus voided or deleted it.",
    ),
    About(
        XeroChangeOutcome.ALLOCATED,
        "credit allocated in Xero",
        Verdict.SUCCESS,
        "The credit notes Nexudus raised against the invoice are allocated to it in Xero.",
    ),
    About(
        XeroChangeOutcome.ALREADY_DONE,
        "already done in Xero",
        Verdict.SUCCESS,
        "An earlier run made the change (the ledger or Xero says so); nothing was sent.",
    ),
    About(
        XeroChangeOutcome.REFUSED,
        "refused (Xero's rules)",
        Verdict.FAILURE,
        "Not changed: Xero refused the allocation, or holds a payment or credit that stops the "
        "void; the message gives the reason, in Xero's words where Xero gave them.",
        "Do what the message says in Xero (remove or refund the payment, approve the credit note, "
        "correct the original), then sync and apply again.",
    ),
    About(
        XeroChangeOutcome.WAITING,
        "waiting (not sent yet)",
        Verdict.WAITING,
        "Not changed yet: the credit note is not in Xero yet, or the run stopped before it; the "
        "message says which.",
        "Run the transfer if the credit note is not in Xero yet, then apply again.",
    ),
    About(
        XeroChangeOutcome.FAILED,
        "rejected by Xero",
        Verdict.FAILURE,
        "Xero did not accept the change: its words are in the message.",
        "Correct what Xero's message says, then sync and apply again.",
    ),
    About(
        XeroChangeOutcome.UNKNOWN,
        "unknown (no answer from Xero)",
        Verdict.FAILURE,
        "Xero's answer was lost: the change may or may not have been made.",
        "Sync and apply again: recon reads Xero before sending anything twice.",
    ),
)

_BY_OUTCOME: Final[dict[tuple[type[Outcome], str], About]] = {
    (type(row.outcome), row.outcome.value): row for row in TABLE
}


def about(outcome: Outcome) -> About:
    """``outcome``'s row of ``TABLE``."""
    return _BY_OUTCOME[type(outcome), outcome.value]


def counts_text(kind: type[Outcome], counts: Mapping[str, int] | Iterable[str]) -> str:
    """``{"created": 3, "failed": 1}`` (or the outcomes themselves) as ``"3 created in Xero, 1
    rejected by Xero"``: labels from ``TABLE``, in the enum's order; text that is no member of
    ``kind`` is shown as it is, last."""
    if not isinstance(counts, Mapping):
        tally: dict[str, int] = {}
        for outcome in counts:
            tally[str(outcome)] = tally.get(str(outcome), 0) + 1
        counts = tally
    known = {str(o): o for o in kind}
    parts = [f"{counts[str(o)]} {o.label}" for o in kind if counts.get(str(o))]
    parts += [f"{n} {text}" for text, n in counts.items() if str(text) not in known and n]
    return ", ".join(parts)


# ---- recon's own reasons -------------------------------------------------------------------
class ReconReason(StrEnum):
    """Why recon itself held an invoice back, did not send it, or wrote it its own way: each
    kind of message recon writes (never Xero's or Nexudus' words)."""

    CALL_BUDGET = "call budget"
    ANOTHER_RUN = "another run"
    BINDING = "binding"
    WRONG_PLACE = "wrong place"
    CHECKS = "checks"
    RUN_STOPPED = "run stopped"
    NO_ANSWER = "no answer"
    RECOVERED = "recovered"
    ADOPTED = "adopted"
    ALREADY_DONE = "already done"
    BOOKED_DIFFERENTLY = "booked differently"
    NO_CONTACT = "no contact"
    NO_REASON_GIVEN = "no reason given"
    NUMBER_CLASH = "number clash"
    LOCK_DATE = "lock date"
    MAPPING = "mapping"
    NOT_FOR_XERO = "not for Xero"

    @property
    def about(self) -> ReasonAbout:
        """This reason's row of ``REASONS``."""
        return _REASON_ROWS[self]

    @property
    def label(self) -> str:
        """What people call this reason ("deferred: today's Xero call budget is spent")."""
        return _REASON_ROWS[self].label


@dataclass(frozen=True)
class ReasonAbout:
    """One of recon's own reasons: its label, what it means, the fix, and the forms (regular
    expressions, searched in order) of the messages recon writes for it."""

    reason: ReconReason
    label: str
    meaning: str
    fix: str
    forms: tuple[str, ...]


# In matching order: the first row one of whose forms is found in a message is its reason.
REASONS: Final[tuple[ReasonAbout, ...]] = (
    ReasonAbout(
        ReconReason.CALL_BUDGET,
        "deferred: today's Xero call budget is spent",
        "recon did not send it: the push needed more Xero calls than today's budget left; the "
        "oldest invoices went first.",
        "Nothing: the next run sends it.",
        (r"^deferred: this push needs \S+ Xero calls",),
    ),
    ReasonAbout(
        ReconReason.ANOTHER_RUN,
        "waiting: another run was writing",
        "recon did not send it: another run was writing to the same ledger and organisation, "
        "or changed these invoices in the ledger meanwhile.",
        "Nothing: the next run sends it, once the other run is done.",
        (r"^deferred: ", r"^not sent: another run changed "),
    ),
    ReasonAbout(
        ReconReason.BINDING,
        "held back: the organisation is not confirmed for the location",
        "recon did not send it: the location's Xero organisation is not confirmed, is another "
        "than the one confirmed, or cannot book the location's currency (recon.bindings).",
        "Do what the message says (confirm the binding in the params, or point the location "
        "at its organisation), then plan and push again.",
        (
            r"^refused before any call: ",
            r"^refused: this plan was made while ",
            r": not confirmed(?:;|$)",
            r"\): refused(?:;|$)",
            r" cannot book: refused",
        ),
    ),
    ReasonAbout(
        ReconReason.WRONG_PLACE,
        "refused: the plan is for another location or organisation",
        "recon did not send it: the plan was made for another location, tracking option or "
        "Xero organisation than the connection's.",
        "Plan and push again through the location's own connection.",
        (r"^refused: ",),
    ),
    ReasonAbout(
        ReconReason.CHECKS,
        "refused by recon's checks",
        "recon did not send it: the invoice cannot go as it is (no or a shared invoice number, "
        "a figure that is no amount, no currency or contact); the message names the invoice "
        "and the field.",
        "Correct the invoice in Nexudus as the message says, then plan and push again.",
        (r"^not sent: Nexudus invoice ",),
    ),
    ReasonAbout(
        ReconReason.RUN_STOPPED,
        "not sent: the run had to stop",
        "recon did not send it: the run stopped first (sign-in refused, a rate limit that "
        "outlasted the retries, Xero not reachable, or an unexpected error); what was sent is "
        "in the ledger.",
        "Fix what the message names if anything, then run the transfer again: it sends only "
        "what is not in Xero yet.",
        (r"^not sent: ",),
    ),
    ReasonAbout(
        ReconReason.NO_ANSWER,
        "unknown: no answer, and Xero could not be asked",
        "recon cannot tell whether Xero saved it: the answer was lost and Xero could not be "
        "asked afterwards (or another run is still sending it).",
        "Run the transfer again: it looks the invoice up in Xero before sending anything.",
        (r"^unknown: ",),
    ),
    ReasonAbout(
        ReconReason.RECOVERED,
        "recovered after an interrupted run",
        "An earlier run stopped before Xero's answer was recorded: recon found the invoice in "
        "Xero, or resent it under the same key so Xero cannot make it twice.",
        "Nothing.",
        (r"^recovered: ", r"^interrupted before Xero saved it"),
    ),
    ReasonAbout(
        ReconReason.ADOPTED,
        "adopted: Xero already had it",
        "Xero already held this invoice, same number, customer and total, from an earlier "
        "try; recon recorded it instead of sending it again.",
        "Nothing.",
        (r"^adopted: ",),
    ),
    ReasonAbout(
        ReconReason.ALREADY_DONE,
        "already in Xero",
        "Not sent again: the ledger, Xero or Nexudus' own integration shows it transferred.",
        "Nothing.",
        (
            r"^already transferred \(ledger\)",
            r"^already in Xero \(same invoice number\)",
            r"^already sent to Xero by Nexudus",
        ),
    ),
    ReasonAbout(
        ReconReason.BOOKED_DIFFERENTLY,
        "in Xero, but not as planned",
        "Xero holds the invoice with other figures (total, tax, currency) than recon planned; "
        "recon will not send it again.",
        "Check the invoice in Xero: void or correct it there, then run the status sync.",
        (
            r"^Xero booked ",
            r"^The invoice is in Xero \(id ",
            r"^Xero holds it \(id ",
            r"^found in Xero after an interrupted run, not as planned",
        ),
    ),
    ReasonAbout(
        ReconReason.NO_CONTACT,
        "failed: its Xero contact could not be created",
        "recon did not send it: the customer's Xero contact was refused; the contact's error "
        "says why.",
        "Correct the customer in Nexudus as the contact's error says, then plan and push again.",
        (r"^The Xero contact could not be created",),
    ),
    ReasonAbout(
        ReconReason.NO_REASON_GIVEN,
        "not saved, and Xero gave no reason",
        "Xero's answer says it did not save the invoice but names no validation error, or "
        "could not be read; Xero does not hold it.",
        "Run the transfer again; if it recurs, look at the invoice in Xero's own screens.",
        (r"^Xero did not save it and gave no reason", r"^Xero's answer for it could not be read"),
    ),
    ReasonAbout(
        ReconReason.NUMBER_CLASH,
        "held back: the invoice number is used in Xero",
        "Xero already uses this invoice number for another customer or total.",
        "Renumber one of the two (Nexudus' invoice number format per location), then plan again.",
        (r"^Xero has another invoice with this number", r" is already used in Xero by '"),
    ),
    ReasonAbout(
        ReconReason.LOCK_DATE,
        "held back: dated in Xero's locked period",
        "Xero refuses an approved invoice dated on or before its lock date.",
        "Ask the Xero adviser to move the lock date, or change the invoice date policy "
        "(invoice_date) in the params.",
        (r"^dated \S*, on or before Xero's (?:period|end of year) lock date",),
    ),
    ReasonAbout(
        ReconReason.MAPPING,
        "held back: the mapping blocks it",
        "A line's account or tax rate does not match Xero (the mapping check names it).",
        "Fix the mapping as the mapping check suggests, then plan again.",
        (r"^mapping: ",),
    ),
    ReasonAbout(
        ReconReason.NOT_FOR_XERO,
        "not for Xero: void or draft in Nexudus",
        "Void and draft invoices never transfer.",
        "Nothing.",
        (r"^void in Nexudus", r"^draft in Nexudus"),
    ),
)

_REASON_ROWS: Final[dict[ReconReason, ReasonAbout]] = {row.reason: row for row in REASONS}
_REASON_FORMS: Final[tuple[tuple[re.Pattern[str], ReconReason], ...]] = tuple(
    (re.compile(form), row.reason) for row in REASONS for form in row.forms
)


def reason_of(message: str | None) -> ReconReason | None:
    """The reason a message recon wrote is of, or None when recon did not write it (Xero's or
    Nexudus' own words, or nothing)."""
    for form, reason in _REASON_FORMS:
        if message and form.search(message):
            return reason
    return None
