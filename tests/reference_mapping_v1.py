"""FROZEN REFERENCE: recon/mapping.py's mapping check as it was before issue 17's speed-up.

Kept verbatim (only this docstring differs) so tests/test_mapping_equivalence.py can compare
the vectorised ``recon.mapping.check_mapping`` with it row for row. Do not edit or
"fix" this file: it is the definition of the old results. Delete it together with that
test once the old behaviour no longer matters.

Original module docstring:

Mapping check: does every invoice line's account and tax rate match Xero?

Floor 2. ``check_mapping`` takes the Nexudus side (invoices and their lines in
the period) and the Xero side (accounts, tax rates) as DataFrames and returns a
``MappingResult``: one row per Nexudus account and per Nexudus tax rate used,
with a ``problem`` from ``recon.mapping_problems.Problem``, what it blocks
(invoices, lines, money per currency) and a suggested fix.

Matching follows Nexudus (shared/reference/nexudus.md §3): an account matches
when code and name are identical; a tax rate when name and percentage are
identical. An explicit tax map (params) overrides the name rule for tax rates.
The per-line work is vectorised (merges and group-bys over the lines); the
per-key rules run once per distinct account or tax rate, which are few.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from recon.cells import csv_safe
from recon.errors import ParamsError
from recon.mapping_problems import Problem, Severity
from recon.money import D, from_minor, minor_or_zero
from recon.session import Connection
from recon.values import is_missing, optional_int, records

__all__ = [
    "MappingInputs",
    "MappingResult",
    "check_location",
    "check_mapping",
    "load_inputs",
    "load_tax_map",
    "save_tax_map",
    "tax_map_diff",
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
ACCOUNT_KEY = ["account_code", "account_name"]
TAX_KEY = ["tax_rate_name", "tax_rate"]


# ---- the tax map (params) ----------------------------------------------------------
def load_tax_map(path: str | Path | None) -> dict[str, str]:
    """Nexudus tax rate name -> Xero TaxType from a params YAML (``tax_map:`` mapping)."""
    if path is None:
        return {}
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise ParamsError("tax map file not found", file=source, key="tax_map_file") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"tax map is not valid YAML: {exc}", file=source) from None
    raw = raw or {}
    if not isinstance(raw, dict) or not isinstance(raw.get("tax_map", {}), dict):
        raise ParamsError(
            "expected a 'tax_map:' mapping of Nexudus tax rate name to Xero TaxType",
            file=source,
            key="tax_map",
        )
    out: dict[str, str] = {}
    for name, tax_type in (raw.get("tax_map") or {}).items():
        if not isinstance(tax_type, str) or not tax_type.strip():
            raise ParamsError(
                "the Xero TaxType must be a non-empty code such as OUTPUT2",
                file=source,
                key=f"tax_map.{name}",
            )
        out[str(name)] = tax_type.strip()
    return out


def tax_map_diff(old: Mapping[str, str], new: Mapping[str, str]) -> pd.DataFrame:
    """What saving ``new`` over ``old`` changes, one row per added/changed/removed entry."""
    rows = []
    for name in sorted(set(old) | set(new)):
        before, after = old.get(name), new.get(name)
        if before != after:
            change = "added" if before is None else "removed" if after is None else "changed"
            rows.append({"tax_rate_name": name, "change": change, "before": before, "after": after})
    return pd.DataFrame(rows, columns=["tax_rate_name", "change", "before", "after"])


def save_tax_map(path: str | Path, tax_map: Mapping[str, str]) -> None:
    """Write the tax map back, keeping the file's comment header."""
    path = Path(path)
    header = []
    if path.exists():
        header = [line for line in path.read_text("utf-8").splitlines() if line.startswith("#")]
    body = yaml.safe_dump(
        {"tax_map": dict(sorted(tax_map.items()))}, allow_unicode=True, sort_keys=False
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join([*header, body.rstrip()]) + "\n", "utf-8")
    tmp.replace(path)


