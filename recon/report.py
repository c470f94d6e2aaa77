"""The audit pack of one run: a workbook, the same tables as CSV, the executed notebooks as HTML.

Floor 2: reads what the steps wrote into the run folder (their CSVs and the
executed notebooks); imports no step, no client and no widget, and makes no
call to Xero or Nexudus, so a run that failed half-way still gets its report.

``build_report(run_dir, params, started=..., finished=..., steps=...)`` writes

- ``audit.xlsx``: sheets Summary, Account mapping, Tax mapping, Transfers,
  Status differences, Errors (frozen header, filter, readable widths, money as
  numbers in a currency format);
- ``csv/*.csv``: the same tables, money as exact decimal text;
- ``html/*.html``: every executed notebook in the folder, without code cells;
- ``run.json``: the run's steps and times, so the report can be rebuilt;

and returns a ``ReportPaths`` that renders itself. A step CSV that is missing
(its step failed or was skipped, or did not write) still gives its sheet, with
one ``note`` row saying why.

A run over several locations keeps each location's step outputs in a folder of
its own (``<run-id>/<location-folder>/``, with the location's ``run.json``).
Its report is still one workbook at ``<run-id>/audit.xlsx``: every table gets a
``location`` column first and one more sheet, Locations (one row per location
and currency: each step's status and the counts and totals that matter), comes
after the Summary; ``csv/`` holds the combined tables and ``html/<folder>/``
each location's notebooks. ``build_report`` builds it when given ``locations``
or, given neither steps nor locations, when it finds location folders.

Money: the step CSVs hold exact decimal text. It is read as ``Decimal`` and
turned into a float only when a cell is written (see ``_cell_value``).
"""

from __future__ import annotations

import csv
import html
import json
import os
import platform
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from recon.money import ZERO, round_cents
from recon.params import RunParams

__all__ = ["LocationRun", "ReportPaths", "StepRun", "StepStatus", "build_report", "load_report", "location_folders",
           "location_runs", "notebook_error", "open_report", "parameter_rows", "record_location", "render_notebooks",
           "steps_from_run", "versions"]

WORKBOOK = "audit.xlsx"
RUN_RECORD = "run.json"
RUN_CONTEXT = "run_context.json"  # optional: {"location", "organisation", "tenant_id"} written by a step that connected
# The packages whose versions an auditor needs to reproduce a run.
VERSIONED = ("recon", "pandas", "httpx", "authlib", "papermill", "nbconvert", "openpyxl")
SENSITIVE = ("secret", "password", "token")
MONEY_COLUMNS = frozenset({"total", "nexudus_total", "xero_total", "difference", "amount", "amount_due", "xero_amount_paid",
                           "xero_amount_due", "nexudus_paid_amount", "transferred_total", "transferable_amount",
                           "blocked_amount", "in_scope_total", "blocked_total", "transferred_total", "deferred_total"})
COUNT_COLUMNS = frozenset({"invoices", "lines", "invoices_using", "lines_using", "total_minor", "count",
                           "invoices_in_scope", "blocked", "transferred", "deferred", "failed", "status_differences"})
MONEY_FORMAT = "#,##0.00"
# Which step writes a CSV: the step notebook whose name holds the keyword.
STEP_OF_CSV = (("mapping_", "mapping"), ("transfer_", "transfer"), ("status_", "status"))
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CONNECTION_REPR = re.compile(r"<Connection location='(?P<location>[^']*)' organisation='(?P<organisation>[^']*)'")


class StepStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepRun:
    """One step notebook of a run: how it ended, when, and (if it failed) what and where."""

    name: str  # the notebook's file name, e.g. 02_transfer.ipynb
    status: StepStatus
    started: datetime | None = None
    finished: datetime | None = None
    error: str = ""  # "ParamsError: ..." for a failed step
    where: str = ""  # "In [3]: conn = connect(..." for a failed step
    note: str = ""  # why a step was skipped

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def seconds(self) -> float | None:
        return (self.finished - self.started).total_seconds() if self.started and self.finished else None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status.value, "started": _iso(self.started), "finished": _iso(self.finished),
                "error": self.error, "where": self.where, "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRun:
        return cls(name=str(data["name"]), status=StepStatus(data["status"]), started=_parse_time(data.get("started")),
                   finished=_parse_time(data.get("finished")), error=str(data.get("error") or ""),
                   where=str(data.get("where") or ""), note=str(data.get("note") or ""))


class LocationStatus(StrEnum):
    OK = "ok"  # no step failed
    FAILED = "failed"  # a step failed (the error is in its notebook and on the Errors sheet)
    NOT_RUN = "not run"  # nothing ran for it: the run was interrupted first, or its scheduler task never wrote


@dataclass(frozen=True)
class LocationRun:
    """One location of a run over several: its name, its folder inside the run folder, its steps."""

    name: str  # the Nexudus location, as the params' locations map names it
    folder: str  # its folder inside the run folder (see ``location_folders``)
    steps: tuple[StepRun, ...] = ()
    started: datetime | None = None
    finished: datetime | None = None
    note: str = ""  # why nothing ran for it, when nothing did

    @property
    def status(self) -> LocationStatus:
        if any(s.status == StepStatus.FAILED for s in self.steps):
            return LocationStatus.FAILED
        return LocationStatus.NOT_RUN if self.note else LocationStatus.OK

    @property
    def failure(self) -> str:
        """What went wrong, in one line: the first failed step, where, and its error; or why it did not run."""
        step = next((s for s in self.steps if s.status == StepStatus.FAILED), None)
        if step is not None:
            return f"{step.stem} failed at {step.where or 'its start'}: {step.error or '(no error text)'}"
        return self.note

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "folder": self.folder, "status": self.status.value, "started": _iso(self.started),
                "finished": _iso(self.finished), "note": self.note}


