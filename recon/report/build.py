"""Building, loading and showing a run's audit pack: the orchestration and the HTML export.

Floor 2 (part of ``recon.report``): ``build_report`` (one run folder, or a
run over several locations) gathers the tables, writes the workbook, CSVs,
``run.json`` and the notebooks as HTML (``render_notebooks``);
``load_report`` and ``open_report`` find a report already built; and
``ReportPaths`` says where it all is and shows itself in a notebook.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from recon.params import RunParams
from recon.report.locations import (
    combined,
    locations_errors,
    locations_summary,
    locations_table,
    not_run_table,
)
from recon.report.manifest import MANIFEST, write_manifest
from recon.report.pages import render_pages
from recon.report.runs import (
    LocationRun,
    LocationStatus,
    StepRun,
    StepStatus,
    failed_in,
    is_notebook_session,
    location_runs,
    record_location,
    recorded_locations,
    run_context,
    steps_from_run,
    with_notebook_error,
    write_run_record,
)
from recon.report.summary import SummaryData, summary_data, tie_out_table
from recon.report.tables import (
    Table,
    errors_table,
    read_csv,
    step_table,
    summary_table,
    typed,
    versions,
)
from recon.report.workbook import write_csv, write_workbook

WORKBOOK = "audit.xlsx"
# Each data sheet: its CSV in csv/ and the step CSV it is made from.
DATA_SHEETS = (
    ("Account mapping", "account_mapping.csv", "mapping_accounts.csv"),
    ("Tax mapping", "tax_mapping.csv", "mapping_tax_rates.csv"),
    ("Transfers", "transfers.csv", "transfer_outcomes.csv"),
    ("Status differences", "status_differences.csv", "status_differences.csv"),
)


@dataclass(frozen=True)
class ReportPaths:
    """Where a run's audit pack is. Shows itself as links, the tie-out per currency and the Run
    table (without the parameters)."""

    run_dir: Path
    workbook: Path
    csv: tuple[Path, ...]
    html: tuple[Path, ...]
    failed_steps: tuple[
        str, ...
    ] = ()  # "02_transfer.ipynb"; for a run over locations "Hive Dublin Docklands: 01_....ipynb"
    steps: tuple[StepRun, ...] = field(default=(), repr=False)
    locations: tuple[LocationRun, ...] = field(
        default=(), repr=False
    )  # a run over several locations only

    @property
    def csv_dir(self) -> Path:
        """The folder of the report's CSV files."""
        return self.run_dir / "csv"

    @property
    def manifest(self) -> Path:
        """The run folder's manifest: versions, the params file's hash, every file's SHA-256."""
        return self.run_dir / MANIFEST

    @property
    def ok(self) -> bool:
        """Whether nothing failed: no step (and, over locations, no location left not run)."""
        return not self.failed_steps

    def table(self, name: str) -> pd.DataFrame:
        """One table of the report (``summary``, ``transfers``, ``errors``...) from its CSV; money
        as Decimal, blanks None."""
        loaded = read_csv(self.csv_dir / f"{name}.csv")
        if loaded is None:
            raise FileNotFoundError(f"no table {name!r} in {self.csv_dir}")
        columns, records = loaded
        rows = [[typed(c, r.get(c) or "") for c in columns] for r in records]
        if name == "summary":  # its totals rows hold money in the value column
            for row, rec in zip(rows, records, strict=True):
                if rec.get("section") == "totals":
                    row[columns.index("value")] = typed("amount", rec.get("value") or "")
        return pd.DataFrame(rows, columns=columns, dtype=object)

    def summary(self) -> pd.DataFrame:
        """The Run sheet (run, steps, context, parameters, versions, totals) as a DataFrame."""
        return self.table("summary")

    def tie_out(self) -> pd.DataFrame:
        """The Summary sheet's tie-out per currency as a DataFrame (money as Decimal)."""
        return self.table("tie_out")

    def to_dict(self) -> dict[str, Any]:
        """Where everything is, as JSON-ready values (and each location, for a run over several)."""
        out: dict[str, Any] = {
            "run_dir": str(self.run_dir),
            "workbook": str(self.workbook),
            "csv": [str(p) for p in self.csv],
            "html": [str(p) for p in self.html],
            "failed_steps": list(self.failed_steps),
        }
        if self.locations:
            out["locations"] = [loc.to_dict() for loc in self.locations]
        return out

    def __str__(self) -> str:
        verdict = (
            f"FAILED: {', '.join(self.failed_steps)}" if self.failed_steps else "no step failed"
        )
        lines = [
            f"Audit report for run {self.run_dir.name} ({verdict})",
            f"  workbook: {self.workbook}",
            f"  CSV:      {self.csv_dir} ({len(self.csv)} files)",
            f"  HTML:     {self.run_dir / 'html'} ({len(self.html)} executed notebooks)",
        ]
        lines += [
            f"  location: {loc.name} ({loc.folder}/): {loc.status.value}" for loc in self.locations
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ReportPaths {str(self.workbook)!r} failed={list(self.failed_steps)}>"

    def _repr_html_(self) -> str:
        colour = "#f8d7da" if self.failed_steps else "#d1e7dd"
        verdict = (
            f"failed: {', '.join(self.failed_steps)}" if self.failed_steps else "no step failed"
        )
        links = [
            f"<li>workbook: {_link(self.workbook)}</li>",
            f"<li>CSV: {_link(self.csv_dir)} ({len(self.csv)} files)</li>",
        ]
        links += [f"<li>HTML: {_link(p)}</li>" for p in self.html]

        def text(v: Any) -> Any:
            return "" if v is None else f"{v:,.2f}" if isinstance(v, Decimal) else v

        summary = self.summary()
        shown = summary[summary["section"] != "parameter"].map(text)
        try:
            tie_out = self.tie_out().map(text).to_html(index=False, escape=True)
        except FileNotFoundError:  # a report built before the tie-out existed
            tie_out = ""
        return (
            (
                f"<h3>Audit report · run {html.escape(self.run_dir.name)} "
                f"<span style='background:{colour};padding:0 .4em'>{html.escape(verdict)}</span>"
                f"</h3><ul>{''.join(links)}</ul>"
            )
            + tie_out
            + shown.to_html(index=False, escape=True)
            + "<p><i>Parameters are on the workbook's Run sheet.</i></p>"
        )


def build_report(
    run_dir: str | Path,
    params: RunParams,
    *,
    started: datetime | None = None,
    finished: datetime | None = None,
    steps: Sequence[StepRun] | None = None,
    context: Mapping[str, Any] | None = None,
    locations: Sequence[LocationRun] | None = None,
) -> ReportPaths:
    """Write the audit pack of the run in ``run_dir`` and return where it is.

    ``steps`` are the run's step notebooks in order (``None``: read back from
    ``run.json`` or the executed notebooks in the folder); a failed step's error
    is taken from its executed notebook when there is one. ``context`` may give
    the location and organisation; otherwise they come from the steps' output.

    ``locations``: a run over several locations, each in its own folder of
    ``run_dir`` (one workbook for all of them, see the module docstring). With
    neither ``steps`` nor ``locations`` the folder decides: location folders
    in it (``location_runs``) make it a run over locations.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if locations is None and steps is None:
        locations = location_runs(run_dir, params.locations) or None
    if locations:
        return _locations_report(run_dir, params, started, finished, locations)
    steps = [
        with_notebook_error(run_dir, s)
        for s in (steps if steps is not None else steps_from_run(run_dir))
    ]
    started = started or min((s.started for s in steps if s.started), default=None)
    finished = finished or max((s.finished for s in steps if s.finished), default=None)
    write_run_record(run_dir, params, started, finished, steps)
    context = {**run_context(run_dir, params), **(context or {})}
    data = [
        step_table(sheet, csv_name, run_dir, source, steps, params)
        for sheet, csv_name, source in DATA_SHEETS
    ]
    run = summary_table(run_dir, params, started, finished, steps, context)
    summary = summary_data(
        [(None, run_dir)],
        f"Audit pack: {context.get('location') or params.location}, {_period(params)}",
        _summary_lines(run_dir, _result(run), context.get("organisation") or params.organisation),
        (finished or started or datetime.now(tz=UTC)).astimezone(UTC).date(),
    )
    tables = [run, *data, errors_table(run_dir, steps)]
    paths = _write_pack(run_dir, params, tables, summary, render_pages(run_dir, run_dir / "html"))
    return ReportPaths(
        run_dir,
        paths[0],
        paths[1],
        paths[2],
        tuple(s.name for s in steps if s.status == StepStatus.FAILED),
        tuple(steps),
    )


def _period(params: RunParams) -> str:
    return f"{params.period_start.isoformat()} to {params.period_end.isoformat()}"


def _result(run: Table) -> str:
    """The run's result, from its Run table."""
    section, item, value = (run.columns.index(c) for c in ("section", "item", "value"))
    found = (r[value] for r in run.rows if (r[section], r[item]) == ("run", "result"))
    return str(next(found, ""))


def _summary_lines(run_dir: Path, result: str, organisation: str | None) -> list[str]:
    """The lines under the Summary's title: the run and its result, then how the pack was made."""
    recon_version = dict(versions()).get("recon", "")
    return [
        f"Run {run_dir.name}; organisation {organisation or 'not recorded'}; {result}",
        f"Report built {datetime.now(tz=UTC):%Y-%m-%d %H:%M} UTC by recon {recon_version}. "
        "The Run sheet has the steps, parameters and versions; manifest.json a SHA-256 of "
        "every file.",
    ]


def _write_pack(
    run_dir: Path,
    params: RunParams,
    tables: list[Table],
    summary: SummaryData,
    htmls: tuple[Path, ...],
) -> tuple[Path, tuple[Path, ...], tuple[Path, ...]]:
    """Write the workbook and the CSVs, then the manifest of everything (last); return the
    workbook, the CSVs and the pages."""
    workbook = write_workbook(tables, run_dir / WORKBOOK, summary, run_dir.name)
    csvs = tuple(write_csv(t, run_dir / "csv") for t in [tie_out_table(summary), *tables])
    write_manifest(run_dir, params)
    return workbook, csvs, htmls


def load_report(run_dir: str | Path) -> ReportPaths:
    """The report already built in ``run_dir`` (by ``recon run`` or ``build_report``)."""
    run_dir = Path(run_dir)
    workbook = run_dir / WORKBOOK
    if not workbook.exists():
        raise FileNotFoundError(
            f"no {WORKBOOK} in {run_dir}: run `recon run`, or build_report for this folder"
        )
    csvs = tuple(sorted((run_dir / "csv").glob("*.csv")))
    if recorded_locations(run_dir):
        locations = tuple(location_runs(run_dir))
        return ReportPaths(
            run_dir,
            workbook,
            csvs,
            tuple(sorted((run_dir / "html").glob("*/*.html"))),
            failed_in(locations),
            (),
            locations,
        )
    steps = tuple(steps_from_run(run_dir))
    return ReportPaths(
        run_dir,
        workbook,
        csvs,
        tuple(sorted((run_dir / "html").glob("*.html"))),
        tuple(s.name for s in steps if s.status == StepStatus.FAILED),
        steps,
    )


def open_report(run_dir: str | Path, params: RunParams, *, rebuild: bool = False) -> ReportPaths:
    """The report of ``run_dir`` as notebook 04 shows it.

    A folder ``recon run`` wrote keeps the report built at the end of that run
    (its record of the steps is the truth of the run). Any other folder (the
    notebooks run by hand into ``output_dir``) gets a report built now from the
    CSVs in it and the steps the notebooks' panels recorded (``record_step``), so
    it is current after every re-run of a step.
    """
    run_dir = Path(run_dir)
    if (
        (run_dir / WORKBOOK).exists()
        and (steps_from_run(run_dir) or recorded_locations(run_dir))
        and not is_notebook_session(run_dir)
        and not rebuild
    ):
        return load_report(run_dir)
    return build_report(run_dir, params)


def render_notebooks(run_dir: Path, html_dir: Path) -> tuple[Path, ...]:
    """Every executed notebook in ``run_dir`` as a web page without code (``recon.report.pages``):
    outputs and markdown, paths relative to the run folder, no Python reprs."""
    return render_pages(Path(run_dir), Path(html_dir))


def _locations_report(
    run_dir: Path,
    params: RunParams,
    started: datetime | None,
    finished: datetime | None,
    locations: Sequence[LocationRun],
) -> ReportPaths:
    """One workbook for a run over several locations (see the module docstring)."""
    locs = [
        replace(loc, steps=tuple(with_notebook_error(run_dir / loc.folder, s) for s in loc.steps))
        for loc in locations
    ]
    started = started or min((loc.started for loc in locs if loc.started), default=None)
    finished = finished or max((loc.finished for loc in locs if loc.finished), default=None)
    for loc in locs:
        if loc.steps:
            record_location(run_dir / loc.folder, params, loc)
    write_run_record(run_dir, params, started, finished, [], locs)
    contexts = {
        loc.name: run_context(run_dir / loc.folder, params)
        if (run_dir / loc.folder).is_dir()
        else {}
        for loc in locs
    }
    data = []
    for sheet, csv_name, source in DATA_SHEETS:
        parts = [
            (
                loc.name,
                not_run_table(sheet, csv_name, loc)
                if loc.status == LocationStatus.NOT_RUN
                else step_table(sheet, csv_name, run_dir / loc.folder, source, loc.steps, params),
            )
            for loc in locs
        ]
        data.append(combined(sheet, csv_name, parts))
    run = locations_summary(run_dir, params, started, finished, locs, contexts)
    organisations = sorted(
        {str(c["organisation"]) for c in contexts.values() if c.get("organisation")}
    )
    summary = summary_data(
        [(loc.name, run_dir / loc.folder) for loc in locs],
        f"Audit pack: {len(locs)} locations, {_period(params)}",
        _summary_lines(run_dir, _result(run), ", ".join(organisations) or None),
        (finished or started or datetime.now(tz=UTC)).astimezone(UTC).date(),
    )
    tables = [
        run,
        locations_table(run_dir, params, locs, contexts),
        *data,
        locations_errors(run_dir, locs),
    ]
    htmls = tuple(
        page
        for loc in locs
        if (run_dir / loc.folder).is_dir()
        for page in render_pages(run_dir / loc.folder, run_dir / "html" / loc.folder, run_dir)
    )
    workbook, csvs, htmls = _write_pack(run_dir, params, tables, summary, htmls)
    return ReportPaths(run_dir, workbook, csvs, htmls, failed_in(locs), (), tuple(locs))


def _link(path: Path) -> str:
    try:
        href = os.path.relpath(path, Path.cwd())
    except ValueError:
        href = str(path)
    return (
        f"<a href='{html.escape(href)}' target='_blank'>{html.escape(path.name or str(path))}</a>"
    )
