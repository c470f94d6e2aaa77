"""How fast is the mapping check on a million invoice lines?

Builds the inputs ``recon.mapping.check_mapping`` takes, in the shapes the
clients return them (``NexudusClient.fetch_invoices`` / ``fetch_invoice_lines``,
``XeroClient.fetch_accounts`` / ``fetch_tax_rates``), straight from the demo
seed dicts (no HTTP): Hive Shoreditch's in-period invoices and lines, tiled
with fresh unique ids until there are ``--lines`` lines. Building the inputs
is not timed; ``check_mapping`` is timed in CPU seconds, best of ``--repeat`` runs.

Run: ``.venv/bin/python bench/bench_mapping.py [--lines 1000000] [--repeat 3] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from recon.mapping import check_mapping
from recon.sandbox.seed import DemoData, generate

LOCATION = "Hive Shoreditch"
PERIOD = (date(2026, 8, 1), date(2026, 10, 31))
INVOICE_COLUMNS = ["Id", "InvoiceNumber", "CurrencyCode", "TotalAmount"]
LINE_COLUMNS = [
    "Id",
    "CoworkerInvoiceId",
    "FinancialAccountCode",
    "FinancialAccountName",
    "TaxCategoryName",
    "TaxRate",
    "Position",
]
# As XeroClient.fetch_accounts / fetch_tax_rates select them.
ACCOUNT_COLUMNS = [
    "AccountID",
    "Code",
    "Name",
    "Type",
    "Class",
    "Status",
    "TaxType",
    "SystemAccount",
    "EnablePaymentsToAccount",
    "BankAccountType",
    "CurrencyCode",
    "Description",
]
TAX_RATE_COLUMNS = [
    "TaxType",
    "Name",
    "Status",
    "EffectiveRate",
    "DisplayTaxRate",
    "ReportTaxType",
    "CanApplyToRevenue",
    "CanApplyToExpenses",
    "CanApplyToLiabilities",
    "CanApplyToAssets",
    "CanApplyToEquity",
]


def _records(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)


def base_frames(data: DemoData) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One copy of Shoreditch's in-scope invoices and lines, and its Xero organisation's
    settings."""
    business_id = next(b["Id"] for b in data.nexudus.businesses if b["Name"] == LOCATION)
    first, last = (d.isoformat() for d in PERIOD)
    invoices = [
        i
        for i in data.nexudus.invoices
        if i["BusinessId"] == business_id
        and not i["Void"]
        and not i["Draft"]
        and first <= i["CreatedOn"][:10] <= last
    ]
    wanted = {i["Id"] for i in invoices}
    lines = [ln for ln in data.nexudus.invoice_lines if ln["CoworkerInvoiceId"] in wanted]
    tenant = data.locations[business_id]
    org = next(o for o in data.xero_orgs if o.organisation["OrganisationID"] == tenant)
    return (
        _records(invoices, INVOICE_COLUMNS),
        _records(lines, LINE_COLUMNS),
        _records(org.accounts, ACCOUNT_COLUMNS),
        _records(org.tax_rates, TAX_RATE_COLUMNS),
    )


def tile(
    invoices: pd.DataFrame, lines: pd.DataFrame, n_lines: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Repeat invoices and lines until there are ``n_lines`` lines, every id and invoice number
    fresh."""
    copies = -(-n_lines // len(lines))
    n_inv = len(invoices)
    position = pd.Index(invoices["Id"]).get_indexer(lines["CoworkerInvoiceId"])
    assert (position >= 0).all()
    copy_of_inv = np.repeat(np.arange(copies), n_inv)
    big_invoices = pd.DataFrame(
        {
            "Id": np.arange(copies * n_inv, dtype="int64") + 1,
            "InvoiceNumber": pd.Series(
                np.tile(invoices["InvoiceNumber"].to_numpy(dtype=object), copies)
            ).astype("str")
            + "-"
            + pd.Series(copy_of_inv).astype("str"),
            "CurrencyCode": pd.Series(
                np.tile(invoices["CurrencyCode"].to_numpy(dtype=object), copies), dtype="str"
            ),
            "TotalAmount": pd.Series(
                np.tile(invoices["TotalAmount"].to_numpy(dtype=object), copies), dtype=object
            ),
        }
    )
    copy_of_line = np.repeat(np.arange(copies), len(lines))
    big_lines = pd.DataFrame(
        {
            "Id": np.arange(copies * len(lines), dtype="int64") + 1,
            "CoworkerInvoiceId": (np.tile(position, copies) + copy_of_line * n_inv + 1).astype(
                "int64"
            ),
            **{
                c: pd.Series(np.tile(lines[c].to_numpy(dtype=object), copies), dtype="str")
                for c in ("FinancialAccountCode", "FinancialAccountName", "TaxCategoryName")
            },
            **{
                c: pd.Series(np.tile(lines[c].to_numpy(dtype=object), copies), dtype=object)
                for c in ("TaxRate", "Position")
            },
        }
    ).head(n_lines)
    # Keep only whole invoices (the cut at n_lines may split the last copy's invoice).
    return big_invoices[big_invoices["Id"].isin(big_lines["CoworkerInvoiceId"])].reset_index(
        drop=True
    ), big_lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--profile", action="store_true", help="profile one extra run and print the top functions"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    invoices, lines, accounts, tax_rates = base_frames(generate())
    big_invoices, big_lines = tile(invoices, lines, args.lines)
    print(
        f"inputs: {len(big_lines):,} lines on {len(big_invoices):,} invoices "
        f"(demo: {len(lines)} lines, {len(invoices)} invoices), built in "
        f"{time.perf_counter() - started:.1f} s (not timed)"
    )

    timings = []
    result = None
    for _ in range(args.repeat):
        t0 = time.process_time()
        result = check_mapping(big_invoices, big_lines, accounts, tax_rates, {})
        timings.append(time.process_time() - t0)
    assert result is not None
    best = min(timings)
    print(
        f"check_mapping: best of {args.repeat} = {best:.2f} CPU-s "
        f"({', '.join(f'{t:.2f}' for t in timings)}), {len(big_lines) / best:,.0f} lines/s "
        "(memory, the old check and datacompy: bench_local.py)"
    )
    counts = result.problems.groupby(["kind", "problem"]).agg(
        keys=("key", "size"), invoices=("invoices", "sum"), lines=("lines", "sum")
    )
    print("problems found (what they block):")
    print(counts.to_string())
    print(result.summary.to_string(index=False))

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(check_mapping, big_invoices, big_lines, accounts, tax_rates, {})
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(r"recon/mapping/", 25)


if __name__ == "__main__":
    main()