@dataclass(frozen=True)
class ReportPaths:
    """Where a run's audit pack is. Shows itself as links and the Summary table."""

    run_dir: Path
    workbook: Path
    csv: tuple[Path, ...]
    html: tuple[Path, ...]
    failed_steps: tuple[str, ...] = ()  # "02_transfer.ipynb"; for a run over locations "Hive Dublin Docklands: 01_....ipynb"
    steps: tuple[StepRun, ...] = field(default=(), repr=False)
    locations: tuple[LocationRun, ...] = field(default=(), repr=False)  # a run over several locations only

    @property
    def csv_dir(self) -> Path:
        return self.run_dir / "csv"

    @property
    def ok(self) -> bool:
        return not self.failed_steps

    def table(self, name: str) -> pd.DataFrame:
        """One table of the report (``summary``, ``transfers``, ``errors``...) from its CSV; money as Decimal, blanks None."""
        loaded = _read_csv(self.csv_dir / f"{name}.csv")
        if loaded is None:
            raise FileNotFoundError(f"no table {name!r} in {self.csv_dir}")
        columns, records = loaded
        rows = [[_typed(c, r.get(c) or "") for c in columns] for r in records]
        if name == "summary":  # its totals rows hold money in the value column
            for row, rec in zip(rows, records, strict=True):
                if rec.get("section") == "totals":
                    row[columns.index("value")] = _typed("amount", rec.get("value") or "")
        return pd.DataFrame(rows, columns=columns, dtype=object)

    def summary(self) -> pd.DataFrame:
        """The Summary sheet as a DataFrame."""
        return self.table("summary")

    def to_dict(self) -> dict[str, Any]:
        out = {"run_dir": str(self.run_dir), "workbook": str(self.workbook), "csv": [str(p) for p in self.csv],
               "html": [str(p) for p in self.html], "failed_steps": list(self.failed_steps)}
        if self.locations:
            out["locations"] = [loc.to_dict() for loc in self.locations]
        return out

    def __str__(self) -> str:
        verdict = f"FAILED: {', '.join(self.failed_steps)}" if self.failed_steps else "no step failed"
        lines = [f"Audit report for run {self.run_dir.name} ({verdict})",
                 f"  workbook: {self.workbook}",
                 f"  CSV:      {self.csv_dir} ({len(self.csv)} files)",
                 f"  HTML:     {self.run_dir / 'html'} ({len(self.html)} executed notebooks)"]
        lines += [f"  location: {loc.name} ({loc.folder}/): {loc.status.value}" for loc in self.locations]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ReportPaths {str(self.workbook)!r} failed={list(self.failed_steps)}>"

    def _repr_html_(self) -> str:
        colour = "#f8d7da" if self.failed_steps else "#d1e7dd"
        verdict = f"failed: {', '.join(self.failed_steps)}" if self.failed_steps else "no step failed"
        links = [f"<li>workbook: {_link(self.workbook)}</li>", f"<li>CSV: {_link(self.csv_dir)} ({len(self.csv)} files)</li>"]
        links += [f"<li>HTML: {_link(p)}</li>" for p in self.html]
        summary = self.summary()
        shown = summary[summary["section"] != "parameter"].map(
            lambda v: "" if v is None else f"{v:,.2f}" if isinstance(v, Decimal) else v)
        return (f"<h3>Audit report · run {html.escape(self.run_dir.name)} "
                f"<span style='background:{colour};padding:0 .4em'>{html.escape(verdict)}</span></h3>"
                f"<ul>{''.join(links)}</ul>" + shown.to_html(index=False, escape=True)
                + "<p><i>Parameters are on the workbook's Summary sheet.</i></p>")


# ---- the report -------------------------------------------------------------------------------
def build_report(run_dir: str | Path, params: RunParams, *, started: datetime | None = None, finished: datetime | None = None,
                 steps: Sequence[StepRun] | None = None, context: Mapping[str, Any] | None = None,
                 locations: Sequence[LocationRun] | None = None) -> ReportPaths:
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
    steps = [_with_notebook_error(run_dir, s) for s in (steps if steps is not None else steps_from_run(run_dir))]
    started = started or min((s.started for s in steps if s.started), default=None)
    finished = finished or max((s.finished for s in steps if s.finished), default=None)
    _write_run_record(run_dir, params, started, finished, steps)
    data = {
        "Account mapping": _step_table("Account mapping", "account_mapping.csv", run_dir, "mapping_accounts.csv", steps, params),
        "Tax mapping": _step_table("Tax mapping", "tax_mapping.csv", run_dir, "mapping_tax_rates.csv", steps, params),
        "Transfers": _step_table("Transfers", "transfers.csv", run_dir, "transfer_outcomes.csv", steps, params),
        "Status differences": _step_table("Status differences", "status_differences.csv", run_dir, "status_differences.csv",
                                          steps, params),
    }
    errors = _errors_table(run_dir, steps)
    summary = _summary_table(run_dir, params, started, finished, steps, {**_run_context(run_dir, params), **(context or {})})
    tables = [summary, *data.values(), errors]
    workbook = _write_workbook(tables, run_dir / WORKBOOK)
    csvs = tuple(_write_csv(t, run_dir / "csv") for t in tables)
    htmls = render_notebooks(run_dir, run_dir / "html")
    return ReportPaths(run_dir, workbook, csvs, htmls, tuple(s.name for s in steps if s.status == StepStatus.FAILED), tuple(steps))


