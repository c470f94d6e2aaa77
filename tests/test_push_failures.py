"""The push when Xero fails it, over real HTTP with the sandbox's faults: nothing lost, nothing
duplicated.

Each test breaks one call of a push (a whole batch refused or unanswered, the look-up after it, a
throttle or a refused sign-in that stops the run, contacts not created, an invoice number Xero
already holds, a plan offered to the wrong connection, a write-back Nexudus refuses), then checks
what the outcomes table, the ledger and Xero hold, and that the next run finishes the job with
every invoice in Xero exactly once.

Faults are queued on the sandbox at the moment they must hit: before the push, or from
``after_batch`` (called once Xero answered a batch), so the next Xero call meets them. Outcomes
and ledger states are compared as their string values.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recon.cli import with_unfinished_writes
from recon.clients.retry import RetryPolicy
from recon.ledger import Ledger
from recon.params import LocationMap
from recon.session import Connection, connect
from recon.transfer import TransferOptions, TransferPlan, day_calls_left, plan_transfer, push

BATCH = 50


# ---- helpers -------------------------------------------------------------------------------------
def _ledger(conn: Connection) -> Ledger:
    return Ledger(conn.ledger_path)


def _in_xero(conn: Connection) -> Counter[str]:
    """Every invoice and credit-note number Xero holds (not deleted), with how many times."""
    numbers = Counter(
        str(i["InvoiceNumber"])
        for i in conn.xero.iter_invoices(created_by_my_app=True)
        if i["Status"] != "DELETED"
    )
    numbers.update(
        str(n["CreditNoteNumber"])
        for n in conn.xero.iter_credit_notes()
        if n["Status"] != "DELETED"
    )
    return numbers


def _assert_each_once(conn: Connection, numbers: set[str]) -> None:
    """Xero holds exactly these numbers, each once: nothing lost, nothing duplicated."""
    held = _in_xero(conn)
    assert set(held) == numbers, (
        f"missing {sorted(numbers - set(held))[:5]}, extra {sorted(set(held) - numbers)[:5]}"
    )
    assert max(held.values()) == 1, [n for n, c in held.items() if c > 1][:5]


def _invoice_numbers(plan: TransferPlan) -> list[str]:
    """The plan's invoices (not credit notes) in the order push sends them, 50 to a batch."""
    return list(plan.eligible[plan.eligible["kind"] == "invoice"]["invoice_number"])


def _outcome_of(result_outcomes: pd.DataFrame) -> dict[str, str]:
    return {
        str(n): str(o)
        for n, o in zip(result_outcomes["invoice_number"], result_outcomes["outcome"], strict=True)
    }


def _states(ledger: Ledger, tenant: str) -> dict[str, str]:
    rows = ledger.transfers(tenant)
    return {str(n): str(s) for n, s in zip(rows["invoice_number"], rows["state"], strict=True)}


def _after_batch(n: int, action: Callable[[], None]) -> Callable[[int, list[dict[str, Any]]], None]:
    """An ``after_batch`` hook running ``action`` once, after Xero answered the ``n``-th batch: the
    next Xero call is the following batch's write."""
    answered: list[int] = []

    def hook(size: int, elements: list[dict[str, Any]]) -> None:
        answered.append(size)
        if len(answered) == n:
            action()

    return hook


def _events(ledger: Ledger, action: str, outcome: str) -> pd.DataFrame:
    events = ledger.events()
    return events[(events["action"] == action) & (events["outcome"] == outcome)]


