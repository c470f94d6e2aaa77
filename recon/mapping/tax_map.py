"""The tax map: Nexudus tax rate name -> Xero TaxType, read from and written to a params YAML.

Part of the mapping step (floor 3; imports the leaves only).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import yaml

from recon.errors import ParamsError

__all__ = ["load_tax_map", "save_tax_map", "tax_map_diff", "validate_tax_map"]


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