def validate_tax_map(
    tax_map: Mapping[str, str],
    nexudus_rate_names: Iterable[str],
    xero_tax_rates: pd.DataFrame,
    source: str | None,
) -> None:
    """Refuse a map naming a Nexudus rate or a Xero TaxType that does not exist."""
    known_nexudus = set(nexudus_rate_names)
    known_xero = set(xero_tax_rates["TaxType"].astype(str)) if len(xero_tax_rates) else set()
    for name, tax_type in tax_map.items():
        if known_nexudus and name not in known_nexudus:
            close = difflib.get_close_matches(name, sorted(known_nexudus), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ParamsError(
                f"no Nexudus tax rate is named {name!r}{hint}", file=source, key=f"tax_map.{name}"
            )
        if tax_type not in known_xero:
            raise ParamsError(
                f"Xero has no TaxType {tax_type!r}; known: {', '.join(sorted(known_xero))}",
                file=source,
                key=f"tax_map.{name}",
            )


# ---- the result ---------------------------------------------------------------------
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
        """Every account and tax row that is not OK, in one table (the CSV of mismatches)."""
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
        cols = [
            "kind",
            "key",
            "problem",
            "severity",
            "invoices",
            "lines",
            *self.currency_columns,
            "invoices_using",
            "lines_using",
            "suggestion",
        ]
        # ``invoices``/``lines``/``blocked_*``: what the problem blocks; ``*_using`` in the tables:
        # what uses the key.
        both = pd.concat([acc.reindex(columns=cols), tax.reindex(columns=cols)], ignore_index=True)
        return both[both["problem"] != Problem.OK.value].reset_index(drop=True)

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


# ---- the check ------------------------------------------------------------------------
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
    invoices = _invoice_frame(nexudus_invoices)
    lines = _line_frame(nexudus_lines, invoices)
    accounts = _check_accounts(lines, xero_accounts)
    taxes, pair_problems = _check_tax_rates(lines, xero_tax_rates, xero_accounts, tax_map)

    # Each line's problems, by merging the per-key verdicts back onto the lines.
    lines = lines.merge(
        accounts[[*ACCOUNT_KEY, "problem"]].rename(columns={"problem": "account_problem"}),
        on=ACCOUNT_KEY,
        how="left",
    )
    lines = lines.merge(
        taxes[[*TAX_KEY, "problem"]].rename(columns={"problem": "tax_problem"}),
        on=TAX_KEY,
        how="left",
    )
    if len(pair_problems):
        lines = lines.merge(pair_problems, on=[*TAX_KEY, "account_code"], how="left")
        lines["tax_problem"] = lines["pair_problem"].where(
            lines["pair_problem"].notna() & (lines["tax_problem"] == Problem.OK.value),
            lines["tax_problem"],
        )
        lines = lines.drop(columns="pair_problem")
    blocking = {p.value for p in Problem if p.severity is Severity.BLOCKS}
    lines["account_blocks"] = lines["account_problem"].isin(blocking)
    lines["tax_blocks"] = lines["tax_problem"].isin(blocking)
    lines["blocks"] = lines["account_blocks"] | lines["tax_blocks"]

    accounts = _attach_usage(accounts, lines, ACCOUNT_KEY, "account_blocks", invoices)
    accounts = _with_setup_accounts(accounts, nexudus_accounts, xero_accounts)
    pair_rows = lines[lines["tax_problem"] == Problem.TAX_NOT_ALLOWED.value]
    taxes = _attach_usage(taxes, lines, TAX_KEY, "tax_blocks", invoices)
    if len(pair_rows):
        # Name the accounts the tax type is refused on, in the suggestion.
        refused = pair_rows.groupby(TAX_KEY, observed=True)["account_code"].agg(
            lambda s: ", ".join(sorted(set(s)))
        )
        taxes = taxes.merge(refused.rename("refused_on").reset_index(), on=TAX_KEY, how="left")
        mask = taxes["refused_on"].notna()
        taxes.loc[mask, "problem"] = Problem.TAX_NOT_ALLOWED.value
        taxes.loc[mask, "severity"] = Severity.BLOCKS.value
        taxes.loc[mask, "suggestion"] = (
            "Xero refuses "
            + taxes.loc[mask, "xero_tax_type"].astype(str)
            + " on account(s) "
            + taxes.loc[mask, "refused_on"]
            + ": use a sales tax rate on these products in Nexudus, or map the rate to one."
        )
        taxes = taxes.drop(columns="refused_on")
    taxes = pd.concat([taxes, _unused_map_rows(tax_map, lines)], ignore_index=True)

    invoice_view = _invoice_verdicts(invoices, lines)
    summary = _summary(invoice_view)
    ctx = dict(context or {})
    ctx.setdefault("lines", len(lines))
    return MappingResult(
        accounts=_order(accounts),
        tax_rates=_order(taxes),
        invoices=invoice_view,
        summary=summary,
        context=ctx,
    )


def _invoice_frame(invoices: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "invoice_id": invoices["Id"].astype("int64"),
            "invoice_number": invoices["InvoiceNumber"].astype("string"),
            "currency": invoices["CurrencyCode"].astype("string"),
            "total": invoices["TotalAmount"],
        }
    )
    # Money is summed as integer cents: exact, and fast enough for a million rows.
    out["total_minor"] = out["total"].map(minor_or_zero).astype("int64")
    return out


