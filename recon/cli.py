"""``recon run``: run the notebooks in order under papermill for one params file.

Floor 3: parses arguments, calls papermill, maps the outcome to an exit code.
Exit codes: 0 every step ran; 1 a step failed (its executed notebook, with the
error in it, is still written); 2 an expected error (bad params, missing
file); 130 interrupted.

Only the params file's path and the run's output folder are passed to the
notebooks as parameters. Credentials are read inside the kernel (from the
environment, or from the embedded sandbox), so no secret can land in an
executed notebook.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from recon.errors import ReconError
from recon.params import load_params

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_id() -> str:
    return datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def notebooks_in_order(folder: Path = NOTEBOOKS) -> list[Path]:
    """``NN_name.ipynb`` files, by number."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def run(params_file: Path, out_root: Path | None = None, only: list[str] | None = None) -> int:
    import papermill as pm

    params = load_params(params_file)
    out_dir = (out_root or Path(params.output_dir)) / run_id()
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for nb in notebooks_in_order():
        if only and not any(key in nb.stem for key in only):
            continue
        target = out_dir / nb.name
        print(f"running {nb.name} -> {target}", flush=True)
        try:
            pm.execute_notebook(str(nb), str(target), parameters={"params_file": str(params_file.resolve()),
                                                                 "output_dir": str(out_dir.resolve())},
                                cwd=str(nb.parent), progress_bar=False, kernel_name="python3")
        except pm.PapermillExecutionError as exc:
            print(f"step {nb.name} failed: {exc.ename}: {exc.evalue}", file=sys.stderr, flush=True)
            failed.append(nb.name)
            break  # later steps depend on earlier ones
    print(f"outputs: {out_dir.resolve()}", flush=True)
    if failed:
        print(f"failed steps: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recon", description="Reconcile Nexudus with Xero.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the notebooks in order for a params file")
    p_run.add_argument("params_file", type=Path)
    p_run.add_argument("--out", type=Path, default=None, help="output root (default: the params file's output_dir)")
    p_run.add_argument("--only", action="append", help="run only notebooks whose name contains this (repeatable)")
    args = parser.parse_args(argv)
    try:
        return run(args.params_file, args.out, args.only)
    except ReconError as exc:
        print(f"recon: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
