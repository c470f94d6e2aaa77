"""``recon run``: run the step notebooks in order under papermill, then write the run's audit
report.

Floor 3: parses arguments, runs the notebooks, calls ``recon.report.build_report``
and maps the outcome to an exit code. Nothing here reconciles anything.

    recon run PARAMS [--out DIR] [--only NAME ...] [--location NAME] [--run-id ID]
                     [--period PERIOD] [--dry-run]
    recon report RUN_DIR [--params PARAMS]
    recon notebooks DIR [--force]
    recon --version

The step notebooks are ``notebooks/NN_*.ipynb`` in number order, except the
report notebook (``04_audit_report.ipynb``, for people in Jupyter): the report
of a ``recon run`` is built here, after the last step, always, so a run that
failed still gets a report that says what failed and where. Steps depend on
each other, so after a failed step the later ones are skipped (and marked so).

Each run writes into ``<out>/<run-id>/`` (``<out>``: ``--out``, else the params'
``output_dir``; ``<run-id>``: ``--run-id``, else the UTC start time): the
executed notebooks (a failed one too: papermill writes it with the error in
place), the steps' CSVs, and the report (``audit.xlsx``, ``csv/``, ``html/``,
``run.json``). The line before last is the workbook's path; the last line
gives the counts behind the exit code (``302 invoices: 195 created, 107
failed; 28 payments: 28 marked paid → exit 3``).

``--period`` (``last-month``, ``this-month``, ``month-to-date``,
``last-quarter``, or ``START..END``) and ``--dry-run`` (plan and report, no
write: ``push``, ``apply`` and ``apply_xero`` false) override the params file.
The steps then read ``<run folder>/params.yaml``, the params as the run used
them (paths made absolute, a relative period fixed as of the run's start and
evaluated in each location's time zone when its step connects); the run's
record and report name that file.

Several locations. When the params have a ``locations`` map and no
``--location`` is given, the steps run once per mapped location, in the map's
order, each into ``<out>/<run-id>/<location-folder>/`` (``hive-dublin-docklands``,
see ``recon.report.location_folders``) with ``location`` passed to the
notebooks; a location whose step fails (bad credentials, an organisation no
longer connected, the day's call limit spent...) is reported and the next
location still runs. One report for all of them is written at
``<out>/<run-id>/audit.xlsx``. ``--location NAME`` runs that one location,
as before, in a run folder of its own. With ``--run-id`` too, it is one task
of a scheduler's fan-out: it writes into ``<out>/<ID>/<location-folder>/`` of
the run folder all the run's tasks share, and ``recon report <out>/<ID>``,
run after them, builds the one report.

Exit codes of ``recon run`` (the same list is in ``recon --help``):

    0    every step ran (of every location), every transfer and payment is done, and the
         report is written
    1    a step failed (of some location): the report is written and says which, and where
    2    bad params, arguments or files. Before any step ran (no run folder): a params error (the
         message names the file and key), a missing file, an ``--only`` NAME that is part of no
         step's name (the message lists the steps), a ``--location`` the params' locations map
         does not have, a bad ``--period`` or ``--run-id``, an output folder that cannot be
         written. Or a step stopped on one (``ParamsError``; the report is written): a location
         Nexudus does not know, an organisation the Xero app cannot reach, a credential
         variable not set. A retry will not help; fix the set-up
    3    every step ran, but some invoices or payments are not done: a transfer failed (Xero
         refused it, or booked it with other figures than planned), was refused, is unknown,
         was deferred by today's call budget or not sent because the run had to stop, is held
         back as recon's own earlier copy that Xero booked with other figures, or a
         payment failed or is unknown. The report's Errors sheet lists them; the
         rows are in ``transfer_outcomes.csv`` and ``status_applied.csv``
    130  interrupted: Ctrl-C (SIGINT) or SIGTERM (a scheduler's or service manager's stop; one
         code for both, as the run is equally safe to repeat). The step in progress is recorded
         as interrupted and its kernel shut down: a write in flight either completes and is
         recorded, or stays an open intent in the ledger, which the next run resolves in Xero
         before it sends anything. The report of what was done is then written (a second
         SIGTERM is ignored so that it can be)

An interrupt (130) wins over a failed step (1), which wins over 2, which wins over 3.

``recon report RUN_DIR`` (re)builds the report of a run folder from what its
steps wrote (a run over locations: from its location folders); the params
file is the one the run recorded, or ``--params``. Exit codes:

    0    the report is written, no step of any location failed and every write is done
    1    the report is written and a step failed or a location has no results (not run);
         this is what makes a scheduler's report task, its last task, fail the run
    2    no such run folder, nothing in it to report on, or no usable params file
    3    the report is written, no step failed, but some invoices or payments are not done
         (as for ``recon run``)
    130  interrupted

Only non-secret values reach a notebook as papermill parameters: the params
file's path, the run folder, the location (of a run over locations), and the
run switches ``push`` and ``apply`` (each passed only to notebooks whose
parameters cell declares it). Credentials are read inside the kernel (from the
environment, the token store, or the embedded sandbox), so no secret can land
in an executed notebook or a report.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from recon.errors import ParamsError, ReconError
from recon.outcomes import PaymentOutcome, ReconReason, TransferOutcome, Verdict, reason_of
from recon.params import PERIODS, RunParams, load_params
from recon.report import (
    RUN_RECORD,
    LocationRun,
    LocationStatus,
    ReportPaths,
    StepRun,
    StepStatus,
    build_report,
    interruption,
    location_folders,
    location_runs,
    record_location,
    steps_from_run,
)
from recon.resources import DEMO_PARAMS, copy_notebooks, notebooks_folder

NOTEBOOKS = notebooks_folder()  # the checkout's notebooks/, or the copy the wheel ships
REPORT_NOTEBOOK = (
    "04_audit_report.ipynb"  # shows a report in Jupyter; `recon run` builds the report itself
)
# The run switches a notebook may take from the params file (never a credential).
SWITCHES = ("push", "apply", "apply_xero")

EXIT_OK, EXIT_STEP_FAILED, EXIT_EXPECTED, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_WRITES_UNFINISHED = 3  # every step ran, but some invoices or payments are not done
TRANSFER_OUTCOMES, PAYMENT_OUTCOMES = "transfer_outcomes.csv", "status_applied.csv"
PLAN_EXCLUDED = "transfer_plan_excluded.csv"
PLANNED = "transfer_plan_eligible.csv"
# The params a run's steps read when the command line changed the file's (--period, --dry-run) or
# the file's period is relative (fixed as of the run's start): written into the run folder.
RUN_PARAMS = "params.yaml"
EXIT_CODES_HELP = """\
exit codes (of `recon run`; `recon report` the same, for the run folder it reads):
  0    every step ran (of every location), every planned write is done, the report is written
  1    a step failed (of some location); the report says which and where
  2    bad params, arguments or files: nothing ran (an unknown --only step or --location of the
       map, a bad --period, a params error naming file and key), or a step stopped on one (a
       location Nexudus does not know, an organisation the Xero app cannot reach)
  3    every step ran, but some invoices or payments are not done: failed, refused, unknown, or
       deferred by the day's Xero call limit (the report's Errors sheet lists them)
  130  interrupted by Ctrl-C or SIGTERM: the write in flight is finished or left for the ledger
       to resolve, the report of what was done is written
  1 and 130 win over 2 and 3; the last line printed gives the counts behind the code."""
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # what --run-id may be: one folder name


def run_id() -> str:
    """The UTC time now as a run id (``20260501T093000Z``)."""
    return datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def notebooks_in_order(folder: Path = NOTEBOOKS) -> list[Path]:
    """The step notebooks, ``NN_name.ipynb`` by number (the report notebook is not a step)."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.name != REPORT_NOTEBOOK)