def _clean_text(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().fillna("")


def _rate_key(rate: object) -> str:
    """A line's tax percentage as text with 2 places (an exact key); "" when it is no number."""
    try:
        value = D(rate)
    except ValueError:
        return ""
    return f"{value:.2f}" if value.is_finite() else ""


def _line_frame(lines: pd.DataFrame, invoices: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "line_id": lines["Id"].astype("int64"),
            "invoice_id": lines["CoworkerInvoiceId"].astype("int64"),
            "account_code": _clean_text(lines["FinancialAccountCode"]),
            "account_name": _clean_text(lines["FinancialAccountName"]),
            "tax_rate_name": _clean_text(lines["TaxCategoryName"]),
            # Percentages as text with a fixed 2 places: exact keys for grouping and comparing.
            "tax_rate": lines["TaxRate"].map(_rate_key).astype("string"),
            "position": lines["Position"] if "Position" in lines.columns else pd.NA,
        }
    )
    return out[out["invoice_id"].isin(invoices["invoice_id"])]


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


def _check_accounts(lines: pd.DataFrame, xero: pd.DataFrame) -> pd.DataFrame:
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
                "suggestion": suggestion,
            }
        )
    frame = pd.DataFrame(
        rows, columns=[*merged.columns, "xero_code", "problem", "severity", "suggestion"]
    )
    return frame.drop(columns=["xero_system_account"])


def _rate_text(value: Any) -> str:
    return f"{Decimal(str(value)):.2f}" if value is not None and not pd.isna(value) else ""


