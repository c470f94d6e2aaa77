"""What each mapping problem blocks: per key, per invoice and per currency, in exact integers.

Part of the mapping step (floor 3). The verdicts of the rules (``recon.mapping.rules``) are
joined to the lines' integer codes (``recon.mapping.codes``); counts of invoices and lines and
blocked money per currency are numpy sums over the codes, money in int64 minor units. No
Python runs per line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from recon.mapping.codes import (
    ACCOUNT_KEY,
    TAX_KEY,
    InvoiceCodes,
    Lines,
    distinct_pairs,
    invoices_per_group,
    sum_by,
)
from recon.mapping_problems import Problem, Severity, xero_message
from recon.money import from_minor

__all__ = [
    "Verdicts",
    "attach_usage",
    "currency_summary",
    "invoice_verdicts",
    "key_verdicts",
    "name_refused_accounts",
    "order_table",
    "unused_map_rows",
]


@dataclass(frozen=True)
class Verdicts:
    """Each key's account and tax problem; a key has one row per verdict (usually one)."""

    rows: pd.DataFrame  # _key, ACCOUNT_KEY, TAX_KEY, problems and their blocks flags
    rows_per_key: npt.NDArray[np.int64]


def key_verdicts(
    keys: pd.DataFrame, accounts: pd.DataFrame, taxes: pd.DataFrame, pair_problems: pd.DataFrame
) -> Verdicts:
    """Each key's account and tax problem, and whether each blocks its lines."""
    rows = keys.assign(_key=np.arange(len(keys), dtype=np.intp)).merge(
        accounts[[*ACCOUNT_KEY, "problem"]].rename(columns={"problem": "account_problem"}),
        on=ACCOUNT_KEY,
        how="left",
    )
    rows = rows.merge(
        taxes[[*TAX_KEY, "problem"]].rename(columns={"problem": "tax_problem"}),
        on=TAX_KEY,
        how="left",
    )
    if len(pair_problems):
        rows = rows.merge(pair_problems, on=[*TAX_KEY, "account_code"], how="left")
        rows["tax_problem"] = rows["pair_problem"].where(
            rows["pair_problem"].notna() & (rows["tax_problem"] == Problem.OK.value),
            rows["tax_problem"],
        )
        rows = rows.drop(columns="pair_problem")
    blocking = {p.value for p in Problem if p.severity is Severity.BLOCKS}
    rows["account_blocks"] = rows["account_problem"].isin(blocking)
    rows["tax_blocks"] = rows["tax_problem"].isin(blocking)
    rows["blocks"] = rows["account_blocks"] | rows["tax_blocks"]
    per_key = np.bincount(rows["_key"].to_numpy(dtype=np.intp), minlength=len(keys))
    return Verdicts(rows=rows, rows_per_key=per_key.astype(np.int64))


def attach_usage(
    table: pd.DataFrame,
    lines: Lines,
    verdicts: Verdicts,
    key: list[str],
    blocks_col: str,
    invoices: InvoiceCodes,
) -> pd.DataFrame:
    """Add how many invoices/lines use each key, how many its problem blocks, and their money per
    currency."""
    rows = verdicts.rows
    # ``group``: each key's ``key`` part (its account, or its tax rate) as a code.
    groups = lines.keys[key].drop_duplicates()
    groups = groups.assign(_group=np.arange(len(groups), dtype=np.intp))
    group_of_key = lines.keys.merge(groups, on=key, how="left")["_group"].to_numpy(dtype=np.intp)
    n_groups, n_invoices = len(groups), len(invoices.ids)
    per_key = lines.lines_per_key()
    blocking_rows = np.bincount(
        rows.loc[rows[blocks_col], "_key"].to_numpy(dtype=np.intp), minlength=len(lines.keys)
    ).astype(np.int64)
    line_group = group_of_key[lines.key]
    is_blocked = (blocking_rows > 0)[lines.key]

    blocked = distinct_pairs(line_group[is_blocked], lines.invoice[is_blocked], n_invoices)
    counts = {
        "invoices_using": invoices_per_group(line_group, lines.invoice, n_groups, n_invoices),
        "lines_using": sum_by(group_of_key, per_key * verdicts.rows_per_key, n_groups),
        "invoices": np.bincount(blocked[0], minlength=n_groups),
        "lines": sum_by(group_of_key, per_key * blocking_rows, n_groups),
    }
    # The table's rows in group order (a left merge keeps the table's order and its columns).
    at = table[key].merge(groups, on=key, how="left")["_group"].to_numpy(dtype=np.intp)
    table = table.copy()
    for column, per_group in counts.items():
        table[column] = per_group.astype("int64")[at]
    # Money: each blocked invoice once per key, its total in its currency (int64, exact).
    entry, row = invoices.rows_of(blocked[1])
    currency = invoices.currency[row]
    has_currency = currency >= 0
    cell = currency[has_currency] * n_groups + blocked[0][entry[has_currency]]
    n_cells = len(invoices.currencies) * n_groups
    money = sum_by(cell, invoices.minor[row[has_currency]], n_cells)
    present = np.bincount(cell, minlength=n_cells) > 0
    for index, name in enumerate(invoices.currencies):
        cells = slice(index * n_groups, (index + 1) * n_groups)
        if present[cells].any():
            minor = pd.Series(money[cells][at], index=table.index)
            table[f"blocked_{name}"] = minor.map(from_minor)
    return table


