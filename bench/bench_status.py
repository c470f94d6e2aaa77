"""Issue 17, status targets: the status diff of a million invoices (CPU, memory), and the status
sync of 10,000 transferred invoices with 2% changed since the last sync (calls, CPU), each printed
beside its target.

Local: ``recon.status_diff.find_differences`` over ``--lines`` seeded invoices whose money is
already in whole units (built from the cents, not timed: what ``Ledger.*(units=SCALE)`` supplies),
CPU via ``time.process_time``, its own allocation peak via ``tracemalloc``; with ``--before``,
the frozen diff (``tests/reference_status_v1.py``) on the same rows for the ratio.
Target: mapping check (``bench_local.py``) + status diff <= 3 CPU-s; the diff's share is printed.

Scale: ``sync_status`` over a ledger of ``--rows`` transferred invoices (built with plain SQL,
then a baseline sync, not timed) after ``--changed`` of the open ones changed on either side; the
best of ``--repeat`` syncs, each on its own copy of the ledger, against the 1 CPU-s target. Once
with the open invoices scattered over the whole history (the stress case) and once with them
mostly recent, as in a real space's books (``--open-layout``, ``OPEN_LAYOUTS``).

Sandbox: sets up a sandbox scaled to ~10,000 Shoreditch invoices, transfers them (not
timed), takes a baseline sync, has the demo accountant pay 2% in Xero, then
times the incremental sync and prints the API calls it made (Xero and Nexudus)
and what a per-invoice approach would have cost. Run:

    .venv/bin/python bench/bench_status.py [--lines 1000000] [--invoices 12150] [--before]
        [--rows 1000000] [--changed 10000] [--repeat 5] [--open-layout recent]
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from recon.clients.nexudus import INVOICE_COLUMNS
from recon.demo import act_as_accountant
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import NO_LATENCY, RateLimits, start
from recon.session import connect, register_sandbox
from recon.status import apply_paid, find_differences, sync_status
from recon.status_diff import SCALE
from recon.transfer import plan_transfer, push

ROOT = Path(__file__).resolve().parent.parent
INVOICES = 12_150  # the generator gives Shoreditch ~82.5%: about 10,000
TARGET_LOCAL_CPU = 3.0  # mapping check + status diff of 1,000,000 lines
TARGET_XERO_CALLS = 3
CHANGED_SHARE = 0.02
NEXUDUS_PAGE = 1_000


def _money(cents: np.ndarray) -> np.ndarray:
    """Cents as Decimal cells, one object per distinct amount, as the ledger gives them
    (``Ledger.transfers(units=...)`` reads each distinct text once)."""
    distinct, codes = np.unique(cents, return_inverse=True)
    amounts = np.empty(len(distinct), dtype=object)
    amounts[:] = [Decimal(int(c)).scaleb(-2) for c in distinct]
    return amounts[codes]


def _units(frame: pd.DataFrame, cents: dict[str, np.ndarray]) -> pd.DataFrame:
    """``frame`` with the whole ``SCALE`` units of each money column beside it, from the cents
    (what ``Ledger.*(units=SCALE)`` gives: ``<money>_scaled`` int64, ``<money>_known``)."""
    per_cent = SCALE // 100
    extra: dict[str, Any] = {}
    for column, amounts in cents.items():
        extra[f"{column}_scaled"] = amounts.astype(np.int64) * per_cent
        extra[f"{column}_known"] = np.ones(len(amounts), dtype=bool)
    return frame.assign(**extra)


def diff_inputs(n: int, seed: int = 17) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """n transferred invoices as the sync joins them, ~2% of them differing, money prepared."""
    rng = np.random.default_rng(seed)
    total = rng.integers(1, 500_000, n)
    pick = rng.random(n)
    status = np.where(pick < 0.01, "PAID", "AUTHORISED")
    paid = np.where(pick < 0.01, total, 0)
    n_paid = (pick > 0.01) & (pick < 0.02)
    ids = np.char.add("x-", np.arange(n).astype(str)).astype(object)
    none = np.zeros(n, np.int64)
    n_paid_cents = np.where(n_paid, total, 0)
    cents = {
        "transferred_total": total,
        "nexudus_total_at_transfer": total,
        "xero_total": total,
        "xero_amount_due": total - paid,
        "xero_amount_paid": paid,
        "xero_amount_credited": none,
        "nexudus_total": total,
        "nexudus_paid_amount": n_paid_cents,
        "nexudus_credited": none,
    }
    frame = pd.DataFrame(
        {
            "nexudus_invoice_id": np.arange(n, dtype=np.int64) + 1,
            "invoice_number": np.char.add("INV-", np.arange(n).astype(str)).astype(object),
            "xero_id": ids,
            "currency": "GBP",
            "transferred_total": _money(cents["transferred_total"]),
            "nexudus_total_at_transfer": _money(cents["nexudus_total_at_transfer"]),
            "xero_status": status.astype(object),
            "xero_total": _money(cents["xero_total"]),
            "xero_amount_due": _money(cents["xero_amount_due"]),
            "xero_amount_paid": _money(cents["xero_amount_paid"]),
            "xero_amount_credited": _money(cents["xero_amount_credited"]),
            "xero_paid_on": np.where(paid > 0, "2026-11-20", None),
            "kind": "invoice",
            "_merge": pd.Categorical(["both"] * n, categories=["left_only", "right_only", "both"]),
            "nexudus_total": _money(cents["nexudus_total"]),
            "nexudus_paid": n_paid,
            "nexudus_paid_amount": _money(cents["nexudus_paid_amount"]),
            "nexudus_void": False,
            "nexudus_deleted": False,
            "nexudus_credited": _money(cents["nexudus_credited"]),
            "nexudus_due_date": "2026-11-30",
        }
    )
    state = pd.DataFrame(
        {"xero_id": ids, "number": frame["invoice_number"], "kind": "invoice"}
    ).assign(status=status, created_by_recon=1, total=None, amount_due=None)
    state = state.assign(amount_paid=None, amount_credited=None)
    return _units(frame, cents), state, frame[["nexudus_invoice_id", "invoice_number", "xero_id"]]


def local(lines: int, before: bool) -> None:
    """The status diff of ``lines`` invoices: CPU seconds, allocation peak, ratio to target."""
    frame, state, transfers = diff_inputs(lines)
    t0 = time.process_time()
    out = find_differences(frame, state, transfers, full=True)
    cpu = time.process_time() - t0
    tracemalloc.start()
    find_differences(frame, state, transfers, full=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"status diff of {lines:,} invoices: {cpu:.2f} CPU-s, {peak / 2**20:,.0f} MB allocated")
    print(
        f"  differences: {len(out):,}; share of the {TARGET_LOCAL_CPU:.0f} CPU-s target: "
        f"{cpu / TARGET_LOCAL_CPU:.0%} (mapping check: bench_local.py)"
    )
    if before:
        sys.path.insert(0, str(ROOT / "tests"))
        import reference_status_v1 as reference

        plain = frame[[c for c in frame.columns if not c.endswith(("_scaled", "_known"))]]
        t0 = time.process_time()
        old = reference.differences(reference.with_figures(plain), state, transfers, full=True)
        old_cpu = time.process_time() - t0
        assert len(old) == len(out)
        print(
            f"  before (frozen diff): {old_cpu:.2f} CPU-s; {old_cpu / max(cpu, 1e-9):.1f}x faster"
        )


def sandbox_sync(invoices: int) -> None:
    state = Path(tempfile.mkdtemp(prefix="recon-bench-status-"))
    t0 = time.perf_counter()
    # Setup runs with the limits lifted; the sync is what is measured (its calls, not its pacing).
    box = start(
        state / "sandbox",
        invoices=invoices,
        limits=RateLimits(per_minute=1_000_000, app_per_minute=1_000_000, per_day=1_000_000),
        xero_latency=NO_LATENCY,  # calls and CPU are measured, not Xero's answer times
    )
    register_sandbox(box)
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(box.state_dir)
    )
    with connect(params) as conn, Ledger(state / "ledger.sqlite") as ledger:
        result = push(conn, plan_transfer(conn, ledger=ledger), ledger)
        transferred = result.counts().get("created", 0)
        baseline = sync_status(conn, ledger)
        apply_paid(conn, ledger, baseline)
        setup = time.perf_counter() - t0
        changed = max(1, round(transferred * 0.02))
        actions = act_as_accountant(conn, fully=changed - 2, partly=1, void=1, edit=0, seed=11)
        t1, c1 = time.perf_counter(), time.process_time()
        diff = sync_status(conn, ledger)
        seconds, cpu = time.perf_counter() - t1, time.process_time() - c1
        applied = apply_paid(conn, ledger, diff)
    box.stop()
    print(f"transferred invoices:          {transferred:,} (setup {setup:.1f} s, not timed)")
    print(
        f"baseline full sync:            {baseline.calls['xero']} Xero calls, "
        f"{baseline.calls['nexudus']} Nexudus calls"
    )
    print(f"changed in Xero since then:    {len(actions)} ({len(actions) / transferred:.1%})")
    print(
        f"incremental sync:              {diff.calls['xero']} Xero calls, {diff.calls['nexudus']} "
        f"Nexudus calls, {seconds:.2f} s wall, {cpu:.2f} CPU-s (sandbox in-process)"
    )
    changed_now = len(actions)
    budget = changed_now + math.ceil(changed_now / NEXUDUS_PAGE)
    print(
        f"call budget:                   Xero {diff.calls['xero']} / {TARGET_XERO_CALLS} "
        f"({diff.calls['xero'] / TARGET_XERO_CALLS:.0%}); Nexudus {diff.calls['nexudus']} / "
        f"{budget} ({diff.calls['nexudus'] / budget:.0%})"
    )
    print(f"differences found:             {diff.counts()}")
    print(f"marked paid in Nexudus:        {int((applied['outcome'] == 'applied').sum())}")
    print(
        f"one GET per invoice would be:  {transferred:,} Xero calls; IDs in chunks of 50: "
        f"{math.ceil(transferred / 50)}"
    )
    print(f"calls ratio (per-invoice / recon): {transferred / max(1, diff.calls['xero']):,.0f}x")


# ---- sync_status at ledger scale: 1,000,000 ledger rows, 10,000 changed ----------------------
TARGET_SYNC_CPU = 1.0  # sync_status with 10,000 changed out of 1,000,000 ledger rows
SCALE_TENANT = "bench-tenant"
SCALE_BUSINESS = 1
SCALE_MARK = datetime(2026, 11, 1, tzinfo=UTC)


def _cents_text(cents: np.ndarray) -> list[str]:
    return [f"{int(c) // 100}.{int(c) % 100:02d}" for c in cents]


# Where the invoices still owing lie in a ledger's history (--open-layout): "scattered", anywhere
# with equal chance (the stress case: every change is on a page of its own); "recent", as in a
# coworking space's books, where what is still owing is mostly last month's invoices: 90% among
# the newest 5% of invoices, the rest overdue ones anywhere before.
OPEN_LAYOUTS = ("scattered", "recent")
RECENT_SHARE, RECENT_WINDOW = 0.9, 0.05


def _open_invoices(rng: np.random.Generator, rows: int, share: float, layout: str) -> np.ndarray:
    """Which of ``rows`` invoices (in the order they were written) are still owing."""
    if layout == "scattered":
        return rng.random(rows) < share
    wanted = round(rows * share)
    first_recent = rows - max(1, int(rows * RECENT_WINDOW))
    recent = rng.choice(
        np.arange(first_recent, rows), min(rows - first_recent, round(wanted * RECENT_SHARE)),
        replace=False,
    )  # fmt: skip
    older = rng.choice(first_recent, min(first_recent, wanted - len(recent)), replace=False)
    is_open = np.zeros(rows, dtype=bool)
    is_open[recent] = is_open[older] = True
    return is_open


def build_scale_ledger(
    path: Path, rows: int, open_share: float, seed: int = 17, layout: str = "scattered"
) -> np.ndarray:
    """A ledger of ``rows`` transferred invoices written with plain SQL inserts (quick): every
    one created in Xero and read from Nexudus, a share ``open_share`` still owing on both sides
    (where in the history: ``layout``, one of ``OPEN_LAYOUTS``), the rest paid on both sides.
    Returns the totals in cents."""
    rng = np.random.default_rng(seed)
    total = rng.integers(1_000, 500_000, rows)
    is_open = _open_invoices(rng, rows, open_share, layout)
    money = _cents_text(total)
    zero = "0.00"
    ids = range(1, rows + 1)
    now = "2026-10-31T00:00:00.000+00:00"
    Ledger(path).close()  # the layout, at this recon's version
    db = sqlite3.connect(path)
    with db:
        db.executemany(
            "INSERT INTO transfers(tenant_id,nexudus_invoice_id,invoice_number,kind,state,xero_id,"
            "currency,nexudus_total,xero_total,attempts,created_at,updated_at) "
            "VALUES(?,?,?,'invoice','created',?,'GBP',?,?,1,?,?)",
            (
                (SCALE_TENANT, i, f"INV-{i:07d}", f"x-{i}", m, m, now, now)
                for i, m in zip(ids, money, strict=True)
            ),
        )
        db.executemany(
            "INSERT INTO xero_state(tenant_id,xero_id,number,kind,status,total,amount_due,"
            "amount_paid,amount_credited,fully_paid_on,updated_utc,created_by_recon) "
            "VALUES(?,?,?,'invoice',?,?,?,?,?,?,?,1)",
            (
                (
                    SCALE_TENANT,
                    f"x-{i}",
                    f"INV-{i:07d}",
                    "AUTHORISED" if o else "PAID",
                    m,
                    m if o else zero,
                    zero if o else m,
                    zero,
                    None if o else "2026-10-20",
                    now,
                )
                for i, m, o in zip(ids, money, is_open, strict=True)
            ),
        )
        db.executemany(
            "INSERT INTO nexudus_state(tenant_id,nexudus_invoice_id,total,paid,paid_amount,void,"
            "due_date,updated_on,business_id) VALUES(?,?,?,?,?,0,'2026-10-30T00:00:00',?,?)",
            (
                (SCALE_TENANT, i, m, 0 if o else 1, zero if o else m, now, SCALE_BUSINESS)
                for i, m, o in zip(ids, money, is_open, strict=True)
            ),
        )
        for kind in ("xero_invoices", f"nexudus_invoices:{SCALE_BUSINESS}"):
            db.execute(
                "INSERT INTO watermarks(tenant_id,kind,at) VALUES(?,?,?)",
                (SCALE_TENANT, kind, SCALE_MARK.isoformat()),
            )
    db.close()
    return total * np.where(is_open, 1, -1)  # negative: paid


class _ScaleXero:
    """Xero as the sync reads it: what changed since the watermark (summary objects)."""

    def __init__(self, changed: list[dict[str, Any]]) -> None:
        self.tenant_id, self.calls, self.changed = SCALE_TENANT, 0, changed

    def iter_invoices(self, **query: Any) -> Iterator[dict[str, Any]]:
        self.calls += 1
        return iter(self.changed)  # every one was created by recon


class _ScaleNexudus:
    """Nexudus as the sync reads it: the UpdatedOn range, then the location's count."""

    def __init__(self, changed: pd.DataFrame, count: int) -> None:
        self.calls, self.changed, self.count = 0, changed, count

    def fetch_invoices(self, **query: Any) -> pd.DataFrame:
        self.calls += 1
        return self.changed if query.get("updated_since") else self.changed.iloc[:0]

    def count_invoices(self, business_id: int) -> int:
        self.calls += 1
        return self.count

    def get_invoice(self, invoice_id: int) -> dict[str, Any]:
        raise AssertionError("the bench never deletes an invoice")