def _check_tax_rates(
    lines: pd.DataFrame,
    xero_taxes: pd.DataFrame,
    xero_accounts: pd.DataFrame,
    tax_map: Mapping[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    pairs["allowed"] = allowed
    refused = pairs[~pairs["allowed"]][[*TAX_KEY, "account_code"]].assign(
        pair_problem=Problem.TAX_NOT_ALLOWED.value
    )
    return taxes, refused


def _attach_usage(
    table: pd.DataFrame,
    lines: pd.DataFrame,
    key: list[str],
    blocks_col: str,
    invoices: pd.DataFrame,
) -> pd.DataFrame:
    """Add how many invoices/lines use each key, how many its problem blocks, and their money per
    currency."""
    usage = (
        lines.groupby(key, observed=True)
        .agg(invoices_using=("invoice_id", "nunique"), lines_using=("line_id", "size"))
        .reset_index()
    )
    blocking_lines = lines[lines[blocks_col]]
    blocked_counts = (
        blocking_lines.groupby(key, observed=True)
        .agg(invoices=("invoice_id", "nunique"), lines=("line_id", "size"))
        .reset_index()
    )
    table = table.merge(usage, on=key, how="left").merge(blocked_counts, on=key, how="left")
    blocked = blocking_lines[[*key, "invoice_id"]].drop_duplicates()
    blocked = blocked.merge(invoices[["invoice_id", "currency", "total_minor"]], on="invoice_id")
    if len(blocked):
        money = blocked.pivot_table(
            index=key,
            columns="currency",
            values="total_minor",
            aggfunc="sum",
            fill_value=0,
            observed=True,
        )
        money.columns = [f"blocked_{c}" for c in money.columns]
        table = table.merge(money.reset_index(), on=key, how="left")
    for col in [c for c in table.columns if c.startswith("blocked_")]:
        table[col] = table[col].fillna(0).astype("int64").map(from_minor)
    for col in ("invoices_using", "lines_using", "invoices", "lines"):
        table[col] = table[col].fillna(0).astype("int64")
    return table


def _unused_map_rows(tax_map: Mapping[str, str], lines: pd.DataFrame) -> pd.DataFrame:
    used = set(lines["tax_rate_name"])
    rows = [
        {
            "tax_rate_name": name,
            "tax_rate": "",
            "matched_by": "tax map",
            "xero_tax_type": tax_type,
            "problem": Problem.MAPPING_UNUSED.value,
            "severity": Severity.INFO.value,
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


def _invoice_verdicts(invoices: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    reasons = lines[lines["blocks"]].assign(
        reason=lambda f: (
            f["account_problem"].where(f["account_blocks"], "")
            + "|"
            + f["tax_problem"].where(f["tax_blocks"], "")
        )
    )
    per_invoice = (
        reasons.groupby("invoice_id")["reason"]
        .agg(lambda s: "; ".join(sorted({p for r in s for p in r.split("|") if p})))
        .rename("reasons")
    )
    # Name the first blocked line of each invoice and the values that block it.
    first = reasons.sort_values(["invoice_id", "position", "line_id"]).drop_duplicates("invoice_id")
    where = (
        " (first at line "
        + first["position"].astype("string").fillna("?")
        + ", Nexudus line id "
        + first["line_id"].astype("string")
        + ": FinancialAccountCode '"
        + first["account_code"].astype("string")
        + "', TaxCategoryName '"
        + first["tax_rate_name"].astype("string")
        + "')"
    )
    per_invoice = (
        per_invoice + pd.Series(where.to_numpy(), index=first["invoice_id"].to_numpy())
    ).rename("reasons")
    out = invoices.merge(per_invoice.reset_index(), on="invoice_id", how="left")
    out["reasons"] = out["reasons"].fillna("")
    out["blocked"] = out["reasons"] != ""
    return out[
        ["invoice_id", "invoice_number", "currency", "total", "total_minor", "blocked", "reasons"]
    ]


def _summary(invoices: pd.DataFrame) -> pd.DataFrame:
    grouped = invoices.groupby(["currency", "blocked"], observed=True).agg(
        n=("invoice_id", "size"), minor=("total_minor", "sum")
    )
    rows = []
    for currency in sorted(invoices["currency"].dropna().unique()):

        def pick(blocked: bool, col: str, currency: Any = currency) -> int:
            try:
                return int(grouped.loc[(currency, blocked), col])
            except KeyError:
                return 0

        rows.append(
            {
                "currency": currency,
                "transferable_invoices": pick(False, "n"),
                "transferable_amount": from_minor(pick(False, "minor")),
                "blocked_invoices": pick(True, "n"),
                "blocked_amount": from_minor(pick(True, "minor")),
            }
        )
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


def _order(table: pd.DataFrame) -> pd.DataFrame:
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
        "suggestion",
    ]
    columns = [c for c in table.columns if c not in tail] + [c for c in tail if c in table.columns]
    return (
        table.assign(_rank=table["severity"].map(rank))
        .sort_values(["_rank", "invoices", "invoices_using"], ascending=[True, False, False])
        .drop(columns="_rank")
        .reset_index(drop=True)[columns]
    )


def _with_setup_accounts(
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
            "account_code": _clean_text(nexudus_accounts["Code"]),
            "account_name": _clean_text(nexudus_accounts["Name"]),
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


# ---- loading both sides for a location and period ------------------------------------
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