def load_report(run_dir: str | Path) -> ReportPaths:
    """The report already built in ``run_dir`` (by ``recon run`` or ``build_report``)."""
    run_dir = Path(run_dir)
    workbook = run_dir / WORKBOOK
    if not workbook.exists():
        raise FileNotFoundError(f"no {WORKBOOK} in {run_dir}: run `recon run`, or build_report for this folder")
    csvs = tuple(sorted((run_dir / "csv").glob("*.csv")))
    if _recorded_locations(run_dir):
        locations = tuple(location_runs(run_dir))
        return ReportPaths(run_dir, workbook, csvs, tuple(sorted((run_dir / "html").glob("*/*.html"))),
                           _failed_in(locations), (), locations)
    steps = tuple(steps_from_run(run_dir))
    return ReportPaths(run_dir, workbook, csvs, tuple(sorted((run_dir / "html").glob("*.html"))),
                       tuple(s.name for s in steps if s.status == StepStatus.FAILED), steps)


def open_report(run_dir: str | Path, params: RunParams, *, rebuild: bool = False) -> ReportPaths:
    """The report of ``run_dir`` as notebook 04 shows it.

    A folder ``recon run`` wrote keeps the report built at the end of that run
    (its record of the steps is the truth of the run). Any other folder (the
    notebooks run by hand into ``output_dir``) gets a report built now from the
    CSVs in it, so it is current after every re-run of a step.
    """
    run_dir = Path(run_dir)
    if (run_dir / WORKBOOK).exists() and (steps_from_run(run_dir) or _recorded_locations(run_dir)) and not rebuild:
        return load_report(run_dir)
    return build_report(run_dir, params)


def steps_from_run(run_dir: str | Path) -> list[StepRun]:
    """The steps of a run: from ``run.json`` if the report was built before, else from the executed notebooks' metadata."""
    run_dir = Path(run_dir)
    record = run_dir / RUN_RECORD
    if record.exists():
        return [StepRun.from_dict(s) for s in json.loads(record.read_text("utf-8")).get("steps", [])]
    import nbformat

    steps = []
    for path in sorted(run_dir.glob("[0-9][0-9]_*.ipynb")):
        meta = nbformat.read(path, as_version=4).metadata.get("papermill", {})
        status = StepStatus.FAILED if meta.get("exception") else StepStatus.OK
        steps.append(StepRun(path.name, status, _parse_time(meta.get("start_time")), _parse_time(meta.get("end_time"))))
    return steps


def render_notebooks(run_dir: Path, html_dir: Path) -> tuple[Path, ...]:
    """Every executed notebook in ``run_dir`` as HTML without code cells (outputs, markdown and errors only)."""
    import nbformat
    from nbconvert import HTMLExporter

    notebooks = sorted(run_dir.glob("*.ipynb"))
    if not notebooks:
        return ()
    html_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    written = []
    for path in notebooks:
        body, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
        target = html_dir / f"{path.stem}.html"
        target.write_text(body, "utf-8")
        written.append(target)
    return tuple(written)


# ---- runs over several locations ----------------------------------------------------------------------
NOT_RUN_NOTE = ("not run: this run folder has no results for it (the run was stopped before it, or its scheduler "
                "task did not run or wrote elsewhere)")
# The Locations sheet's figures per location and currency, after the step statuses.
LOCATION_FIGURES = ["invoices_in_scope", "in_scope_total", "blocked", "blocked_total", "transferred", "transferred_total",
                    "deferred", "deferred_total", "failed", "status_differences"]
TRANSFERRED = ("created", "adopted")  # the invoice is in Xero now (adopted: it was there already, from an earlier try)
NOT_TRANSFERRED = ("failed", "refused", "unknown")  # each is on the Errors sheet or needs a look


def location_folders(names: Iterable[str]) -> dict[str, str]:
    """Each location's folder inside a run folder: lower-case ASCII words joined by ``-``, unique within ``names``.

    ``Hive Dublin Docklands`` -> ``hive-dublin-docklands``. Worked out from the
    whole list in its order (the params' locations map), so every scheduler
    task of one run names the same folders; never ``csv`` or ``html``.
    """
    out: dict[str, str] = {}
    taken = {"csv", "html"}  # the report's own folders
    for name in names:
        plain = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
        base = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "location"
        folder, n = base, 1
        while folder in taken:
            n += 1
            folder = f"{base}-{n}"
        taken.add(folder)
        out[name] = folder
    return out