def new_run_dir(root: Path) -> Path:
    """``root/<run-id>``, made now; a second run in the same second gets ``-2``, ``-3``..."""
    base = run_id()
    root.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = root / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot make a new run folder in {root}")


def recon_version() -> str:
    """recon's installed version (``unknown`` when it is run from a tree that is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("recon")
    except PackageNotFoundError:
        return "unknown"


def check_only(only: Sequence[str] | None, notebooks: Sequence[Path]) -> None:
    """Refuse an ``--only`` NAME that is part of no step's name (a typo would run nothing)."""
    names = [nb.stem for nb in notebooks]
    for key in only or ():
        if not any(key in name for name in names):
            raise ParamsError(
                f"--only {key!r} is part of no step's name; the steps are {', '.join(names)} "
                "(a part of a name is enough, e.g. --only transfer)"
            )


def period_overrides(text: str) -> dict[str, Any]:
    """``--period``: a relative period (``last-month``...) or ``START..END`` dates, as params
    overrides."""
    value = text.strip().lower()
    if value in PERIODS:
        return {"period": value}
    first, sep, last = value.partition("..")
    try:
        if sep:
            return {
                "period_start": date.fromisoformat(first),
                "period_end": date.fromisoformat(last),
            }
    except ValueError:
        pass
    raise ParamsError(
        f"--period {text!r} is neither one of {', '.join(PERIODS)} nor two dates "
        "START..END (e.g. 2026-08-01..2026-08-31)"
    )


