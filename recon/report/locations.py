"""The tables of a run over several locations: one workbook's sheets from every location's folder.

Floor 2 (part of ``recon.report``): each location's step tables combined
under a ``location`` column, the Summary and Errors across locations, and the
Locations sheet (one row per location and currency: each step's status and the
counts and totals an accountant checks first). Writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.money import ZERO
from recon.outcomes import TransferOutcome, Verdict
from recon.params import RunParams
from recon.report.runs import LocationRun, LocationStatus, first_failed
from recon.report.tables import (
    RUN_SHEET,
    Table,
    amount_or_zero,
    errors_table,
    parameter_rows,
    parameter_value,
    read_csv,
    step_row,
    totals_rows,
    utc,
    versions,
)

# The Locations sheet's figures per location and currency, after the step statuses.
LOCATION_FIGURES = [
    "invoices_in_scope",
    "in_scope_total",
    "blocked",
    "blocked_total",
    "transferred",
    "transferred_total",
    "deferred",
    "deferred_total",
    "failed",
    "status_differences",
]
# How the figures count a transfer outcome (recon.outcomes.TABLE): in Xero now (adopted: it was
# there already, from an earlier try); not transferred, each on the Errors sheet; waiting for the
# next run.
TRANSFERRED = TransferOutcome.judged(Verdict.SUCCESS)
NOT_TRANSFERRED = TransferOutcome.judged(Verdict.FAILURE)
DEFERRED = TransferOutcome.judged(Verdict.WAITING)


def not_run_table(sheet: str, csv_name: str, location: LocationRun) -> Table:
    """A sheet's table for a location that did not run: one ``note`` row saying so."""
    return Table(
        sheet,
        csv_name,
        ["note"],
        [[f"No data: this location did not run ({location.note.removeprefix('not run: ')})."]],
    )


def combined(sheet: str, csv_name: str, parts: Sequence[tuple[str, Table]]) -> Table:
    """Each location's table, one after the other, under a ``location`` column; a ``note`` column
    (if any) last."""
    columns: list[str] = []
    for _, table in parts:
        columns += [c for c in table.columns if c not in columns and c != "note"]
    if any("note" in table.columns for _, table in parts):
        columns.append("note")
    rows = []
    for name, table in parts:
        at = [table.columns.index(c) if c in table.columns else None for c in columns]
        rows += [[name, *[None if i is None else row[i] for i in at]] for row in table.rows]
    return Table(sheet, csv_name, ["location", *columns], rows)


def locations_errors(run_dir: Path, locs: Sequence[LocationRun]) -> Table:
    """The Errors sheet across locations: each location not run and each failure of the others;
    one ``none`` row when nothing failed."""
    rows: list[list[Any]] = []
    for loc in locs:
        if loc.status == LocationStatus.NOT_RUN:
            rows.append(
                [
                    loc.name,
                    "location not run",
                    f"{loc.folder}/",
                    loc.note,
                    "Nothing of this location is in this report: its invoices were neither checked "
                    "nor transferred.",
                    f"Run it into this run folder (recon run PARAMS --location '{loc.name}' "
                    f"--run-id {run_dir.name}), then rebuild this report (recon report {run_dir}).",
                ]
            )
            continue
        rows += [
            [loc.name, *r]
            for r in errors_table(run_dir / loc.folder, loc.steps, f"{loc.folder}/").rows
            if r[0] != "none"
        ]
    if not rows:
        rows.append(
            [
                None,
                "none",
                "",
                "Nothing failed: no location, step, transfer or payment of this run failed.",
                "",
                "",
            ]
        )
    return Table(
        "Errors", "errors.csv", ["location", "kind", "where", "what", "meaning", "fix"], rows
    )