def record_location(folder: str | Path, params: RunParams, location: LocationRun) -> Path:
    """Write one location's step record, ``<folder>/run.json``: what the run's report is built from."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {"run_id": folder.parent.name, "location": location.name, "params_file": params.source,
              "params_path": _params_path(params), "started": _iso(location.started), "finished": _iso(location.finished),
              "steps": [s.to_dict() for s in location.steps], "note": location.note}
    path = folder / RUN_RECORD
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    os.replace(tmp, path)
    return path


def location_runs(run_dir: str | Path, expected: Iterable[str] = ()) -> list[LocationRun]:
    """The locations of a run over several, in order, each with its steps; ``[]`` for any other folder.

    The order and the list come from the run's own record (``run.json``, once a
    report was built) or else from ``expected`` (the params' locations map),
    followed by any other location folder found. A listed location without a
    folder of results is ``not run``.
    """
    run_dir = Path(run_dir)
    found: dict[str, LocationRun] = {}
    for sub in sorted(p for p in run_dir.iterdir() if p.is_dir()) if run_dir.is_dir() else []:
        record = _read_json(sub / RUN_RECORD)
        if record and record.get("location"):
            found[str(record["location"]).casefold()] = LocationRun(
                str(record["location"]), sub.name, tuple(StepRun.from_dict(s) for s in record.get("steps") or []),
                _parse_time(record.get("started")), _parse_time(record.get("finished")), str(record.get("note") or ""))
    recorded = _recorded_locations(run_dir)
    if not found and not recorded:
        return []
    names = [str(r["name"]) for r in recorded] if recorded else list(expected)
    folders = {str(r["name"]): str(r["folder"]) for r in recorded} if recorded else location_folders(names)
    notes = {str(r["name"]): str(r.get("note") or "") for r in recorded}
    out = [found.pop(name.casefold(), None) or LocationRun(name, folders[name], note=notes.get(name) or NOT_RUN_NOTE)
           for name in names]
    return out + list(found.values())


def _recorded_locations(run_dir: Path) -> list[dict[str, Any]]:
    record = _read_json(run_dir / RUN_RECORD)
    return list(record.get("locations") or []) if record else []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _first_failed(location: LocationRun) -> str | None:
    return next((s.stem for s in location.steps if s.status == StepStatus.FAILED), None)


def _failed_in(locations: Sequence[LocationRun]) -> tuple[str, ...]:
    return tuple(f"{loc.name}: {s.name}" for loc in locations for s in loc.steps if s.status == StepStatus.FAILED) + tuple(
        f"{loc.name}: not run" for loc in locations if loc.status == LocationStatus.NOT_RUN)


def _locations_report(run_dir: Path, params: RunParams, started: datetime | None, finished: datetime | None,
                      locations: Sequence[LocationRun]) -> ReportPaths:
    """One workbook for a run over several locations (see the module docstring)."""
    locs = [replace(loc, steps=tuple(_with_notebook_error(run_dir / loc.folder, s) for s in loc.steps)) for loc in locations]
    started = started or min((loc.started for loc in locs if loc.started), default=None)
    finished = finished or max((loc.finished for loc in locs if loc.finished), default=None)
    for loc in locs:
        if loc.steps:
            record_location(run_dir / loc.folder, params, loc)
    _write_run_record(run_dir, params, started, finished, [], locs)
    contexts = {loc.name: _run_context(run_dir / loc.folder, params) if (run_dir / loc.folder).is_dir() else {} for loc in locs}
    data = []
    for sheet, csv_name, source in (("Account mapping", "account_mapping.csv", "mapping_accounts.csv"),
                                    ("Tax mapping", "tax_mapping.csv", "mapping_tax_rates.csv"),
                                    ("Transfers", "transfers.csv", "transfer_outcomes.csv"),
                                    ("Status differences", "status_differences.csv", "status_differences.csv")):
        parts = [(loc.name, _not_run_table(sheet, csv_name, loc) if loc.status == LocationStatus.NOT_RUN
                  else _step_table(sheet, csv_name, run_dir / loc.folder, source, loc.steps, params)) for loc in locs]
        data.append(_combined(sheet, csv_name, parts))
    tables = [_locations_summary(run_dir, params, started, finished, locs, contexts),
              _locations_table(run_dir, params, locs, contexts), *data, _locations_errors(run_dir, locs)]
    workbook = _write_workbook(tables, run_dir / WORKBOOK)
    csvs = tuple(_write_csv(t, run_dir / "csv") for t in tables)
    htmls = tuple(page for loc in locs if (run_dir / loc.folder).is_dir()
                  for page in render_notebooks(run_dir / loc.folder, run_dir / "html" / loc.folder))
    return ReportPaths(run_dir, workbook, csvs, htmls, _failed_in(locs), (), tuple(locs))


def _not_run_table(sheet: str, csv_name: str, location: LocationRun) -> _Table:
    return _Table(sheet, csv_name, ["note"], [[f"No data: this location did not run ({location.note.removeprefix('not run: ')})."]])


def _combined(sheet: str, csv_name: str, parts: Sequence[tuple[str, _Table]]) -> _Table:
    """Each location's table, one after the other, under a ``location`` column; a ``note`` column (if any) last."""
    columns: list[str] = []
    for _, table in parts:
        columns += [c for c in table.columns if c not in columns and c != "note"]
    if any("note" in table.columns for _, table in parts):
        columns.append("note")
    rows = []
    for name, table in parts:
        at = [table.columns.index(c) if c in table.columns else None for c in columns]
        rows += [[name, *[None if i is None else row[i] for i in at]] for row in table.rows]
    return _Table(sheet, csv_name, ["location", *columns], rows)


def _locations_errors(run_dir: Path, locs: Sequence[LocationRun]) -> _Table:
    rows: list[list[Any]] = []
    for loc in locs:
        if loc.status == LocationStatus.NOT_RUN:
            rows.append([loc.name, "location not run", f"{loc.folder}/", loc.note,
                         "Nothing of this location is in this report: its invoices were neither checked nor transferred.",
                         f"Run it into this run folder (recon run PARAMS --location '{loc.name}' --run-id {run_dir.name}), "
                         f"then rebuild this report (recon report {run_dir})."])
            continue
        rows += [[loc.name, *r] for r in _errors_table(run_dir / loc.folder, loc.steps, f"{loc.folder}/").rows if r[0] != "none"]
    if not rows:
        rows.append([None, "none", "", "Nothing failed: no location, step, transfer or payment of this run failed.", "", ""])
    return _Table("Errors", "errors.csv", ["location", "kind", "where", "what", "meaning", "fix"], rows)


def _locations_summary(run_dir: Path, params: RunParams, started: datetime | None, finished: datetime | None,
                       locs: Sequence[LocationRun], contexts: Mapping[str, Mapping[str, Any]]) -> _Table:
    bad = [loc for loc in locs if loc.status != LocationStatus.OK]
    result = ("FAILED: " + "; ".join(f"{loc.name} ({_first_failed(loc) or loc.status.value})" for loc in bad) if bad
              else f"{len(locs)} of {len(locs)} locations ran, no step failed")
    rows: list[list[Any]] = [
        [None, "run", "run id", run_dir.name, None, None, str(run_dir)],
        [None, "run", "started", _iso(started) or "not recorded", None, None, "UTC"],
        [None, "run", "finished", _iso(finished) or "not recorded", None, None, "UTC"],
        [None, "run", "result", result, None, None, ""],
        [None, "run", "report built", _iso(datetime.now(tz=UTC)), None, None, "UTC"],
        [None, "run", "locations", ", ".join(loc.name for loc in locs), None, len(locs),
         "each in its own folder: " + ", ".join(f"{loc.folder}/" for loc in locs)],
    ]
    for loc in locs:
        context, mapped = contexts.get(loc.name) or {}, params.location_map(loc.name)
        rows.append([loc.name, "location", "status", loc.status.value, None, None, loc.failure])
        rows += [[loc.name, *_step_row(s)] for s in loc.steps]
        organisation = context.get("organisation") or (f"{mapped.organisation} (from the params; no step connected)" if mapped
                                                       else "not recorded (no step connected)")
        rows.append([loc.name, "context", "organisation", organisation, None, None, ""])
        if context.get("tenant_id"):
            rows.append([loc.name, "context", "tenant id", context["tenant_id"], None, None, ""])
        if mapped is not None and mapped.tracking_category:
            rows.append([loc.name, "context", "tracking", f"{mapped.tracking_category}: {mapped.tracking_option}", None, None,
                         "every line of this location's invoices carries it"])
    rows.append([None, "context", "target", params.target, None, None, "sandbox = the embedded sandbox; live = the real services"])
    rows += [[None, "parameter", key, value, None, None,
              "the location a notebook opened by hand uses; this run covered the locations listed above" if key == "location"
              else ""] for key, value in parameter_rows(params)]
    rows += [[None, "version", name, version, None, None, ""] for name, version in versions()]
    for loc in locs:
        if (run_dir / loc.folder).is_dir():
            rows += [[loc.name, *r] for r in _totals_rows(run_dir / loc.folder)]
    return _Table("Summary", "summary.csv", ["location", "section", "item", "value", "currency", "count", "detail"], rows)


def _locations_table(run_dir: Path, params: RunParams, locs: Sequence[LocationRun],
                     contexts: Mapping[str, Mapping[str, Any]]) -> _Table:
    """One row per location and currency: each step's status and the figures an accountant checks first."""
    stems: list[str] = []
    for loc in locs:
        stems += [s.stem for s in loc.steps if s.stem not in stems]
    rows: list[list[Any]] = []
    for loc in locs:
        status = {s.stem: s.status.value for s in loc.steps}
        mapped = params.location_map(loc.name)
        organisation = (contexts.get(loc.name) or {}).get("organisation") or (mapped.organisation if mapped else None)
        figures = _location_figures(run_dir / loc.folder)
        for currency in sorted(figures) or [""]:
            got = figures.get(currency, {})
            rows.append([loc.name, currency or None, loc.status.value, organisation, *[status.get(s) for s in stems],
                         *[got.get(c) for c in LOCATION_FIGURES], loc.failure or None])
    return _Table("Locations", "locations.csv", ["location", "currency", "status", "organisation", *stems, *LOCATION_FIGURES,
                                                 "error"], rows)


def _location_figures(folder: Path) -> dict[str, dict[str, Any]]:
    """currency -> the Locations figures from the step CSVs in ``folder`` (a figure whose CSV is missing is left out)."""

    def load(name: str) -> list[dict[str, str]] | None:
        loaded = _read_csv(folder / name)
        return loaded[1] if loaded else None

    def total(rows: list[dict[str, str]], column: str) -> Decimal:
        return sum((_amount(r.get(column)) for r in rows), ZERO)

    invoices, outcomes, differences = load("mapping_invoices.csv"), load("transfer_outcomes.csv"), load("status_differences.csv")
    currencies = {r.get("currency") or "" for rows in (invoices, outcomes, differences) for r in rows or []}
    figures: dict[str, dict[str, Any]] = {}
    for currency in currencies:
        got: dict[str, Any] = {}
        if invoices is not None:
            mine = [r for r in invoices if (r.get("currency") or "") == currency]
            blocked = [r for r in mine if r.get("blocked") == "True"]
            got |= {"invoices_in_scope": len(mine), "in_scope_total": total(mine, "total"), "blocked": len(blocked),
                    "blocked_total": total(blocked, "total")}
        if outcomes is not None:
            mine = [r for r in outcomes if (r.get("currency") or "") == currency]
            done = [r for r in mine if r.get("outcome") in TRANSFERRED]
            deferred = [r for r in mine if r.get("outcome") == "deferred"]
            got |= {"transferred": len(done), "transferred_total": total(done, "nexudus_total"), "deferred": len(deferred),
                    "deferred_total": total(deferred, "nexudus_total"),
                    "failed": sum(r.get("outcome") in NOT_TRANSFERRED for r in mine)}
        if differences is not None:
            got["status_differences"] = sum((r.get("currency") or "") == currency for r in differences)
        figures[currency] = got
    return figures


# ---- tables ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Table:
    sheet: str
    csv_name: str
    columns: list[str]
    rows: list[list[Any]]  # str, int, Decimal or None

    def currency(self, column: str, row: list[Any]) -> str | None:
        """The currency of a money cell: the column's (``blocked_GBP``) or the row's ``currency``."""
        if re.fullmatch(r"blocked_[A-Z]{3}", column):
            return column.removeprefix("blocked_")
        if "currency" in self.columns:
            value = row[self.columns.index("currency")]
            return str(value) if value else None
        return None


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]] | None:
    if not path.exists():
        return None
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _typed(column: str, text: str) -> Any:
    """A CSV cell as the report holds it: money as Decimal, counts as int, the rest as text."""
    if text == "":
        return None
    if column in MONEY_COLUMNS or re.fullmatch(r"blocked_[A-Z]{3}", column):
        try:
            amount = Decimal(text)
        except InvalidOperation:
            return text
        return amount if amount.is_finite() else text
    if column in COUNT_COLUMNS and re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    return text