def name_refused_accounts(taxes: pd.DataFrame, verdicts: Verdicts) -> pd.DataFrame:
    """Name, in the suggestion, the accounts each tax type is refused on."""
    rows = verdicts.rows[verdicts.rows["tax_problem"] == Problem.TAX_NOT_ALLOWED.value]
    if not len(rows):
        return taxes
    refused_on: dict[tuple[str, str], set[str]] = {}
    for name, rate, code in zip(
        rows["tax_rate_name"], rows["tax_rate"], rows["account_code"], strict=True
    ):
        refused_on.setdefault((name, rate), set()).add(code)
    refused = pd.DataFrame(
        {
            "tax_rate_name": [name for name, _ in refused_on],
            "tax_rate": [rate for _, rate in refused_on],
            "refused_on": [", ".join(sorted(codes)) for codes in refused_on.values()],
            "refused_codes": [sorted(codes) for codes in refused_on.values()],
        }
    )
    taxes = taxes.merge(refused, on=TAX_KEY, how="left")
    mask = taxes["refused_on"].notna()
    taxes.loc[mask, "problem"] = Problem.TAX_NOT_ALLOWED.value
    taxes.loc[mask, "severity"] = Severity.BLOCKS.value
    taxes.loc[mask, "xero_message"] = [
        xero_message(Problem.TAX_NOT_ALLOWED, tax_type=str(tax_type), refused_on=codes)
        for tax_type, codes in zip(
            taxes.loc[mask, "xero_tax_type"], taxes.loc[mask, "refused_codes"], strict=True
        )
    ]
    taxes.loc[mask, "suggestion"] = (
        "Xero refuses "
        + taxes.loc[mask, "xero_tax_type"].astype(str)
        + " on account(s) "
        + taxes.loc[mask, "refused_on"]
        + ": use a sales tax rate on these products in Nexudus, or map the rate to one."
    )
    return taxes.drop(columns=["refused_on", "refused_codes"])


def unused_map_rows(tax_map: Mapping[str, str], keys: pd.DataFrame) -> pd.DataFrame:
    """A row for each tax map entry no line uses (info: housekeeping)."""
    used = set(keys["tax_rate_name"])
    rows = [
        {
            "tax_rate_name": name,
            "tax_rate": "",
            "matched_by": "tax map",
            "xero_tax_type": tax_type,
            "problem": Problem.MAPPING_UNUSED.value,
            "severity": Severity.INFO.value,
            "xero_message": xero_message(Problem.MAPPING_UNUSED),
            "invoices": 0,
            "lines": 0,
            "invoices_using": 0,
            "lines_using": 0,
            "suggestion": (
                f"No line in the period uses '{name}': remove the entry, or check its spelling."
            ),
        }
        for name, tax_type in tax_map.items()
        if name not in used
    ]
    return pd.DataFrame(rows)


