"""The audit pack of one run: a workbook, the same tables as CSV, the executed notebooks as web
pages, and a manifest of every file.

Floor 2: reads what the steps wrote into the run folder (their CSVs and the
executed notebooks); imports no step, no client and no widget, and makes no
call to Xero or Nexudus, so a run that failed half-way still gets its report.

``build_report(run_dir, params, started=..., finished=..., steps=...)`` writes

- ``audit.xlsx``: Summary first (the tie-out per currency: in scope =
  transferred + held back + failed + excluded, checked by an Excel formula and
  by recon; what the status sync, the payments, the changes in Xero and the
  credit-note allocations did; money blocked by mapping problem and the ageing
  of what Xero shows unpaid, each with a bar chart), then Run (steps, context,
  parameters, versions, totals), Account mapping, Tax mapping, Transfers,
  Status differences, Errors: human headers, real number and date cells,
  problems filled by conditional formatting, printable on A4 landscape;
- ``csv/*.csv``: the same tables under the steps' column names, money as
  exact decimal text (``tie_out.csv`` the Summary's tie-out, ``summary.csv``
  the Run sheet);
- ``html/*.html``: every executed notebook in the folder, without code, paths
  relative to the run folder and no Python reprs (``pages``);
- ``run.json``: the run's steps and times, so the report can be rebuilt;
- ``manifest.json`` last: recon's version and git commit, the params file's
  SHA-256 and every file's (``manifest``);

and returns a ``ReportPaths`` that renders itself. A step CSV that is missing
(its step failed or was skipped, or did not write) still gives its sheet, with
one ``note`` row saying why.

A run over several locations keeps each location's step outputs in a folder of
its own (``<run-id>/<location-folder>/``, with the location's ``run.json``).
Its report is still one workbook at ``<run-id>/audit.xlsx``: every table gets a
``location`` column first, the Summary a block per location, and one more
sheet, Locations (one row per location and currency: each step's status and the
counts and totals that matter), comes after the Run sheet; ``csv/`` holds the
combined tables and ``html/<folder>/`` each location's notebooks.
``build_report`` builds it when given ``locations`` or, given neither steps nor
locations, when it finds location folders.

Money: the step CSVs hold exact decimal text. It is read as ``Decimal`` and
turned into a float only when a cell is written (``workbook``).

The package, by job: ``runs`` (the step and location records, run.json,
location folders), ``tables`` (the step CSVs read into the report's tables,
the Run sheet and Errors), ``summary`` (the Summary's figures), ``locations``
(the tables of a run over several locations), ``workbook`` (the workbook and
CSV writing), ``pages`` (the notebooks as web pages), ``manifest`` (the
hashes), ``build`` (building, loading and showing a report, ``ReportPaths``).
"""

from recon.cells import FORMULA_STARTS as FORMULA_STARTS
from recon.cells import csv_safe, csv_text, is_formula_like, unescape
from recon.report.build import WORKBOOK as WORKBOOK
from recon.report.build import (
    ReportPaths,
    build_report,
    load_report,
    open_report,
    render_notebooks,
)
from recon.report.locations import LOCATION_FIGURES as LOCATION_FIGURES
from recon.report.locations import NOT_TRANSFERRED as NOT_TRANSFERRED
from recon.report.locations import TRANSFERRED as TRANSFERRED
from recon.report.runs import ANSI as ANSI
from recon.report.runs import CONNECTION_REPR as CONNECTION_REPR
from recon.report.runs import NOT_RUN_NOTE as NOT_RUN_NOTE
from recon.report.runs import NOTEBOOK_SESSION as NOTEBOOK_SESSION
from recon.report.runs import RUN_CONTEXT as RUN_CONTEXT
from recon.report.runs import RUN_RECORD as RUN_RECORD
from recon.report.runs import (
    LocationRun,
    StepRun,
    StepStatus,
    interruption,
    is_notebook_session,
    location_folders,
    location_runs,
    notebook_error,
    record_location,
    record_step,
    steps_from_run,
)
from recon.report.runs import LocationStatus as LocationStatus
from recon.report.tables import COUNT_COLUMNS as COUNT_COLUMNS
from recon.report.tables import MONEY_COLUMNS as MONEY_COLUMNS
from recon.report.tables import SENSITIVE as SENSITIVE
from recon.report.tables import STEP_OF_CSV as STEP_OF_CSV
from recon.report.tables import VERSIONED as VERSIONED
from recon.report.tables import parameter_rows, versions
from recon.report.workbook import MONEY_FORMAT as MONEY_FORMAT

__all__ = [
    "LocationRun",
    "ReportPaths",
    "StepRun",
    "StepStatus",
    "build_report",
    "csv_safe",
    "csv_text",
    "interruption",
    "is_formula_like",
    "is_notebook_session",
    "load_report",
    "location_folders",
    "location_runs",
    "notebook_error",
    "open_report",
    "parameter_rows",
    "record_location",
    "record_step",
    "render_notebooks",
    "steps_from_run",
    "unescape",
    "versions",
]
