"""``recon run`` as a scheduler runs it: a subprocess, a params file, exit codes, the run folder, no
secrets.

The demo runs start the embedded sandbox inside their kernels, in a state
folder of this module's own (``RECON_SANDBOX_DIR``), with tokens in a config
folder of its own (``RECON_CONFIG_DIR``). After a run has exited, the test
starts the sandbox on the same folder (one process at a time) to learn the
demo secrets the kernels used, and reads the tokens they saved.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from support import sheet_records

import recon.sandbox
from recon import cli
from recon.ledger import Ledger
from recon.params import load_params
from recon.report import StepRun, StepStatus
from recon.sandbox import jsonutil

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "params" / "demo.yaml"


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    out: Path

    @property
    def run_dir(self) -> Path:
        folders = sorted(p for p in self.out.iterdir() if p.is_dir())
        assert len(folders) == 1, folders
        return folders[0]

    def csv_rows(self, name: str) -> list[dict[str, str]]:
        with (self.run_dir / name).open(newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))


def recon_command() -> list[str]:
    script = Path(sys.executable).parent / "recon"
    return [str(script)] if script.exists() else [sys.executable, "-m", "recon.cli"]


def run_env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XERO_", "NEXUDUS_", "RECON_"))}
    env |= {"RECON_SANDBOX_DIR": str(state / "sandbox"), "RECON_CONFIG_DIR": str(state / "config")}
    env["RECON_SANDBOX_XERO_LATENCY"] = "off"  # Xero's own answer times are the default
    return env | extra


def recon_run(params: Path, out: Path, state: Path, *args: str, **env: str) -> Run:
    """``recon run PARAMS --out OUT [ARGS]`` in a subprocess, with the sandbox and tokens in
    ``state`` (unless ``env`` says otherwise)."""
    proc = subprocess.run(
        [*recon_command(), "run", str(params), "--out", str(out), *args],
        cwd=ROOT,
        env=run_env(state, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr, out)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-state")


@pytest.fixture(scope="module")
def demo_run(state: Path) -> Run:
    return recon_run(DEMO, state / "out-1", state)


@pytest.fixture(scope="module")
def second_demo_run(demo_run: Run, state: Path) -> Run:
    return recon_run(DEMO, state / "out-2", state)


def test_a_demo_run_exits_0_with_the_executed_notebooks_the_workbook_csv_and_html(
    demo_run: Run,
) -> None:
    assert demo_run.code == 0, demo_run.stderr
    run_dir = demo_run.run_dir
    steps = cli.notebooks_in_order()
    assert steps and all((run_dir / nb.name).exists() for nb in steps)
    assert not (run_dir / cli.REPORT_NOTEBOOK).exists(), (
        "the report notebook is not a step of `recon run`"
    )
    assert (run_dir / "audit.xlsx").exists()
    assert {p.name for p in (run_dir / "csv").glob("*.csv")} >= {
        "summary.csv",
        "transfers.csv",
        "errors.csv",
    }
    assert sorted(p.stem for p in (run_dir / "html").glob("*.html")) == [nb.stem for nb in steps]
    summary = {
        (r["section"], r["item"]): r["value"]
        for r in csv.DictReader((run_dir / "csv" / "summary.csv").open())
    }
    assert all(summary[("step", nb.stem)] == "ok" for nb in steps)
    assert summary[("context", "organisation")] == "Hive Coworking UK Ltd"


def test_the_run_prints_its_outputs_its_report_and_last_the_counts_behind_its_exit_code(
    demo_run: Run,
) -> None:
    lines = demo_run.stdout.strip().splitlines()
    assert f"outputs: {demo_run.run_dir.resolve()}" in lines
    assert lines[-2] == f"report: {(demo_run.run_dir / 'audit.xlsx').resolve()}"
    created = len(demo_run.csv_rows("transfer_outcomes.csv"))
    paid = sum(r["outcome"] == "applied" for r in demo_run.csv_rows("status_applied.csv"))
    assert created and paid
    assert lines[-1].startswith(f"{created} invoices: {created} created; ")
    assert f" {paid} marked paid" in lines[-1] and lines[-1].endswith("→ exit 0")


def test_push_and_apply_come_from_the_params_so_the_demo_run_writes_to_xero(demo_run: Run) -> None:
    outcomes = demo_run.csv_rows("transfer_outcomes.csv")
    assert outcomes and {r["outcome"] for r in outcomes} == {"created"}
    assert len(outcomes) == len(demo_run.csv_rows("transfer_plan_eligible.csv"))


def test_no_demo_secret_or_saved_token_appears_in_any_file_of_the_run(
    demo_run: Run, state: Path
) -> None:
    assert demo_run.code == 0, demo_run.stderr
    box = recon.sandbox.start(state / "sandbox")
    try:
        secrets = {box.xero_client_secret, box.nexudus_password} | {
            app["client_secret"] for app in box.xero_apps.values()
        }
    finally:
        box.stop()
    tokens = {
        v
        for path in (state / "config").rglob("*.json")
        for v in token_values(json.loads(path.read_text("utf-8")))
    }
    assert tokens, "the kernels should have saved their Xero tokens under RECON_CONFIG_DIR"
    needles = {s.encode() for s in secrets | tokens if s and len(s) >= 8}
    files = [p for p in demo_run.run_dir.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaks = [
        (p.relative_to(demo_run.run_dir), n[:6])
        for p in files
        for n in needles
        if n in p.read_bytes()
    ]
    leaks += [
        ("console", n[:6]) for n in needles if n in (demo_run.stdout + demo_run.stderr).encode()
    ]
    assert not leaks


def token_values(data: Any, key: str = "") -> Iterator[str]:
    """Every string stored under a key naming a token (access_token, refresh_token, id_token...)."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from token_values(v, str(k))
    elif isinstance(data, list):
        for v in data:
            yield from token_values(v, key)
    elif isinstance(data, str) and "token" in key.lower() and key.lower() != "token_type":
        yield data