def failure_code(steps: Iterable[StepRun]) -> int:
    """0 when no step failed; 2 when every failed step stopped on bad params (an unknown location,
    an organisation the app cannot reach, a credential variable not set: fix the set-up); else 1."""
    failed = [s for s in steps if s.status == StepStatus.FAILED]
    if not failed:
        return EXIT_OK
    if all(s.error.startswith(f"{ParamsError.__name__}:") for s in failed):
        return EXIT_EXPECTED
    return EXIT_STEP_FAILED


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler or service manager stopping the run): handled as Ctrl-C is."""


# Set once SIGTERM has arrived: papermill may turn the interrupt into a failed cell of the step's
# notebook, and the step is then recorded as interrupted, not as failed.
TERMINATED = threading.Event()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM interrupts as Ctrl-C does (``Terminated``); a second SIGTERM is
    ignored so the report of what was done can still be written."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        TERMINATED.set()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    TERMINATED.clear()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# How long a step whose kernel was interrupted waits for the SIGTERM that may have caused it.
SIGNAL_GRACE_SECONDS = 2.0


def stop_interrupted_step(failure: BaseException) -> NoReturn:
    """Stop the run after a step whose kernel was interrupted: as ``Terminated`` when SIGTERM
    caused it, else as Ctrl-C.

    Under ``recon run`` only a stop of the run interrupts a kernel (jupyter_client interrupts it
    on its way to shutting it down). The kernel's ``KeyboardInterrupt`` can be reported before
    this process has run its SIGTERM handler: a signal that reached another thread is handled
    only when the main thread next runs Python. Waiting on ``TERMINATED`` lets it run (the wait
    is interrupted by the handler's ``Terminated``), so the step is recorded as what stopped it.
    """
    if TERMINATED.wait(SIGNAL_GRACE_SECONDS):
        raise Terminated from failure
    raise KeyboardInterrupt from failure


def _skip_iri_grammar() -> None:
    """Keep jsonschema's IRI grammar (``rfc3987_syntax``) out of papermill's import.

    nbformat validates notebooks with jsonschema, which compiles about 40 grammars of
    rfc3987_syntax on import when it is installed: several seconds of every ``recon run``.
    Notebook schemas check no IRI, and jsonschema treats a missing rfc3987_syntax as "IRI
    format not checked", so it is kept out (``None`` in ``sys.modules`` makes its import fail).
    """
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def notebook_parameters(
    notebook: Path, params_file: Path, run_dir: Path, params: RunParams, location: str | None = None
) -> dict[str, Any]:
    """What papermill passes to a notebook: paths, run switches and the location it declares; never
    a credential."""
    _skip_iri_grammar()
    import papermill as pm

    offered: dict[str, Any] = {
        "params_file": str(params_file.resolve()),
        "output_dir": str(run_dir.resolve()),
        **{name: getattr(params, name) for name in SWITCHES},
    }
    if location:
        offered["location"] = location
    declared = pm.inspect_notebook(str(notebook))
    return {k: v for k, v in offered.items() if k in declared}


def run_step(
    notebook: Path, params_file: Path, run_dir: Path, params: RunParams, location: str | None = None
) -> StepRun:
    """Execute one notebook into the run folder; a failure becomes a failed ``StepRun``, never an
    exception."""
    _skip_iri_grammar()
    import papermill as pm

    started = datetime.now(tz=UTC)
    try:
        pm.execute_notebook(
            str(notebook),
            str(run_dir / notebook.name),
            parameters=notebook_parameters(notebook, params_file, run_dir, params, location),
            cwd=str(notebook.parent),
            progress_bar=False,
            kernel_name="python3",
        )
    except pm.PapermillExecutionError as exc:
        if TERMINATED.is_set() or exc.ename == KeyboardInterrupt.__name__:
            stop_interrupted_step(exc)
        return StepRun(
            notebook.name,
            StepStatus.FAILED,
            started,
            datetime.now(tz=UTC),
            f"{exc.ename}: {exc.evalue}",
            f"In [{exc.exec_count}]",
        )
    except (
        Exception
    ) as exc:  # the kernel died or could not start: the step failed, the run goes on to its report
        if TERMINATED.is_set():
            raise Terminated from exc
        return StepRun(
            notebook.name,
            StepStatus.FAILED,
            started,
            datetime.now(tz=UTC),
            f"{type(exc).__name__}: {exc}",
            "running the notebook",
        )
    return StepRun(notebook.name, StepStatus.OK, started, datetime.now(tz=UTC))


def run_steps(
    notebooks: Sequence[Path],
    params_file: Path,
    run_dir: Path,
    params: RunParams,
    only: Sequence[str] | None,
    record: Callable[[StepRun], None],
    say: Callable[[str], None],
    location: str | None = None,
) -> None:
    """Run the notebooks in order; after a failure the rest are skipped. Each outcome goes to
    ``record`` as it happens."""
    failed: str | None = None
    for nb in notebooks:
        if only and not any(key in nb.stem for key in only):
            record(StepRun(nb.name, StepStatus.SKIPPED, note="not selected with --only"))
            continue
        if failed:
            record(
                StepRun(
                    nb.name,
                    StepStatus.SKIPPED,
                    note=f"{failed} failed and later steps depend on it",
                )
            )
            continue
        say(f"running {nb.name}")
        step = run_step(nb, params_file, run_dir, params, location)
        record(step)
        say(
            f"  {step.status.value} in {step.seconds or 0:.1f} s"
            + (f": {step.error}" if step.error else "")
        )
        if step.status == StepStatus.FAILED:
            failed = nb.stem


def named_run_dir(root: Path, name: str) -> Path:
    """``root/<name>`` for ``--run-id``: made if missing, kept if there (the tasks of one scheduled
    run share it)."""
    if not RUN_ID.fullmatch(name):
        raise ParamsError(
            f"--run-id {name!r} is not a folder name: use letters, digits, '.', '_' and '-' "
            "(e.g. Airflow's {{ ts_nodash }})"
        )
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run(
    params_file: Path,
    out_root: Path | None = None,
    only: Sequence[str] | None = None,
    notebooks: Sequence[Path] | None = None,
    location: str | None = None,
    run_name: str | None = None,
    period: str | None = None,
    dry_run: bool = False,
) -> int:
    """One scheduled run: the steps, then the report. Returns the exit code (see the module
    docstring).

    ``location`` runs one Nexudus location of the params' map (a scheduler fans locations out this
    way); without it a params file with a locations map runs every mapped location
    (``run_locations``). ``run_name`` names the run folder (``--run-id``) instead of the start time.
    ``period`` (``--period``) and ``dry_run`` (``--dry-run``) override the params file; the steps
    then read the params from the run folder's ``params.yaml``.
    """
    params = load_params(params_file)
    overrides: dict[str, Any] = period_overrides(period) if period else {}
    if dry_run:
        overrides["dry_run"] = True
    params = params.with_overrides(**overrides)
    if params.period is not None and params.period_as_of is None:
        # Every step of the run sees the same period, even one that runs past midnight.
        params = params.with_overrides(period_as_of=datetime.now(tz=UTC))
    own_params = bool(overrides) or params.period is not None
    mapped_name: str | None = None
    if location:
        if params.locations and params.location_map(location) is None:
            raise ParamsError(
                f"{location!r} is not in the locations map (known: {', '.join(params.locations)})",
                file=str(params_file),
                key="locations",
            )
        mapped_name = next(
            (n for n in params.locations if n.casefold() == location.casefold()), None
        )
        params = params.with_overrides(location=location)
    notebooks = list(notebooks if notebooks is not None else notebooks_in_order())
    check_only(only, notebooks)
    root = out_root or params.output_path()
    run_dir = named_run_dir(root, run_name) if run_name else new_run_dir(root)
    if own_params:  # what the steps read, and what the run's record names
        params_file = params.save(run_dir / RUN_PARAMS)
        params = load_params(params_file)
    if params.locations and not location:
        return run_locations(params_file, params, run_dir, notebooks, only, list(params.locations))
    if mapped_name is not None and run_name:
        return run_location_task(params_file, params, run_dir, notebooks, only, mapped_name)
    started = time.time()
    steps, code = execute(notebooks, params_file, run_dir, params, only, location, _say)
    built = _report(run_dir, params, datetime.fromtimestamp(started, tz=UTC), steps)
    _say(f"outputs: {run_dir.resolve()}")
    for s in steps:
        if s.status == StepStatus.FAILED:
            print(
                f"recon: step {s.stem} failed at {s.where or 'start'}: {s.error}",
                file=sys.stderr,
                flush=True,
            )
    code = with_unfinished_writes(code, [run_dir])
    if built is None:
        code = code or EXIT_STEP_FAILED
    else:
        _say(str(built))
        _say(f"report: {built.workbook.resolve()}")
    failures = [
        f"step {s.stem} {'interrupted' if 'interrupted' in s.error else 'failed'}"
        for s in steps
        if s.status == StepStatus.FAILED
    ]
    _say(run_summary([run_dir], code, failures, params))
    return code


def run_summary(
    folders: Sequence[Path], code: int, failures: Sequence[str], params: RunParams
) -> str:
    """The line ``recon run`` prints last: the counts behind its exit code, e.g. ``302 invoices:
    195 created, 107 failed; 28 payments marked paid -> exit 3``."""
    parts: list[str] = []
    transfers: Counter[str] = Counter()
    payments: Counter[str] = Counter()
    planned = 0
    for folder in folders:
        for table, counts in ((TRANSFER_OUTCOMES, transfers), (PAYMENT_OUTCOMES, payments)):
            frame = _read_outcomes(folder / table)
            if frame is not None and "outcome" in frame.columns:
                counts.update(str(o) for o in frame["outcome"])
        frame = _read_outcomes(folder / PLANNED)
        planned += 0 if frame is None else len(frame)
    if transfers:
        order = [o.value for o in TransferOutcome]
        counted = sorted(transfers.items(), key=lambda kv: [*order, kv[0]].index(kv[0]))
        parts.append(f"{transfers.total()} invoices: " + ", ".join(f"{n} {o}" for o, n in counted))
    elif planned:
        sent = "none sent" if not params.push else "no outcomes recorded (see the ledger)"
        parts.append(f"{planned} invoices planned, {sent}")
    if payments:
        labels = {PaymentOutcome.APPLIED.value: "marked paid"}
        parts.append(
            f"{payments.total()} payments: "
            + ", ".join(f"{n} {labels.get(o, o)}" for o, n in sorted(payments.items()))
        )
    parts += failures
    text = "; ".join(parts) or "nothing to transfer or mark paid"
    return f"{'dry run, nothing written: ' if params.dry_run else ''}{text} → exit {code}"


def unfinished_writes(folder: Path) -> list[str]:
    """One line per invoice or payment a run folder's step CSVs show not done (see the module
    docstring, exit code 3): ``transfer <number>: <outcome>: <messages>``."""
    from recon.transfer.push import unfinished_outcomes

    lines: list[str] = []
    transfers = _read_outcomes(folder / TRANSFER_OUTCOMES)
    if transfers is not None and {"outcome", "messages"} <= set(transfers.columns):
        for rec in unfinished_outcomes(transfers).itertuples():
            lines.append(f"transfer {rec.invoice_number}: {rec.outcome}: {rec.messages}")
    # Held back by the plan as recon's own earlier copy that Xero booked with other figures: in
    # Xero, but not as planned, until a person voids or corrects it (not done, like a failure).
    excluded = _read_outcomes(folder / PLAN_EXCLUDED)
    if excluded is not None and {"invoice_number", "reason"} <= set(excluded.columns):
        for rec in excluded.itertuples():
            if reason_of(str(rec.reason)) is ReconReason.BOOKED_DIFFERENTLY:
                lines.append(f"transfer {rec.invoice_number}: held back: {rec.reason}")
    payments = _read_outcomes(folder / PAYMENT_OUTCOMES)
    if payments is not None and "outcome" in payments.columns:
        for rec in payments.itertuples():
            outcome = PaymentOutcome.of(str(rec.outcome))
            if outcome is not None and outcome.verdict in (Verdict.FAILURE, Verdict.WAITING):
                lines.append(
                    f"payment {rec.invoice_number}: {outcome.value}: {getattr(rec, 'message', '')}"
                )
    return lines


def _read_outcomes(path: Path) -> Any:
    """A step's outcomes CSV as text cells (None if the step did not write it)."""
    import pandas as pd

    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError):  # an empty or unreadable file: the step's own error says why
        return None


