"""The mapping check's rules, run once per distinct account and tax rate the lines use.

Part of the mapping step (floor 3). Matching follows Nexudus (shared/reference/nexudus.md §3,
§11): an account matches when code and name are identical; a tax rate when name and percentage
are identical. An explicit tax map (params) overrides the name rule for tax rates. Each row gets
a ``problem`` (``recon.mapping_problems.Problem``), the message Xero would answer if the line
were sent (``xero_message``) and a suggestion for the accountant; Nexudus' Payments and Deposits
accounts are checked too (§7.4).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pandas as pd

from recon.mapping.codes import ACCOUNT_KEY, TAX_KEY, clean_text
from recon.mapping_problems import Problem, xero_message
from recon.money import from_minor
from recon.values import is_missing, optional_int, records

__all__ = [
    "ACCOUNT_TYPES",
    "CLASS_TAX_FLAG",
    "FORBIDDEN_SYSTEM",
    "FORBIDDEN_TYPES",
    "NO_TAX_NAME",
    "SALES_CLASSES",
    "SETUP_ACCOUNT_TYPES",
    "XERO_NO_TAX_TYPE",
    "check_accounts",
    "check_tax_rates",
    "with_setup_accounts",
]

# Xero account classes that may take sales lines without comment; deposits and
# gift vouchers legitimately go to liability accounts.
SALES_CLASSES = {"REVENUE", "LIABILITY"}
FORBIDDEN_TYPES = {"BANK"}
FORBIDDEN_SYSTEM = {
    "DEBTORS",
    "CREDITORS",
    "GST",
    "RETAINEDEARNINGS",
    "UNPAIDEXPCLM",
    "BANKCURRENCYGAIN",
}
CLASS_TAX_FLAG = {
    "REVENUE": "CanApplyToRevenue",
    "EXPENSE": "CanApplyToExpenses",
    "ASSET": "CanApplyToAssets",
    "LIABILITY": "CanApplyToLiabilities",
    "EQUITY": "CanApplyToEquity",
}
# Untaxed Nexudus lines read TaxCategoryName "[No Tax]" with TaxRate 0 (nexudus.md §7.2);
# they map to Xero's no-tax type, TaxType NONE (xero-api.md §3.5, "NONE").
NO_TAX_NAME = "[No Tax]"
XERO_NO_TAX_TYPE = "NONE"
# Nexudus FinancialAccount.AccountType (nexudus.md §7.4): what the mapping check lists.
ACCOUNT_TYPES = {0: "none", 1: "sales", 2: "payments", 3: "deposits"}
SETUP_ACCOUNT_TYPES = {2: "payments (Nexudus' payment transfers)", 3: "deposits"}


def _closest_code(code: str, xero: pd.DataFrame) -> str | None:
    if xero.empty:
        return None
    codes = xero["Code"].astype(str)
    if code.isdigit():
        numeric = codes[codes.str.fullmatch(r"\d+")]
        if len(numeric):
            distance = (numeric.astype(int) - int(code)).abs()
            best = str(numeric.iloc[int(distance.to_numpy().argmin())])
            return f"{best} {xero.loc[codes == best, 'Name'].iloc[0]}"
    close = difflib.get_close_matches(code, list(codes), n=1, cutoff=0.0)
    return f"{close[0]} {xero.loc[codes == close[0], 'Name'].iloc[0]}" if close else None


def _closest_name(name: str, xero: pd.DataFrame) -> str | None:
    names = list(xero["Name"].astype(str))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
    if not close:
        return None
    return f"{xero.loc[xero['Name'] == close[0], 'Code'].iloc[0]} {close[0]}"


def check_accounts(lines: pd.DataFrame, xero: pd.DataFrame) -> pd.DataFrame:
    """One row per account the lines use: Xero's account of that code and the verdict."""
    used = lines[ACCOUNT_KEY].drop_duplicates().reset_index(drop=True)
    xero = xero.assign(Code=xero["Code"].astype("string").str.strip())
    merged = used.merge(
        xero[["Code", "Name", "Type", "Class", "Status", "SystemAccount"]].rename(
            columns={
                "Code": "account_code",
                "Name": "xero_name",
                "Type": "xero_type",
                "Class": "xero_class",
                "Status": "xero_status",
                "SystemAccount": "xero_system_account",
            }
        ),
        on="account_code",
        how="left",
    )
    active_sales = xero[(xero["Status"] == "ACTIVE") & xero["Class"].isin(SALES_CLASSES)]
    rows = []
    for rec in records(merged):
        code, name = rec["account_code"], rec["account_name"]
        problem, suggestion = Problem.OK, ""
        if not code:
            problem = Problem.NO_ACCOUNT
            suggestion = (
                "Give the product a financial account in Nexudus (Finance > Chart of Accounts) "
                "and fix it on these invoices' lines."
            )
        elif pd.isna(rec["xero_name"]):
            problem = Problem.ACCOUNT_MISSING
            by_code, by_name = _closest_code(code, active_sales), _closest_name(name, active_sales)
            hints = "; ".join(
                h
                for h in (
                    f"closest by code: {by_code}" if by_code else "",
                    f"closest by name: {by_name}" if by_name else "",
                )
                if h
            )
            suggestion = (
                f"Create account {code} '{name}' in Xero, or move the Nexudus product to an "
                f"existing Xero account ({hints})."
            )
        elif rec["xero_status"] != "ACTIVE":
            problem = Problem.ACCOUNT_ARCHIVED
            suggestion = (
                f"Restore account {code} in Xero (Chart of accounts > Archived), or move the "
                "Nexudus product to an active account."
            )
        elif rec["xero_type"] in FORBIDDEN_TYPES or rec["xero_system_account"] in FORBIDDEN_SYSTEM:
            problem = Problem.ACCOUNT_NOT_ALLOWED
            suggestion = (
                f"Xero account {code} is a {rec['xero_type']} account; give the product a revenue "
                "account in Nexudus."
            )
        elif str(rec["xero_name"]) != name:
            problem = Problem.ACCOUNT_NAME_DIFFERS
            suggestion = (
                f"Make the names identical: Nexudus '{name}' vs Xero '{rec['xero_name']}' (rename "
                "either side)."
            )
        elif rec["xero_class"] not in SALES_CLASSES:
            problem = Problem.NOT_REVENUE
            suggestion = (
                f"Xero account {code} is of type {rec['xero_type']} ({rec['xero_class']}); sales "
                "usually go to a revenue account. Check the product's account in Nexudus."
            )
        rows.append(
            {
                **rec,
                "xero_code": code if not pd.isna(rec["xero_name"]) else None,
                "problem": problem.value,
                "severity": problem.severity.value,
                "xero_message": xero_message(problem, account_code=code),
                "suggestion": suggestion,
            }
        )
    frame = pd.DataFrame(
        rows,
        columns=[*merged.columns, "xero_code", "problem", "severity", "xero_message", "suggestion"],
    )
    return frame.drop(columns=["xero_system_account"])


