"""Helpers tests import (conftest.py is for fixtures; importing from it clashes with
notebooks/conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from recon.clients.retry import RetryPolicy
from recon.clients.xero import XeroConfig
from recon.report.workbook import HEADINGS, heading
from recon.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent


def xero_config(box: Sandbox, app_name: str | None = None, **overrides: object) -> XeroConfig:
    """Client settings pointing at the sandbox, for the default Custom Connection or a named app."""
    app = (
        box.xero_apps[app_name]
        if app_name
        else {
            "client_id": box.xero_client_id,
            "client_secret": box.xero_client_secret,
            "grant": "client_credentials",
            "tenant_ids": [box.xero_tenant_id],
            "redirect_uris": [],
        }
    )
    settings: dict[str, object] = dict(
        client_id=app["client_id"],
        client_secret=app["client_secret"],
        grant=app["grant"],
        api_url=box.xero_api_url,
        identity_url=box.xero_identity_url,
        token_url=box.xero_token_url,
        authorize_url=box.xero_authorize_url,
        redirect_uri=(app["redirect_uris"] or [None])[0],
        tenant_id=app["tenant_ids"][0],
        minute_seconds=box.xero.limits.minute_seconds,
    )
    settings.update(overrides)
    return XeroConfig(**settings)  # type: ignore[arg-type]


def fast_retry() -> RetryPolicy:
    """Real waits, but short: Retry-After is honoured, backoff starts at 10 ms."""
    return RetryPolicy(base_delay=0.01, max_delay=0.2)


def machine(header: object) -> str:
    """A workbook sheet's human header back as the step CSV's column name ("Invoice number" ->
    ``invoice_number``, "Xero ID" -> ``xero_id``, "Blocked GBP" -> ``blocked_GBP``); fails on a
    header that no column name gives."""
    text = str(header)
    known = {v: k for k, v in HEADINGS.items()}
    if text in known:
        return known[text]
    words = text.split(" ")
    # A currency code keeps its capitals (``blocked_GBP``); the words the header capitalises
    # itself ("Xero", "ID", "URL", ...) go back to lower case.
    name = "_".join(w if re.fullmatch(r"[A-Z]{3}", w) and w != "URL" else w.lower() for w in words)
    assert heading(name) == text, f"no column name gives the header {text!r}"
    return name


def sheet_records(ws: Any) -> list[dict[str, Any]]:
    """A table sheet of the audit workbook (any but the Summary) as its rows, keyed by the step
    CSVs' column names."""
    rows = list(ws.iter_rows(values_only=True))
    names = [machine(h) for h in rows[0]]
    return [dict(zip(names, r, strict=True)) for r in rows[1:]]