def invoice_verdicts(
    invoices: pd.DataFrame, codes: InvoiceCodes, lines: Lines, verdicts: Verdicts
) -> pd.DataFrame:
    """Each invoice in scope: blocked?, and why (the problems, then its first blocked line)."""
    rows = verdicts.rows
    # Each key's blocking problems as bits; an invoice's reasons are its lines' bits together.
    problems = pd.concat(
        [
            rows.loc[rows["account_blocks"], "account_problem"],
            rows.loc[rows["tax_blocks"], "tax_problem"],
        ]
    )
    names = sorted(set(problems.astype(str)))
    bit = {name: np.int64(1) << i for i, name in enumerate(names)}
    key_bits = np.zeros(len(lines.keys), dtype=np.int64)
    for column, flag in (("account_problem", "account_blocks"), ("tax_problem", "tax_blocks")):
        chosen = rows[rows[flag]]
        np.bitwise_or.at(
            key_bits,
            chosen["_key"].to_numpy(dtype=np.intp),
            np.array([bit[str(p)] for p in chosen[column]], dtype=np.int64),
        )
    blocked = np.flatnonzero(key_bits[lines.key] != 0)
    invoice_bits = np.zeros(len(codes.ids), dtype=np.int64)
    np.bitwise_or.at(invoice_bits, lines.invoice[blocked], key_bits[lines.key[blocked]])

    # Name the first blocked line of each invoice and the values that block it.
    blocked_keys = lines.key[blocked]
    first = pd.DataFrame(
        {
            "invoice": lines.invoice[blocked],
            "invoice_id": codes.ids[lines.invoice[blocked]],
            "position": lines.position.iloc[blocked].reset_index(drop=True),
            "line_id": lines.line_id[blocked],
            "account_code": lines.keys["account_code"].iloc[blocked_keys].reset_index(drop=True),
            "tax_rate_name": lines.keys["tax_rate_name"].iloc[blocked_keys].reset_index(drop=True),
        }
    )
    first = first.sort_values(["invoice_id", "position", "line_id"]).drop_duplicates("invoice_id")
    where = (  # the values as pandas writes them, joined as plain Python strings
        " (first at line "
        + first["position"].astype("string").fillna("?").to_numpy(dtype=object)
        + ", Nexudus line id "
        + first["line_id"].astype("string").to_numpy(dtype=object)
        + ": FinancialAccountCode '"
        + first["account_code"].astype("string").to_numpy(dtype=object)
        + "', TaxCategoryName '"
        + first["tax_rate_name"].astype("string").to_numpy(dtype=object)
        + "')"
    )
    masks, mask_code = np.unique(invoice_bits[first["invoice"].to_numpy()], return_inverse=True)
    texts = np.array(
        ["; ".join(n for i, n in enumerate(names) if int(m) >> i & 1) for m in masks], dtype=object
    )
    reasons = np.full(len(codes.ids), "", dtype=object)
    reasons[first["invoice"].to_numpy()] = texts[mask_code] + where

    columns = ["invoice_id", "invoice_number", "currency", "total", "total_minor"]
    out = invoices[columns].reset_index(drop=True)
    out["blocked"] = invoice_bits[codes.id_of_row] != 0
    out["reasons"] = pd.Series(reasons[codes.id_of_row], dtype="str")
    return out


def currency_summary(invoices: pd.DataFrame, codes: InvoiceCodes) -> pd.DataFrame:
    """Per currency: invoices and money transferable and blocked (exact sums)."""
    # Per currency and blocked or not: how many invoices, and their money (exact int64 sums).
    has_currency = codes.currency >= 0
    cell = (
        codes.currency[has_currency] * 2 + invoices["blocked"].to_numpy(dtype=np.intp)[has_currency]
    )
    n_cells = 2 * len(codes.currencies)
    count = np.bincount(cell, minlength=n_cells)
    minor = sum_by(cell, codes.minor[has_currency], n_cells)
    rows = [
        {
            "currency": currency,
            "transferable_invoices": int(count[2 * i]),
            "transferable_amount": from_minor(int(minor[2 * i])),
            "blocked_invoices": int(count[2 * i + 1]),
            "blocked_amount": from_minor(int(minor[2 * i + 1])),
        }
        for i, currency in enumerate(codes.currencies)
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "currency",
            "transferable_invoices",
            "transferable_amount",
            "blocked_invoices",
            "blocked_amount",
        ],
    )


def order_table(table: pd.DataFrame) -> pd.DataFrame:
    """Blocking rows first, most invoices first; columns: the key, Xero's side, the verdict, its
    reach, the fix."""
    rank = {
        Severity.BLOCKS.value: 0,
        Severity.WARNING.value: 1,
        Severity.INFO.value: 2,
        Severity.OK.value: 3,
    }
    money = sorted(c for c in table.columns if c.startswith("blocked_"))
    tail = [
        "problem",
        "severity",
        "invoices",
        "lines",
        *money,
        "invoices_using",
        "lines_using",
        "xero_message",
        "suggestion",
    ]
    columns = [c for c in table.columns if c not in tail] + [c for c in tail if c in table.columns]
    return (
        table.assign(_rank=table["severity"].map(rank))
        .sort_values(["_rank", "invoices", "invoices_using"], ascending=[True, False, False])
        .drop(columns="_rank")
        .reset_index(drop=True)[columns]
    )
