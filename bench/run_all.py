"""Issue 17, every target in one run: each bench script in turn, on this machine, then the lines
that state a figure against its target or its peer, gathered under one heading per script.

The scripts run one after another (never side by side: each measures CPU or pace), each in its
own process, with their own defaults; the whole output of each is printed as it comes, so the run's
log is the record. Takes about 15 minutes on two cores:

    .venv/bin/python bench/run_all.py [--skip transfer] [--quick]

``--quick`` runs each at a small size, to check that they all still run (the figures are then not
the targets' sizes). datacompy, the local peer, is measured only when it is installed (see
bench_local.py).
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# name -> (script and its arguments at the targets' sizes, the same at a small size).
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "local": (["bench_local.py"], ["bench_local.py", "--lines", "20000"]),
    "status": (
        ["bench_status.py", "--no-local"],
        [
            "bench_status.py",
            *(["--lines", "20000", "--rows", "20000", "--changed", "200", "--invoices", "400"]),
        ],
    ),
    "transfer": (
        ["bench_transfer.py", "--invoices", "6100"],  # Shoreditch: about 5,000 of them
        ["bench_transfer.py", "--invoices", "300"],
    ),
    "calls": (["bench_calls.py"], ["bench_calls.py", "--invoices", "400"]),
    "nexudus calls": (["bench_nexudus_calls.py"], ["bench_nexudus_calls.py", "--invoices", "400"]),
    "demo": (["bench_demo.py"], ["bench_demo.py"]),
    "report": (["bench_report.py"], ["bench_report.py"]),
}
# A line that states a figure against a target, a limit or a peer.
VERDICT = re.compile(r"target|faster|more\)|% of|x more|ratio|calls/min|per 1,000|CPU-s", re.I)


def run(name: str, argv: list[str]) -> tuple[int, float, list[str]]:
    """One bench script: its exit code, wall seconds and the lines that state a verdict."""
    print(f"\n===== {name}: {' '.join(argv)}", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(HERE / argv[0]), *argv[1:]],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    verdicts: list[str] = []
    for line in process.stdout:
        print(line, end="", flush=True)
        if VERDICT.search(line):
            verdicts.append(line.rstrip())
    return process.wait(), time.perf_counter() - started, verdicts


def machine_speed() -> float:
    """CPU seconds of a fixed mix of the work the benches time (a Python loop over dicts, a
    pandas sort and merge, SQLite writes by key), best of three: printed at the start and the
    end of a run, so figures taken at different times can be set side by side. A shared
    machine's speed drifts by a third from one hour to the next."""
    rng = np.random.default_rng(0)
    keys = rng.permutation(200_000)
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        rows = [{"id": int(k), "text": f"INV-{k:07d}"} for k in keys]
        frame = pd.DataFrame(rows).sort_values("text")
        frame.merge(frame.sample(frac=0.5, random_state=0), on="id")
        db = sqlite3.connect(":memory:")
        db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, text TEXT)")
        db.executemany("INSERT INTO t VALUES(?,?)", ((r["id"], r["text"]) for r in rows))
        db.close()
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip", action="append", default=[], choices=sorted(BENCHES))
    parser.add_argument("--quick", action="store_true", help="small sizes: a check, not figures")
    args = parser.parse_args(argv)
    speed_before = machine_speed()
    print(f"machine speed, start: {speed_before:.2f} CPU-s for the fixed work", flush=True)
    results = {
        name: run(name, sizes[1] if args.quick else sizes[0])
        for name, sizes in BENCHES.items()
        if name not in args.skip
    }
    speed_after = machine_speed()
    print("\n===== issue 17: every figure of this run against its target or peer")
    print(
        f"\nmachine speed: {speed_before:.2f} CPU-s for the fixed work at the start, "
        f"{speed_after:.2f} at the end (lower is faster)"
    )
    for name, (code, seconds, verdicts) in results.items():
        state = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"\n{name} ({state}, {seconds:.0f} s wall)")
        for line in verdicts:
            print(f"  {line.strip()}")
    return max((code for code, _, _ in results.values()), default=0)


if __name__ == "__main__":
    sys.exit(main())
