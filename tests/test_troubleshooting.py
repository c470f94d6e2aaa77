"""Every Xero message the references list is explained in plain words; an unknown one says so."""

import pytest

from recon.troubleshooting import explain

KNOWN = [
    "Account code '4050' is not a valid code for this document.",
    "Account code or ID must be specified.",
    (
        "Account code '4030' has been archived, or deleted. Each line item must reference a valid "
        "account."
    ),
    "Account must be valid.",
    "Tax rate must be valid.",
    "The TaxType code GST on Income does not exist or cannot be used for this type of transaction.",
    "The TaxType code 'GST on Income' cannot be used with account code '40010-01'.",
    "The TaxType code 'GST on Income' is not valid",
    "Invoice # must be unique.",
    "Invoice not of valid status for modification",
    "The document date cannot be before the end of year lock date, currently set at 31-Jul-2013",
    "The document date cannot be before the period lock date, currently set at 31-Jul-2026",
    "Organisation is not subscribed to currency USD",
    "The current organisation is not subscribed to currency 'EUR'.",
    "Unable to assign an Archived contact.",
    "A Contact must be specified for this type of transaction",
    "Item code 'X' is not valid",
    "Payments can only be made against Authorised documents",
    "Payment amount exceeds the amount outstanding on this document",
]


@pytest.mark.parametrize("message", KNOWN)
def test_each_known_message_gets_a_meaning_and_a_fix(message: str) -> None:
    found = explain(message)
    assert found.known and found.meaning and found.fix
    assert "recon does not know" not in found.meaning


def test_the_fix_names_what_the_message_names() -> None:
    assert "4050" in explain("Account code '4050' is not a valid code for this document.").fix
    assert "USD" in explain("Organisation is not subscribed to currency USD").fix


def test_an_unknown_message_says_so_and_keeps_xeros_text() -> None:
    found = explain("Something new went wrong")
    assert not found.known and "Something new went wrong" in found.meaning