def test_a_second_run_on_the_same_sandbox_sends_nothing_the_first_sent(
    demo_run: Run, second_demo_run: Run
) -> None:
    """The only new sends are the credit notes the demo's Nexudus staff raised after the first run
    (``recon.demo.act_in_nexudus`` in the status step)."""
    assert second_demo_run.code == 0, second_demo_run.stderr
    first = {r["invoice_number"] for r in demo_run.csv_rows("transfer_outcomes.csv")}
    eligible = second_demo_run.csv_rows("transfer_plan_eligible.csv")
    assert all(r["kind"] == "credit_note" and r["invoice_number"] not in first for r in eligible)
    created = {
        r["invoice_number"]
        for r in second_demo_run.csv_rows("transfer_outcomes.csv")
        if r["outcome"] == "created"
    }
    assert created == {r["invoice_number"] for r in eligible}
    assert not created & first
    excluded = second_demo_run.csv_rows("transfer_plan_excluded.csv")
    assert any(r["reason"] == "already transferred (ledger)" for r in excluded)


def test_broken_params_exit_2_naming_the_file_and_key_and_start_no_run(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        DEMO.read_text("utf-8").replace(
            "period_start: 2026-08-01", "period_start: first of August"
        ),
        "utf-8",
    )
    run = recon_run(broken, tmp_path / "out", tmp_path)
    assert run.code == 2
    assert str(broken) in run.stderr and "'period_start'" in run.stderr
    assert not (tmp_path / "out").exists()


def test_an_unknown_location_exits_2_and_its_report_says_what_failed_and_where(
    tmp_path: Path,
) -> None:
    """``--location`` names a location Nexudus does not know (the demo params have no locations
    map, so only Nexudus can tell): a params error, exit 2, not a failed step's 1."""
    run = recon_run(DEMO, tmp_path / "out", tmp_path, "--location", "Hive Atlantis")
    assert run.code == 2, run.stderr
    steps = cli.notebooks_in_order()
    first, later = steps[0].stem, [nb.stem for nb in steps[1:]]
    assert (run.run_dir / steps[0].name).exists(), "papermill writes the failed notebook"
    assert (run.run_dir / "html" / f"{first}.html").exists()
    lines = run.stdout.strip().splitlines()
    assert lines[-2] == f"report: {(run.run_dir / 'audit.xlsx').resolve()}"
    assert lines[-1] == f"step {first} failed → exit 2"
    assert f"step {first} failed" in run.stderr and "Hive Atlantis" in run.stderr

    wb = openpyxl.load_workbook(run.run_dir / "audit.xlsx")
    summary = {(r["section"], r["item"]): r["value"] for r in sheet_records(wb["Run"])}
    assert summary[("step", first)] == "failed" and all(
        summary[("step", s)] == "skipped" for s in later
    )
    assert str(summary[("run", "result")]).startswith(f"FAILED: {first}")
    errors = sheet_records(wb["Errors"])
    assert len(errors) == 1 and list(errors[0]) == ["kind", "where", "what", "meaning", "fix"]
    kind, where, what, meaning = (errors[0][k] for k in ("kind", "where", "what", "meaning"))
    assert kind == "step failed" and where.startswith(f"{first}, In [")
    # "where" names the cell by its number and first line: the cell that connects.
    number, line = where.removeprefix(f"{first}, In [").split("]: ", 1)
    executed = json.loads((run.run_dir / steps[0].name).read_text("utf-8"))
    (cell,) = [c for c in executed["cells"] if str(c.get("execution_count")) == number]
    source = "".join(cell["source"])
    assert source.strip().startswith(line) and "connect(" in source, (where, source)
    assert (
        what.startswith("ParamsError: no Nexudus location 'Hive Atlantis'")
        and "key 'location'" in what
    )
    assert all(s in meaning for s in later)
    assert "No data" in wb["Transfers"]["A2"].value


# ---- in-process: ordering, skips, Ctrl-C and what a notebook is given (no kernels) ---------------
def fake_notebooks(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("01_mapping_check", "02_transfer", "03_status_sync", "04_audit_report"):
        shutil.copy(ROOT / "notebooks" / "01_mapping_check.ipynb", folder / f"{name}.ipynb")
    return cli.notebooks_in_order(folder)


def test_the_report_notebook_is_not_a_step_and_steps_run_in_number_order(tmp_path: Path) -> None:
    assert [p.stem for p in fake_notebooks(tmp_path)] == [
        "01_mapping_check",
        "02_transfer",
        "03_status_sync",
    ]


def test_a_notebook_gets_only_the_paths_and_the_run_switches_it_declares(tmp_path: Path) -> None:
    params = load_params(DEMO)
    mapping = cli.notebook_parameters(
        ROOT / "notebooks" / "01_mapping_check.ipynb", DEMO, tmp_path, params
    )
    assert mapping == {"params_file": str(DEMO.resolve()), "output_dir": str(tmp_path.resolve())}
    transfer = cli.notebook_parameters(
        ROOT / "notebooks" / "02_transfer.ipynb", DEMO, tmp_path, params
    )
    assert transfer == mapping | {"push": True}


def test_after_a_failed_step_the_later_ones_are_skipped_and_the_report_is_still_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    notebooks = fake_notebooks(tmp_path / "nb")
    ran = []

    def fake_step(nb: Path, *args: object) -> StepRun:
        ran.append(nb.stem)
        status = StepStatus.FAILED if nb.stem == "02_transfer" else StepStatus.OK
        return StepRun(
            nb.name,
            status,
            error="ServiceUnavailable: Xero did not answer" if status == "failed" else "",
        )

    monkeypatch.setattr(cli, "run_step", fake_step)
    code = cli.run(DEMO, tmp_path / "out", notebooks=notebooks)
    assert code == 1 and ran == ["01_mapping_check", "02_transfer"]
    run_dir = next((tmp_path / "out").iterdir())
    steps = json.loads((run_dir / "run.json").read_text("utf-8"))["steps"]
    assert [s["status"] for s in steps] == ["ok", "failed", "skipped"]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2:] == [
        f"report: {(run_dir / 'audit.xlsx').resolve()}",
        "step 02_transfer failed → exit 1",
    ]


