"""Both sides of one location and period, fetched once and shared by the steps.

Part of the mapping step (floor 3): the Nexudus invoices and lines, the location's chart, and
Xero's accounts and tax rates, with the tax map read and checked against both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from recon.errors import ParamsError
from recon.mapping.tax_map import load_tax_map, validate_tax_map
from recon.session import Connection

__all__ = ["MappingInputs", "load_inputs"]


@dataclass(frozen=True)
class MappingInputs:
    """Both sides of one location and period, as fetched once and shared by the steps."""

    invoices: (
        pd.DataFrame
    )  # every Nexudus invoice of the location in the period (void and draft included)
    lines: pd.DataFrame
    xero_accounts: pd.DataFrame
    xero_tax_rates: pd.DataFrame
    tax_map: dict[str, str]
    tax_map_file: Path | None
    nexudus_accounts: pd.DataFrame | None = None

    @property
    def in_scope(self) -> pd.DataFrame:
        """Invoices that could transfer at all: not void, not draft."""
        return self.invoices[
            ~self.invoices["Void"].astype(bool) & ~self.invoices["Draft"].astype(bool)
        ]


def load_inputs(conn: Connection, tax_map_file: str | Path | None = None) -> MappingInputs:
    """Fetch the period's Nexudus invoices and lines and Xero's chart and tax rates (a handful of
    calls)."""
    params = conn.params
    business_id = int(conn.business["Id"])
    invoices = conn.nexudus.fetch_invoices(
        business_id=business_id, start=params.period_start, end=params.period_end
    )
    if invoices.empty:
        raise ParamsError(
            f"no invoices of {conn.location} between {params.period_start} and "
            f"{params.period_end}: check the period",
            file=params.source,
            key="period_start",
        )
    lines = conn.nexudus.fetch_invoice_lines(
        invoices["Id"],
        start=params.period_start,
        end=params.period_end,
        totals=dict(zip(invoices["Id"].astype(int), invoices["TotalAmount"], strict=True)),
    )
    xero_accounts = conn.xero.fetch_accounts()
    xero_taxes = conn.xero.fetch_tax_rates()
    nexudus_accounts = conn.nexudus.fetch_financial_accounts(business_id)
    # A tax map named in a notebook is read like one named in the params file: relative to the
    # params' folder.
    map_path = params.resolve(str(tax_map_file) if tax_map_file else params.tax_map_file)
    tax_map = load_tax_map(map_path)
    # A line's rate need not be a TaxRate record (the location default, a personal rate,
    # "[No Tax]": nexudus.md §7.2): every name on the period's lines may be mapped.
    rate_names = conn.nexudus.fetch_tax_rates(business_id)["Name"].astype(str).tolist()
    rate_names += lines["TaxCategoryName"].dropna().astype(str).tolist() if len(lines) else []
    validate_tax_map(tax_map, rate_names, xero_taxes, str(map_path) if map_path else None)
    return MappingInputs(
        invoices, lines, xero_accounts, xero_taxes, tax_map, map_path, nexudus_accounts
    )