def _step_table(sheet: str, csv_name: str, run_dir: Path, source: str, steps: Sequence[StepRun], params: RunParams) -> _Table:
    loaded = _read_csv(run_dir / source)
    if loaded is None:
        return _Table(sheet, csv_name, ["note"], [[_missing_note(source, steps, params)]])
    columns, records = loaded
    return _Table(sheet, csv_name, columns, [[_typed(c, r.get(c) or "") for c in columns] for r in records])


def _step_for(source: str, steps: Sequence[StepRun]) -> StepRun | None:
    keyword = next((k for prefix, k in STEP_OF_CSV if source.startswith(prefix)), None)
    return next((s for s in steps if keyword and keyword in s.stem), None)


def _missing_note(source: str, steps: Sequence[StepRun], params: RunParams) -> str:
    step = _step_for(source, steps)
    if step is None:
        return f"No data: {source} was not written; no step of this run writes it."
    if step.status == StepStatus.FAILED:
        return f"No data: step {step.stem} failed before writing {source} (see the Errors sheet)."
    if step.status == StepStatus.SKIPPED:
        return f"No data: step {step.stem} was skipped ({step.note or 'an earlier step failed'})."
    if source == "transfer_outcomes.csv" and not params.push:
        return (f"Nothing was sent to Xero: push is false in the params, so {step.stem} only planned "
                "(see transfer_plan_eligible.csv and transfer_plan_excluded.csv in the run folder).")
    return f"No data: step {step.stem} ran but wrote no {source}."