def test_ctrl_c_exits_130_and_still_reports_what_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebooks = fake_notebooks(tmp_path / "nb")

    def fake_step(nb: Path, *args: object) -> StepRun:
        if nb.stem == "02_transfer":
            raise KeyboardInterrupt
        return StepRun(nb.name, StepStatus.OK)

    monkeypatch.setattr(cli, "run_step", fake_step)
    assert cli.run(DEMO, tmp_path / "out", notebooks=notebooks) == 130
    run_dir = next((tmp_path / "out").iterdir())
    steps = json.loads((run_dir / "run.json").read_text("utf-8"))["steps"]
    assert [(s["status"], s["error"][:17]) for s in steps] == [
        ("ok", ""),
        ("failed", "KeyboardInterrupt"),
        ("skipped", ""),
    ]
    assert (run_dir / "audit.xlsx").exists()


def test_only_runs_the_named_steps_and_marks_the_others_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "run_step", lambda nb, *a: StepRun(nb.name, StepStatus.OK))
    assert (
        cli.run(
            DEMO, tmp_path / "out", only=["transfer"], notebooks=fake_notebooks(tmp_path / "nb")
        )
        == 0
    )
    steps = json.loads((next((tmp_path / "out").iterdir()) / "run.json").read_text("utf-8"))[
        "steps"
    ]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("01_mapping_check.ipynb", "skipped"),
        ("02_transfer.ipynb", "ok"),
        ("03_status_sync.ipynb", "skipped"),
    ]


def test_two_runs_in_the_same_second_get_their_own_folders(tmp_path: Path) -> None:
    assert cli.new_run_dir(tmp_path) != cli.new_run_dir(tmp_path)


def test_recon_login_signs_in_to_a_web_app_with_pkce_and_keeps_the_tokens(
    sandbox, tmp_path, monkeypatch, capsys
) -> None:
    """`recon login` against the sandbox's web app: open the address, paste the redirect, tokens
    stored."""
    import httpx

    from recon.cli import login
    from recon.clients.tokens import TokenStore

    app = sandbox.xero_apps["recon demo (web app)"]
    params = tmp_path / "live.yaml"
    params.write_text(
        "target: live\n"
        "xero:\n"
        f"  api_url: {sandbox.xero_api_url}\n  identity_url: {sandbox.xero_identity_url}\n"
        f"  token_url: {sandbox.xero_token_url}\n  authorize_url: {sandbox.xero_authorize_url}\n"
        "  grant: authorization_code\n  client_id_env: WEB_APP_ID\n"
        f"  redirect_uri: {app['redirect_uris'][0]}\n"
    )
    monkeypatch.setenv("WEB_APP_ID", app["client_id"])

    def browser(prompt: str) -> str:
        address = capsys.readouterr().out.splitlines()[-1]
        return httpx.get(address, follow_redirects=False).headers["Location"]

    assert login(params, ask=browser) == 0
    out = capsys.readouterr().out
    assert "connected: Hive Coworking UK Ltd" in out
    saved = list(TokenStore().folder.glob("*.json"))
    assert len(saved) == 1 and "refresh_token" in saved[0].read_text()
    assert saved[0].read_text().split('"refresh_token": "')[1].split('"')[0] not in out


def test_recon_login_refuses_a_custom_connection_params_file(tmp_path) -> None:
    from recon.cli import main

    params = tmp_path / "cc.yaml"
    params.write_text("target: live\n")
    assert main(["login", str(params)]) == 2


def test_run_location_runs_one_location_into_its_own_organisation(state: Path) -> None:
    """`recon run --location` (how a scheduler fans locations out): Dublin's invoices go to the
    Irish organisation."""
    env = {
        **os.environ,
        "RECON_SANDBOX_DIR": str(state / "sandbox"),
        "RECON_CONFIG_DIR": str(state / "config"),
    }
    out = state / "out-dublin"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "recon.cli",
            "run",
            str(DEMO),
            "--out",
            str(out),
            "--location",
            "Hive Dublin Docklands",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    run_dir = next(out.iterdir())
    summary = {
        (r["section"], r["item"]): r["value"]
        for r in csv.DictReader((run_dir / "csv" / "summary.csv").open())
    }
    assert summary[("context", "location")] == "Hive Dublin Docklands"
    assert summary[("context", "organisation")] == "Hive Coworking Ireland Ltd"
    outcomes = list(csv.DictReader((run_dir / "transfer_outcomes.csv").open()))
    assert outcomes and {r["outcome"] for r in outcomes} == {"created"}
    assert all(r["invoice_number"].startswith("DUB-") and r["currency"] == "EUR" for r in outcomes)