def with_unfinished_writes(code: int, folders: Sequence[Path]) -> int:
    """``code``, or ``EXIT_WRITES_UNFINISHED`` when it is 0 and some write of ``folders`` is not
    done (each such write is printed to stderr)."""
    if code != EXIT_OK:
        return code
    lines = [line for folder in folders for line in unfinished_writes(folder)]
    for line in lines[:20]:
        print(f"recon: {line}", file=sys.stderr, flush=True)
    if len(lines) > 20:
        print(
            f"recon: ... and {len(lines) - 20} more (the report's Errors sheet lists all)",
            file=sys.stderr,
            flush=True,
        )
    return EXIT_WRITES_UNFINISHED if lines else code


def execute(
    notebooks: Sequence[Path],
    params_file: Path,
    run_dir: Path,
    params: RunParams,
    only: Sequence[str] | None,
    location: str | None,
    say: Callable[[str], None],
) -> tuple[list[StepRun], int]:
    """Run the steps of one location into ``run_dir``: their records and the exit code (0, 1 or
    130)."""
    steps: list[StepRun] = []
    try:
        run_steps(notebooks, params_file, run_dir, params, only, steps.append, say, location)
    except KeyboardInterrupt as exc:
        why = interruption(isinstance(exc, Terminated))
        done = {s.name for s in steps}
        rest = [nb for nb in notebooks if nb.name not in done]
        if rest and "transfer" in rest[0].stem:
            settle_interrupted_transfer(run_dir, why.split(": ", 1)[1], say)
        for i, nb in enumerate(rest):
            steps.append(
                StepRun(
                    nb.name,
                    StepStatus.FAILED if i == 0 else StepStatus.SKIPPED,
                    error=why if i == 0 else "",
                    note="" if i == 0 else "the run was interrupted",
                )
            )
        return steps, EXIT_INTERRUPTED
    return steps, failure_code(steps)