def _rate_text(value: Any) -> str:
    return f"{Decimal(str(value)):.2f}" if value is not None and not pd.isna(value) else ""


def check_tax_rates(
    lines: pd.DataFrame,
    xero_taxes: pd.DataFrame,
    xero_accounts: pd.DataFrame,
    tax_map: Mapping[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per tax rate the lines use, and the (tax rate, account) pairs Xero refuses."""
    used = lines[TAX_KEY].drop_duplicates().reset_index(drop=True)
    xt = xero_taxes.assign(rate_text=xero_taxes["EffectiveRate"].map(_rate_text))
    by_type = {r["TaxType"]: r for r in records(xt)}
    by_name = {r["Name"]: r for r in records(xt)}
    active_revenue = xt[
        (xt["Status"] == "ACTIVE") & xt["CanApplyToRevenue"].fillna(False).astype(bool)
    ]
    rows = []
    for rec in records(used):
        name, rate = rec["tax_rate_name"], rec["tax_rate"]
        matched_by, xero = "", None
        if name in tax_map:
            matched_by, xero = "tax map", by_type.get(tax_map[name])
        elif name in by_name:
            matched_by, xero = "name", by_name[name]
        elif name == NO_TAX_NAME and XERO_NO_TAX_TYPE in by_type:
            matched_by, xero = "no tax", by_type[XERO_NO_TAX_TYPE]
        same_rate = active_revenue[active_revenue["rate_text"] == rate]
        candidates = ", ".join(f"{r.TaxType} ({r.Name})" for r in same_rate.itertuples())
        problem, suggestion = Problem.OK, ""
        if not name:
            problem = Problem.NO_TAX_RATE
            suggestion = (
                "The line carries no tax rate name: give the item a tax rate (or set the "
                "location's default rate) in Nexudus and re-issue the invoice."
            )
        elif xero is None:
            if len(same_rate) > 1:
                problem = Problem.TAX_AMBIGUOUS
                suggestion = (
                    f"Several Xero tax rates are {rate}%: {candidates}. Choose one in the tax map "
                    f"(params) for '{name}', or rename one in Xero to '{name}'."
                )
            else:
                problem = Problem.TAX_MISSING
                suggestion = (
                    f"Create a tax rate named '{name}' at {rate}% in Xero, or map '{name}' to "
                    + (
                        f"{candidates} in the tax map (params)."
                        if candidates
                        else "an existing TaxType in the tax map."
                    )
                )
        elif xero.get("Status") != "ACTIVE":
            problem = Problem.TAX_ARCHIVED
            suggestion = (
                f"Xero tax rate {xero['TaxType']} '{xero['Name']}' is {xero.get('Status')}: "
                "restore it, or map "
                f"'{name}' to an active rate" + (f" ({candidates})." if candidates else ".")
            )
        elif xero["rate_text"] != rate:
            problem = Problem.TAX_PERCENTAGE_DIFFERS
            suggestion = (
                f"Nexudus says {rate}%, Xero {xero['TaxType']} says {xero['rate_text']}%: correct "
                "the rate on the wrong side (a rate change?)."
                + (f" Xero rates at {rate}%: {candidates}." if candidates else "")
            )
        rows.append(
            {
                **rec,
                "matched_by": matched_by,
                "xero_tax_type": xero["TaxType"] if xero is not None else None,
                "xero_name": xero["Name"] if xero is not None else None,
                "xero_rate": xero["rate_text"] if xero is not None else None,
                "xero_status": xero.get("Status") if xero is not None else None,
                "candidates": candidates,
                "problem": problem.value,
                "severity": problem.severity.value,
                # The TaxType the line would carry: Xero's code when one matched, else its name.
                "xero_message": xero_message(
                    problem, tax_type=str(xero["TaxType"]) if xero is not None else name
                ),
                "suggestion": suggestion,
            }
        )
    taxes = pd.DataFrame(
        rows,
        columns=[
            *TAX_KEY,
            "matched_by",
            "xero_tax_type",
            "xero_name",
            "xero_rate",
            "xero_status",
            "candidates",
            "problem",
            "severity",
            "xero_message",
            "suggestion",
        ],
    )

    # Is the resolved tax type allowed on the class of each account it is used with?
    pairs = lines[[*TAX_KEY, "account_code"]].drop_duplicates()
    pairs = pairs.merge(taxes[[*TAX_KEY, "xero_tax_type"]], on=TAX_KEY).dropna(
        subset=["xero_tax_type"]
    )
    acc = xero_accounts.assign(account_code=xero_accounts["Code"].astype("string"))[
        ["account_code", "Class"]
    ]
    pairs = pairs.merge(acc, on="account_code", how="inner")
    flags = xt.set_index("TaxType")
    allowed = []
    for tax_type, klass in zip(pairs["xero_tax_type"], pairs["Class"], strict=True):
        flag = CLASS_TAX_FLAG.get(str(klass))
        if flag is None or flag not in flags.columns or tax_type not in flags.index:
            allowed.append(True)
        else:
            allowed.append(bool(flags.at[tax_type, flag]))
    # A bool column even when no pair is left (an empty list would make an object column,
    # which selects columns instead of rows below).
    pairs["allowed"] = pd.Series(allowed, index=pairs.index, dtype=bool)
    refused = pairs[~pairs["allowed"]][[*TAX_KEY, "account_code"]].assign(
        pair_problem=Problem.TAX_NOT_ALLOWED.value
    )
    return taxes, refused


def with_setup_accounts(
    accounts: pd.DataFrame, nexudus_accounts: pd.DataFrame | None, xero: pd.DataFrame
) -> pd.DataFrame:
    """Say what each account is used for, and add the Payments and Deposits accounts no line used.

    Nexudus posts its own payment transfers to its Payments accounts and deposits
    to its Deposits accounts; their code and name must match Xero as any sales
    account must (nexudus.md §7.4, §11). They block none of recon's invoices.
    """
    accounts = accounts.assign(used_for="invoice lines")
    if nexudus_accounts is None or nexudus_accounts.empty or "AccountType" not in nexudus_accounts:
        return accounts
    chart = pd.DataFrame(
        {
            "account_code": clean_text(nexudus_accounts["Code"]),
            "account_name": clean_text(nexudus_accounts["Name"]),
            "account_type": nexudus_accounts["AccountType"].map(_account_type),
        }
    )
    deposits = chart[chart["account_type"] == 3]
    on_lines = accounts.merge(deposits[ACCOUNT_KEY], on=ACCOUNT_KEY, how="left", indicator=True)
    accounts.loc[(on_lines["_merge"] == "both").to_numpy(), "used_for"] = "invoice lines, deposits"
    setup = chart[chart["account_type"].isin(list(SETUP_ACCOUNT_TYPES))]
    used = set(zip(accounts["account_code"], accounts["account_name"], strict=True))
    setup = setup[
        [
            (c, n) not in used
            for c, n in zip(setup["account_code"], setup["account_name"], strict=True)
        ]
    ]
    if setup.empty:
        return accounts
    by_code = {str(r["Code"]).strip(): r for r in records(xero)}
    rows = []
    for rec in records(setup):
        code, name, kind = rec["account_code"], rec["account_name"], int(rec["account_type"])
        found = by_code.get(code)
        problem, suggestion = Problem.OK, ""
        if found is None:
            problem = Problem.SETUP_ACCOUNT_MISSING
            suggestion = (
                f"Create account {code} '{name}' in Xero"
                + (" as a bank account" if kind == 2 else "")
                + ", or correct the code in Nexudus (Finance > Chart of Accounts)."
            )
        elif found.get("Status") != "ACTIVE":
            problem = Problem.SETUP_ACCOUNT_ARCHIVED
            suggestion = f"Restore account {code} in Xero, or point Nexudus at an active one."
        elif str(found.get("Name")) != name:
            problem = Problem.SETUP_ACCOUNT_NAME_DIFFERS
            suggestion = (
                f"Make the names identical: Nexudus '{name}' vs Xero '{found.get('Name')}'."
            )
        elif kind == 2 and found.get("Type") != "BANK" and not found.get("EnablePaymentsToAccount"):
            problem = Problem.PAYMENTS_NOT_ALLOWED
            suggestion = (
                f"Tick 'Enable payments to this account' on Xero account {code}, or use a bank "
                "account for Nexudus' payments."
            )
        rows.append(
            {
                "account_code": code,
                "account_name": name,
                "used_for": SETUP_ACCOUNT_TYPES[kind],
                "xero_code": code if found is not None else None,
                "xero_name": found.get("Name") if found is not None else None,
                "xero_type": found.get("Type") if found is not None else None,
                "xero_class": found.get("Class") if found is not None else None,
                "xero_status": found.get("Status") if found is not None else None,
                "problem": problem.value,
                "severity": problem.severity.value,
                "xero_message": xero_message(problem),
                "suggestion": suggestion,
                "invoices": 0,
                "lines": 0,
                "invoices_using": 0,
                "lines_using": 0,
            }
        )
    combined = pd.concat([accounts, pd.DataFrame(rows)], ignore_index=True)
    for column in [c for c in combined.columns if c.startswith("blocked_")]:
        # They block nothing: zero money, as Decimal like every other amount.
        combined[column] = combined[column].map(lambda v: from_minor(0) if is_missing(v) else v)
    return combined


def _account_type(value: object) -> int:
    """A FinancialAccount's AccountType as its number (the API may send the number or the name)."""
    if isinstance(value, str) and not value.isdigit():
        names = {v: k for k, v in ACCOUNT_TYPES.items()}
        return names.get(value.strip().lower(), 0)
    return optional_int(value) or 0