# ---- a run over several locations ----------------------------------------------------------------
DEMO_ALL = ROOT / "tests" / "params" / "two-locations.yaml"
FOLDERS = {"Hive Shoreditch": "hive-shoreditch", "Hive Dublin Docklands": "hive-dublin-docklands"}
PREFIX = {"Hive Shoreditch": "SHO-", "Hive Dublin Docklands": "DUB-"}
ORGANISATION = {
    "Hive Shoreditch": "Hive Coworking UK Ltd",
    "Hive Dublin Docklands": "Hive Coworking Ireland Ltd",
}
SHEETS = [
    "Summary",
    "Run",
    "Locations",
    "Account mapping",
    "Tax mapping",
    "Transfers",
    "Status differences",
    "Errors",
]


@pytest.fixture(scope="module")
def all_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-all-locations")


@pytest.fixture(scope="module")
def all_locations_run(all_state: Path) -> Run:
    """tests/params/two-locations.yaml on a sandbox of its own: both own-organisation locations,
    each to its own."""
    return recon_run(DEMO_ALL, all_state / "out", all_state)


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_a_run_over_the_locations_map_runs_each_location_into_its_own_folder(
    all_locations_run: Run,
) -> None:
    import nbformat

    run = all_locations_run
    assert run.code == 0, run.stderr
    steps = cli.notebooks_in_order()
    assert sorted(p.name for p in run.run_dir.iterdir() if p.is_dir()) == sorted(
        [*FOLDERS.values(), "csv", "html"]
    )
    assert not list(run.run_dir.glob("*.ipynb")), "a location's notebooks are in its own folder"
    for name, folder in FOLDERS.items():
        for nb in steps:
            executed = nbformat.read(run.run_dir / folder / nb.name, as_version=4)
            assert executed.metadata["papermill"]["parameters"]["location"] == name
            assert executed.metadata["papermill"]["parameters"]["output_dir"] == str(
                (run.run_dir / folder).resolve()
            )
        record = json.loads((run.run_dir / folder / "run.json").read_text("utf-8"))
        assert record["location"] == name and [s["status"] for s in record["steps"]] == [
            "ok"
        ] * len(steps)
        assert sorted(p.stem for p in (run.run_dir / "html" / folder).glob("*.html")) == [
            nb.stem for nb in steps
        ]
    lines = run.stdout.strip().splitlines()
    assert lines.index("location Hive Shoreditch -> hive-shoreditch/") < lines.index(
        "location Hive Dublin Docklands -> hive-dublin-docklands/"
    ), "in the map's order"
    assert lines[-2] == f"report: {(run.run_dir / 'audit.xlsx').resolve()}"
    assert lines[-1].endswith("→ exit 0")


def test_every_invoice_of_a_location_went_to_its_own_organisation_and_none_to_the_other(
    all_locations_run: Run, all_state: Path
) -> None:
    from recon.session import connect, register_sandbox

    assert all_locations_run.code == 0, all_locations_run.stderr
    sent: dict[str, set[str]] = {}
    for name, folder in FOLDERS.items():
        outcomes = rows_of(all_locations_run.run_dir / folder / "transfer_outcomes.csv")
        assert outcomes and {r["outcome"] for r in outcomes} == {"created"}
        assert all(r["invoice_number"].startswith(PREFIX[name]) for r in outcomes)
        sent[name] = {r["invoice_number"] for r in outcomes}
    currencies = {
        name: {
            r["currency"] for r in rows_of(all_locations_run.run_dir / f / "transfer_outcomes.csv")
        }
        for name, f in FOLDERS.items()
    }
    assert currencies["Hive Dublin Docklands"] == {"EUR"} and "GBP" in currencies["Hive Shoreditch"]

    box = recon.sandbox.start(
        all_state / "sandbox"
    )  # the run has exited: read what Xero holds, over HTTP
    register_sandbox(box)
    try:
        params = load_params(DEMO_ALL).with_overrides(sandbox_dir=str(box.state_dir))
        for name in FOLDERS:
            with connect(params, location=name) as conn:
                assert conn.organisation["Name"] == ORGANISATION[name]
                held = {str(i["InvoiceNumber"]) for i in conn.xero.iter_invoices(summary_only=True)}
                held |= {str(n["CreditNoteNumber"]) for n in conn.xero.iter_credit_notes()}
            assert sent[name] <= held, f"{name}'s invoices are in {ORGANISATION[name]}"
            other = next(p for n, p in PREFIX.items() if n != name)
            assert not [n for n in held if n.startswith(other)], (
                f"no other location's invoice in {ORGANISATION[name]}"
            )
    finally:
        box.stop()