# ---- a whole batch refused or unanswered ---------------------------------------------------------
def test_a_batch_xero_refuses_whole_is_recorded_failed_and_the_same_plan_pushed_again_sends_only_it(
    fresh_conn: Connection, tmp_path: Path
) -> None:
    conn = fresh_conn
    faults = conn.sandbox.xero.faults
    progress: list[tuple[int, int]] = []
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        second_batch = set(_invoice_numbers(plan)[BATCH : 2 * BATCH])
        # Xero's own 500 body on the second batch's PUT: not retried, nothing saved.
        first = push(
            conn,
            plan,
            ledger,
            progress=lambda done, total: progress.append((done, total)),
            after_batch=_after_batch(1, lambda: faults.fail_next(1, status=500)),
        )
        outcomes = _outcome_of(first.outcomes)
        assert {n for n, o in outcomes.items() if o == "failed"} == second_batch
        assert {n for n, o in outcomes.items() if o != "failed"} == set(
            plan.eligible["invoice_number"]
        ) - second_batch
        assert set(outcomes.values()) == {"created", "failed"}
        failed = first.failed.iloc[0]
        assert "Xero failed (500)" in failed["messages"]
        states = _states(ledger, plan.tenant_id)
        assert {n for n, s in states.items() if s == "failed"} == second_batch
        assert ledger.unfinished(plan.tenant_id).empty
        assert len(_events(ledger, "create invoices", "error")) == 1
        assert progress[-1] == (len(plan.eligible), len(plan.eligible))
        assert not second_batch & set(_in_xero(conn))
        # The outcomes table as the notebook saves and shows it.
        saved = pd.read_csv(first.save(tmp_path))
        assert set(saved[saved["outcome"] == "failed"]["invoice_number"]) == second_batch
        assert repr(first) == f"<TransferResult {first.counts()}>"
        assert str(first).startswith(f"Transfer to {plan.context['organisation']}: ")
        assert sorted(second_batch)[0] in first._repr_html_()

        # The same (stale) plan pushed again: what the ledger holds is skipped, the rest is sent.
        again = push(conn, plan, ledger)
    outcomes = _outcome_of(again.outcomes)
    assert {n for n, o in outcomes.items() if o == "created"} == second_batch
    skipped = again.outcomes[again.outcomes["outcome"] == "skipped"]
    assert set(skipped["messages"]) == {"already transferred (ledger)"}
    assert len(skipped) == len(plan.eligible) - len(second_batch)
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def test_batches_whose_answers_were_all_lost_are_found_by_number_not_sent_again(
    fresh_conn: Connection,
) -> None:
    """An invoice batch and the credit-note batch: Xero saved each, every answer was dropped."""
    conn = fresh_conn
    faults = conn.sandbox.xero.faults
    attempts = conn.xero.retry.attempts

    def lose_next_batch() -> None:
        faults.drop_next(attempts, after_commit=True)

    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        notes = set(plan.eligible[plan.eligible["kind"] == "credit_note"]["invoice_number"])
        assert notes, "the demo plans a credit note"
        invoices = _invoice_numbers(plan)
        # Lose the answers of the batch after the first, and of the one after the last invoices'.
        before_lost = {invoices[0], invoices[-1]}

        def hook(size: int, elements: list[dict[str, Any]]) -> None:
            if {str(el.get("InvoiceNumber")) for el in elements} & before_lost:
                lose_next_batch()

        result = push(conn, plan, ledger, after_batch=hook)
        assert set(result.outcomes["outcome"]) == {"created"}
        assert ledger.unfinished(plan.tenant_id).empty
        assert ledger.transferred_ids(plan.tenant_id) == set(plan.eligible["nexudus_invoice_id"])
        transfers = ledger.transfers(plan.tenant_id).set_index("invoice_number")
        assert len(_events(ledger, "create invoices", "error")) == 1
        assert len(_events(ledger, "create credit_notes", "error")) == 1
    in_xero = {str(n["CreditNoteNumber"]): n["CreditNoteID"] for n in conn.xero.iter_credit_notes()}
    for note in notes:
        assert transfers.loc[note, "xero_id"] == in_xero[note]
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def test_a_saved_batch_xero_could_not_be_asked_about_stays_open_and_the_next_run_adopts_it(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    faults = conn.sandbox.xero.faults
    attempts = conn.xero.retry.attempts

    def lose_answer_and_lookup() -> None:
        faults.drop_next(attempts, after_commit=True)  # the PUT: saved, every answer dropped
        faults.fail_next(attempts, status=503)  # the look-up by number: never answered

    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        second_batch = set(_invoice_numbers(plan)[BATCH : 2 * BATCH])
        first = push(conn, plan, ledger, after_batch=_after_batch(1, lose_answer_and_lookup))
        outcomes = _outcome_of(first.outcomes)
        assert {n for n, o in outcomes.items() if o == "unknown"} == second_batch
        unknown = first.outcomes[first.outcomes["outcome"] == "unknown"]
        assert unknown["messages"].str.startswith("unknown: Xero did not answer").all()
        assert set(ledger.unfinished(plan.tenant_id)["invoice_number"]) == second_batch
        assert second_batch <= set(_in_xero(conn))  # Xero has them; the ledger does not know yet

    # The next run: a new process, a new plan.
    with _ledger(conn) as ledger:
        replan = plan_transfer(conn, ledger=ledger)
        reasons = replan.excluded.set_index("invoice_number")["reason"]
        assert set(reasons[list(second_batch)]) == {"already in Xero (same invoice number)"}
        rerun = push(conn, replan, ledger)
        assert rerun.outcomes.empty  # nothing left to send
        assert ledger.unfinished(plan.tenant_id).empty
        assert ledger.transferred_ids(plan.tenant_id) == set(plan.eligible["nexudus_invoice_id"])
        recovered = _events(ledger, "recover", "found in Xero")
        assert set(recovered["subject"]) == second_batch
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def test_an_unsaved_batch_xero_could_not_be_asked_about_is_resent_once_by_the_next_run(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    faults = conn.sandbox.xero.faults
    attempts = conn.xero.retry.attempts

    def lose_request_and_lookup() -> None:
        faults.drop_next(attempts, after_commit=False)  # the PUT never reaches Xero's books
        faults.fail_next(attempts, status=503)

    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        second_batch = set(_invoice_numbers(plan)[BATCH : 2 * BATCH])
        first = push(conn, plan, ledger, after_batch=_after_batch(1, lose_request_and_lookup))
        assert {n for n, o in _outcome_of(first.outcomes).items() if o == "unknown"} == (
            second_batch
        )
        assert set(ledger.unfinished(plan.tenant_id)["invoice_number"]) == second_batch
        assert not second_batch & set(_in_xero(conn))

    with _ledger(conn) as ledger:
        rerun = push(conn, plan_transfer(conn, ledger=ledger), ledger)
        assert _outcome_of(rerun.outcomes) == dict.fromkeys(second_batch, "created")
        resent = _events(ledger, "recover", "not in Xero: will be sent")
        assert set(resent["subject"]) == second_batch
        assert ledger.unfinished(plan.tenant_id).empty
        assert ledger.transferred_ids(plan.tenant_id) == set(plan.eligible["nexudus_invoice_id"])
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def test_a_lost_batch_whose_draft_was_deleted_in_xero_meanwhile_is_sent_again_the_rest_adopted(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    faults = conn.sandbox.xero.faults
    attempts = conn.xero.retry.attempts
    with _ledger(conn) as ledger:
        plan = _customer_with_invoices(conn, ledger, 2, status="DRAFT")
        deleted, kept = list(plan.eligible["invoice_number"])
        faults.drop_next(attempts, after_commit=True)  # the drafts are saved, the answers lost
        faults.fail_next(attempts, status=503)  # and Xero cannot be asked
        first = push(conn, plan, ledger)
        assert set(first.outcomes["outcome"]) == {"unknown"}
        assert set(ledger.unfinished(plan.tenant_id)["invoice_number"]) == {deleted, kept}
    # Before the next run the accountant deletes one of the drafts in Xero.
    ids = {str(i["InvoiceNumber"]): i["InvoiceID"] for i in conn.xero.iter_invoices()}
    conn.xero.update_invoice(ids[deleted], {"Status": "DELETED"})
    with _ledger(conn) as ledger:
        replan = plan_transfer(conn, ledger=ledger, options=plan.options)
        assert deleted in set(replan.eligible["invoice_number"])
        rerun = push(conn, replan.only([deleted]), ledger)
        assert _outcome_of(rerun.outcomes) == {deleted: "created"}
        transfers = ledger.transfers(plan.tenant_id).set_index("invoice_number")
        assert transfers.loc[kept, "xero_id"] == ids[kept]  # adopted by the recovery
        assert transfers.loc[deleted, "xero_id"] != ids[deleted]  # a new invoice, not the deleted
        assert ledger.unfinished(plan.tenant_id).empty
    held = _in_xero(conn)
    assert held[deleted] == 1 and held[kept] == 1


# ---- the run cannot go on: throttled past the retries, sign-in refused, day limit spent ----------
def test_a_throttle_outlasting_the_retries_stops_the_push_and_the_next_run_sends_the_rest(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    conn.xero.retry = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.2)
    faults = conn.sandbox.xero.faults
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        first_batch = set(_invoice_numbers(plan)[:BATCH])
        result = push(
            conn,
            plan,
            ledger,
            after_batch=_after_batch(1, lambda: faults.throttle_next(2, retry_after=1)),
        )
        outcomes = _outcome_of(result.outcomes)
        assert {n for n, o in outcomes.items() if o == "created"} == first_batch
        rest = result.outcomes[result.outcomes["outcome"] != "created"]
        assert set(rest["outcome"]) == {"skipped"}
        assert len(rest) == len(plan.eligible) - BATCH
        assert rest["messages"].str.startswith("not sent: Xero's minute limit").all()
        # The throttled batch's intents were resolved at once: Xero never saved it.
        assert ledger.unfinished(plan.tenant_id).empty
        assert set(_in_xero(conn)) == first_batch
        rerun = push(conn, plan_transfer(conn, ledger=ledger), ledger)
    assert set(rerun.outcomes["outcome"]) == {"created"}
    assert set(rerun.outcomes["invoice_number"]) == set(plan.eligible["invoice_number"]) - (
        first_batch
    )
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def test_xero_refusing_the_sign_in_mid_push_skips_the_rest_and_the_next_run_sends_it(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    faults = conn.sandbox.xero.faults
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        first_batch = set(_invoice_numbers(plan)[:BATCH])
        # 401, a new token, 401 again: the client gives up with AuthError.
        result = push(
            conn, plan, ledger, after_batch=_after_batch(1, lambda: faults.fail_next(2, status=401))
        )
        skipped = result.outcomes[result.outcomes["outcome"] == "skipped"]
        assert len(skipped) == len(plan.eligible) - BATCH
        assert skipped["messages"].str.contains("Xero refused the access token").all()
        assert ledger.unfinished(plan.tenant_id).empty
        assert set(_in_xero(conn)) == first_batch
        rerun = push(conn, plan_transfer(conn, ledger=ledger), ledger)
    assert set(rerun.outcomes["outcome"]) == {"created"}
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def _spend_the_day(conn: Connection) -> Callable[[], None]:
    """Another app of the organisation spends what is left of today's calls."""

    def spend() -> None:
        limits = conn.sandbox.xero.limits
        used = limits.per_day - (day_calls_left(conn) or 0)
        conn.sandbox.xero.limits = limits.with_(per_day=used)

    return spend


def test_a_day_limit_spent_mid_push_loses_and_duplicates_nothing_once_the_day_is_over(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    per_day = conn.sandbox.xero.limits.per_day
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        first_batch = set(_invoice_numbers(plan)[:BATCH])
        stopped = push(conn, plan, ledger, after_batch=_after_batch(1, _spend_the_day(conn)))
        skipped = stopped.outcomes[stopped.outcomes["outcome"] == "skipped"]
        assert len(skipped) == len(plan.eligible) - BATCH
        # The second batch was refused before Xero did anything; its intents wait for a look-up.
        second_batch = set(_invoice_numbers(plan)[BATCH : 2 * BATCH])
        assert set(ledger.unfinished(plan.tenant_id)["invoice_number"]) == second_batch
        assert ledger.transferred_ids(plan.tenant_id) == set(
            plan.eligible[plan.eligible["invoice_number"].isin(first_batch)]["nexudus_invoice_id"]
        )
    conn.sandbox.xero.limits = conn.sandbox.xero.limits.with_(per_day=per_day)
    conn.sandbox.xero.limiter.reset()  # a new day
    with _ledger(conn) as ledger:
        rerun = push(conn, plan_transfer(conn, ledger=ledger), ledger)
        assert set(rerun.outcomes["outcome"]) == {"created"}
        assert ledger.unfinished(plan.tenant_id).empty
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def test_a_day_limit_spent_mid_push_reports_the_rest_skipped(fresh_conn: Connection) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        result = push(conn, plan, ledger, after_batch=_after_batch(1, _spend_the_day(conn)))
    skipped = result.outcomes[result.outcomes["outcome"] == "skipped"]
    assert len(skipped) == len(plan.eligible) - BATCH
    assert skipped["messages"].str.contains("day limit").all()


def test_an_app_disconnected_from_the_organisation_mid_push_reports_the_rest_skipped(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn

    def disconnect() -> None:  # someone removes the app's connection in Xero
        (connection,) = conn.xero.connections()
        conn.xero.request(
            "DELETE",
            f"{conn.xero.config.identity_url}/connections/{connection['id']}",
            tenant=False,
        )

    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        result = push(conn, plan, ledger, after_batch=_after_batch(1, disconnect))
    skipped = result.outcomes[result.outcomes["outcome"] == "skipped"]
    assert len(skipped) == len(plan.eligible) - BATCH


# ---- contacts -----------------------------------------------------------------------------------
def _few_customers(plan: TransferPlan, customers: int) -> TransferPlan:
    """The plan narrowed to every invoice of its first ``customers`` new contacts."""
    numbers = plan.new_contacts["contact_number"].head(customers)
    return plan.only(plan.eligible[plan.eligible["contact_number"].isin(numbers)]["invoice_number"])


def test_contacts_xero_fails_to_create_fail_their_invoices_unsent_and_the_next_run_sends_them(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = _few_customers(plan_transfer(conn, ledger=ledger), 3)
        conn.sandbox.xero.faults.fail_next(1, status=500)  # the contacts' PUT
        first = push(conn, plan, ledger)
        assert set(first.outcomes["outcome"]) == {"failed"}
        assert len(first.outcomes) == len(plan.eligible)
        assert set(first.outcomes["messages"]) == {
            "The Xero contact could not be created; see the contact's error"
        }
        assert first.calls["xero"] == 2  # the contacts' PUT and the look-up by number; no invoice
        assert ledger.transfers(plan.tenant_id).empty  # no intent: nothing was sent
        assert len(_events(ledger, "create contacts", "error")) == 1
        assert not _in_xero(conn)
        assert not [c for c in conn.xero.iter_contacts() if c.get("ContactNumber")]

        rerun = push(
            conn, plan_transfer(conn, ledger=ledger).only(plan.eligible["invoice_number"]), ledger
        )
    assert set(rerun.outcomes["outcome"]) == {"created"}
    numbers = Counter(c.get("ContactNumber") for c in conn.xero.iter_contacts())
    assert all(numbers[n] == 1 for n in plan.new_contacts["contact_number"])
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def test_contacts_xero_saved_but_whose_answers_were_lost_are_found_by_number_and_not_made_twice(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        conn.sandbox.xero.faults.drop_next(conn.xero.retry.attempts, after_commit=True)
        result = push(conn, plan, ledger)
        assert len(_events(ledger, "create contacts", "error")) == 1
    assert set(result.outcomes["outcome"]) == {"created"}
    numbers = Counter(
        c["ContactNumber"] for c in conn.xero.iter_contacts() if c.get("ContactNumber")
    )
    assert set(numbers) == set(plan.new_contacts["contact_number"])
    assert max(numbers.values()) == 1
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


def test_a_contact_xero_refuses_fails_only_that_customers_invoices_until_the_next_plan(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = _few_customers(plan_transfer(conn, ledger=ledger), 3)
        victim = plan.new_contacts.iloc[0]
        # Between the preview and the push someone adds a contact of the same name in Xero.
        made = conn.xero.create_contacts([{"Name": victim["name"]}])
        assert made[0]["StatusAttributeString"] == "OK"
        result = push(conn, plan, ledger)
        theirs = set(
            plan.eligible[plan.eligible["contact_number"] == victim["contact_number"]][
                "invoice_number"
            ]
        )
        outcomes = _outcome_of(result.outcomes)
        assert {n for n, o in outcomes.items() if o == "failed"} == theirs
        assert {n for n, o in outcomes.items() if o == "created"} == set(outcomes) - theirs
        assert not theirs & set(_in_xero(conn))
        # The next plan sees the name taken and gives the contact a distinguishing one.
        replan = plan_transfer(conn, ledger=ledger)
        rerun = push(conn, replan.only(theirs), ledger)
    assert set(rerun.outcomes["outcome"]) == {"created"}
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


# ---- an invoice number Xero already holds --------------------------------------------------------
def _customer_with_invoices(
    conn: Connection, ledger: Ledger, count: int, status: str = "AUTHORISED"
) -> TransferPlan:
    """A plan holding ``count`` invoices of one customer whose contact is already in Xero."""
    options = TransferOptions(status=status, write_back=False)
    plan = plan_transfer(conn, ledger=ledger, options=options)
    invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
    per_customer = invoices.groupby("contact_number")["invoice_number"].agg(list)
    numbers = next(n for n in per_customer if len(n) > count)
    push(conn, plan.only(numbers[:1]), ledger)  # creates the customer's contact
    replan = plan_transfer(conn, ledger=ledger, options=options)
    narrowed = replan.only(numbers[1 : count + 1])
    assert narrowed.eligible["xero_contact_id"].notna().all()
    return narrowed


def _make_in_xero(conn: Connection, plan: TransferPlan, number: str, **changes: Any) -> str:
    """Put this plan's invoice ``number`` in Xero as another process would, with ``changes``."""
    row = plan.eligible.set_index("invoice_number").loc[number]
    body = dict(plan.payloads[int(row["nexudus_invoice_id"])])
    body["Contact"] = {"ContactID": row["xero_contact_id"]}
    body.update(changes)
    (made,) = conn.xero.create_invoices([body])
    assert made["StatusAttributeString"] == "OK", made
    return str(made["InvoiceID"])


def test_an_invoice_xero_already_has_for_the_same_customer_and_total_is_adopted_not_duplicated(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = _customer_with_invoices(conn, ledger, 2)
        same, fresh = list(plan.eligible["invoice_number"])
        # Another run sent it between this preview and this push, and its ledger was lost.
        existing = _make_in_xero(conn, plan, same)
        result = push(conn, plan, ledger)
        assert _outcome_of(result.outcomes) == {same: "adopted", fresh: "created"}
        adopted = result.outcomes.set_index("invoice_number").loc[same]
        assert adopted["xero_id"] == existing
        assert adopted["difference"] == 0
        transfers = ledger.transfers(plan.tenant_id).set_index("invoice_number")
        assert transfers.loc[same, "state"] == "created"
        assert transfers.loc[same, "xero_id"] == existing
        assert "adopted" in transfers.loc[same, "messages"]
    held = _in_xero(conn)
    assert held[same] == 1 and held[fresh] == 1


def test_an_invoice_number_xero_holds_for_another_total_or_customer_fails_and_is_left_alone(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = _customer_with_invoices(conn, ledger, 2)
        other_total, other_customer = list(plan.eligible["invoice_number"])
        row = plan.eligible.set_index("invoice_number").loc[other_total]
        lines = [dict(line) for line in plan.payloads[int(row["nexudus_invoice_id"])]["LineItems"]]
        lines[0]["UnitAmount"] = Decimal(lines[0]["UnitAmount"]) + 1
        first_id = _make_in_xero(conn, plan, other_total, LineItems=lines)
        (stranger,) = conn.xero.create_contacts([{"Name": "Someone Else Entirely"}])
        second_id = _make_in_xero(
            conn, plan, other_customer, Contact={"ContactID": stranger["ContactID"]}
        )
        result = push(conn, plan, ledger)
        assert _outcome_of(result.outcomes) == {other_total: "failed", other_customer: "failed"}
        messages = result.outcomes["messages"]
        assert messages.str.contains("Invoice # must be unique.", regex=False).all()
        assert messages.str.contains("Xero has another invoice", regex=False).all()
        states = _states(ledger, plan.tenant_id)
        assert states[other_total] == states[other_customer] == "failed"
        assert ledger.unfinished(plan.tenant_id).empty
    held = {str(i["InvoiceNumber"]): i for i in conn.xero.iter_invoices()}
    assert held[other_total]["InvoiceID"] == first_id
    assert Decimal(str(held[other_total]["Total"])) != abs(Decimal(row["nexudus_total"]))
    assert held[other_customer]["InvoiceID"] == second_id
    assert held[other_customer]["Contact"]["ContactID"] == stranger["ContactID"]
    assert _in_xero(conn)[other_total] == 1 and _in_xero(conn)[other_customer] == 1


# ---- plans offered to the wrong connection -------------------------------------------------------
def test_a_plan_for_one_location_is_refused_through_a_sibling_location_of_the_same_organisation(
    fresh_conn: Connection,
) -> None:
    params = fresh_conn.params
    with (
        connect(params.with_overrides(location="Hive Manchester Ancoats")) as manchester,
        connect(params.with_overrides(location="Hive Leeds Wellington Place")) as leeds,
        _ledger(fresh_conn) as ledger,
    ):
        assert manchester.xero.tenant_id == leeds.xero.tenant_id
        plan = plan_transfer(manchester, ledger=ledger)
        assert len(plan.eligible)
        before = leeds.xero.calls
        result = push(leeds, plan, ledger)
        assert set(result.outcomes["outcome"]) == {"refused"}
        assert len(result.outcomes) == len(plan.eligible)
        assert "connect to that location and plan again" in result.outcomes["messages"].iloc[0]
        assert leeds.xero.calls == before
        assert len(_events(ledger, "push refused", "refused")) == 1
        assert ledger.transfers(plan.tenant_id).empty
        assert not set(plan.eligible["invoice_number"]) & set(_in_xero(leeds))


def test_a_plan_made_with_another_tracking_option_is_refused_once_the_params_are_corrected(
    fresh_conn: Connection,
) -> None:
    params = fresh_conn.params.with_overrides(location="Hive Manchester Ancoats")
    wrong = params.with_overrides(
        locations={
            "Hive Manchester Ancoats": LocationMap("Hive Coworking North Ltd", "Location", "Leeds")
        }
    )
    right = params.with_overrides(
        locations={
            "Hive Manchester Ancoats": LocationMap(
                "Hive Coworking North Ltd", "Location", "Manchester"
            )
        }
    )
    with (
        connect(wrong) as mistaken,
        connect(right) as corrected,
        _ledger(fresh_conn) as ledger,
    ):
        plan = plan_transfer(mistaken, ledger=ledger)
        assert plan.context["tracking"] == ("Location", "Leeds")
        result = push(corrected, plan, ledger)
        assert set(result.outcomes["outcome"]) == {"refused"}
        message = result.outcomes["messages"].iloc[0]
        assert message.startswith("refused:") and "tracking" in message
        assert "('Location', 'Leeds')" in message and "('Location', 'Manchester')" in message
        assert ledger.transfers(plan.tenant_id).empty
        assert not set(plan.eligible["invoice_number"]) & set(_in_xero(corrected))


# ---- the write-back to Nexudus ------------------------------------------------------------------
def test_a_xero_id_nexudus_refused_to_store_is_written_back_by_the_next_push(
    fresh_conn: Connection,
) -> None:
    conn = dataclasses.replace(
        fresh_conn, params=fresh_conn.params.with_overrides(write_back_system_id=True)
    )
    clean = set(conn.sandbox.planted["clean_invoices"])
    with _ledger(conn) as ledger:
        full = plan_transfer(conn, ledger=ledger)
        plan = full.only([n for n in _invoice_numbers(full) if n in clean][:3])
        # The first invoice's whole-record PUT is answered 200 with WasSuccessful false.
        conn.sandbox.nexudus.faults.unsuccessful_next(1, method="PUT")
        first = push(conn, plan, ledger)
        assert set(first.outcomes["outcome"]) == {"created"}
        transfers = ledger.transfers(plan.tenant_id)
        refused = transfers[transfers["written_back"] == 0]
        assert len(refused) == 1
        (number,) = refused["invoice_number"]
        errors = _events(ledger, "write back xero id", "error")
        assert list(errors["subject"]) == [number]
        refused_id = int(refused["nexudus_invoice_id"].iloc[0])
        assert not conn.nexudus.get_invoice(refused_id).get("SystemId")

        again = push(conn, plan, ledger)  # sends nothing to Xero; writes back what is missing
        assert set(again.outcomes["outcome"]) == {"skipped"}
        transfers = ledger.transfers(plan.tenant_id)
    assert (transfers["written_back"] == 1).all()
    for rec in transfers.itertuples():
        assert conn.nexudus.get_invoice(int(rec.nexudus_invoice_id))["SystemId"] == (
            f"xero:{rec.xero_id}"
        )
    _assert_each_once(conn, set(plan.eligible["invoice_number"]))


# ---- one broken invoice never stops the rest ----------------------------------------------------
SHOREDITCH, CUSTOMER = 1400000001, 1400000032
PRINTING = {
    "Description": "Printing",
    "Quantity": 1,
    "UnitPrice": "10.00",
    "TaxCategoryName": "20% (VAT on Income)",
    "FinancialAccountCode": "4100",
}


def _only_ids(plan: TransferPlan, ids: set[int]) -> TransferPlan:
    """The plan narrowed to these Nexudus invoices (by id: their numbers may be blank)."""
    eligible = plan.eligible[plan.eligible["nexudus_invoice_id"].isin(ids)].reset_index(drop=True)
    return dataclasses.replace(
        plan,
        eligible=eligible,
        payloads={k: v for k, v in plan.payloads.items() if k in ids},
        new_contacts=plan.new_contacts[
            plan.new_contacts["coworker_id"].isin(set(eligible["coworker_id"]))
        ],
    )


def test_an_invoice_without_a_number_is_reported_and_the_rest_of_its_batch_created_and_written_back(
    fresh_conn: Connection,
) -> None:
    """nexudus.md §7.1: InvoiceNumber may come back null or blank; Xero files by number
    (xero-api.md §7), so such an invoice cannot go, and must not stop its batch."""
    conn = dataclasses.replace(
        fresh_conn, params=fresh_conn.params.with_overrides(write_back_system_id=True)
    )
    desk = conn.sandbox.nexudus.desk
    when = "2026-10-15T10:00:00Z"
    nameless = desk.raise_invoice(
        SHOREDITCH, CUSTOMER, [PRINTING], created_on=when, header={"InvoiceNumber": None}
    )
    blank = desk.raise_invoice(
        SHOREDITCH, CUSTOMER, [PRINTING], created_on=when, header={"InvoiceNumber": "  "}
    )
    good = [desk.raise_invoice(SHOREDITCH, CUSTOMER, [PRINTING], created_on=when) for _ in range(3)]
    broken = {int(nameless["Id"]), int(blank["Id"])}
    sound = {int(g["Id"]) for g in good}
    for attempt in (1, 2):  # a later run must not fail the same way
        with _ledger(conn) as ledger:
            full = plan_transfer(conn, ledger=ledger)
            # Held back by the plan, with the reason, before any call (the push refuses such an
            # invoice too, should a plan carry one: see unsendable()).
            held = full.excluded.set_index("nexudus_invoice_id")["reason"]
            assert broken <= set(held.index)
            assert all("no invoice number" in str(held[i]) for i in broken)
            plan = _only_ids(full, broken | sound)
            assert not set(plan.eligible["nexudus_invoice_id"]) & broken
            result = push(conn, plan, ledger)
            rows = result.outcomes.set_index("nexudus_invoice_id")
            assert not set(rows.index) & broken
            if attempt == 1:
                assert {str(rows.loc[i, "outcome"]) for i in sound} == {"created"}
            transfers = ledger.transfers(plan.tenant_id)
            assert set(transfers["nexudus_invoice_id"]) == sound  # the broken ones never recorded
            assert (transfers["written_back"] == 1).all()
    for g in good:
        assert conn.nexudus.get_invoice(int(g["Id"]))["SystemId"].startswith("xero:")
    assert all(_in_xero(conn)[str(g["InvoiceNumber"])] == 1 for g in good)


def test_two_invoices_sharing_a_number_are_both_held_and_the_others_go(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    desk = conn.sandbox.nexudus.desk
    when = "2026-10-15T10:00:00Z"
    twins = [
        desk.raise_invoice(SHOREDITCH, CUSTOMER, [PRINTING], created_on=when, number="TWIN-1")
        for _ in range(2)
    ]
    other = desk.raise_invoice(SHOREDITCH, CUSTOMER, [PRINTING], created_on=when)
    ids = {int(t["Id"]) for t in twins}
    with _ledger(conn) as ledger:
        plan = _only_ids(plan_transfer(conn, ledger=ledger), ids | {int(other["Id"])})
        result = push(conn, plan, ledger)
    rows = result.outcomes.set_index("nexudus_invoice_id")
    assert rows.loc[int(other["Id"]), "outcome"] == "created"
    for invoice_id in ids:
        assert rows.loc[invoice_id, "outcome"] == "failed"
        assert "TWIN-1 is also that of Nexudus invoice" in rows.loc[invoice_id, "messages"]
    assert "TWIN-1" not in _in_xero(conn)


# ---- push never raises: a stop condition met by the recovery ------------------------------------
def _leave_a_batch_unanswered(conn: Connection, ledger: Ledger, plan: TransferPlan) -> set[str]:
    """A first push whose only batch Xero saved and could not be asked about: intents open."""
    attempts = conn.xero.retry.attempts
    conn.sandbox.xero.faults.drop_next(attempts, after_commit=True)
    conn.sandbox.xero.faults.fail_next(attempts, status=503)
    first = push(conn, plan, ledger)
    assert set(first.outcomes["outcome"]) == {"unknown"}
    return set(ledger.unfinished(plan.tenant_id)["invoice_number"])


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("throttle", "minute limit"),
        ("sign-in", "Xero refused the access token"),
    ],
)
def test_a_stop_raised_from_the_recovery_leaves_every_invoice_an_outcome_and_exit_3(
    fresh_conn: Connection, tmp_path: Path, fault: str, words: str
) -> None:
    """xero-api.md §5 (429 with Retry-After) and §11 (401 after a refresh): raised from the
    look-up that resolves an earlier run's intents, before anything is sent."""
    conn = fresh_conn
    conn.xero.retry = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.2)
    faults = conn.sandbox.xero.faults
    with _ledger(conn) as ledger:
        later = _customer_with_invoices(conn, ledger, 3)  # the customer's contact is in Xero
        numbers = list(later.eligible["invoice_number"])
        pending = _leave_a_batch_unanswered(conn, ledger, later.only(numbers[:2]))
        if fault == "throttle":
            faults.throttle_next(2, retry_after=1)
        else:
            faults.fail_next(2, status=401)
        result = push(conn, later, ledger)  # must not raise
        outcomes = _outcome_of(result.outcomes)
        assert set(outcomes) == set(later.eligible["invoice_number"])
        assert {n for n, o in outcomes.items() if o == "unknown"} == pending
        rest = result.outcomes[~result.outcomes["invoice_number"].isin(pending)]
        assert set(rest["outcome"]) == {"skipped"}
        assert rest["messages"].str.startswith("not sent: ").all()
        assert result.outcomes["messages"].str.contains(words).all()
        # the ledger is as it was: the intents still open, nothing else recorded
        tenant = later.tenant_id
        assert set(ledger.unfinished(tenant)["invoice_number"]) == pending
        recorded = ledger.transfers(tenant)
        assert set(recorded[recorded["state"] != "created"]["invoice_number"]) == pending
        # the step exits 3 through its outcomes (recon/cli.py)
        result.save(tmp_path)
        assert with_unfinished_writes(0, [tmp_path]) == 3
        faults.clear()
        rerun = push(conn, later, ledger)
        rerun_outcomes = _outcome_of(rerun.outcomes)
        assert {n for n, o in rerun_outcomes.items() if o == "created"} == set(numbers) - pending
        assert {n for n, o in rerun_outcomes.items() if o == "skipped"} == pending  # recovered
        assert ledger.unfinished(tenant).empty
        assert ledger.transferred_ids(tenant) >= set(later.eligible["nexudus_invoice_id"])
    held = _in_xero(conn)
    assert all(held[n] == 1 for n in numbers)


def test_a_look_up_refused_while_adopting_leaves_the_invoice_unknown_not_raised(
    fresh_conn: Connection,
) -> None:
    """A number Xero already holds is looked up to adopt it; a 401 there must not end the push."""
    conn = fresh_conn
    conn.xero.retry = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.2)
    with _ledger(conn) as ledger:
        plan = _customer_with_invoices(conn, ledger, 2)
        same, fresh = list(plan.eligible["invoice_number"])
        _make_in_xero(conn, plan, same)

        def refuse_next_call(size: int, elements: list[dict[str, Any]]) -> None:
            conn.sandbox.xero.faults.fail_next(2, status=401)

        result = push(conn, plan, ledger, after_batch=refuse_next_call)
        outcomes = _outcome_of(result.outcomes)
        assert outcomes == {same: "unknown", fresh: "created"}
        assert set(ledger.unfinished(plan.tenant_id)["invoice_number"]) == {same}
        rerun = push(conn, plan, ledger)
        assert _outcome_of(rerun.outcomes)[same] in {"skipped", "created"}
        assert ledger.unfinished(plan.tenant_id).empty
    assert _in_xero(conn)[same] == 1