def scale_reads(totals: np.ndarray, changed: int, seed: int = 11) -> tuple[Any, Any]:
    """The reads of an incremental sync after ``changed`` open invoices changed: 60% paid in
    Xero, 20% paid on both sides, 20% voided in Nexudus (Xero's and Nexudus' answers as the
    clients give them, money as Decimal)."""
    rng = np.random.default_rng(seed)
    open_ids = np.flatnonzero(totals > 0) + 1
    if changed > len(open_ids):
        raise SystemExit(f"--changed {changed:,} exceeds the {len(open_ids):,} open invoices")
    picked = rng.choice(open_ids, changed, replace=False)
    paid_x, both, void_n = np.split(picked, [int(changed * 0.6), int(changed * 0.8)])
    day = 1793577600000  # 2026-11-02, after the watermark, in ms: the day paid
    # Each change stamped to its own millisecond, as Xero stamps them (UpdatedDateUTC).
    xero = [
        {
            "InvoiceID": f"x-{i}", "InvoiceNumber": f"INV-{i:07d}", "Status": "PAID",
            "Total": Decimal(int(totals[i - 1])).scaleb(-2), "AmountDue": Decimal("0.00"),
            "AmountPaid": Decimal(int(totals[i - 1])).scaleb(-2),
            "AmountCredited": Decimal("0.00"), "FullyPaidOnDate": f"/Date({day}+0000)/",
            "UpdatedDateUTC": f"/Date({day + 36_000_000 + 1_037 * k}+0000)/",
        }
        for k, i in enumerate(np.concatenate([paid_x, both]))
    ]  # fmt: skip
    n_ids = np.concatenate([both, void_n])
    amount = [Decimal(int(totals[i - 1])).scaleb(-2) for i in n_ids]
    is_both = np.isin(n_ids, both)
    nexudus = pd.DataFrame(
        {
            "Id": n_ids.astype(np.int64),
            "UniqueId": [f"u-{i}" for i in n_ids],
            "InvoiceNumber": [f"INV-{i:07d}" for i in n_ids],
            "BusinessId": SCALE_BUSINESS,
            "TotalAmount": amount,
            "PaidAmount": [a if b else Decimal(0) for a, b in zip(amount, is_both, strict=True)],
            "Paid": is_both,
            "Void": ~is_both,
            "DueDate": pd.Timestamp("2026-10-30"),
            "UpdatedOn": pd.Timestamp("2026-11-02T10:00:00Z"),
            "CreditNote": False,
            "OriginalInvoiceGuid": None,
        }
    ).reindex(columns=INVOICE_COLUMNS)
    return xero, nexudus