def test_the_one_workbook_has_a_locations_sheet_and_a_location_column_on_every_table(
    all_locations_run: Run,
) -> None:
    assert all_locations_run.code == 0, all_locations_run.stderr
    wb = openpyxl.load_workbook(all_locations_run.run_dir / "audit.xlsx")
    assert wb.sheetnames == SHEETS
    for sheet in SHEETS[1:]:  # the Summary is a laid-out page, not a table
        assert wb[sheet]["A1"].value == "Location", sheet
    # The Summary's tie-out is one block per location, in the map's order, as its CSV copy says.
    tie_out = rows_of(all_locations_run.run_dir / "csv" / "tie_out.csv")
    assert tie_out and {r["location"] for r in tie_out} == set(FOLDERS)
    assert next(iter(tie_out[0])) == "location", "the location column first"
    titles = [c.value for (c,) in wb["Summary"].iter_rows(min_col=1, max_col=1)]
    assert [t for t in titles if t in FOLDERS] == list(FOLDERS)
    locations = sheet_records(wb["Locations"])
    assert [r["location"] for r in locations if r["location"]] == sorted(
        [r["location"] for r in locations], key=list(FOLDERS).index
    ), "one block per location, in the map's order"
    assert {r["location"] for r in locations} == set(FOLDERS) and {
        r["status"] for r in locations
    } == {"ok"}
    for name, folder in FOLDERS.items():
        created = rows_of(all_locations_run.run_dir / folder / "transfer_outcomes.csv")
        for currency in {r["currency"] for r in created}:
            row = next(r for r in locations if r["location"] == name and r["currency"] == currency)
            assert row["transferred"] == sum(r["currency"] == currency for r in created)
            assert row["organisation"] == ORGANISATION[name] and row["02_transfer"] == "ok"
    transfers = sheet_records(wb["Transfers"])
    assert len(transfers) == sum(
        len(rows_of(all_locations_run.run_dir / f / "transfer_outcomes.csv"))
        for f in FOLDERS.values()
    )
    assert all(str(r["invoice_number"]).startswith(PREFIX[str(r["location"])]) for r in transfers)
    summary = {
        (r["location"], r["section"], r["item"]): r["value"] for r in sheet_records(wb["Run"])
    }
    assert summary[(None, "run", "result")] == "2 of 2 locations ran, no step failed"
    assert all(
        summary[(name, "context", "organisation")] == org for name, org in ORGANISATION.items()
    )
    assert [r["kind"] for r in sheet_records(wb["Errors"])] == ["none"]


def test_a_location_in_an_unreachable_organisation_fails_alone_exits_2_and_the_report_says_why(
    tmp_path: Path,
) -> None:
    params = tmp_path / "dublin-unreachable.yaml"
    params.write_text(
        DEMO_ALL.read_text("utf-8")
        .replace("organisation: Hive Coworking Ireland Ltd", "organisation: Other Company Ltd")
        .replace(
            "tax_map_file: params/tax_map.yaml", f"tax_map_file: {ROOT / 'params' / 'tax_map.yaml'}"
        ),
        "utf-8",
    )
    assert "Other Company Ltd" in params.read_text("utf-8")
    run = recon_run(params, tmp_path / "out", tmp_path)
    assert run.code == 2, run.stderr  # the params name an organisation the app cannot reach
    shoreditch, dublin = (run.run_dir / f for f in FOLDERS.values())
    assert all((shoreditch / nb.name).exists() for nb in cli.notebooks_in_order())
    assert {r["outcome"] for r in rows_of(shoreditch / "transfer_outcomes.csv")} == {"created"}, (
        "Shoreditch still completes"
    )
    assert (dublin / "01_mapping_check.ipynb").exists() and not (
        dublin / "transfer_outcomes.csv"
    ).exists()
    key = "locations.Hive Dublin Docklands.organisation"
    assert (
        "recon: location Hive Dublin Docklands: 01_mapping_check failed" in run.stderr
        and key in run.stderr
    )
    lines = run.stdout.strip().splitlines()
    assert lines[-2] == f"report: {(run.run_dir / 'audit.xlsx').resolve()}"
    assert lines[-1].endswith("; location Hive Dublin Docklands failed → exit 2")

    wb = openpyxl.load_workbook(run.run_dir / "audit.xlsx")
    status = {r["location"]: r for r in sheet_records(wb["Locations"])}
    assert status["Hive Shoreditch"]["status"] == "ok"
    failed = status["Hive Dublin Docklands"]
    assert (failed["status"], failed["01_mapping_check"], failed["02_transfer"]) == (
        "failed",
        "failed",
        "skipped",
    )
    assert "not connected" in failed["error"] and key in failed["error"]
    errors = sheet_records(wb["Errors"])
    assert [(e["location"], e["kind"]) for e in errors] == [
        ("Hive Dublin Docklands", "step failed")
    ]
    assert errors[0]["where"].startswith("01_mapping_check, In [") and key in errors[0]["what"]
    assert "html/hive-dublin-docklands/01_mapping_check.html" in errors[0]["fix"]
    summary = {
        (r["location"], r["section"], r["item"]): r["value"] for r in sheet_records(wb["Run"])
    }
    assert summary[(None, "run", "result")] == "FAILED: Hive Dublin Docklands (01_mapping_check)"
    notes = [r for r in sheet_records(wb["Transfers"]) if r["location"] == "Hive Dublin Docklands"]
    assert len(notes) == 1 and "02_transfer was skipped" in notes[0]["note"]

    # `recon report` rebuilds the same report from the folder (the params file is the one the run
    # recorded).
    assert cli.main(["report", str(run.run_dir)]) == 2
    again = {
        r["location"]: r["status"]
        for r in sheet_records(openpyxl.load_workbook(run.run_dir / "audit.xlsx")["Locations"])
    }
    assert again == {"Hive Shoreditch": "ok", "Hive Dublin Docklands": "failed"}


def test_ctrl_c_in_a_run_over_locations_exits_130_and_reports_the_rest_as_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebooks = fake_notebooks(tmp_path / "nb")
    ran: list[tuple[str | None, str]] = []

    def fake_step(
        nb: Path, params_file: Path, run_dir: Path, params: Any, location: str | None = None
    ) -> StepRun:
        ran.append((location, nb.stem))
        if nb.stem == "02_transfer":
            raise KeyboardInterrupt
        return StepRun(nb.name, StepStatus.OK)

    monkeypatch.setattr(cli, "run_step", fake_step)
    assert cli.run(DEMO_ALL, tmp_path / "out", notebooks=notebooks) == 130
    assert ran == [("Hive Shoreditch", "01_mapping_check"), ("Hive Shoreditch", "02_transfer")]
    run_dir = next((tmp_path / "out").iterdir())
    record = json.loads((run_dir / "run.json").read_text("utf-8"))
    assert [(loc["name"], loc["status"]) for loc in record["locations"]] == [
        ("Hive Shoreditch", "failed"),
        ("Hive Dublin Docklands", "not run"),
    ]
    errors = list(csv.DictReader((run_dir / "csv" / "errors.csv").open(encoding="utf-8")))
    assert [(e["location"], e["kind"]) for e in errors] == [
        ("Hive Shoreditch", "step failed"),
        ("Hive Dublin Docklands", "location not run"),
    ]


