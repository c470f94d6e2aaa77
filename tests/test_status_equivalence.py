"""The vectorised status diff gives, row for row, what the diff gave before issue 17
(``tests/reference_status_v1.py``, frozen), on a seeded 100,000-invoice data set with messy rows:
missing from Xero, voided and deleted, part-paid, credited, re-totalled on either side, deleted in
Nexudus, currency mismatches and blanks."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
import reference_status_v1 as reference

from recon.status import Difference, find_differences
from recon.status_diff import SCALE, to_scaled, with_scaled

INVOICES = 100_000
STATUSES = np.array(["AUTHORISED", "PAID", "VOIDED", "DELETED", "DRAFT", "SUBMITTED"])


def _money(cents: np.ndarray, blank: np.ndarray) -> list[Decimal | None]:
    return [None if b else Decimal(int(c)).scaleb(-2) for c, b in zip(cents, blank, strict=True)]


def _data_set(seed: int, n: int = INVOICES) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(the sync's joined frame, the ledger's copy of Xero, the transfer rows), messy on purpose."""
    rng = np.random.default_rng(seed)
    total = rng.integers(1, 500_000, n)
    kind = rng.choice(
        [
            "clean",
            "paid in xero",
            "part-paid in xero",
            "credited in xero",
            "voided",
            "paid in nexudus",
            "part-paid in nexudus",
            "void in nexudus",
            "deleted in nexudus",
            "credit note in nexudus",
            "re-totalled in xero",
            "re-totalled in nexudus",
            "missing",
            "paid twice",
        ],
        n,
    )
    status = np.where(rng.random(n) < 0.7, "AUTHORISED", rng.choice(STATUSES, n))
    status = np.where(np.isin(kind, ["paid in xero", "paid twice"]), "PAID", status)
    status = np.where(kind == "voided", rng.choice(["VOIDED", "DELETED"], n), status)
    x_paid = np.where(kind == "paid in xero", total, 0)
    x_paid = np.where(kind == "part-paid in xero", total // 2, x_paid)
    x_paid = np.where(kind == "paid twice", total - rng.integers(0, 2, n), x_paid)
    x_credited = np.where(
        kind == "credited in xero", np.where(rng.random(n) < 0.5, total, total // 3), 0
    )
    x_total = np.where(kind == "re-totalled in xero", total + rng.integers(-900, 900, n), total)
    x_due = np.maximum(x_total - x_paid - x_credited, 0)
    n_total = np.where(kind == "re-totalled in nexudus", total + 150, total)
    n_paid = np.isin(kind, ["paid in nexudus", "paid twice"]) | (rng.random(n) < 0.05)
    n_paid_amount = np.where(n_paid, n_total, 0)
    n_paid_amount = np.where(kind == "part-paid in nexudus", n_total // 4, n_paid_amount)
    n_credited = np.where(
        kind == "credit note in nexudus", np.where(rng.random(n) < 0.5, total, total // 2), 0
    )
    n_credited = np.where(rng.random(n) < 0.01, total + 1, n_credited)  # over-credited
    missing = kind == "missing"
    blank_x = missing | (rng.random(n) < 0.005)  # Xero figures unknown
    blank_transfer = rng.random(n) < 0.01  # a ledger row from before totals were kept
    numbers = np.char.add("INV-", np.arange(n).astype(str))
    numbers[rng.random(n) < 0.001] = "INV-DUP"  # duplicates sort by position
    xero_ids = np.char.add("x-", np.arange(n).astype(str)).astype(object)
    frame = pd.DataFrame(
        {
            "nexudus_invoice_id": np.arange(n, dtype=np.int64) + 1,
            "invoice_number": numbers.astype(object),
            "xero_id": xero_ids,
            # a currency mismatch is not a difference the diff reports: it must pass untouched
            "currency": rng.choice(
                ["GBP", "EUR", "USD", "gbp", None], n, p=[0.7, 0.1, 0.1, 0.05, 0.05]
            ),
            "transferred_total": _money(total, blank_transfer),
            "nexudus_total_at_transfer": _money(total, blank_transfer),
            "xero_status": [None if m else s for m, s in zip(missing, status, strict=True)],
            "xero_total": _money(x_total, blank_x),
            "xero_amount_due": _money(x_due, blank_x),
            "xero_amount_paid": _money(x_paid, blank_x),
            "xero_amount_credited": _money(x_credited, blank_x),
            "xero_paid_on": np.where(status == "PAID", "2026-11-20", None),
            "kind": np.where(missing, None, "invoice"),
            "_merge": pd.Categorical(
                np.where(missing, "left_only", "both"),
                categories=["left_only", "right_only", "both"],
            ),
            "nexudus_total": _money(n_total, rng.random(n) < 0.002),
            "nexudus_paid": n_paid,
            "nexudus_paid_amount": _money(n_paid_amount, np.zeros(n, bool)),
            "nexudus_void": (kind == "void in nexudus") | (rng.random(n) < 0.005),
            "nexudus_deleted": kind == "deleted in nexudus",
            "nexudus_credited": _money(n_credited, np.zeros(n, bool)),
            "nexudus_due_date": "2026-11-30",
        }
    )
    known_state = np.zeros(int((~missing).sum()) + 3, bool)
    state = pd.DataFrame(
        {
            "xero_id": np.concatenate([xero_ids[~missing], ["orphan-1", "orphan-2", "orphan-3"]]),
            "number": np.concatenate([numbers[~missing], ["ORPHAN-1", "ORPHAN-2", "ORPHAN-3"]]),
            "kind": "invoice",
            "status": np.concatenate([status[~missing], ["AUTHORISED", "DELETED", "PAID"]]),
            "total": _money(np.concatenate([x_total[~missing], [100, 200, 300]]), known_state),
            "amount_due": Decimal(0),
            "amount_paid": Decimal(0),
            "amount_credited": Decimal(0),
            "created_by_recon": np.concatenate([np.ones(int((~missing).sum()), int), [1, 1, 0]]),
        }
    )
    transfers = frame[["nexudus_invoice_id", "invoice_number", "xero_id"]]
    return frame, state, transfers


@pytest.mark.slow
@pytest.mark.parametrize("full", [False, True])
def test_the_vectorised_diff_gives_the_frozen_diffs_rows_on_100000_messy_invoices(
    full: bool,
) -> None:
    frame, state, transfers = _data_set(seed=17)
    before = reference.differences(reference.with_figures(frame), state, transfers, full=full)
    after = find_differences(frame, state, transfers, full=full)
    pd.testing.assert_frame_equal(after, before)
    kinds = set(after["difference"])
    # The messy rows really were there: each kind the data set plants is found.
    assert {
        Difference.PAID_IN_XERO.value,
        Difference.PART_PAID_IN_XERO.value,
        Difference.CREDITED_IN_XERO.value,
        Difference.VOIDED_IN_XERO.value,
        Difference.PAID_IN_NEXUDUS.value,
        Difference.VOIDED_IN_NEXUDUS.value,
        Difference.DELETED_IN_NEXUDUS.value,
        Difference.CREDIT_NOTE_IN_NEXUDUS.value,
        Difference.PAID_TWICE.value,
        Difference.TOTAL_CHANGED.value,
        Difference.TOTAL_CHANGED_IN_NEXUDUS.value,
        Difference.AWAITING_APPROVAL.value,
        Difference.UNKNOWN_TO_LEDGER.value,
    } <= kinds
    assert (Difference.MISSING_FROM_XERO.value in kinds) == full


def test_whole_units_supplied_beforehand_give_the_same_rows() -> None:
    frame, state, transfers = _data_set(seed=5, n=5_000)
    plain = find_differences(frame, state, transfers, full=True)
    prepared = find_differences(with_scaled(frame), state, transfers, full=True)
    pd.testing.assert_frame_equal(prepared, plain)


def test_an_amount_finer_than_the_scale_is_refused_rather_than_rounded() -> None:
    scaled, known = to_scaled(pd.Series([Decimal("1.25"), None, Decimal("-0.0001")], name="x"))
    assert scaled.tolist() == [125 * SCALE // 100, 0, -1] and known.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="more than 4 decimal places"):
        to_scaled(pd.Series([Decimal("0.00001")], name="xero_total"))


def test_no_difference_gives_an_empty_frame_with_the_columns() -> None:
    frame, state, transfers = _data_set(seed=3, n=50)
    clean = frame[frame.index < 0]
    out = find_differences(clean, state[state["created_by_recon"] == 2], transfers, full=True)
    before = reference.differences(
        reference.with_figures(clean), state.iloc[:0], transfers, full=True
    )
    assert out.empty and list(out.columns) == list(before.columns)