def _copy_ledger(source: Path, target: Path) -> None:
    """A consistent copy of a ledger file in use (SQLite's backup, WAL included)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()


def scale_sync(
    rows: int, changed: int, open_share: float, repeat: int = 5, layout: str = "scattered"
) -> None:
    """``sync_status`` over a ledger of ``rows`` transferred invoices after ``changed`` of them
    changed: CPU seconds (the best of ``repeat`` runs, each on its own copy of the ledger as the
    baseline left it, with the median beside it: a shared machine's speed drifts by a third
    from one minute to the next), peak memory, ratio to the 1 CPU-s target."""
    folder = Path(tempfile.mkdtemp(prefix="recon-bench-status-scale-"))
    try:
        _scale_sync_in(folder, rows, changed, open_share, repeat, layout)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # a ledger of a million rows: 0.7 GB a copy


def _scale_sync_in(
    folder: Path, rows: int, changed: int, open_share: float, repeat: int, layout: str
) -> None:
    t0 = time.perf_counter()
    totals = build_scale_ledger(folder / "ledger.sqlite", rows, open_share, layout=layout)
    xero_rows, nexudus_rows = scale_reads(totals, changed)
    quiet = SimpleNamespace(
        xero=_ScaleXero([]),
        nexudus=_ScaleNexudus(nexudus_rows.iloc[:0], rows),
        business={"Id": SCALE_BUSINESS, "Name": "Bench location"},
        organisation={"Name": "Bench organisation"},
        location="Bench location",
    )
    with Ledger(folder / "ledger.sqlite") as ledger:
        b0 = time.process_time()
        baseline = sync_status(quiet, ledger)  # type: ignore[arg-type]
        baseline_cpu = time.process_time() - b0
    print(
        f"ledger: {rows:,} transferred invoices, {int((totals > 0).sum()):,} open "
        f"({open_share:.0%}, {layout}); built and baseline-synced in "
        f"{time.perf_counter() - t0:.1f} s "
        f"(not timed; the baseline sync alone {baseline_cpu:.2f} CPU-s, "
        f"{len(baseline.differences):,} differences)"
    )

    def changed_conn() -> SimpleNamespace:
        conn = SimpleNamespace(**{**vars(quiet), "xero": _ScaleXero(xero_rows)})
        conn.nexudus = _ScaleNexudus(nexudus_rows, rows)
        return conn

    cpus: list[float] = []
    for run in range(max(1, repeat)):
        _copy_ledger(folder / "ledger.sqlite", folder / f"run-{run}.sqlite")
        with Ledger(folder / f"run-{run}.sqlite") as ledger:
            gc.collect()
            c0 = time.process_time()
            diff = sync_status(changed_conn(), ledger)  # type: ignore[arg-type]
            cpus.append(time.process_time() - c0)
        (folder / f"run-{run}.sqlite").unlink()
    # The peak of Python's allocations during the same sync on another copy of the ledger as
    # the baseline left it (tracemalloc slows the call, so it is not a timed one; SQLite's own
    # page cache and memory map are not Python allocations and are not counted). Resident-set
    # figures cannot tell: the baseline sync leaves freed heap resident, which a sync reuses.
    _copy_ledger(folder / "ledger.sqlite", folder / "again.sqlite")
    with Ledger(folder / "again.sqlite") as copy:
        gc.collect()
        tracemalloc.start()
        sync_status(changed_conn(), copy)  # type: ignore[arg-type]
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    cpu = min(cpus)
    print(
        f"sync_status, {changed:,} changed of {rows:,} ledger rows ({layout}): {cpu:.2f} CPU-s "
        f"(best of "
        f"{len(cpus)}; median {float(np.median(cpus)):.2f}; each: "
        f"{', '.join(f'{c:.2f}' for c in cpus)}), peak {peak / 2**20:,.0f} MB allocated "
        f"(tracemalloc, same sync on a copy); {cpu / TARGET_SYNC_CPU:.0%} of the "
        f"{TARGET_SYNC_CPU:.0f} CPU-s target"
    )
    print(f"  differences: {diff.counts()}; unpaid listed: {len(diff.unpaid):,}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=INVOICES)
    parser.add_argument("--before", action="store_true", help="also time the frozen diff")
    parser.add_argument("--no-sandbox", action="store_true", help="skip the sandbox sync")
    parser.add_argument("--no-local", action="store_true", help="skip the diff of --lines")
    parser.add_argument("--no-scale", action="store_true", help="skip the ledger-scale sync")
    parser.add_argument("--rows", type=int, default=1_000_000, help="ledger rows (scale sync)")
    parser.add_argument("--changed", type=int, default=10_000, help="changed (scale sync)")
    # Five: the machine's speed swings by half within minutes (run_all's "machine speed"), and
    # the best of five catches a quiet moment more often than the best of three.
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (scale sync)")
    parser.add_argument(
        "--open-layout",
        action="append",
        choices=OPEN_LAYOUTS,
        help="where the open invoices lie (scale sync; repeat for several; default: both)",
    )
    parser.add_argument(
        "--open-share", type=float, default=0.03, help="share still owing (scale sync)"
    )
    args = parser.parse_args(argv)
    if not args.no_local:
        local(args.lines, args.before)
    if not args.no_scale:
        for layout in args.open_layout or OPEN_LAYOUTS:
            scale_sync(args.rows, args.changed, args.open_share, args.repeat, layout)
    if not args.no_sandbox:
        sandbox_sync(args.invoices)


if __name__ == "__main__":
    main()
