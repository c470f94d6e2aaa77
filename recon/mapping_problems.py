"""The fixed set of problems the mapping check reports, with what each means and how to fix it.

Floor 2, no imports from recon. Each problem has a code (the ``problem``
column), a severity and a sentence for the accountant. ``blocks`` problems stop
an invoice from transferring (Nexudus' own rule: account code and name
identical, tax rate name and percentage identical — shared/reference/nexudus.md
§3 — or Xero would reject the line); ``warning`` ones transfer but deserve a
look; ``info`` ones are housekeeping.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """How much a mapping row matters: ok, blocks (the invoice cannot transfer), warning or info."""

    OK = "ok"
    BLOCKS = "blocks"
    WARNING = "warning"
    INFO = "info"


class Problem(StrEnum):
    """Every ``problem`` value the mapping check can report."""

    OK = "ok"
    # accounts
    NO_ACCOUNT = "line has no account"
    ACCOUNT_MISSING = "missing in Xero"
    ACCOUNT_NAME_DIFFERS = "code matches but name differs"
    ACCOUNT_ARCHIVED = "archived in Xero"
    ACCOUNT_NOT_ALLOWED = "Xero refuses this account on invoices"
    NOT_REVENUE = "not a revenue/sales account"
    # tax rates
    NO_TAX_RATE = "line has no tax rate"
    TAX_MISSING = "tax rate missing"
    TAX_ARCHIVED = "tax rate archived/deleted"
    TAX_PERCENTAGE_DIFFERS = "percentage differs"
    TAX_AMBIGUOUS = "ambiguous"
    TAX_NOT_ALLOWED = "tax type not allowed on that account"
    MAPPING_UNUSED = "unused mapping entry"
    # Nexudus' Payments and Deposits accounts (nexudus.md §7.4, §11): checked even when no
    # line of the period uses them, since Nexudus' own payment transfers post to them.
    SETUP_ACCOUNT_MISSING = "payments/deposits account missing in Xero"
    SETUP_ACCOUNT_NAME_DIFFERS = "payments/deposits account: name differs"
    SETUP_ACCOUNT_ARCHIVED = "payments/deposits account archived in Xero"
    PAYMENTS_NOT_ALLOWED = "Xero cannot take payments into this account"

    @property
    def severity(self) -> Severity:
        """How much this problem matters."""
        return SEVERITY[self]

    @property
    def meaning(self) -> str:
        """What this problem means, in a sentence for the accountant."""
        return MEANING[self]


SEVERITY: dict[Problem, Severity] = {
    Problem.OK: Severity.OK,
    Problem.NO_ACCOUNT: Severity.BLOCKS,
    Problem.ACCOUNT_MISSING: Severity.BLOCKS,
    Problem.ACCOUNT_NAME_DIFFERS: Severity.BLOCKS,
    Problem.ACCOUNT_ARCHIVED: Severity.BLOCKS,
    Problem.ACCOUNT_NOT_ALLOWED: Severity.BLOCKS,
    # Xero accepts a sales line on an expense account; the books would be wrong, not the transfer.
    Problem.NOT_REVENUE: Severity.WARNING,
    Problem.NO_TAX_RATE: Severity.BLOCKS,
    Problem.TAX_MISSING: Severity.BLOCKS,
    Problem.TAX_ARCHIVED: Severity.BLOCKS,
    Problem.TAX_PERCENTAGE_DIFFERS: Severity.BLOCKS,
    Problem.TAX_AMBIGUOUS: Severity.BLOCKS,
    Problem.TAX_NOT_ALLOWED: Severity.BLOCKS,
    Problem.MAPPING_UNUSED: Severity.INFO,
    # recon transfers no payments, so these block none of its invoices; Nexudus' own
    # payment transfer (and any deposit line later in the year) would fail on them.
    Problem.SETUP_ACCOUNT_MISSING: Severity.WARNING,
    Problem.SETUP_ACCOUNT_NAME_DIFFERS: Severity.WARNING,
    Problem.SETUP_ACCOUNT_ARCHIVED: Severity.WARNING,
    Problem.PAYMENTS_NOT_ALLOWED: Severity.WARNING,
}

MEANING: dict[Problem, str] = {
    Problem.OK: "Matches Xero exactly.",
    Problem.NO_ACCOUNT: (
        "The invoice line has no financial account; Xero answers 'Account code or "
        "ID must be specified.'"
    ),
    Problem.ACCOUNT_MISSING: (
        "No Xero account has this code; Xero answers 'Account code ... is not "
        "a valid code for this document.'"
    ),
    Problem.ACCOUNT_NAME_DIFFERS: (
        "The Xero account with this code has another name; Nexudus needs code and name identical."
    ),
    Problem.ACCOUNT_ARCHIVED: (
        "The Xero account exists but is archived or deleted; Xero refuses lines on it."
    ),
    Problem.ACCOUNT_NOT_ALLOWED: (
        "The Xero account is a bank or system account, which invoice lines cannot use."
    ),
    Problem.NOT_REVENUE: (
        "The Xero account is not a revenue/sales (or liability) account; sales "
        "would be booked as something else."
    ),
    Problem.NO_TAX_RATE: (
        "The invoice line has no tax rate name, so there is nothing to match in Xero; "
        "Nexudus' own transfer fails on it too."
    ),
    Problem.TAX_MISSING: "No Xero tax rate has this name (and the tax map names none).",
    Problem.TAX_ARCHIVED: "The Xero tax rate of this name is archived or deleted.",
    Problem.TAX_PERCENTAGE_DIFFERS: (
        "The names match but the percentages differ, so tax and totals would not reconcile."
    ),
    Problem.TAX_AMBIGUOUS: (
        "No Xero tax rate has this name and several have this percentage; recon will not guess."
    ),
    Problem.TAX_NOT_ALLOWED: (
        "Xero does not allow this tax type on the account's class (e.g. an "
        "expenses rate on a sales account)."
    ),
    Problem.MAPPING_UNUSED: "The tax map has an entry that no invoice line in the period uses.",
    Problem.SETUP_ACCOUNT_MISSING: (
        "A Nexudus Payments or Deposits account has no Xero account with its code; payments "
        "Nexudus sends to Xero (or deposit lines) would be refused."
    ),
    Problem.SETUP_ACCOUNT_NAME_DIFFERS: (
        "The Xero account with this code has another name; Nexudus needs code and name identical."
    ),
    Problem.SETUP_ACCOUNT_ARCHIVED: "The Xero account exists but is archived or deleted.",
    Problem.PAYMENTS_NOT_ALLOWED: (
        "Payments go only into a Xero bank account or one with 'Enable payments to this "
        "account' ticked."
    ),
}
