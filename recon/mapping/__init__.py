"""Mapping check: does every invoice line's account and tax rate match Xero?

Floor 3 (the package's modules import the leaves, floor 2 and one another). ``check_mapping``
takes the Nexudus side (invoices and their lines in the period) and the Xero side (accounts, tax
rates) as DataFrames and returns a ``MappingResult``: one row per Nexudus account and per Nexudus
tax rate used, with a ``problem`` from ``recon.mapping_problems.Problem``, what it blocks
(invoices, lines, money per currency), the message Xero would answer and a suggested fix; its
``problems`` table ranks them by the money they block. ``check_location`` fetches both sides for
the connection's location and period (``load_inputs``) and runs the check.

The parts, each with one job:

- ``recon.mapping.codes``: lines and invoices as integer codes; exact integer sums over them.
- ``recon.mapping.rules``: the matching rules, once per distinct account and tax rate.
- ``recon.mapping.usage``: what each problem blocks, per invoice and per currency.
- ``recon.mapping.result``: ``MappingResult``, the ranking by money, rendering and saving.
- ``recon.mapping.inputs``: ``MappingInputs`` and ``load_inputs``.
- ``recon.mapping.tax_map``: reading, checking, diffing and saving the tax map.

No Python runs per line; the results are those of the per-line version this replaced, row for
row (tests/test_mapping_equivalence.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from recon.mapping.codes import (
    ACCOUNT_KEY,
    PAIR_CELLS_PER_PASS,
    PLAIN_AMOUNT,
    PLAIN_AMOUNT_TYPES,
    TAX_KEY,
    invoice_codes,
    invoice_frame,
    line_keys,
)
from recon.mapping.inputs import MappingInputs, load_inputs
from recon.mapping.result import MappingResult, rank_by_money
from recon.mapping.rules import (
    ACCOUNT_TYPES,
    CLASS_TAX_FLAG,
    FORBIDDEN_SYSTEM,
    FORBIDDEN_TYPES,
    NO_TAX_NAME,
    SALES_CLASSES,
    SETUP_ACCOUNT_TYPES,
    XERO_NO_TAX_TYPE,
    check_accounts,
    check_tax_rates,
    with_setup_accounts,
)
from recon.mapping.tax_map import load_tax_map, save_tax_map, tax_map_diff, validate_tax_map
from recon.mapping.usage import (
    attach_usage,
    currency_summary,
    invoice_verdicts,
    key_verdicts,
    name_refused_accounts,
    order_table,
    unused_map_rows,
)
from recon.session import Connection

__all__ = [
    "ACCOUNT_KEY",
    "ACCOUNT_TYPES",
    "CLASS_TAX_FLAG",
    "FORBIDDEN_SYSTEM",
    "FORBIDDEN_TYPES",
    "NO_TAX_NAME",
    "PAIR_CELLS_PER_PASS",
    "PLAIN_AMOUNT",
    "PLAIN_AMOUNT_TYPES",
    "SALES_CLASSES",
    "SETUP_ACCOUNT_TYPES",
    "TAX_KEY",
    "XERO_NO_TAX_TYPE",
    "MappingInputs",
    "MappingResult",
    "check_location",
    "check_mapping",
    "load_inputs",
    "load_tax_map",
    "rank_by_money",
    "save_tax_map",
    "tax_map_diff",
    "validate_tax_map",
]


def check_mapping(
    nexudus_invoices: pd.DataFrame,
    nexudus_lines: pd.DataFrame,
    xero_accounts: pd.DataFrame,
    xero_tax_rates: pd.DataFrame,
    tax_map: Mapping[str, str] | None = None,
    *,
    nexudus_accounts: pd.DataFrame | None = None,
    context: Mapping[str, Any] | None = None,
) -> MappingResult:
    """Match every line's account and tax rate against Xero; say what each mismatch blocks.

    ``nexudus_invoices``: API fields ``Id, InvoiceNumber, CurrencyCode, TotalAmount`` (Decimal)
    for the invoices in scope (void and draft ones already left out). ``nexudus_lines``:
    ``Id, CoworkerInvoiceId, FinancialAccountCode, FinancialAccountName, TaxCategoryName,
    TaxRate``. ``xero_accounts`` / ``xero_tax_rates``: as ``XeroClient.fetch_accounts`` /
    ``fetch_tax_rates`` return them. ``nexudus_accounts``: the location's chart
    (``Code, Name, AccountType``); its Payments and Deposits accounts are checked
    too, and each line account says what it is used for.
    """
    tax_map = dict(tax_map or {})
    invoices = invoice_frame(nexudus_invoices)
    codes = invoice_codes(invoices)
    lines = line_keys(nexudus_lines, codes)
    accounts = check_accounts(lines.keys, xero_accounts)
    taxes, pair_problems = check_tax_rates(lines.keys, xero_tax_rates, xero_accounts, tax_map)
    verdicts = key_verdicts(lines.keys, accounts, taxes, pair_problems)

    accounts = attach_usage(accounts, lines, verdicts, ACCOUNT_KEY, "account_blocks", codes)
    accounts = with_setup_accounts(accounts, nexudus_accounts, xero_accounts)
    taxes = attach_usage(taxes, lines, verdicts, TAX_KEY, "tax_blocks", codes)
    taxes = name_refused_accounts(taxes, verdicts)
    taxes = pd.concat([taxes, unused_map_rows(tax_map, lines.keys)], ignore_index=True)

    invoice_view = invoice_verdicts(invoices, codes, lines, verdicts)
    summary = currency_summary(invoice_view, codes)
    ctx = dict(context or {})
    # Lines as checked: one per line and verdict (a key matching two Xero accounts counts twice).
    ctx.setdefault("lines", int((lines.lines_per_key() * verdicts.rows_per_key).sum()))
    return MappingResult(
        accounts=order_table(accounts),
        tax_rates=order_table(taxes),
        invoices=invoice_view,
        summary=summary,
        context=ctx,
    )


def check_location(
    conn: Connection, tax_map_file: str | Path | None = None, inputs: MappingInputs | None = None
) -> MappingResult:
    """Run the mapping check for the connection's location over the params' period.

    ``conn`` is a ``recon.session.Connection``. Void and draft invoices are out of
    scope (they never transfer); credit notes are in.
    """
    inputs = inputs or load_inputs(conn, tax_map_file)
    params = conn.params
    in_scope = inputs.in_scope
    context = {
        "location": conn.location,
        "organisation": conn.organisation.get("Name"),
        "period": f"{params.period_start} to {params.period_end}",
        "tax_map_file": str(inputs.tax_map_file or ""),
        "excluded_void_or_draft": int(len(inputs.invoices) - len(in_scope)),
    }
    result = check_mapping(
        in_scope,
        inputs.lines,
        inputs.xero_accounts,
        inputs.xero_tax_rates,
        inputs.tax_map,
        nexudus_accounts=inputs.nexudus_accounts,
        context=context,
    )
    return replace(result, inputs=inputs)