def settle_interrupted_transfer(run_dir: Path, why: str, say: Callable[[str], None]) -> None:
    """Write the outcomes of a transfer stopped mid-push from the ledger (its kernel could not),
    so the report lists what was sent; a failure to do so is said, never raised."""
    import sqlite3

    from recon.transfer.interrupted import outcomes_after_interrupt

    try:
        path = outcomes_after_interrupt(run_dir, why)
    except (OSError, ValueError, KeyError, sqlite3.Error, ReconError) as exc:
        say(f"could not read the interrupted transfer's outcomes back from the ledger: {exc}")
        return
    if path is not None:
        say(f"  the transfer's outcomes, read back from the ledger: {path}")


def run_locations(
    params_file: Path,
    params: RunParams,
    run_dir: Path,
    notebooks: Sequence[Path],
    only: Sequence[str] | None,
    names: Sequence[str],
) -> int:
    """Every location of the map, in order, each into its own folder; one failing does not stop the
    next. Then one report."""
    folders = location_folders(names)
    started = datetime.now(tz=UTC)
    done: list[LocationRun] = []
    interrupted = False
    for name in names:
        if interrupted:
            done.append(
                LocationRun(
                    name,
                    folders[name],
                    note="not run: the run was interrupted before this location",
                )
            )
            continue
        _say(f"location {name} -> {folders[name]}/")
        location_run, code = _run_one(
            params_file, params, run_dir, notebooks, only, name, folders[name]
        )
        done.append(location_run)
        interrupted = code == EXIT_INTERRUPTED
    built = _report(run_dir, params, started, [], done)
    _say(f"outputs: {run_dir.resolve()}")
    for loc in done:
        if loc.status != LocationStatus.OK:
            print(f"recon: location {loc.name}: {loc.failure}", file=sys.stderr, flush=True)
    code = EXIT_INTERRUPTED if interrupted else failure_code(s for loc in done for s in loc.steps)
    code = with_unfinished_writes(code, [run_dir / loc.folder for loc in done])
    if built is None:
        code = code or EXIT_STEP_FAILED
    else:
        _say(str(built))
        _say(f"report: {built.workbook.resolve()}")
    failures = [
        f"location {loc.name} {'interrupted' if interrupted else 'failed'}"
        for loc in done
        if loc.status == LocationStatus.FAILED
    ]
    _say(run_summary([run_dir / loc.folder for loc in done], code, failures, params))
    return code