def _errors_table(run_dir: Path, steps: Sequence[StepRun], folder: str = "") -> _Table:
    """What failed in one run folder; ``folder`` (``"hive-shoreditch/"``) is its place in a run over locations."""
    columns = ["kind", "where", "what", "meaning", "fix"]
    rows: list[list[Any]] = []
    for i, step in enumerate(steps):
        if step.status != StepStatus.FAILED:
            continue
        later = [s.stem for s in steps[i + 1:] if s.status == StepStatus.SKIPPED]
        page = f"html/{folder}{step.stem}.html" if (run_dir / step.name).exists() else "the run's console output"
        rows.append(["step failed", f"{step.stem}, {step.where or 'before its first cell'}", step.error or "(no error text)",
                     "The step stopped here" + (f"; later steps were skipped: {', '.join(later)}." if later else "."),
                     f"Read the error in {page} (or the executed {folder}{step.name}), fix its cause (a ParamsError names the params "
                     "file and key), then run again: a re-run never duplicates a transfer or a payment."])
    transfers = _read_csv(run_dir / "transfer_outcomes.csv")
    for rec in (transfers[1] if transfers else []):
        if rec.get("outcome") == "failed":
            rows.append(["transfer failed", f"invoice {rec.get('invoice_number')}", rec.get("messages") or "",
                         rec.get("meaning") or "", rec.get("fix") or ""])
        elif rec.get("outcome") in ("refused", "unknown"):  # never sent / sent with no answer: both need a look
            refused = rec.get("outcome") == "refused"
            rows.append([f"transfer {rec.get('outcome')}", f"invoice {rec.get('invoice_number')}", rec.get("messages") or "",
                         rec.get("meaning") or ("recon did not send it: the plan was for another location or organisation."
                                                if refused else "Xero's answer was lost: the invoice may or may not be there."),
                         rec.get("fix") or ("Plan and push again through this location's own connection." if refused else
                                            "Run the transfer again: it looks the invoice up in Xero before sending anything.")])
    payments = _read_csv(run_dir / "status_applied.csv")
    for rec in (payments[1] if payments else []):
        if rec.get("outcome") in ("failed", "unknown"):
            unknown = rec.get("outcome") == "unknown"
            rows.append([f"payment {rec.get('outcome')}", f"invoice {rec.get('invoice_number')}", rec.get("message") or "",
                         "Nexudus did not answer; it may or may not have recorded the payment." if unknown
                         else "Nexudus refused to mark the invoice paid.",
                         "Run the status sync with apply again: it reads the invoice first and never pays twice." if unknown
                         else "Check the invoice in Nexudus (void, already part-paid, amount), then apply again."])
    if not rows:
        rows.append(["none", "", "Nothing failed: no step, transfer or payment of this run failed.", "", ""])
    return _Table("Errors", "errors.csv", columns, rows)