def test_a_location_task_of_a_shared_run_writes_only_its_folder_and_recon_report_finds_the_missing_one(  # noqa: E501  the name is the sentence it checks
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "run_step", lambda nb, *a, **k: StepRun(nb.name, StepStatus.OK))
    notebooks = fake_notebooks(tmp_path / "nb")
    assert (
        cli.run(
            DEMO_ALL,
            tmp_path / "out",
            notebooks=notebooks,
            location="hive dublin docklands",
            run_name="nightly",
        )
        == 0
    )
    run_dir = tmp_path / "out" / "nightly"
    assert [p.name for p in run_dir.iterdir()] == ["hive-dublin-docklands"], (
        "no report: that is the report task's job"
    )
    assert cli.main(["report", str(run_dir)]) == 1, "Shoreditch has no results in this run"
    assert "recon: location Hive Shoreditch: not run" in capsys.readouterr().err
    assert (
        cli.run(
            DEMO_ALL,
            tmp_path / "out",
            notebooks=notebooks,
            location="Hive Shoreditch",
            run_name="nightly",
        )
        == 0
    )
    assert cli.main(["report", str(run_dir)]) == 0
    assert (
        capsys.readouterr().out.strip().splitlines()[-1]
        == f"report: {(run_dir / 'audit.xlsx').resolve()}"
    )


def test_run_id_must_be_one_folder_name_and_report_needs_a_run_folder(tmp_path: Path) -> None:
    assert (
        cli.main(["run", str(DEMO), "--out", str(tmp_path / "out"), "--run-id", "../elsewhere"])
        == 2
    )
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert cli.main(["report", str(tmp_path / "no-such-run")]) == 2
    (tmp_path / "empty").mkdir()
    assert cli.main(["report", str(tmp_path / "empty"), "--params", str(DEMO)]) == 2


# ---- exit code 3: every step ran, but some writes are not done -----------------------------------
def set_tax_rate_in_file(xero_db: Path, organisation: str, tax_type: str, rate: str) -> str:
    """A person changes a tax rate's percentage in Xero, written into the sandbox's books file
    (the sandbox's API only reads tax rates, reference §5); returns the organisation's id."""
    db = sqlite3.connect(xero_db, timeout=30, isolation_level=None)
    try:
        tenants = [
            t
            for t, doc in db.execute("SELECT tenant, doc FROM orgs")
            if jsonutil.loads(doc)["Name"] == organisation
        ]
        (raw,) = db.execute(
            "SELECT doc FROM records WHERE tenant=? AND kind='TaxRate' AND id=?",
            (tenants[0], tax_type),
        ).fetchone()
        doc = jsonutil.loads(raw)
        value = jsonutil.loads(rate)
        doc.update(EffectiveRate=value, DisplayTaxRate=value)
        doc["TaxComponents"] = [{**c, "Rate": value} for c in doc.get("TaxComponents") or []]
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "UPDATE records SET doc=? WHERE tenant=? AND kind='TaxRate' AND id=?",
            (jsonutil.dumps(doc), tenants[0], tax_type),
        )
        db.execute("COMMIT")
    finally:
        db.close()
    return str(tenants[0])