def run_location_task(
    params_file: Path,
    params: RunParams,
    run_dir: Path,
    notebooks: Sequence[Path],
    only: Sequence[str] | None,
    name: str,
) -> int:
    """One location of a run whose locations a scheduler runs as separate tasks (``--location`` with
    ``--run-id``).

    Writes into the location's folder of the shared run folder and records its
    steps there; the one report is ``recon report``'s job, after every task.
    """
    folder = location_folders(params.locations)[name]
    location_run, code = _run_one(params_file, params, run_dir, notebooks, only, name, folder)
    if location_run.status != LocationStatus.OK:
        print(f"recon: location {name}: {location_run.failure}", file=sys.stderr, flush=True)
    code = with_unfinished_writes(code, [run_dir / folder])
    _say(f"outputs: {(run_dir / folder).resolve()}")
    _say(
        f"report: not built by a location's task; after the run's last one: recon report {run_dir}"
    )
    failures = [f"location {name} failed"] if location_run.status != LocationStatus.OK else []
    _say(run_summary([run_dir / folder], code, failures, params))
    return code


def _run_one(
    params_file: Path,
    params: RunParams,
    run_dir: Path,
    notebooks: Sequence[Path],
    only: Sequence[str] | None,
    name: str,
    folder: str,
) -> tuple[LocationRun, int]:
    """One location's steps into ``run_dir/folder``, recorded there at once (a later ``recon
    report`` reads it)."""
    location_dir = run_dir / folder
    location_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(tz=UTC)
    steps, code = execute(
        notebooks,
        params_file,
        location_dir,
        params.with_overrides(location=name),
        only,
        name,
        lambda line: _say(f"  {line}"),
    )
    location_run = LocationRun(name, folder, tuple(steps), started, datetime.now(tz=UTC))
    record_location(location_dir, params, location_run)
    return location_run, code


