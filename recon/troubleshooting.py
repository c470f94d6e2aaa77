"""What Xero's error messages, and recon's own, mean for a bookkeeper, and how to fix them.

Floor 2; imports only the leaf ``recon.outcomes``. ``explain(message)`` first asks
whether recon wrote the message itself (``recon.outcomes.reason_of``: deferred by the
call budget, refused by recon's checks, held back by a binding, a lock date or a number
clash, ...): those get their plain label, meaning and fix. Otherwise it matches a Xero
validation message against the table below (messages from shared/reference/nexudus.md
§12 and xero-api.md §13, verbatim where known) and returns its meaning and fix, in
Nexudus or in Xero. An unknown message says so and keeps Xero's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from recon.outcomes import ReconReason, reason_of


@dataclass(frozen=True)
class Explanation:
    """What one message means and how to fix it; ``known`` is false when recon does not know
    the message; ``reason`` is recon's own reason when recon wrote the message itself, and
    ``label`` says in a few words what it is."""

    message: str
    meaning: str
    fix: str
    known: bool = True
    reason: ReconReason | None = None
    label: str = "Xero's message"

    @property
    def is_recons_own(self) -> bool:
        """Whether recon wrote the message itself (not Xero)."""
        return self.reason is not None


# (pattern, meaning, fix). {0}, {1} are the pattern's groups.
_TABLE: list[tuple[str, str, str]] = [
    (
        r"Account code '(.*)' is not a valid code for this document",
        "A line's financial account ({0}) matches no Xero account that invoices may use.",
        "Fix the account on each line of the invoice in Nexudus, and on the item in the Nexudus "
        "chart of accounts so future invoices are right; or create account {0} in Xero.",
    ),
    (
        r"Account code or ID must be specified",
        "A line has no financial account.",
        "Assign a financial account to the line in Nexudus and to the item (Finance > Chart of "
        "Accounts).",
    ),
    (
        r"Account code '(.*)' has been archived, or deleted",
        "The line's account {0} is archived or deleted in Xero.",
        "Restore account {0} in Xero (Chart of accounts > Archived) or move the Nexudus item to an "
        "active account.",
    ),
    (
        r"Account must be valid",
        "The account on a line is not valid in Xero.",
        "Check the line's financial account in Nexudus against Xero's chart of accounts.",
    ),
    (
        r"Tax rate must be valid",
        "The tax rate on a line is not valid in Xero.",
        "Match the Nexudus tax rate to an active Xero tax rate (same name and percentage), or map "
        "it in the tax map.",
    ),
    (
        r"The TaxType code '?([^' ]+(?: [^' ]+)*)'? does not exist or cannot be used for this type "
        r"of transaction",
        "The tax type {0} does not exist in Xero, is not active, or cannot be used on sales.",
        "Use a Xero tax type code (not its display name) that is active and applies to revenue; "
        "fix it in the tax map.",
    ),
    (
        r"The TaxType code '(.*)' cannot be used with account code '(.*)'",
        "Xero does not allow tax type {0} on account {1} (e.g. an expenses rate on a sales "
        "account).",
        "Give the Nexudus item a sales tax rate, or move it to an account that accepts {0}.",
    ),
    (
        r"The TaxType code '(.*)' is not valid",
        "A tax rate's display name was sent where Xero needs its code.",
        "Map the Nexudus tax rate to the Xero TaxType code (e.g. OUTPUT2) in the tax map.",
    ),
    (
        r"Invoice # must be unique",
        "Xero already has an invoice with this number.",
        "recon adopts it when it is the same invoice; otherwise give each location its own invoice "
        "number format in Nexudus.",
    ),
    (
        r"Invoice not of valid status for modification",
        "The invoice is paid, voided or otherwise locked in Xero, so it cannot be changed.",
        "Change it in Xero by hand (remove the payment or credit it), or leave it and record the "
        "change in Nexudus.",
    ),
    (
        r"The document date cannot be before the (?:end of year|period) lock date, currently set "
        r"at (.*)",
        "The invoice date falls in a period locked in Xero (lock date {0}).",
        "Ask the accountant to move Xero's lock date, or re-date the invoice in Nexudus.",
    ),
    (
        r"(?:Organisation|The current organisation) is not subscribed to currency '?([A-Z]{3})'?",
        "The invoice is in {0}, which this Xero organisation does not use.",
        "Add {0} in Xero (Settings > Currencies; needs a plan with multi-currency) or bill the "
        "member in the base currency.",
    ),
    (
        r"Unable to assign an Archived contact",
        "The Xero contact for this customer is archived.",
        "Restore the contact in Xero, or archive-merge it with the live one.",
    ),
    (
        r"A Contact must be specified for this type of transaction",
        "The invoice has no customer.",
        "Give the invoice a customer (coworker) with a billing name in Nexudus.",
    ),
    (
        r"The contact name .* is already assigned to another contact",
        "Another Xero contact already has this name.",
        "recon keys contacts on a stable number; rename one of the contacts in Xero or Nexudus.",
    ),
    (
        r"The contact name must be 255 characters or less",
        "The customer's billing name is longer than Xero allows (255 characters).",
        "Shorten the coworker's billing or company name in Nexudus.",
    ),
    (
        r"Item code '(.*)' is not valid",
        "The item code {0} does not exist in Xero.",
        "Remove the item code or create the item in Xero.",
    ),
    (
        r"The description field is mandatory for each line item",
        "A line has no description.",
        "Give the invoice line a description in Nexudus.",
    ),
    (
        r"Payments can only be made against Authorised documents",
        "A payment was sent for an invoice that is not approved in Xero.",
        "Approve the invoice in Xero first.",
    ),
    (
        r"Payment amount exceeds the amount outstanding on this document",
        "The payment is more than the invoice still owes.",
        "Check for a payment already recorded in Xero.",
    ),
    (
        r"TokenExpired|AuthenticationUnsuccessful",
        "Xero did not accept the sign-in.",
        "Sign in again (or check the Custom Connection's client id and secret).",
    ),
    (
        r"Invoice Total must be greater than or equal to zero",
        "The invoice total is negative.",
        "Send it as a credit note instead.",
    ),
]
_COMPILED = [(re.compile(p, re.IGNORECASE), m, f) for p, m, f in _TABLE]


def explain(message: str) -> Explanation:
    """Meaning and fix of one message, recon's own or Xero's; unknown messages are kept
    verbatim."""
    reason = reason_of(message)
    if reason is not None:
        row = reason.about
        return Explanation(message, row.meaning, row.fix, reason=reason, label=row.label)
    for pattern, meaning, fix in _COMPILED:
        match = pattern.search(message or "")
        if match:
            groups = [g or "" for g in match.groups()]
            return Explanation(message, meaning.format(*groups), fix.format(*groups))
    return Explanation(
        message,
        f"recon does not know this Xero message: {message}",
        "Read Xero's message; if it recurs, add it to recon/troubleshooting.py.",
        known=False,
        label="unknown Xero message",
    )


def explain_all(messages: list[str]) -> tuple[str, str]:
    """Meanings and fixes of several messages, each joined with ' | '."""
    found = [explain(m) for m in messages]
    return " | ".join(e.meaning for e in found), " | ".join(e.fix for e in found)