def _summary_table(run_dir: Path, params: RunParams, started: datetime | None, finished: datetime | None,
                   steps: Sequence[StepRun], context: Mapping[str, Any]) -> _Table:
    columns = ["section", "item", "value", "currency", "count", "detail"]
    failed = [s.stem for s in steps if s.status == StepStatus.FAILED]
    ran = [s for s in steps if s.status == StepStatus.OK]
    skipped = [s.stem for s in steps if s.status == StepStatus.SKIPPED]
    result = (f"FAILED: {', '.join(failed)}" if failed else f"{len(ran)} of {len(steps)} steps ran"
              + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
    rows: list[list[Any]] = [
        ["run", "run id", run_dir.name, None, None, str(run_dir)],
        ["run", "started", _iso(started) or "not recorded", None, None, "UTC"],
        ["run", "finished", _iso(finished) or "not recorded", None, None, "UTC"],
        ["run", "result", result, None, None, ""],
        ["run", "report built", _iso(datetime.now(tz=UTC)), None, None, "UTC"],
    ]
    rows += [_step_row(s) for s in steps]
    if not steps:
        rows.append(["step", "(none recorded)", "", None, None, "built from the CSVs in the folder, outside `recon run`"])
    rows += [["context", "location", context.get("location") or params.location, None, None, ""],
             ["context", "organisation", context.get("organisation") or params.organisation or "not recorded (no step connected)",
              None, None, ""],
             ["context", "target", params.target, None, None, "sandbox = the embedded sandbox; live = the real services"]]
    if context.get("tenant_id"):
        rows.append(["context", "tenant id", context["tenant_id"], None, None, ""])
    rows += [["parameter", key, value, None, None, ""] for key, value in parameter_rows(params)]
    rows += [["version", name, version, None, None, ""] for name, version in versions()]
    rows += _totals_rows(run_dir)
    return _Table("Summary", "summary.csv", columns, rows)


def _step_row(s: StepRun) -> list[Any]:
    times = f"{_iso(s.started)} to {_iso(s.finished)} ({s.seconds:.1f} s)" if s.seconds is not None else ""
    detail = "; ".join(p for p in (times, s.error and f"{s.error} at {s.where}", s.note) if p)
    return ["step", s.stem, s.status.value, None, None, detail]


def parameter_rows(params: RunParams | Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every parameter as (dotted key, text), sections flattened.

    A value whose key names a secret, password or token is masked (RunParams
    holds none, but a ``*_secret_env`` with a pasted secret in place of a
    variable name is an easy mistake); ``*_url`` keys are shown without any
    ``user:password@`` part.
    """
    data = asdict(params) if is_dataclass(params) and not isinstance(params, type) else dict(params)

    def flat(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
        if isinstance(value, Mapping):
            for k, v in value.items():
                yield from flat(f"{prefix}.{k}" if prefix else str(k), v)
        elif any(word in prefix.lower() for word in SENSITIVE) and not prefix.endswith("_url"):
            yield prefix, "(masked)"
        elif prefix.endswith("_url") and isinstance(value, str):
            yield prefix, re.sub(r"//[^/@]*@", "//(masked)@", value)  # no user:password in a URL
        elif isinstance(value, bool):
            yield prefix, "true" if value else "false"
        elif isinstance(value, date):
            yield prefix, value.isoformat()
        else:
            yield prefix, "" if value is None else str(value)

    return list(flat("", data))


def versions() -> list[tuple[str, str]]:
    """recon's version and its key dependencies', and Python's."""
    out = []
    for name in VERSIONED:
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return [*out, ("python", platform.python_version())]


def _totals_rows(run_dir: Path) -> list[list[Any]]:
    """Counts and Nexudus totals per currency from each step CSV that exists (exact Decimal sums)."""
    rows: list[list[Any]] = []

    def add(item: str, source: str, records: Iterable[Mapping[str, str]], amount_col: str, detail: str,
            currency_of: Mapping[str, str] | None = None) -> None:
        counts: dict[str, int] = defaultdict(int)
        sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for rec in records:
            currency = rec.get("currency") or (currency_of or {}).get(rec.get("invoice_number") or "", "")
            counts[currency] += 1
            sums[currency] += _amount(rec.get(amount_col))
        for currency in sorted(counts):
            rows.append(["totals", item, sums[currency], currency or None, counts[currency], f"{detail} ({source})"])

    def load(name: str) -> list[dict[str, str]] | None:
        loaded = _read_csv(run_dir / name)
        return loaded[1] if loaded else None

    if (invoices := load("mapping_invoices.csv")) is not None:
        add("invoices in scope", "mapping_invoices.csv", invoices, "total", "Nexudus totals")
        add("blocked by the mapping", "mapping_invoices.csv", [r for r in invoices if r.get("blocked") == "True"], "total",
            "Nexudus totals")
    if (eligible := load("transfer_plan_eligible.csv")) is not None:
        add("transfer plan: eligible", "transfer_plan_eligible.csv", eligible, "nexudus_total", "Nexudus totals")
    if (excluded := load("transfer_plan_excluded.csv")) is not None:
        add("transfer plan: excluded", "transfer_plan_excluded.csv", excluded, "nexudus_total", "Nexudus totals")
    if (outcomes := load("transfer_outcomes.csv")) is not None:
        for outcome in sorted({r.get("outcome") or "" for r in outcomes}):
            add(f"transfer: {outcome}", "transfer_outcomes.csv", [r for r in outcomes if r.get("outcome") == outcome],
                "nexudus_total", "Nexudus totals; credit notes negative")
    differences = load("status_differences.csv")
    for kind in sorted({r.get("difference") or "" for r in differences or []}):
        add(f"status: {kind}", "status_differences.csv", [r for r in differences or [] if r.get("difference") == kind],
            "nexudus_total", "Nexudus totals")
    if (applied := load("status_applied.csv")) is not None:
        currency_of = {r.get("invoice_number") or "": r.get("currency") or "" for r in differences or []}
        for outcome in sorted({r.get("outcome") or "" for r in applied}):
            add(f"marked paid in Nexudus: {outcome}", "status_applied.csv", [r for r in applied if r.get("outcome") == outcome],
                "amount", "amounts recorded as paid", currency_of)
    return rows


# ---- context, errors and the run record --------------------------------------------------------------
def _run_context(run_dir: Path, params: RunParams) -> dict[str, Any]:
    """Location and organisation as a step saw them: run_context.json, else the ``Connection`` a notebook displayed."""
    path = run_dir / RUN_CONTEXT
    if path.exists():
        return {k: v for k, v in json.loads(path.read_text("utf-8")).items() if k in ("location", "organisation", "tenant_id")}
    for nb in sorted(run_dir.glob("[0-9][0-9]_*.ipynb")):
        match = CONNECTION_REPR.search(nb.read_text("utf-8"))
        if match:
            return match.groupdict()
    return {}


def _with_notebook_error(run_dir: Path, step: StepRun) -> StepRun:
    """A failed step with the error text and cell taken from its executed notebook (the record of truth)."""
    path = run_dir / step.name
    if step.status != StepStatus.FAILED or not path.exists():
        return step
    found = notebook_error(path)
    if found is None:
        return step
    error, where = found
    return StepRun(step.name, step.status, step.started, step.finished, error, where, step.note)


def notebook_error(path: Path) -> tuple[str, str] | None:
    """(``"Name: message"``, ``"In [n]: first line of the cell"``) of the first error in an executed notebook."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = next((ln.strip() for ln in str(cell.get("source", "")).splitlines() if ln.strip()), "")
                label = f"In [{cell.get('execution_count')}]" if cell.get("execution_count") else f"cell {index + 1}"
                evalue = ANSI.sub("", str(out.get("evalue", ""))).strip()
                return f"{out.get('ename')}: {evalue}", f"{label}: {first[:100]}"
    return None


def _write_run_record(run_dir: Path, params: RunParams, started: datetime | None, finished: datetime | None,
                      steps: Sequence[StepRun], locations: Sequence[LocationRun] | None = None) -> None:
    record: dict[str, Any] = {"run_id": run_dir.name, "params_file": params.source, "params_path": _params_path(params),
                              "started": _iso(started), "finished": _iso(finished), "steps": [s.to_dict() for s in steps]}
    if locations is not None:
        record["locations"] = [loc.to_dict() for loc in locations]
    (run_dir / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n", "utf-8")


def _params_path(params: RunParams) -> str | None:
    """The params file as an absolute path (what ``recon report`` reads back), None for defaults."""
    return None if params.source == "(defaults)" else str(Path(params.source).resolve())


# ---- writing ------------------------------------------------------------------------------------------
def _cell_value(value: Any) -> Any:
    """What goes into a cell. Money becomes a float here and nowhere else.

    Why this is safe: an amount rounded to the cent with at most 15 significant
    digits (any amount below 10 trillion) has one nearest double, Excel stores
    exactly that double and shows and re-reads 15 significant digits, so the
    cell reads back as the same cents (``Decimal(repr(cell)).quantize(CENT)``
    is the original). The exact decimal text is in the CSVs.
    """
    if isinstance(value, Decimal):
        return float(round_cents(value))
    return value


def _money_format(currency: str | None) -> str:
    return f'{MONEY_FORMAT} "{currency}"' if currency and re.fullmatch(r"[A-Z]{3}", currency) else MONEY_FORMAT


def _display(value: Any, currency: str | None) -> str:
    if isinstance(value, Decimal):
        return f"{value:,.2f} {currency or ''}"
    return "" if value is None else str(value)


def _write_workbook(tables: Sequence[_Table], path: Path) -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)  # type: ignore[arg-type]
    header_fill = PatternFill("solid", fgColor="DDEBF7")
    failed_fill = PatternFill("solid", fgColor="F8D7DA")
    for table in tables:
        ws = wb.create_sheet(table.sheet)
        widths = [len(c) for c in table.columns]
        for col, name in enumerate(table.columns, start=1):
            cell = ws.cell(row=1, column=col, value=name)
            cell.font, cell.fill = Font(bold=True), header_fill
        for r, row in enumerate(table.rows, start=2):
            is_failed = _marks_failure(table, row)
            for col, (name, value) in enumerate(zip(table.columns, row, strict=True), start=1):
                cell = ws.cell(row=r, column=col, value=_cell_value(value))
                currency = table.currency(name, row) if isinstance(value, Decimal) else None
                if isinstance(value, Decimal):
                    cell.number_format = _money_format(currency)
                if is_failed:
                    cell.fill = failed_fill
                widths[col - 1] = max(widths[col - 1], len(_display(value, currency)))
        ws.freeze_panes = "A2"
        ws.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{len(table.rows) + 1}"
        for col, width in enumerate(widths, start=1):
            ws.column_dimensions[get_column_letter(col)].width = min(max(width + 2, 10), 60)
    tmp = path.with_suffix(".xlsx.tmp")
    wb.save(tmp)
    os.replace(tmp, path)
    return path


def _marks_failure(table: _Table, row: list[Any]) -> bool:
    """A Summary row of a failed step or location, a Locations row of a location that failed or did not run."""
    if table.sheet == "Summary":
        section, value = row[table.columns.index("section")], row[table.columns.index("value")]
        return section in ("step", "location") and value in (StepStatus.FAILED.value, LocationStatus.NOT_RUN.value)
    if table.sheet == "Locations":
        return row[table.columns.index("status")] != LocationStatus.OK.value
    return False


def _write_csv(table: _Table, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / table.csv_name
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(table.columns)
        writer.writerows([["" if v is None else str(v) for v in row] for row in table.rows])
    return path


# ---- small helpers -------------------------------------------------------------------------------------
def _amount(text: str | None) -> Decimal:
    try:
        return Decimal(text) if text else ZERO
    except InvalidOperation:
        return ZERO


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _link(path: Path) -> str:
    try:
        href = os.path.relpath(path, Path.cwd())
    except ValueError:
        href = str(path)
    return f"<a href='{html.escape(href)}' target='_blank'>{html.escape(path.name or str(path))}</a>"

