"""Issue 17, local target: the mapping check of a million invoice lines, in CPU seconds and memory,
before and after, and against datacompy doing the same comparison, all in one run.

Targets (issue 17, "Local"): mapping check + status diff of 1,000,000 lines in <= 3 CPU-seconds,
peak memory <= 1.5 GB, >= 5x faster than datacompy on the same diff. This script measures both
and prints their sum against the 3 CPU-s: the mapping check of ``--lines`` invoice lines and the
status diff (``recon.status_diff.find_differences``) of as many transferred invoices, built by
``bench_status.diff_inputs`` (money in whole units, ``<money>_scaled``/``_known``, and Decimal
cells one object per distinct amount, as ``Ledger.*(units=SCALE)`` supplies them; so the peak is
the diff's, not a per-invoice Decimal frame's; building them is not measured).

Inputs: ``bench_mapping.py``'s (Hive Shoreditch's in-period invoices and lines from the seed
generator, with the Xero organisation's accounts and tax rates, tiled with fresh ids to
``--lines`` lines). Building them is not measured.

What is measured, each in a forked child process that holds the inputs (so one run cannot
inflate another's memory):

* before: the mapping check as it was, kept frozen in ``tests/reference_mapping_v1.py``;
  after: ``recon.mapping.check_mapping``. Both must give the same summary and problems (checked).
* CPU seconds: ``time.process_time()`` around the call, best of ``--repeat``.
* peak memory: the child's peak resident set size (``VmHWM``, reset when the child starts;
  ``ru_maxrss`` where /proc is missing). It includes the inputs, so it is what a process that
  holds a million lines and runs the check needs; "added" is the part above the inputs.
  ``--tracemalloc`` adds the call's own allocation peak (one more run, slow for "before").

datacompy, "the same diff": the heart of the check is, for every line, whether its account (code,
name) is the one Xero holds under that code and whether its tax rate (name, percentage) is the
one Xero holds under that name. datacompy compares two frames joined on a key, column by column,
so it gets Nexudus' side, one row per line (line id, account code and name, tax rate name and
percentage), and Xero's side of the same lines (the Xero account with the line's code and the
Xero tax rate with the line's tax rate name, looked up with two pandas merges, percentages as
numbers on both sides), joined on the line id; ``PandasCompare`` then finds the lines whose
account name or percentage differ and ``all_mismatch()`` lists them. The mapping check compares
text without its surrounding spaces, so the same diff looks codes and names up stripped and
compares with ``ignore_spaces=True``; the run with spaces counted is printed too, for scale (it
is quicker, and not the same diff: it flags " 4000" against "4000"). Timed: the lookups, the
compare and the listing. That is less than the mapping check does (no "[No Tax]" or tax-map
rule, archived and forbidden accounts, tax type against account class, per-invoice verdicts or
money per currency), so the ratio flatters datacompy.

datacompy is a bench-only tool and is not in requirements.lock: datacompy 1.1.0 declares
``pandas<3.1`` (recon pins 3.1.1), so pip cannot resolve it with recon's pins; it runs with
pandas 3.1.1 when installed without its dependency check::

    .venv/bin/pip install --no-deps datacompy==1.1.0 ordered-set==4.1.0 \\
        polars==1.44.2 polars-runtime-32==1.44.2

Without it the comparison is skipped with a message. Run::

    .venv/bin/python bench/bench_local.py [--lines 1000000] [--repeat 3] [--no-before]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import pickle
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from bench_mapping import base_frames, tile
from bench_status import diff_inputs

from recon.mapping import check_mapping
from recon.sandbox.seed import generate
from recon.status_diff import find_differences

ROOT = Path(__file__).resolve().parent.parent
TARGET_CPU_SECONDS = 3.0  # mapping check + status diff
TARGET_PEAK_BYTES = 1.5e9
TARGET_RATIO = 5.0
DATACOMPY_INSTALL = (
    ".venv/bin/pip install --no-deps datacompy==1.1.0 ordered-set==4.1.0 "
    "polars==1.44.2 polars-runtime-32==1.44.2"
)
MB = 1e6

Inputs = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]


# ---- memory of this process ----------------------------------------------------------------
def _status_bytes(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak() -> None:
    """Make the peak resident size start again from the current size (Linux >= 4.0)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_bytes() -> int:
    peak = _status_bytes("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


# ---- one measurement in a forked child --------------------------------------------------------
def _in_child(job: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``job`` in a forked child (which shares the inputs) and return what it returns."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        try:
            payload = pickle.dumps(("ok", job()))
        except BaseException as exc:  # reported by the parent
            payload = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as answer:
        data = answer.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status != "ok":
        raise RuntimeError(value)
    return dict(value)


def _measure(
    run: Callable[[], Any], repeat: int, with_tracemalloc: bool
) -> tuple[dict[str, Any], Any]:
    """CPU seconds of each of ``repeat`` runs, the peak memory, and the last run's result."""
    gc.collect()
    _reset_peak()
    start_bytes = _status_bytes("VmRSS") or _peak_bytes()
    cpu, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        t0 = time.process_time()
        result = run()
        cpu.append(time.process_time() - t0)
    figures: dict[str, Any] = {
        "cpu": cpu,
        "peak": _peak_bytes(),
        "added": _peak_bytes() - start_bytes,
    }
    if with_tracemalloc:
        result = None
        gc.collect()
        tracemalloc.start()
        result = run()
        figures["tracemalloc"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return figures, result


# ---- what is measured ------------------------------------------------------------------------
def _check_job(
    check: Callable[..., Any], inputs: Inputs, repeat: int, with_tracemalloc: bool
) -> Callable[[], dict[str, Any]]:
    def job() -> dict[str, Any]:
        figures, result = _measure(lambda: check(*inputs, {}), repeat, with_tracemalloc)
        figures["summary"] = result.summary.astype(str)
        figures["problems"] = result.problems.astype(str)
        return figures

    return job


def _diff_job(
    inputs: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame], repeat: int, with_tracemalloc: bool
) -> Callable[[], dict[str, Any]]:
    def job() -> dict[str, Any]:
        figures, result = _measure(
            lambda: find_differences(*inputs, full=True), repeat, with_tracemalloc
        )
        figures["differences"] = len(result)
        return figures

    return job


def _in_one_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows sorted by every cell's text."""
    order = frame.astype(str).sort_values(list(frame.columns), kind="stable").index
    return frame.loc[order].reset_index(drop=True)


def datacompy_same_diff(inputs: Inputs, ignore_spaces: bool = True) -> pd.DataFrame:
    """Every line whose account name or tax percentage differs from Xero's, found by datacompy.

    ``ignore_spaces``: compare and look up text without its surrounding spaces, as the mapping
    check does (False: a quicker diff that is not the same, padded names count as different).
    """
    import datacompy

    _, lines, accounts, tax_rates = inputs
    nexudus = pd.DataFrame(
        {
            "line_id": lines["Id"],
            "account_code": lines["FinancialAccountCode"],
            "account_name": lines["FinancialAccountName"],
            "tax_rate_name": lines["TaxCategoryName"],
            "tax_rate": pd.to_numeric(lines["TaxRate"], errors="coerce"),
        }
    )
    # Xero's side of each line: the account with its code, the tax rate with its name.
    looked_up = nexudus[["line_id", "account_code", "tax_rate_name"]]
    if ignore_spaces:
        looked_up = looked_up.assign(
            account_code=looked_up["account_code"].str.strip(),
            tax_rate_name=looked_up["tax_rate_name"].str.strip(),
        )
    xero = looked_up.merge(
        accounts[["Code", "Name"]].rename(columns={"Code": "account_code", "Name": "account_name"}),
        on="account_code",
        how="left",
    ).merge(
        tax_rates[["Name", "EffectiveRate"]].rename(
            columns={"Name": "tax_rate_name", "EffectiveRate": "tax_rate"}
        ),
        on="tax_rate_name",
        how="left",
    )
    xero["tax_rate"] = pd.to_numeric(xero["tax_rate"], errors="coerce")
    compare = datacompy.PandasCompare(
        nexudus,
        xero,
        join_columns="line_id",
        df1_name="nexudus",
        df2_name="xero",
        ignore_spaces=ignore_spaces,
    )
    return compare.all_mismatch()


def _datacompy_job(
    inputs: Inputs, ignore_spaces: bool, args: argparse.Namespace
) -> Callable[[], dict[str, Any]]:
    def job() -> dict[str, Any]:
        figures, mismatched = _measure(
            lambda: datacompy_same_diff(inputs, ignore_spaces), args.repeat, args.tracemalloc
        )
        figures["mismatched_lines"] = len(mismatched)
        return figures

    return job


def _has_datacompy() -> bool:
    try:
        import datacompy  # noqa: F401
    except ImportError:
        return False
    return True


# ---- the report ----------------------------------------------------------------------------
def _row(label: str, figures: dict[str, Any]) -> str:
    cpu = figures["cpu"]
    runs = ", ".join(f"{c:.2f}" for c in cpu)
    traced = (
        f"{figures['tracemalloc'] / MB:>9,.0f} MB" if "tracemalloc" in figures else f"{'-':>12}"
    )
    return (
        f"  {label:<26}{min(cpu):>8.2f} ({runs}){'':<4}{figures['peak'] / MB:>7,.0f} MB"
        f"{figures['added'] / MB:>8,.0f} MB{traced}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (best counts)")
    parser.add_argument("--no-before", action="store_true", help="skip the frozen old check")
    parser.add_argument("--no-datacompy", action="store_true", help="skip the datacompy peer")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace the allocation peak (slow)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    invoices, lines, accounts, tax_rates = base_frames(generate())
    big_invoices, big_lines = tile(invoices, lines, args.lines)
    inputs: Inputs = (big_invoices, big_lines, accounts, tax_rates)
    gc.collect()
    print(
        f"inputs: {len(big_lines):,} lines on {len(big_invoices):,} invoices, built in "
        f"{time.perf_counter() - started:.1f} s (not measured); this process holding them: "
        f"{(_status_bytes('VmRSS') or 0) / MB:,.0f} MB resident"
    )
    print(f"  {'':<26}{'CPU s best (runs)':<24}{'peak':>10}{'added':>11}{'tracemalloc':>12}")

    after = _in_child(_check_job(check_mapping, inputs, args.repeat, args.tracemalloc))
    print(_row("mapping check, after", after))
    built = time.perf_counter()
    status_inputs = diff_inputs(args.lines)
    gc.collect()
    print(
        f"  (status diff inputs: {args.lines:,} transferred invoices, built in "
        f"{time.perf_counter() - built:.1f} s, not measured)"
    )
    diff = _in_child(_diff_job(status_inputs, args.repeat, args.tracemalloc))
    print(_row("status diff", diff))
    del status_inputs
    gc.collect()

    before = None
    if not args.no_before:
        sys.path.insert(0, str(ROOT / "tests"))
        from reference_mapping_v1 import check_mapping as check_mapping_v1

        # The old check takes seconds a run: one run of it is enough to compare.
        before = _in_child(_check_job(check_mapping_v1, inputs, 1, args.tracemalloc))
        print(_row("mapping check, before", before))
        pd.testing.assert_frame_equal(after["summary"], before["summary"], obj="summary")
        # The problems are ranked by money now and say what Xero would answer (issue 16): the
        # same rows with the old columns, compared in one order.
        pd.testing.assert_frame_equal(
            _in_one_order(after["problems"][list(before["problems"].columns)]),
            _in_one_order(before["problems"]),
            obj="problems",
        )

    peer = loose = None
    if args.no_datacompy:
        print("  datacompy: skipped (--no-datacompy)")
    elif not _has_datacompy():
        print(
            "  datacompy: not installed, comparison skipped. It is a bench-only tool (not in "
            f"requirements.lock): {DATACOMPY_INSTALL}"
        )
    else:
        import datacompy

        peer = _in_child(_datacompy_job(inputs, True, args))
        print(_row(f"datacompy {datacompy.__version__}, same diff", peer))
        loose = _in_child(_datacompy_job(inputs, False, args))
        print(_row("datacompy, spaces counted", loose))
        print(
            f"    ({peer['mismatched_lines']:,} lines differ from Xero in account name or rate; "
            f"{loose['mismatched_lines']:,} when surrounding spaces count)"
        )

    best = min(after["cpu"])
    both = best + min(diff["cpu"])
    print("figures:")
    print(
        f"  mapping check + status diff: {best:.2f} + {min(diff['cpu']):.2f} = {both:.2f} CPU-s "
        f"for {len(big_lines):,} lines and {diff['differences']:,} differences of "
        f"{args.lines:,} invoices (target <= {TARGET_CPU_SECONDS:.0f}: "
        f"{both / TARGET_CPU_SECONDS:.0%} of it, "
        f"{'meets' if both <= TARGET_CPU_SECONDS else 'misses'} the target)"
    )
    print(
        f"  peak memory: mapping check {after['peak'] / 1e9:.2f} GB, status diff "
        f"{diff['peak'] / 1e9:.2f} GB, each with its inputs held "
        f"(target <= {TARGET_PEAK_BYTES / 1e9:.1f} GB)"
    )
    if before is not None:
        print(
            f"  before -> after: {min(before['cpu']):.2f} -> {best:.2f} CPU-s "
            f"({min(before['cpu']) / best:.1f}x less), peak {before['peak'] / 1e9:.2f} -> "
            f"{after['peak'] / 1e9:.2f} GB"
        )
    if peer is not None:
        ratio = min(peer["cpu"]) / best
        verdict = "meets" if ratio >= TARGET_RATIO else "misses"
        print(
            f"  datacompy / mapping check: {min(peer['cpu']):.2f} / {best:.2f} = {ratio:.1f}x "
            f"({verdict} the target >= {TARGET_RATIO:.0f}x); with spaces counted (not the same "
            f"diff): {min(loose['cpu']) / best:.1f}x"
        )


if __name__ == "__main__":
    main()
