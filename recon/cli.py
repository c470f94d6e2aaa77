"""``recon run``: run the step notebooks in order under papermill, then write the run's audit report.

Floor 3: parses arguments, runs the notebooks, calls ``recon.report.build_report``
and maps the outcome to an exit code. Nothing here reconciles anything.

    recon run PARAMS [--out DIR] [--only NAME ...]

The step notebooks are ``notebooks/NN_*.ipynb`` in number order, except the
report notebook (``04_audit_report.ipynb``, for people in Jupyter): the report
of a ``recon run`` is built here, after the last step, always, so a run that
failed still gets a report that says what failed and where. Steps depend on
each other, so after a failed step the later ones are skipped (and marked so).

Each run writes into ``<out>/<run-id>/`` (``<out>``: ``--out``, else the params'
``output_dir``): the executed notebooks (a failed one too: papermill writes it
with the error in place), the steps' CSVs, and the report (``audit.xlsx``,
``csv/``, ``html/``, ``run.json``). The last line printed is the workbook's path.

Exit codes:

    0    every step ran (the report is written)
    1    a step failed (the report is written and says which, and where)
    2    an expected error before any step ran: bad params (the message names the file and key),
         a missing file, an output folder that cannot be written
    130  interrupted (Ctrl-C); the report of what ran so far is still written if possible

Only non-secret values reach a notebook as papermill parameters: the params
file's path, the run folder, and the run switches ``push`` and ``apply`` (each
passed only to notebooks whose parameters cell declares it). Credentials are
read inside the kernel (from the environment, the token store, or the embedded
sandbox), so no secret can land in an executed notebook or a report.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recon.errors import ParamsError, ReconError
from recon.params import RunParams, load_params
from recon.report import ReportPaths, StepRun, StepStatus, build_report

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
REPORT_NOTEBOOK = "04_audit_report.ipynb"  # shows a report in Jupyter; `recon run` builds the report itself
# The run switches a notebook may take from the params file (never a credential).
SWITCHES = ("push", "apply")

EXIT_OK, EXIT_STEP_FAILED, EXIT_EXPECTED, EXIT_INTERRUPTED = 0, 1, 2, 130


def run_id() -> str:
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


def notebook_parameters(notebook: Path, params_file: Path, run_dir: Path, params: RunParams,
                        location: str | None = None) -> dict[str, Any]:
    """What papermill passes to a notebook: paths, run switches and the location it declares; never a credential."""
    import papermill as pm

    offered: dict[str, Any] = {"params_file": str(params_file.resolve()), "output_dir": str(run_dir.resolve()),
                               **{name: getattr(params, name) for name in SWITCHES}}
    if location:
        offered["location"] = location
    declared = pm.inspect_notebook(str(notebook))
    return {k: v for k, v in offered.items() if k in declared}


def run_step(notebook: Path, params_file: Path, run_dir: Path, params: RunParams, location: str | None = None) -> StepRun:
    """Execute one notebook into the run folder; a failure becomes a failed ``StepRun``, never an exception."""
    import papermill as pm

    started = datetime.now(tz=UTC)
    try:
        pm.execute_notebook(str(notebook), str(run_dir / notebook.name),
                            parameters=notebook_parameters(notebook, params_file, run_dir, params, location),
                            cwd=str(notebook.parent), progress_bar=False, kernel_name="python3")
    except pm.PapermillExecutionError as exc:
        return StepRun(notebook.name, StepStatus.FAILED, started, datetime.now(tz=UTC), f"{exc.ename}: {exc.evalue}",
                       f"In [{exc.exec_count}]")
    except Exception as exc:  # the kernel died or could not start: the step failed, the run goes on to its report
        return StepRun(notebook.name, StepStatus.FAILED, started, datetime.now(tz=UTC), f"{type(exc).__name__}: {exc}",
                       "running the notebook")
    return StepRun(notebook.name, StepStatus.OK, started, datetime.now(tz=UTC))


def run_steps(notebooks: Sequence[Path], params_file: Path, run_dir: Path, params: RunParams, only: Sequence[str] | None,
              record: Callable[[StepRun], None], say: Callable[[str], None], location: str | None = None) -> None:
    """Run the notebooks in order; after a failure the rest are skipped. Each outcome goes to ``record`` as it happens."""
    failed: str | None = None
    for nb in notebooks:
        if only and not any(key in nb.stem for key in only):
            record(StepRun(nb.name, StepStatus.SKIPPED, note="not selected with --only"))
            continue
        if failed:
            record(StepRun(nb.name, StepStatus.SKIPPED, note=f"{failed} failed and later steps depend on it"))
            continue
        say(f"running {nb.name}")
        step = run_step(nb, params_file, run_dir, params, location)
        record(step)
        say(f"  {step.status.value} in {step.seconds or 0:.1f} s" + (f": {step.error}" if step.error else ""))
        if step.status == StepStatus.FAILED:
            failed = nb.stem


def run(params_file: Path, out_root: Path | None = None, only: Sequence[str] | None = None,
        notebooks: Sequence[Path] | None = None, location: str | None = None) -> int:
    """One scheduled run: the steps, then the report. Returns the exit code (see the module docstring).

    ``location`` runs one Nexudus location of the params' map (a scheduler fans locations out this way).
    """
    params = load_params(params_file)
    if location:
        if params.locations and params.location_map(location) is None:
            raise ParamsError(f"{location!r} is not in the locations map (known: {', '.join(params.locations)})",
                              file=str(params_file), key="locations")
        params = params.with_overrides(location=location)
    notebooks = list(notebooks if notebooks is not None else notebooks_in_order())
    run_dir = new_run_dir(out_root or Path(params.output_dir))
    started = time.time()
    steps: list[StepRun] = []
    code = EXIT_OK
    try:
        run_steps(notebooks, params_file, run_dir, params, only, steps.append, _say, location)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
        done = {s.name for s in steps}
        rest = [nb for nb in notebooks if nb.name not in done]
        for i, nb in enumerate(rest):
            steps.append(StepRun(nb.name, StepStatus.FAILED if i == 0 else StepStatus.SKIPPED,
                                 error="KeyboardInterrupt: interrupted (Ctrl-C)" if i == 0 else "",
                                 note="" if i == 0 else "the run was interrupted"))
    if code == EXIT_OK and any(s.status == StepStatus.FAILED for s in steps):
        code = EXIT_STEP_FAILED
    report = _report(run_dir, params, datetime.fromtimestamp(started, tz=UTC), steps)
    _say(f"outputs: {run_dir.resolve()}")
    for s in steps:
        if s.status == StepStatus.FAILED:
            print(f"recon: step {s.stem} failed at {s.where or 'start'}: {s.error}", file=sys.stderr, flush=True)
    if report is None:
        return code or EXIT_STEP_FAILED
    _say(str(report))
    _say(f"report: {report.workbook.resolve()}")
    return code


def _report(run_dir: Path, params: RunParams, started: datetime, steps: list[StepRun]) -> ReportPaths | None:
    try:
        return build_report(run_dir, params, started=started, finished=datetime.now(tz=UTC), steps=steps)
    except KeyboardInterrupt:
        print("recon: interrupted while writing the report", file=sys.stderr)
        return None
    except Exception as exc:  # a run's outputs are still in place; say so rather than hide them behind a traceback
        print(f"recon: the report could not be written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def _say(line: str) -> None:
    print(line, flush=True)


def login(params_file: Path, ask: Callable[[str], str] = input) -> int:
    """Sign in to a Xero web app (authorization code + PKCE) once; the refresh token is kept for later runs.

    Prints the address to open, asks for the address the browser was sent back to,
    and stores the tokens in the user config folder (0600). Never prints a token.
    """
    from recon.clients.xero import XeroClient
    from recon.session import xero_config_for

    params = load_params(params_file)
    if params.target != "live" or params.xero.grant != "authorization_code":
        raise ParamsError("`recon login` is for a Xero web app: set target: live and xero.grant: authorization_code "
                          "(a Custom Connection needs no sign-in)", file=str(params_file), key="xero.grant")
    with XeroClient(xero_config_for(params)) as client:
        print("Open this address, sign in to Xero and allow access:")
        print(client.authorization_url(), flush=True)
        client.finish_login(ask("Paste the address your browser was sent back to: ").strip())
        for connection in client.connections():
            print(f"connected: {connection.get('tenantName')} ({connection['tenantId']})")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recon", description="Reconcile Nexudus with Xero.",
                                     epilog="exit codes: 0 every step ran, 1 a step failed, 2 bad params or files, 130 interrupted")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the step notebooks in order for a params file, then write the audit report")
    p_run.add_argument("params_file", type=Path, metavar="PARAMS")
    p_run.add_argument("--out", type=Path, default=None, help="output root (default: the params file's output_dir)")
    p_run.add_argument("--only", action="append", metavar="NAME",
                       help="run only notebooks whose name contains NAME (repeatable); the others are marked skipped")
    p_run.add_argument("--location", default=None, metavar="NAME",
                       help="run one Nexudus location (default: the params' location)")
    p_login = sub.add_parser("login", help="sign in to a Xero web app once (authorization code + PKCE)")
    p_login.add_argument("params_file", type=Path, metavar="PARAMS")
    args = parser.parse_args(argv)
    try:
        if args.command == "login":
            return login(args.params_file)
        return run(args.params_file, args.out, args.only, location=args.location)
    except ReconError as exc:
        print(f"recon: {exc}", file=sys.stderr)
        return EXIT_EXPECTED
    except OSError as exc:
        print(f"recon: {exc}", file=sys.stderr)
        return EXIT_EXPECTED
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
