"""The fixed set of problems the mapping check reports, with what each means and how to fix it.

Floor 2, no imports from recon. Each problem has a code (the ``problem``
column), a severity and a sentence for the accountant. ``blocks`` problems stop
an invoice from transferring (Nexudus' own rule: account code and name
identical, tax rate name and percentage identical — shared/reference/nexudus.md
§3 — or Xero would reject the line); ``warning`` ones transfer but deserve a
look; ``info`` ones are housekeeping.

``xero_message(problem, ...)`` is what Xero would answer if a line with the problem were sent,
in Xero's own words (shared/reference/xero-api.md §8, §13; nexudus.md §12), or, for a problem
Xero would let through, a sentence starting "none:" that says what would happen instead.
"""

from __future__ import annotations

from collections.abc import Iterable
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


# What Xero answers for a line with each problem, verbatim; {account_code} and {tax_type} are the
# line's. Sources:
# - "Account code or ID must be specified.": nexudus.md §12 (Nexudus' troubleshooting table).
# - "Account code '200' is not a valid code for this document.": xero-api.md §8 (the 400
#   ValidationException example) and §13 ("account code"); nexudus.md §12. Xero gives the same
#   answer for a bank or system account on a sales line (ASSUMPTION: §13 and nexudus.md §12 say
#   only "matches no Xero account"; the real service refuses those accounts on invoices).
# - The archived account: nexudus.md §12 lists "archived account" among the messages met and
#   xero-api.md §13 has no verbatim line for it, so the wording is UNVERIFIED (it is the one the
#   sandbox gives and recon/troubleshooting.py explains).
# - "The TaxType code GST on Income does not exist or cannot be used for this type of
#   transaction." and "The TaxType code 'GST on Income' cannot be used with account code
#   '40010-01'.": xero-api.md §13 ("tax type"); the second also §5. A rate matched by no Xero
#   TaxType is sent under its Nexudus name, as in §13's example.
XERO_MESSAGE: dict[Problem, str] = {
    Problem.NO_ACCOUNT: "Account code or ID must be specified.",
    Problem.ACCOUNT_MISSING: "Account code '{account_code}' is not a valid code for this document.",
    Problem.ACCOUNT_NOT_ALLOWED: (
        "Account code '{account_code}' is not a valid code for this document."
    ),
    Problem.ACCOUNT_ARCHIVED: (
        "Account code '{account_code}' has been archived, or deleted. Each line item must "
        "reference a valid account."
    ),
    Problem.TAX_MISSING: (
        "The TaxType code {tax_type} does not exist or cannot be used for this type of transaction."
    ),
    Problem.TAX_AMBIGUOUS: (
        "The TaxType code {tax_type} does not exist or cannot be used for this type of transaction."
    ),
    Problem.TAX_ARCHIVED: (
        "The TaxType code {tax_type} does not exist or cannot be used for this type of transaction."
    ),
    Problem.TAX_NOT_ALLOWED: (
        "The TaxType code '{tax_type}' cannot be used with account code '{account_code}'."
    ),
}

# Problems Xero would let through: what would happen instead.
XERO_LETS_THROUGH: dict[Problem, str] = {
    Problem.OK: "",
    Problem.ACCOUNT_NAME_DIFFERS: (
        "none: Xero files the line by its account code; Nexudus' own rule wants the names identical"
    ),
    Problem.NOT_REVENUE: "none: Xero books the sale on this account",
    Problem.NO_TAX_RATE: "none: Xero would apply the account's default tax rate",
    Problem.TAX_PERCENTAGE_DIFFERS: (
        "none: Xero would book its own percentage, so tax and totals would not match Nexudus"
    ),
    Problem.MAPPING_UNUSED: "none: no line uses the entry",
    Problem.SETUP_ACCOUNT_MISSING: "none for recon's invoices; Nexudus' own payment transfer fails",
    Problem.SETUP_ACCOUNT_NAME_DIFFERS: (
        "none for recon's invoices; Nexudus' own payment transfer fails"
    ),
    Problem.SETUP_ACCOUNT_ARCHIVED: (
        "none for recon's invoices; Nexudus' own payment transfer fails"
    ),
    Problem.PAYMENTS_NOT_ALLOWED: (
        "none for recon's invoices; Nexudus' own payment transfer fails"
    ),
}


def xero_message(
    problem: Problem | str,
    *,
    account_code: str = "",
    tax_type: str = "",
    refused_on: Iterable[str] = (),
) -> str:
    """What Xero would answer if a line with ``problem`` were sent, in Xero's words.

    ``account_code``: the line's account; ``tax_type``: the TaxType the line would carry (the
    Xero code it resolves to, else its Nexudus name); ``refused_on``: for a tax type refused on
    accounts, those accounts (one message each, joined with " | "). A problem Xero would let
    through gives its "none: ..." sentence.
    """
    problem = Problem(problem)
    if problem in XERO_LETS_THROUGH:
        return XERO_LETS_THROUGH[problem]
    template = XERO_MESSAGE[problem]
    codes = list(refused_on) or [account_code]
    if problem is not Problem.TAX_NOT_ALLOWED:
        codes = [account_code]
    return " | ".join(template.format(account_code=c, tax_type=tax_type) for c in codes)
