"""Issue 16, item 5: the audit pack of a demo run builds in <= 3 s.

Copies a demo run folder (the newest ``out/<run-id>`` with a ``run.json``, or
``RUN_DIR``) into a temporary folder, so the run's own report is left alone;
with neither (a new machine), first makes one, untimed, as ``bench_demo.py``
does: ``recon run params/demo.yaml`` on a fresh sandbox in a temporary folder.
Then times ``build_report`` on the copy in this process: the first build
(with the imports it makes: openpyxl, mistune) and the best of ``--repeat``
later ones. Prints the seconds of each, the ratio of the first to 3 s, and
what the pack holds (sheets, pages, files in the manifest).

    .venv/bin/python bench/bench_report.py [RUN_DIR] [--params params/demo.yaml] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_demo import run_once

from recon.params import load_params
from recon.report import build_report

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 3.0
REPORT_FILES = ("audit.xlsx", "manifest.json", "csv", "html")


def newest_run(out: Path) -> Path | None:
    """The newest run folder under ``out`` that ``recon run`` wrote (it has a run.json)."""
    runs = sorted(p.parent for p in out.glob("*/run.json") if p.parent.name != "notebook")
    return runs[-1] if runs else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", nargs="?", type=Path)
    parser.add_argument("--params", type=Path, default=ROOT / "params" / "demo.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        source = args.run_dir or newest_run(ROOT / "out")
        if source is None and args.run_dir is None:
            print("no demo run folder under out/: making one (recon run, not timed)")
            made = run_once(args.params.resolve(), Path(scratch))
            source = made["run_dir"]
            if made["code"] != 0:
                print(
                    f"recon run exited {made['code']}:\n{made['stderr'][-2000:]}", file=sys.stderr
                )
                return 2
        if source is None or not (source / "run.json").exists():
            print(f"no recon run folder (with a run.json) at {source}", file=sys.stderr)
            return 2
        return measure(source, args.params, args.repeat)


def measure(source: Path, params_file: Path, repeat: int) -> int:
    """Times ``build_report`` on a copy of the run folder ``source``; 0 when the first build
    meets the target."""
    params = load_params(params_file)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / source.name
        shutil.copytree(source, run_dir, ignore=shutil.ignore_patterns(*REPORT_FILES))
        started = time.perf_counter()
        report = build_report(run_dir, params)
        first = time.perf_counter() - started
        later = []
        for _ in range(max(repeat, 0)):
            started = time.perf_counter()
            build_report(run_dir, params)
            later.append(time.perf_counter() - started)
        manifest = json.loads(report.manifest.read_text("utf-8"))
        print(f"run folder: {source}")
        print(
            f"pack: {report.workbook.name} ({report.workbook.stat().st_size:,} bytes), "
            f"{len(report.csv)} CSV, {len(report.html)} pages, "
            f"{len(manifest['files'])} files in {report.manifest.name}"
        )
        print(f"first build: {first:.2f} s = {first / TARGET_SECONDS:.2f} x the 3 s target")
        if later:
            best = min(later)
            print(f"best of {len(later)} more: {best:.2f} s = {best / TARGET_SECONDS:.2f} x 3 s")
    return 0 if first <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