def _report(
    run_dir: Path,
    params: RunParams,
    started: datetime,
    steps: list[StepRun],
    locations: Sequence[LocationRun] | None = None,
) -> ReportPaths | None:
    try:
        return build_report(
            run_dir,
            params,
            started=started,
            finished=datetime.now(tz=UTC),
            steps=steps,
            locations=locations,
        )
    except KeyboardInterrupt:
        print("recon: interrupted while writing the report", file=sys.stderr)
        return None
    except (
        Exception
    ) as exc:  # a run's outputs are still in place; say so rather than hide them behind a traceback
        print(
            f"recon: the report could not be written: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        return None


def report(run_dir: Path, params_file: Path | None = None) -> int:
    """``recon report RUN_DIR``: (re)build a run folder's report; exit code as the module docstring
    says."""
    if not run_dir.is_dir():
        raise ParamsError(f"no run folder {run_dir}")
    params_file = params_file or recorded_params(run_dir)
    if params_file is None:
        raise ParamsError(
            f"{run_dir} records no params file (no run.json in it or its location folders): "
            "name it with --params"
        )
    params = load_params(params_file)
    locations = location_runs(run_dir, params.locations)
    if not locations and not steps_from_run(run_dir) and not any(run_dir.glob("*.csv")):
        raise ParamsError(
            f"nothing to report on in {run_dir}: no step record, executed notebook or step CSV"
        )
    built = build_report(run_dir, params, locations=locations or None)
    _say(str(built))
    problems = (
        [
            f"location {loc.name}: {loc.failure}"
            for loc in built.locations
            if loc.status != LocationStatus.OK
        ]
        if built.locations
        else [
            f"step {s.stem} failed at {s.where or 'start'}: {s.error}"
            for s in built.steps
            if s.status == StepStatus.FAILED
        ]
    )
    for problem in problems:
        print(f"recon: {problem}", file=sys.stderr, flush=True)
    _say(f"report: {built.workbook.resolve()}")
    if built.failed_steps:
        if any(not loc.steps for loc in built.locations):
            return EXIT_STEP_FAILED  # a location left no results
        return failure_code([*built.steps, *(s for loc in built.locations for s in loc.steps)])
    folders = [run_dir / loc.folder for loc in built.locations] if built.locations else [run_dir]
    return with_unfinished_writes(EXIT_OK, folders)


def recorded_params(run_dir: Path) -> Path | None:
    """The params file a run recorded (its run.json, else a location folder's), if it still
    exists."""
    for record in [run_dir / RUN_RECORD, *sorted(run_dir.glob(f"*/{RUN_RECORD}"))]:
        try:
            data = json.loads(record.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        for key in ("params_path", "params_file"):
            if isinstance(data, dict) and data.get(key) and Path(data[key]).is_file():
                return Path(data[key])
    return None


def _say(line: str) -> None:
    print(line, flush=True)


def login(params_file: Path, ask: Callable[[str], str] = input) -> int:
    """Sign in to a Xero web app (authorization code + PKCE) once; the refresh token is kept for
    later runs.

    Prints the address to open, asks for the address the browser was sent back to,
    and stores the tokens in the user config folder (0600). Never prints a token.
    """
    from recon.clients.xero import XeroClient
    from recon.session import xero_config_for

    params = load_params(params_file, required=())  # a sign-in needs no period or location
    if params.target != "live" or params.xero.grant != "authorization_code":
        raise ParamsError(
            "`recon login` is for a Xero web app: set target: live and xero.grant: "
            "authorization_code (a Custom Connection needs no sign-in)",
            file=str(params_file),
            key="xero.grant",
        )
    with XeroClient(xero_config_for(params)) as client:
        print("Open this address, sign in to Xero and allow access:")
        print(client.authorization_url(), flush=True)
        client.finish_login(ask("Paste the address your browser was sent back to: ").strip())
        for connection in client.connections():
            print(f"connected: {connection.get('tenantName')} ({connection['tenantId']})")
    return EXIT_OK


def notebooks(folder: Path, force: bool = False) -> int:
    """``recon notebooks DIR``: copy the four notebooks, and the demo params into DIR/params; 0, or
    a ``ParamsError`` (exit 2) when DIR is a file, cannot be written, or already has one of the
    files and ``force`` is false (nothing is copied then)."""
    copied = copy_notebooks(folder, force=force)
    for path in copied.files:
        _say(f"copied {path}")
    _say(
        f'open them in Jupyter (jupyter lab {folder}): params_file "" is the demo\'s params. '
        f"Run the demo: recon run {folder / 'params' / DEMO_PARAMS}"
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """The ``recon`` command (run, report, login or notebooks); returns its exit code.

    An expected error or an interrupt is printed, not raised, and gives its exit code.
    """
    parser = argparse.ArgumentParser(
        prog="recon",
        description="Reconcile Nexudus with Xero.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recon {recon_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser(
        "run",
        help="run the step notebooks in order for a params file, then write the audit report",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_run.add_argument("params_file", type=Path, metavar="PARAMS")
    p_run.add_argument(
        "--out", type=Path, default=None, help="output root (default: the params file's output_dir)"
    )
    p_run.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=(
            "run only notebooks whose name contains NAME (repeatable); the others are marked "
            "skipped. A NAME that is part of no step's name exits 2"
        ),
    )
    p_run.add_argument(
        "--period",
        default=None,
        metavar="PERIOD",
        help=(
            f"the invoices' period instead of the params file's: {', '.join(PERIODS)} (in the "
            "location's time zone), or START..END (2026-08-01..2026-08-31)"
        ),
    )
    p_run.add_argument(
        "--dry-run",
        action="store_true",
        help=(
            "plan and report, write nothing: push, apply and apply_xero are false whatever the "
            "params say; the report's parameters show dry_run true"
        ),
    )
    p_run.add_argument(
        "--location",
        default=None,
        metavar="NAME",
        help=(
            "run one Nexudus location (default: every location of the params' locations map, "
            "else the params' location); one the params or Nexudus do not know exits 2"
        ),
    )
    p_run.add_argument(
        "--run-id",
        default=None,
        metavar="ID",
        help=(
            "name the run folder <out>/ID (default: the UTC start time); the tasks of one "
            "scheduled run share it: with --location and a locations map, each writes its "
            "location's folder in it"
        ),
    )
    p_report = sub.add_parser(
        "report", help="(re)build the audit report of a run folder (of every location folder in it)"
    )
    p_report.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p_report.add_argument(
        "--params",
        type=Path,
        default=None,
        metavar="PARAMS",
        help="the params file (default: the one the run recorded in its run.json)",
    )
    p_login = sub.add_parser(
        "login", help="sign in to a Xero web app once (authorization code + PKCE)"
    )
    p_login.add_argument("params_file", type=Path, metavar="PARAMS")
    p_notebooks = sub.add_parser(
        "notebooks",
        help="copy the four notebooks, and the demo params into DIR/params, to open in Jupyter",
    )
    p_notebooks.add_argument("folder", type=Path, metavar="DIR")
    p_notebooks.add_argument("--force", action="store_true", help="overwrite files already there")
    args = parser.parse_args(argv)  # bad arguments: argparse exits 2; --help, --version: 0
    try:
        with sigterm_as_interrupt():
            if args.command == "notebooks":
                return notebooks(args.folder, args.force)
            if args.command == "login":
                return login(args.params_file)
            if args.command == "report":
                return report(args.run_dir, args.params)
            return run(
                args.params_file,
                args.out,
                args.only,
                location=args.location,
                run_name=args.run_id,
                period=args.period,
                dry_run=args.dry_run,
            )
    except ReconError as exc:
        print(f"recon: {exc}", file=sys.stderr)
        return EXIT_EXPECTED
    except OSError as exc:
        print(f"recon: {exc}", file=sys.stderr)
        return EXIT_EXPECTED
    except KeyboardInterrupt as exc:
        print(
            f"recon: interrupted{' (SIGTERM)' if isinstance(exc, Terminated) else ''}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