def locations_summary(
    run_dir: Path,
    params: RunParams,
    started: datetime | None,
    finished: datetime | None,
    locs: Sequence[LocationRun],
    contexts: Mapping[str, Mapping[str, Any]],
) -> Table:
    """The Run sheet of a run over locations (``csv/summary.csv``): the run, each location's
    status, steps and context, the parameters, versions and each location's totals."""
    bad = [loc for loc in locs if loc.status != LocationStatus.OK]
    result = (
        "FAILED: "
        + "; ".join(f"{loc.name} ({first_failed(loc) or loc.status.value})" for loc in bad)
        if bad
        else f"{len(locs)} of {len(locs)} locations ran, no step failed"
    )
    rows: list[list[Any]] = [
        [None, "run", "run id", run_dir.name, None, None, "the run folder's name"],
        [None, "run", "started", utc(started) or "not recorded", None, None, "UTC"],
        [None, "run", "finished", utc(finished) or "not recorded", None, None, "UTC"],
        [None, "run", "result", result, None, None, ""],
        [None, "run", "report built", utc(datetime.now(tz=UTC)), None, None, "UTC"],
        [
            None,
            "run",
            "locations",
            ", ".join(loc.name for loc in locs),
            None,
            len(locs),
            "each in its own folder: " + ", ".join(f"{loc.folder}/" for loc in locs),
        ],
    ]
    for loc in locs:
        context, mapped = contexts.get(loc.name) or {}, params.location_map(loc.name)
        rows.append([loc.name, "location", "status", loc.status.value, None, None, loc.failure])
        rows += [[loc.name, *step_row(s)] for s in loc.steps]
        organisation = context.get("organisation") or (
            f"{mapped.organisation} (from the params; no step connected)"
            if mapped
            else "not recorded (no step connected)"
        )
        rows.append([loc.name, "context", "organisation", organisation, None, None, ""])
        if context.get("tenant_id"):
            rows.append([loc.name, "context", "tenant id", context["tenant_id"], None, None, ""])
        if mapped is not None and mapped.tracking_category:
            rows.append(
                [
                    loc.name,
                    "context",
                    "tracking",
                    f"{mapped.tracking_category}: {mapped.tracking_option}",
                    None,
                    None,
                    "every line of this location's invoices carries it",
                ]
            )
    rows.append(
        [
            None,
            "context",
            "target",
            params.target,
            None,
            None,
            "sandbox = the embedded sandbox; live = the real services",
        ]
    )
    rows += [
        [
            None,
            "parameter",
            key,
            parameter_value(value),
            None,
            None,
            (
                "the location a notebook opened by hand uses; this run covered the locations "
                "listed above"
            )
            if key == "location"
            else "",
        ]
        for key, value in parameter_rows(params)
    ]
    rows += [[None, "version", name, version, None, None, ""] for name, version in versions()]
    for loc in locs:
        if (run_dir / loc.folder).is_dir():
            rows += [[loc.name, *r] for r in totals_rows(run_dir / loc.folder)]
    return Table(
        RUN_SHEET,
        "summary.csv",
        ["location", "section", "item", "value", "currency", "count", "detail"],
        rows,
    )


def locations_table(
    run_dir: Path,
    params: RunParams,
    locs: Sequence[LocationRun],
    contexts: Mapping[str, Mapping[str, Any]],
) -> Table:
    """One row per location and currency: each step's status and the figures an accountant checks
    first."""
    stems: list[str] = []
    for loc in locs:
        stems += [s.stem for s in loc.steps if s.stem not in stems]
    rows: list[list[Any]] = []
    for loc in locs:
        status = {s.stem: s.status.value for s in loc.steps}
        mapped = params.location_map(loc.name)
        organisation = (contexts.get(loc.name) or {}).get("organisation") or (
            mapped.organisation if mapped else None
        )
        figures = _location_figures(run_dir / loc.folder)
        for currency in sorted(figures) or [""]:
            got = figures.get(currency, {})
            rows.append(
                [
                    loc.name,
                    currency or None,
                    loc.status.value,
                    organisation,
                    *[status.get(s) for s in stems],
                    *[got.get(c) for c in LOCATION_FIGURES],
                    loc.failure or None,
                ]
            )
    return Table(
        "Locations",
        "locations.csv",
        ["location", "currency", "status", "organisation", *stems, *LOCATION_FIGURES, "error"],
        rows,
    )


def _location_figures(folder: Path) -> dict[str, dict[str, Any]]:
    """currency -> the Locations figures from the step CSVs in ``folder`` (a figure whose CSV is
    missing is left out)."""

    def load(name: str) -> list[dict[str, str]] | None:
        loaded = read_csv(folder / name)
        return loaded[1] if loaded else None

    def total(rows: list[dict[str, str]], column: str) -> Decimal:
        return sum((amount_or_zero(r.get(column)) for r in rows), ZERO)

    invoices, outcomes, differences = (
        load("mapping_invoices.csv"),
        load("transfer_outcomes.csv"),
        load("status_differences.csv"),
    )
    currencies = {
        r.get("currency") or "" for rows in (invoices, outcomes, differences) for r in rows or []
    }
    figures: dict[str, dict[str, Any]] = {}
    for currency in currencies:
        got: dict[str, Any] = {}
        if invoices is not None:
            mine = [r for r in invoices if (r.get("currency") or "") == currency]
            blocked = [r for r in mine if r.get("blocked") == "True"]
            got |= {
                "invoices_in_scope": len(mine),
                "in_scope_total": total(mine, "total"),
                "blocked": len(blocked),
                "blocked_total": total(blocked, "total"),
            }
        if outcomes is not None:
            mine = [r for r in outcomes if (r.get("currency") or "") == currency]
            done = [r for r in mine if r.get("outcome") in TRANSFERRED]
            deferred = [r for r in mine if r.get("outcome") in DEFERRED]
            got |= {
                "transferred": len(done),
                "transferred_total": total(done, "nexudus_total"),
                "deferred": len(deferred),
                "deferred_total": total(deferred, "nexudus_total"),
                "failed": sum(r.get("outcome") in NOT_TRANSFERRED for r in mine),
            }
        if differences is not None:
            got["status_differences"] = sum(
                (r.get("currency") or "") == currency for r in differences
            )
        figures[currency] = got
    return figures
