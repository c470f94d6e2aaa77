"""Every Xero message the references list is explained in plain words; an unknown one says so."""

import ast
from pathlib import Path

import pytest

from recon.ledger import Ledger
from recon.outcomes import ReconReason
from recon.session import Connection
from recon.transfer import plan_transfer, push
from recon.troubleshooting import explain

ROOT = Path(__file__).resolve().parent.parent

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


# ---- recon's own reasons -----------------------------------------------------------------------
# One message of each kind recon writes itself, as recon/transfer/push.py, plan.py, guards.py and
# recon/bindings.py word them.
RECONS_OWN = {
    ReconReason.CALL_BUDGET: (
        "deferred: this push needs 120 Xero calls and 40 are left in today's budget; the oldest "
        "invoices went first and the next run sends these"
    ),
    ReconReason.ANOTHER_RUN: "deferred: another push of Hive Shoreditch to Xero is writing",
    ReconReason.BINDING: (
        "refused before any call: Hive Shoreditch → Demo (GBP): not confirmed; confirm with "
        "bindings: {...} in params/demo.yaml"
    ),
    ReconReason.WRONG_PLACE: (
        "refused: this plan holds invoices of Hive Shoreditch but the connection is for Hive "
        "Manchester; connect to that location and plan again"
    ),
    ReconReason.CHECKS: (
        "not sent: Nexudus invoice 12 (SHO-12): its invoice number SHO-12 is also that of "
        "Nexudus invoice 13 in this transfer"
    ),
    ReconReason.RUN_STOPPED: "not sent: Xero refused the sign-in (401 TokenExpired)",
    ReconReason.NO_ANSWER: (
        "unknown: Xero did not answer (timeout) and could not be asked (timeout); the next run "
        "resolves it"
    ),
    ReconReason.RECOVERED: "recovered: found in Xero after an interrupted run",
    ReconReason.ADOPTED: "adopted: Xero already had this invoice",
    ReconReason.ALREADY_DONE: "already transferred (ledger)",
    ReconReason.BOOKED_DIFFERENTLY: "Xero booked total 12.00, recon planned 10.00 (tax 2.00)",
    ReconReason.NO_CONTACT: "The Xero contact could not be created; see the contact's error",
    ReconReason.NO_REASON_GIVEN: "Xero did not save it and gave no reason (status 'ERROR')",
    ReconReason.NUMBER_CLASH: (
        "SHO-7 is already used in Xero by 'Acme' for GBP 10.00 (Nexudus: 'Bee', GBP 12.00): "
        "renumber one of them"
    ),
    ReconReason.LOCK_DATE: (
        "dated 2026-07-31, on or before Xero's period lock date 31 Jul 2026: ask the Xero "
        "adviser to move the lock date or change the invoice date policy (invoice_date)"
    ),
    ReconReason.MAPPING: "mapping: missing in Xero (first at line 1, ...)",
    ReconReason.NOT_FOR_XERO: "void in Nexudus",
}


def test_every_reason_recon_writes_itself_has_a_plain_label_never_unknown_xero_message() -> None:
    assert set(RECONS_OWN) == set(ReconReason), "one example per reason"
    labels = [reason.label for reason in ReconReason]
    assert len(set(labels)) == len(labels)
    for reason, message in RECONS_OWN.items():
        found = explain(message)
        assert found.reason is reason, (message, found.reason)
        assert found.is_recons_own and found.known and found.label == reason.label
        assert found.meaning == reason.about.meaning and found.fix == reason.about.fix
        assert "recon does not know" not in found.meaning and "Xero message" not in found.label
    # Xero's own words stay Xero's.
    assert not explain("Invoice # must be unique.").is_recons_own
    assert explain("Something new went wrong").label == "unknown Xero message"


def _literal_start(node: ast.expr, constants: dict[str, str]) -> str | None:
    """The text an f-string or string literal starts with (placeholders as "x")."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        text = ""
        for part in node.values:
            if isinstance(part, ast.Constant):
                text += str(part.value)
            elif isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name):
                text += constants.get(part.value.id, "x")
            else:
                text += "x"
        return text
    return None


def _messages_written(path: Path) -> list[str]:
    """Every literal message the module writes into an outcome: in a ``messages=[...]`` list,
    assigned to ``message``/``reason``/``refusal``/``stop_reason``, stored in ``unsendable``'s
    ``problems`` (whose own ``reason`` is only the tail of it), or returned by ``_wrong_place``."""
    tree = ast.parse(path.read_text("utf-8"))
    constants = {"NOT_SENT": "not sent: "}
    names = ("message", "reason", "refusal", "stop_reason")
    found: list[ast.expr] = []
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        for node in ast.walk(function):
            if isinstance(node, ast.keyword) and node.arg == "messages":
                if isinstance(node.value, ast.List):
                    found += node.value.elts
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    named = isinstance(target, ast.Name) and target.id in names
                    stored = isinstance(target, ast.Subscript) and isinstance(
                        target.value, ast.Name
                    )
                    if isinstance(target, ast.Name) and target.id == "messages":
                        found += node.value.elts if isinstance(node.value, ast.List) else []
                    elif (named and function.name != "unsendable") or (
                        stored and target.value.id == "problems"  # type: ignore[attr-defined]
                    ):
                        found.append(node.value)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "append"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "messages"
            ):
                found += node.args
            elif isinstance(node, ast.Return) and function.name == "_wrong_place" and node.value:
                found.append(node.value)
    texts = [_literal_start(n, constants) for n in found]
    return sorted({t for t in texts if t})


def test_every_message_the_push_writes_is_explained_as_recons_own_or_as_xeros() -> None:
    # the push and the modules it is cut into
    modules = ("push", "result", "send", "recovery", "writeback")
    written = sorted(
        {
            m
            for name in modules
            for m in _messages_written(ROOT / "recon" / "transfer" / f"{name}.py")
        }
    )
    assert len(written) >= 20
    # The budget and the concurrent run are told apart even with the figures left out.
    assert explain("deferred: this push needs x Xero calls").reason is ReconReason.CALL_BUDGET
    for text in written:
        found = explain(text)
        # Only Xero's verbatim "Invoice # must be unique." is Xero's; the rest is recon's own.
        assert found.known, text
        assert found.is_recons_own or text == "Invoice # must be unique.", text


def test_a_push_over_budget_explains_every_invoice_in_recons_own_words(
    conn: Connection, tmp_path: Path
) -> None:
    """A push with no call budget sends nothing: every invoice is deferred (or, with the
    binding not confirmed, refused before any call), and its meaning and fix are recon's own
    reason, not "recon does not know this Xero message"."""
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        result = push(conn, plan, ledger, call_budget=0)
    outcomes = result.outcomes
    assert len(outcomes) and set(outcomes["outcome"]) <= {"deferred", "refused"}
    for row in outcomes.itertuples():
        found = explain(str(row.messages))
        assert found.is_recons_own, row.messages
        assert row.meaning == found.meaning and row.fix == found.fix
        assert "recon does not know" not in row.meaning
