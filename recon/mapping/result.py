"""The mapping check's result: its tables, the problems ranked by the money they block, and how
it renders and saves itself.

Part of the mapping step (floor 3). Ranking (issue 16): blocking problems first; among them, the
money each blocks, exact (integer minor units), largest first. Amounts in different currencies
are never compared: the currencies are put in an order (most blocked invoices first, then by
code) and the problems ranked by their money in the first currency, then in the next, and so
on. A problem blocking nothing in the first currency therefore comes after every problem that
does, and is ranked among the rest by its money in the next currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recon.cells import csv_safe
from recon.mapping.inputs import MappingInputs
from recon.mapping_problems import Problem, Severity
from recon.money import minor_or_zero

__all__ = ["PROBLEM_COLUMNS", "SEVERITY_ORDER", "MappingResult", "rank_by_money"]

# Most serious first.
SEVERITY_ORDER = {
    Severity.BLOCKS.value: 0,
    Severity.WARNING.value: 1,
    Severity.INFO.value: 2,
    Severity.OK.value: 3,
}
# The problems table: what it is, the money it blocks (``blocked_<currency>``, placed after
# ``severity``), what else it blocks, what Xero would answer, the fix; then what uses the key.
PROBLEM_COLUMNS = [
    "kind",
    "key",
    "problem",
    "severity",
    "invoices",
    "lines",
    "xero_message",
    "suggestion",
    "invoices_using",
    "lines_using",
]


def rank_by_money(problems: pd.DataFrame, currencies: list[str]) -> pd.DataFrame:
    """``problems`` most serious first, then by the money each blocks in ``currencies`` taken in
    order (largest first; exact minor units), then by invoices blocked and using, then by key."""
    order = pd.DataFrame(
        {
            "severity": problems["severity"].map(SEVERITY_ORDER).fillna(len(SEVERITY_ORDER)),
            **{
                f"minor_{c}": problems[f"blocked_{c}"].map(minor_or_zero).astype("int64")
                for c in currencies
            },
            "invoices": problems["invoices"].fillna(0).astype("int64"),
            "invoices_using": problems["invoices_using"].fillna(0).astype("int64"),
            "kind": problems["kind"].astype(str),
            "key": problems["key"].astype(str),
        },
        index=problems.index,
    )
    columns = list(order.columns)
    ascending = [c in ("severity", "kind", "key") for c in columns]
    ranked = order.sort_values(columns, ascending=ascending, kind="stable").index
    return problems.loc[ranked].reset_index(drop=True)


@dataclass(frozen=True)
class MappingResult:
    """What the mapping check found. Renders itself in a notebook; saves as CSV."""

    accounts: pd.DataFrame
    tax_rates: pd.DataFrame
    invoices: pd.DataFrame  # one row per invoice in scope: blocked?, reasons, total, currency
    summary: pd.DataFrame  # per currency: invoices and money transferable / blocked
    context: dict[str, Any] = field(default_factory=dict)
    # What the check was run on, kept so the transfer need not fetch it again.
    inputs: MappingInputs | None = field(default=None, repr=False, compare=False)

    @property
    def problems(self) -> pd.DataFrame:
        """Every account and tax row that is not OK, in one table (the CSV of mismatches), ranked
        by the money each blocks (``rank_by_money``): the key, the problem, the money blocked per
        currency, invoices and lines blocked, the message Xero would answer, the fix."""
        acc = self.accounts.assign(
            kind="account",
            key=self.accounts["account_code"].fillna("")
            + " "
            + self.accounts["account_name"].fillna(""),
        )
        tax = self.tax_rates.assign(
            kind="tax rate",
            key=self.tax_rates["tax_rate_name"].fillna("")
            + " ("
            + self.tax_rates["tax_rate"].astype(str)
            + "%)",
        )
        currencies = self.currency_order
        money = [f"blocked_{c}" for c in currencies]
        cols = [*PROBLEM_COLUMNS[:4], *money, *PROBLEM_COLUMNS[4:]]
        # ``invoices``/``lines``/``blocked_*``: what the problem blocks; ``*_using``: what uses
        # the key.
        both = pd.concat([acc.reindex(columns=cols), tax.reindex(columns=cols)], ignore_index=True)
        both = both[both["problem"] != Problem.OK.value]
        return rank_by_money(both, currencies)

    @property
    def currency_columns(self) -> list[str]:
        """The ``blocked_<currency>`` money columns of the account and tax tables, sorted."""
        return sorted(
            {
                c
                for c in list(self.accounts.columns) + list(self.tax_rates.columns)
                if c.startswith("blocked_")
            }
        )

    @property
    def currency_order(self) -> list[str]:
        """The currencies of ``currency_columns`` in the order the problems are ranked by: most
        blocked invoices first (a count, so no amounts of two currencies are compared), then by
        code."""
        codes = [c.removeprefix("blocked_") for c in self.currency_columns]
        blocked = dict(zip(self.summary["currency"], self.summary["blocked_invoices"], strict=True))
        return sorted(codes, key=lambda c: (-int(blocked.get(c, 0)), c))

    @property
    def blocked_invoices(self) -> pd.DataFrame:
        """The invoices in scope that the mapping blocks from transferring."""
        return self.invoices[self.invoices["blocked"]]

    @property
    def transferable_invoices(self) -> pd.DataFrame:
        """The invoices in scope that nothing in the mapping blocks."""
        return self.invoices[~self.invoices["blocked"]]

    def to_dict(self) -> dict[str, Any]:
        """The context, summary and mismatches as plain JSON-ready values (cells as text)."""
        return {
            "context": {k: str(v) for k, v in self.context.items()},
            "summary": self.summary.astype(str).to_dict("records"),
            "problems": self.problems.astype(str).to_dict("records"),
        }

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write the mismatches and both tables as CSV; returns the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "mismatches": folder / "mapping_mismatches.csv",
            "accounts": folder / "mapping_accounts.csv",
            "tax_rates": folder / "mapping_tax_rates.csv",
            "invoices": folder / "mapping_invoices.csv",
        }
        csv_safe(self.problems).to_csv(paths["mismatches"], index=False)
        csv_safe(self.accounts).to_csv(paths["accounts"], index=False)
        csv_safe(self.tax_rates).to_csv(paths["tax_rates"], index=False)
        csv_safe(self.invoices).to_csv(paths["invoices"], index=False)
        return paths

    def __str__(self) -> str:
        lines = [
            (
                f"Mapping check {self.context.get('location', '')} {self.context.get('period', '')}"
            ).strip()
        ]
        for row in self.summary.itertuples():
            lines.append(
                f"  {row.currency}: {row.transferable_invoices} invoices transferable "
                f"({row.transferable_amount}), {row.blocked_invoices} blocked "
                f"({row.blocked_amount})"
            )
        for row in self.problems.itertuples():
            lines.append(
                f"  [{row.severity}] {row.kind} {row.key}: {row.problem} — {row.invoices} "
                f"invoices, {row.lines} lines"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        n_blocked = int(self.invoices["blocked"].sum()) if len(self.invoices) else 0
        return (
            f"<MappingResult {len(self.invoices)} invoices, {n_blocked} blocked, "
            f"{len(self.problems)} problems>"
        )

    def _repr_html_(self) -> str:
        from recon.display import mapping_html

        return mapping_html(self)
