"""Transfer to the Xero sandbox: exactly the eligible invoices, to the cent, never twice, whatever
breaks."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from recon.ledger import Ledger
from recon.session import Connection
from recon.transfer import TransferPlan, plan_transfer, push
from recon.transfer.lookups import lookup_file


class Crash(Exception):
    """Stands for the process dying."""


def _ledger(conn: Connection) -> Ledger:
    return Ledger(conn.ledger_path)


def _xero_invoices(conn: Connection) -> list[dict[str, Any]]:
    return list(conn.xero.iter_invoices(created_by_my_app=True))  # not the seed's hand-keyed one


def _xero_numbers(conn: Connection) -> Counter[str]:
    numbers = Counter(
        str(i["InvoiceNumber"]) for i in _xero_invoices(conn) if i["Status"] != "DELETED"
    )
    numbers.update(str(n["CreditNoteNumber"]) for n in conn.xero.iter_credit_notes())
    return numbers


def _nexudus_totals(conn: Connection) -> dict[str, Decimal]:
    frame = conn.nexudus.fetch_invoices(business_id=int(conn.business["Id"]))
    return {
        str(r.InvoiceNumber): abs(r.TotalAmount)
        for r in frame.itertuples()
        if isinstance(r.InvoiceNumber, str)
    }


def test_a_transfer_creates_exactly_the_eligible_invoices_with_nexudus_totals_to_the_cent(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    planted = conn.sandbox.planted
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        result = push(conn, plan, ledger)
    assert set(result.outcomes["outcome"]) == {"created"}, result.failed[
        ["invoice_number", "messages"]
    ]
    created = set(result.outcomes["invoice_number"])
    assert created == set(plan.eligible["invoice_number"])
    assert set(planted["clean_invoices"]) <= created
    in_xero = _xero_numbers(conn)
    assert set(in_xero) == created and max(in_xero.values()) == 1
    totals = _nexudus_totals(conn)
    xero_totals = {str(i["InvoiceNumber"]): Decimal(str(i["Total"])) for i in _xero_invoices(conn)}
    xero_totals.update(
        {
            str(n["CreditNoteNumber"]): Decimal(str(n["Total"]))
            for n in conn.xero.iter_credit_notes()
        }
    )
    assert all(xero_totals[n] == totals[n] for n in created)
    assert (result.outcomes["difference"] == 0).all()


def test_what_a_push_creates_is_kept_for_the_next_plans_number_lookup(
    fresh_conn: Connection,
) -> None:
    """Each document a push of half the plan created goes, as Xero answered it, beside the
    plan's kept number lookup (lookups.remember_sent), and the next plan reads it into that
    lookup: the re-run's
    If-Modified-Since read need not page through recon's own new documents (test_guards)."""
    conn = fresh_conn
    tenant = str(conn.xero.tenant_id)
    with _ledger(conn) as ledger:
        kept = lookup_file(ledger.path, tenant)
        sent = kept.with_name(f"{kept.stem}.sent.jsonl")
        plan = plan_transfer(conn, ledger=ledger)
        assert kept.exists()  # the plan read its numbers in one paged read of its dates
        numbers = list(plan.eligible["invoice_number"])
        result = push(conn, plan.only(numbers[: len(numbers) // 2]), ledger)
        created = result.outcomes[result.outcomes["outcome"] == "created"]
        assert len(created) == len(numbers) // 2
        lines = [json.loads(line) for line in sent.read_text("utf-8").splitlines()]
        assert sorted(r["xero_id"] for r in lines) == sorted(created["xero_id"])
        assert all(r["sent"] is True and r["updated"] for r in lines)
        assert len(plan_transfer(conn, ledger=ledger).eligible) == len(numbers) - len(created)
    assert not sent.exists()
    documents = json.loads(kept.read_text("utf-8"))["kinds"]
    in_lookup = {d["xero_id"] for kind in documents.values() for d in kind["documents"]}
    assert set(created["xero_id"]) <= in_lookup


def test_every_excluded_invoice_says_why(fresh_conn: Connection) -> None:
    conn = fresh_conn
    planted = conn.sandbox.planted
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
    reasons = plan.excluded.set_index("invoice_number")["reason"]
    assert (plan.excluded["reason"] != "").all()
    assert reasons[planted["void_invoice"]] == "void in Nexudus"
    assert reasons[planted["missing_account_invoices"][0]].startswith("mapping: missing in Xero")
    assert "USD is not enabled" in reasons[planted["unsupported_currency_invoice"]]
    assert "longer than 255" in reasons[planted["long_name_invoice"]]
    # Nexudus rounded this invoice's tax on its total: it goes over with Nexudus' tax per line.
    rounding = plan.eligible.set_index("invoice_number").loc[planted["rounding_difference_invoice"]]
    assert rounding["way"] == "tax override"
    assert rounding["xero_tax"] == rounding["nexudus_tax"]
    assert rounding["xero_total"] == rounding["nexudus_total"]
    assert len(plan.excluded) + len(plan.eligible) == len(
        conn.nexudus.fetch_invoices(
            business_id=int(conn.business["Id"]),
            start=conn.params.period_start,
            end=conn.params.period_end,
        )
    )


def test_a_second_run_creates_nothing(fresh_conn: Connection) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        push(conn, plan_transfer(conn, ledger=ledger), ledger)
        before = _xero_numbers(conn)
        again = plan_transfer(conn, ledger=ledger)
        second = push(conn, again, ledger)
    assert again.eligible.empty
    assert "already transferred (ledger)" in set(again.excluded["reason"])
    assert second.outcomes.empty
    assert _xero_numbers(conn) == before


def test_a_crash_after_xero_saved_a_batch_leaves_no_duplicate_and_nothing_missing(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    batches = []

    def crash_on_second_batch(size: int, elements: list[dict[str, Any]]) -> None:
        batches.append(size)
        if len(batches) == 2:
            raise Crash("killed after Xero answered, before the ledger heard")

    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        with pytest.raises(Crash):
            push(conn, plan, ledger, after_batch=crash_on_second_batch)
        assert len(ledger.unfinished(plan.tenant_id)) == 50
    # A new process: a new ledger handle, a new plan, the same books.
    with _ledger(conn) as ledger:
        rerun = push(conn, plan_transfer(conn, ledger=ledger), ledger)
        assert ledger.unfinished(plan.tenant_id).empty
        assert ledger.transferred_ids(plan.tenant_id) == set(plan.eligible["nexudus_invoice_id"])
    in_xero = _xero_numbers(conn)
    assert set(in_xero) == set(plan.eligible["invoice_number"])
    assert max(in_xero.values()) == 1
    assert "failed" not in set(rerun.outcomes["outcome"])


def test_a_connection_dropped_after_xero_saved_the_batch_is_retried_without_duplicates(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    conn.sandbox.xero.faults.drop_next(2, after_commit=True)
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        result = push(conn, plan, ledger)
    assert set(result.outcomes["outcome"]) == {"created"}
    in_xero = _xero_numbers(conn)
    assert set(in_xero) == set(plan.eligible["invoice_number"]) and max(in_xero.values()) == 1


def test_one_invalid_invoice_in_a_batch_of_50_fails_alone_with_xeros_message(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
        narrowed: TransferPlan = plan.only(invoices["invoice_number"].head(50))
        victim = int(narrowed.eligible["nexudus_invoice_id"].iloc[7])
        # Between the preview and the push someone changed the item's account to one Xero lacks.
        narrowed.payloads[victim]["LineItems"][0]["AccountCode"] = "9999"
        result = push(conn, narrowed, ledger)
    counts = result.counts()
    assert counts == {"created": 49, "failed": 1}
    failed = result.failed.iloc[0]
    assert failed["nexudus_invoice_id"] == victim
    assert failed["messages"] == "Account code '9999' is not a valid code for this document."
    assert "Fix the account on each line" in failed["fix"]


def test_a_429_storm_and_an_expired_token_mid_run_are_survived(fresh_conn: Connection) -> None:
    conn = fresh_conn
    box = conn.sandbox
    box.xero.faults.throttle_next(4, retry_after=1)
    seen = []

    def expire_after_first_batch(size: int, elements: list[dict[str, Any]]) -> None:
        seen.append(size)
        if len(seen) == 1:
            box.xero.identity.expire_all_access_tokens()
            box.xero.faults.throttle_next(3, retry_after=1)

    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        result = push(conn, plan, ledger, after_batch=expire_after_first_batch)
    assert set(result.outcomes["outcome"]) == {"created"}
    assert len(result.outcomes) == len(plan.eligible)


def test_nothing_is_written_back_to_nexudus_by_default(fresh_conn: Connection) -> None:
    """The ledger is the record: the write-back costs three Nexudus calls an invoice, so it is
    off unless the params turn it on, and a push then makes no Nexudus call at all."""
    conn = fresh_conn
    assert conn.params.write_back_system_id is False
    before = conn.nexudus.calls
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        assert plan.options.write_back is False and plan.write_back_calls == 0
        result = push(conn, plan, ledger)
        assert (ledger.transfers(conn.xero.tenant_id)["written_back"] == 0).all()
    assert result.calls["nexudus"] == 0
    assert result.context["write_back_calls_needed"] == 0
    assert "written_back" not in result.context
    first = result.outcomes.iloc[0]
    assert not conn.nexudus.get_invoice(int(first["nexudus_invoice_id"])).get("SystemId")
    assert conn.nexudus.calls - before < 10  # the plan's reads, no write per invoice


def test_with_write_back_on_each_xero_id_is_kept_in_a_whole_record_put(
    fresh_conn: Connection,
) -> None:
    """nexudus.md §4: a PUT replaces the record; the id must survive and nothing else move."""
    conn = dataclasses.replace(
        fresh_conn, params=fresh_conn.params.with_overrides(write_back_system_id=True)
    )
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        assert plan.options.write_back and plan.write_back_calls == 3 * len(plan.eligible)
        first_id = int(plan.eligible.iloc[0]["nexudus_invoice_id"])
        before = conn.nexudus.get_invoice(first_id)
        result = push(conn, plan, ledger)
        transfers = ledger.transfers(conn.xero.tenant_id)
        events = ledger.events()
    not_back = transfers[transfers["written_back"] == 0]
    # nexudus.md §5: hundreds of writes in a few of the sandbox's one-second "minutes", paced by
    # the client: never throttled (a 409 would be retried, one more call), three calls for each
    # invoice written back and one for each refused on its first read.
    assert result.context["written_back"] == len(transfers) - len(not_back) > 60
    assert result.calls["nexudus"] == 3 * result.context["written_back"] + len(not_back)
    # Only invoices Nexudus could not save stay unwritten: the planted blank billing names
    # (BillToName is required on a PUT, nexudus.md §7.1); the ledger names the field.
    assert 0 < len(not_back) < 5
    pairs = zip(not_back["invoice_number"], not_back["nexudus_invoice_id"], strict=True)
    for number, invoice_id in pairs:
        assert not str(conn.nexudus.get_invoice(int(invoice_id)).get("BillToName") or "").strip()
        detail = " ".join(events[events["subject"] == number]["detail"].astype(str))
        assert "requires BillToName" in detail, detail
    row = result.outcomes[result.outcomes["nexudus_invoice_id"] == first_id].iloc[0]
    after = conn.nexudus.get_invoice(first_id)
    assert after["SystemId"] == f"xero:{row['xero_id']}"
    unchanged = ("BillToName", "BillToAddress", "DueDate", "InvoiceFromDate", "PurchaseOrder")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}


def test_the_write_back_keeps_to_its_nexudus_call_budget_and_the_next_push_writes_back_the_rest(
    fresh_conn: Connection,
) -> None:
    """Counted in Nexudus' budget, not Xero's: three calls an invoice (nexudus.md §4), at most
    ``write_back_budget`` of them in one push; the ledger says how many are left."""
    conn = dataclasses.replace(
        fresh_conn, params=fresh_conn.params.with_overrides(write_back_system_id=True)
    )
    clean = set(conn.sandbox.planted["clean_invoices"])
    with _ledger(conn) as ledger:
        full = plan_transfer(conn, ledger=ledger)
        plan = full.only([n for n in full.eligible["invoice_number"] if n in clean][:5])
        assert plan.write_back_calls == 15

        first = push(conn, plan, ledger, write_back_budget=7)

        assert first.calls["nexudus"] == 6  # two invoices' worth; a third would need 9
        assert (first.context["written_back"], first.context["write_back_left"]) == (2, 3)
        assert first.context["write_back_calls_needed"] == 15
        assert int(ledger.transfers(plan.tenant_id)["written_back"].sum()) == 2
        events = ledger.events()
        deferred = events[
            (events["action"] == "write back xero id") & (events["outcome"] == "deferred")
        ]
        assert deferred["detail"].str.contains("3 of 5 left for the next push").any()

        again = push(conn, plan, ledger)  # nothing to Xero; the three left, within the default

        assert set(again.outcomes["outcome"]) == {"skipped"}
        assert again.calls["nexudus"] == 9 and again.context["write_back_left"] == 0
        transfers = ledger.transfers(plan.tenant_id)
    assert (transfers["written_back"] == 1).all()
    for rec in transfers.itertuples():
        assert conn.nexudus.get_invoice(int(rec.nexudus_invoice_id))["SystemId"] == (
            f"xero:{rec.xero_id}"
        )


def test_contacts_are_keyed_on_a_stable_number_and_a_same_name_contact_is_used_not_duplicated(
    fresh_conn: Connection,
) -> None:
    """Issue "Reconciliation that misses nothing": an existing Xero contact with the customer's
    name and no contact number is the customer's contact (Xero keeps names unique, §6); no
    second "Name (e-mail)" contact is made, and two customers never share a number."""
    conn = fresh_conn
    planted = conn.sandbox.planted
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        push(conn, plan, ledger)
    contacts = list(conn.xero.iter_contacts())
    numbers = Counter(c.get("ContactNumber") for c in contacts if c.get("ContactNumber"))
    assert max(numbers.values()) == 1
    clash = [c for c in contacts if c["Name"].startswith(planted["name_clash_contact"])]
    assert len(clash) == 1 and not clash[0].get("ContactNumber")
    theirs = plan.eligible[plan.eligible["coworker_id"] == planted["name_clash_coworker"]]
    assert len(theirs) and set(theirs["xero_contact_id"]) == {clash[0]["ContactID"]}
    assert set(theirs["contact_match"]) == {"name"}
    same_name = plan.eligible[plan.eligible["coworker_id"].isin(planted["same_name_coworkers"])]
    assert same_name["contact_number"].nunique() == 2


def test_a_push_larger_than_the_call_budget_sends_the_oldest_part_and_a_later_run_finishes(
    fresh_conn: Connection,
) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        assert plan.write_calls > 5
        first = push(conn, plan, ledger, call_budget=5)
        counts = first.counts()
        assert counts.get("created", 0) > 0 and counts.get("deferred", 0) > 0
        assert (
            first.calls["xero"] <= 5 + 2
        )  # the budget, plus at most the recovery and contact look-ups
        created = first.outcomes[first.outcomes["outcome"] == "created"]
        deferred = first.outcomes[first.outcomes["outcome"] == "deferred"]
        dates = plan.eligible.set_index("invoice_number")["date"]
        assert dates[created["invoice_number"]].max() <= dates[deferred["invoice_number"]].min()
        assert "today's budget" in deferred["messages"].iloc[0]
        second = push(conn, plan_transfer(conn, ledger=ledger), ledger)
    assert set(second.outcomes["outcome"]) == {"created"}
    assert set(created["invoice_number"]) | set(second.outcomes["invoice_number"]) == set(
        plan.eligible["invoice_number"]
    )
    in_xero = _xero_numbers(conn)
    assert set(in_xero) == set(plan.eligible["invoice_number"]) and max(in_xero.values()) == 1


def test_the_budget_comes_from_xeros_day_limit_header(fresh_conn: Connection) -> None:
    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        from recon.transfer import BUDGET_RESERVE, day_calls_left

        per_day = conn.sandbox.xero.limits.per_day
        used = per_day - day_calls_left(
            conn
        )  # what connect and the plan spent today, as Xero counts it
        conn.sandbox.xero.limits = conn.sandbox.xero.limits.with_(
            per_day=used + 1 + BUDGET_RESERVE + 3
        )
        conn.xero.fetch_currencies()  # any answer refreshes X-DayLimit-Remaining
        assert day_calls_left(conn) == BUDGET_RESERVE + 3
        result = push(conn, plan, ledger)
    assert result.context["call_budget"] == 3
    assert result.counts().get("deferred", 0) > 0
    assert "failed" not in result.counts()


def test_a_plan_for_one_location_is_refused_through_another_locations_connection(
    fresh_conn: Connection,
) -> None:
    from recon.session import connect

    conn = fresh_conn
    with _ledger(conn) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        with connect(conn.params.with_overrides(location="Hive Dublin Docklands")) as dublin:
            result = push(dublin, plan, ledger)
        assert set(result.outcomes["outcome"]) == {"refused"}
        assert "go only to their own organisation" in result.outcomes["messages"].iloc[0]
        assert "push refused" in set(ledger.events()["action"])
    assert not _xero_numbers(conn)