def test_a_run_whose_invoices_xero_booked_otherwise_than_planned_exits_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recon run` with real kernels and the real push; between the plan and the push someone
    changes the 20% VAT rate in Xero to 17.5%, so Xero books other totals than planned.

    The plan and the push are two cells of one notebook (02_transfer), so the change is made when
    the plan's file (``transfer_plan_eligible.csv``) appears. To make it land before the push's
    first invoice write whatever the timing, the test holds the ledger's write lock from before
    the run until the change is made: the push records every intent in the ledger before it
    writes to Xero, so it waits there (SQLite's busy timeout) and only then sends. Every step
    runs (no exit 1); the failed invoices make the run exit 3, and the report lists them.
    """
    state = tmp_path / "state"
    ledger_path = tmp_path / "ledger.sqlite"
    params = tmp_path / "changed-vat.yaml"
    params.write_text(
        DEMO.read_text("utf-8")
        .replace("sandbox_dir: null", f"sandbox_dir: {state}")
        .replace("ledger_file: null", f"ledger_file: {ledger_path}")
        .replace(
            "tax_map_file: params/tax_map.yaml", f"tax_map_file: {ROOT / 'params' / 'tax_map.yaml'}"
        ),
        "utf-8",
    )
    recon.sandbox.start(state).stop()  # seeded now: the test can find the tax rate in its file
    Ledger(ledger_path).close()  # stamped now: opening it later needs no write
    hold = sqlite3.connect(ledger_path, isolation_level=None, check_same_thread=False, timeout=30)
    hold.execute("BEGIN IMMEDIATE")
    out = tmp_path / "out"
    finished = threading.Event()
    changed: list[tuple[Path, str]] = []

    def change_vat_once_planned() -> None:
        try:
            while not finished.is_set():
                planned = list(out.glob("*/transfer_plan_eligible.csv"))
                if planned:
                    tenant = set_tax_rate_in_file(
                        state / "xero.sqlite", "Hive Coworking UK Ltd", "OUTPUT2", "17.5"
                    )
                    changed.append((planned[0], tenant))
                    return
                time.sleep(0.05)
        finally:
            hold.execute("ROLLBACK")

    watcher = threading.Thread(target=change_vat_once_planned, daemon=True)
    watcher.start()
    try:
        code = cli.main(["run", str(params), "--out", str(out)])
    finally:
        finished.set()
        watcher.join(timeout=60)
        hold.close()
    captured = capsys.readouterr()
    assert changed, "the plan's file never appeared"
    assert code == cli.EXIT_WRITES_UNFINISHED == 3, captured.err
    ((planned_file, tenant),) = changed
    run_dir = planned_file.parent
    steps = json.loads((run_dir / "run.json").read_text("utf-8"))["steps"]
    assert {s["status"] for s in steps} == {"ok"}
    outcomes = rows_of(run_dir / "transfer_outcomes.csv")
    failed = [r for r in outcomes if r["outcome"] == "failed"]
    assert failed and all(r["messages"].startswith("Xero booked total ") for r in failed)
    assert all(r["xero_id"] for r in failed), "the ledger and the table keep Xero's id"
    assert "recon: transfer " in captured.err and "Xero booked total" in captured.err
    errors = rows_of(run_dir / "csv" / "errors.csv")
    assert {e["kind"] for e in errors} == {"transfer failed"}
    assert len(errors) == len(failed)
    with Ledger(ledger_path) as ledger:
        rows = ledger.transfers(tenant).set_index("invoice_number")
    for r in failed:
        row = rows.loc[r["invoice_number"]]
        assert (row["state"], row["xero_id"]) == ("failed", r["xero_id"])


def test_help_lists_every_exit_code_and_version_names_the_installed_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from importlib.metadata import version

    for argv in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit):
            cli.main(argv)
        text = " ".join(capsys.readouterr().out.split())
        for code in ("0 every step ran", "1 a step failed", "2 bad params", "3 every step ran"):
            assert code in text, (argv, code)
        assert "130 interrupted by Ctrl-C or SIGTERM" in text
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"recon {version('recon')}"


# ---- exit code 2 from the command line: nothing runs, no run folder ------------------------------
@pytest.mark.parametrize(
    ("params", "args", "says"),
    [
        (
            DEMO,
            ["--only", "tranfser"],
            "the steps are 01_mapping_check, 02_transfer, 03_status_sync",
        ),
        (DEMO_ALL, ["--location", "Hive Atlantis"], "is not in the locations map"),
        (DEMO, ["--period", "last-week"], "last-month, this-month, month-to-date, last-quarter"),
        (DEMO, ["--period", "2026-09-31..2026-10-31"], "START..END"),
    ],
)
def test_a_typo_in_only_location_or_period_exits_2_naming_the_choices_and_runs_nothing(
    tmp_path: Path, params: Path, args: list[str], says: str
) -> None:
    run = recon_run(params, tmp_path / "out", tmp_path, *args)
    assert run.code == 2, run.stderr
    assert says in run.stderr and repr(args[1]) in run.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "sandbox").exists()


# ---- --period and --dry-run over a real run ------------------------------------------------------
def test_a_dry_run_of_one_month_plans_and_reports_that_month_and_writes_nothing(
    tmp_path: Path,
) -> None:
    """`recon run --period START..END --dry-run`: the steps read the run folder's params.yaml
    (dry_run true, push false, the month), plan and report; no invoice reaches the ledger."""
    run = recon_run(
        DEMO,
        tmp_path / "out",
        tmp_path,
        "--period",
        "2026-09-01..2026-09-30",
        "--dry-run",
        "--only",
        "mapping",
        "--only",
        "transfer",
    )
    assert run.code == 0, run.stderr
    used = load_params(run.run_dir / cli.RUN_PARAMS)
    assert (used.dry_run, used.push, used.apply, used.apply_xero) == (True, False, False, False)
    assert (str(used.period_start), str(used.period_end)) == ("2026-09-01", "2026-09-30")
    assert used.tax_map_file == str(ROOT / "params" / "tax_map.yaml"), "paths made absolute"
    record = json.loads((run.run_dir / "run.json").read_text("utf-8"))
    assert record["params_path"] == str((run.run_dir / cli.RUN_PARAMS).resolve())
    assert [s["status"] for s in record["steps"]] == ["ok", "ok", "skipped"]

    planned = run.csv_rows("transfer_plan_eligible.csv")
    assert planned and not (run.run_dir / "transfer_outcomes.csv").exists()
    assert sqlite3.connect(tmp_path / "sandbox" / "ledger.sqlite").execute(
        "SELECT COUNT(*) FROM transfers"
    ).fetchone() == (0,)
    assert {r["date"][:7] for r in planned} == {"2026-09"}, "only September's invoices"
    summary = {
        (r["section"], r["item"]): r["value"] for r in rows_of(run.run_dir / "csv" / "summary.csv")
    }
    assert summary[("parameter", "dry_run")] == "true"
    assert summary[("parameter", "push")] == "false"
    assert summary[("parameter", "period_start")] == "2026-09-01"
    assert last_line(run.stdout) == (
        f"dry run, nothing written: {len(planned)} invoices planned, none sent → exit 0"
    )


# ---- exit code 3 when a limit defers the writes; 130 on SIGTERM ---------------------------------
def test_a_push_the_day_s_xero_limit_defers_entirely_exits_3_with_the_counts(
    tmp_path: Path,
) -> None:
    """Xero allows each organisation 5,000 calls a day and says in every answer how many are left
    (``X-DayLimit-Remaining``, xero-api.md §9). The run talks to a sandbox of this test as to the
    real services (``target: live``), whose "day" is one second long and holds 10 calls: every
    answer says at most 10 are left, all of them recon's reserve for its own reads, so the push
    defers every invoice to the next run. Every step runs (reads wait for the next "day"); the
    run exits 3, and the last line gives the count."""
    box = recon.sandbox.start(
        tmp_path / "sandbox",
        limits=recon.sandbox.RateLimits(per_day=10, day_seconds=1.0, minute_seconds=1.0),
    )
    try:
        app = next(
            a
            for a in box.xero_apps.values()
            if a["grant"] == "client_credentials" and box.xero_tenant_id in a["tenant_ids"]
        )
        params = tmp_path / "live.yaml"
        params.write_text(
            DEMO.read_text("utf-8")
            .replace("target: sandbox", "target: live")
            .replace("ledger_file: null", f"ledger_file: {tmp_path / 'ledger.sqlite'}")
            .replace(
                "tax_map_file: params/tax_map.yaml",
                f"tax_map_file: {ROOT / 'params' / 'tax_map.yaml'}",
            )
            + "xero:\n"
            f"  api_url: {box.xero_api_url}\n  identity_url: {box.xero_identity_url}\n"
            f"  token_url: {box.xero_token_url}\n  authorize_url: {box.xero_authorize_url}\n"
            f"nexudus:\n  api_url: {box.nexudus_api_url}\n",
            "utf-8",
        )
        run = recon_run(
            params,
            tmp_path / "out",
            tmp_path / "state",
            "--only",
            "mapping",
            "--only",
            "transfer",
            XERO_CLIENT_ID=app["client_id"],
            XERO_CLIENT_SECRET=app["client_secret"],
            NEXUDUS_USERNAME=box.nexudus_username,
            NEXUDUS_PASSWORD=box.nexudus_password,
        )
    finally:
        box.stop()
    assert run.code == cli.EXIT_WRITES_UNFINISHED == 3, run.stderr
    outcomes = run.csv_rows("transfer_outcomes.csv")
    assert outcomes and {r["outcome"] for r in outcomes} == {"deferred"}
    assert all("left in today's budget" in r["messages"] for r in outcomes)
    assert len(outcomes) == len(run.csv_rows("transfer_plan_eligible.csv"))
    assert last_line(run.stdout) == f"{len(outcomes)} invoices: {len(outcomes)} deferred → exit 3"
    assert "recon: transfer " in run.stderr and ": deferred: " in run.stderr


def _kernel_interrupted(*args: object, **kwargs: object) -> None:
    """papermill's answer for a step whose kernel was interrupted mid-cell."""
    import papermill as pm

    raise pm.PapermillExecutionError(3, 2, "push(...)", "KeyboardInterrupt", "", [])


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="signals need the main thread"
)
def test_a_step_whose_kernel_was_interrupted_is_stopped_by_the_sigterm_handled_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel reports its KeyboardInterrupt before this process has run its SIGTERM handler
    (the signal reached another thread): the step waits for it and is recorded as terminated,
    not as a failed cell."""
    import papermill as pm

    late = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))

    def interrupted_then_signalled(*args: object, **kwargs: object) -> None:
        late.start()
        _kernel_interrupted()

    monkeypatch.setattr(pm, "execute_notebook", interrupted_then_signalled)
    notebook = fake_notebooks(tmp_path / "nb")[1]
    outcome: StepRun | BaseException
    with cli.sigterm_as_interrupt():
        try:
            outcome = cli.run_step(notebook, DEMO, tmp_path, load_params(DEMO))
        except KeyboardInterrupt as stopped:
            outcome = stopped
        finally:  # a SIGTERM not yet handled must never reach pytest's own handler
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            late.join()
    assert isinstance(outcome, cli.Terminated), outcome
    assert isinstance(outcome.__context__, pm.PapermillExecutionError)
    assert cli.TERMINATED.is_set()


def test_a_step_whose_kernel_was_interrupted_without_sigterm_stops_the_run_as_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import papermill as pm

    monkeypatch.setattr(pm, "execute_notebook", _kernel_interrupted)
    monkeypatch.setattr(cli, "SIGNAL_GRACE_SECONDS", 0.05)
    cli.TERMINATED.clear()
    notebook = fake_notebooks(tmp_path / "nb")[1]
    with pytest.raises(KeyboardInterrupt) as stopped:
        cli.run_step(notebook, DEMO, tmp_path, load_params(DEMO))
    assert type(stopped.value) is KeyboardInterrupt


def test_sigterm_mid_run_exits_130_and_the_run_folder_still_has_its_report(
    tmp_path: Path,
) -> None:
    """A scheduler stops `recon run` with SIGTERM once the transfer has planned: handled as Ctrl-C
    is, the step in progress is recorded as interrupted, the later ones skipped, and the report of
    what was done is written."""
    proc = subprocess.Popen(
        [*recon_command(), "run", str(DEMO), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        env=run_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not list((tmp_path / "out").glob("*/transfer_plan_eligible.csv")):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == cli.EXIT_INTERRUPTED == 130, stderr
    run = Run(proc.returncode, stdout, stderr, tmp_path / "out")
    steps = json.loads((run.run_dir / "run.json").read_text("utf-8"))["steps"]
    assert [(s["status"], s["error"]) for s in steps] == [
        ("ok", ""),
        ("failed", "Terminated: interrupted (SIGTERM)"),
        ("skipped", ""),
    ]
    assert (run.run_dir / "audit.xlsx").exists()
    errors = rows_of(run.run_dir / "csv" / "errors.csv")
    assert [e["kind"] for e in errors] == ["step failed"] and "SIGTERM" in errors[0]["what"]
    assert last_line(stdout).endswith("; step 02_transfer interrupted → exit 130")
