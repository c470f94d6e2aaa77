"""``recon run`` as a scheduler runs it: a subprocess, a params file, exit codes, the run folder, no secrets.

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
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest

import recon.sandbox
from recon import cli
from recon.params import load_params
from recon.report import StepRun, StepStatus

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


def recon_run(params: Path, out: Path, state: Path) -> Run:
    """``recon run PARAMS --out OUT`` in a subprocess, with the sandbox and tokens in ``state``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XERO_", "NEXUDUS_", "RECON_"))}
    env |= {"RECON_SANDBOX_DIR": str(state / "sandbox"), "RECON_CONFIG_DIR": str(state / "config")}
    script = Path(sys.executable).parent / "recon"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "recon.cli"]
    proc = subprocess.run([*command, "run", str(params), "--out", str(out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    return Run(proc.returncode, proc.stdout, proc.stderr, out)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-state")


@pytest.fixture(scope="module")
def demo_run(state: Path) -> Run:
    return recon_run(DEMO, state / "out-1", state)


@pytest.fixture(scope="module")
def second_demo_run(demo_run: Run, state: Path) -> Run:
    return recon_run(DEMO, state / "out-2", state)


def test_a_demo_run_exits_0_with_the_executed_notebooks_the_workbook_csv_and_html(demo_run: Run) -> None:
    assert demo_run.code == 0, demo_run.stderr
    run_dir = demo_run.run_dir
    steps = cli.notebooks_in_order()
    assert steps and all((run_dir / nb.name).exists() for nb in steps)
    assert not (run_dir / cli.REPORT_NOTEBOOK).exists(), "the report notebook is not a step of `recon run`"
    assert (run_dir / "audit.xlsx").exists()
    assert {p.name for p in (run_dir / "csv").glob("*.csv")} >= {"summary.csv", "transfers.csv", "errors.csv"}
    assert sorted(p.stem for p in (run_dir / "html").glob("*.html")) == [nb.stem for nb in steps]
    summary = {(r["section"], r["item"]): r["value"] for r in csv.DictReader((run_dir / "csv" / "summary.csv").open())}
    assert all(summary[("step", nb.stem)] == "ok" for nb in steps)
    assert summary[("context", "organisation")] == "Hive Coworking UK Ltd"


def test_the_run_prints_where_its_outputs_are_and_ends_with_the_report_path(demo_run: Run) -> None:
    lines = demo_run.stdout.strip().splitlines()
    assert f"outputs: {demo_run.run_dir.resolve()}" in lines
    assert lines[-1] == f"report: {(demo_run.run_dir / 'audit.xlsx').resolve()}"


def test_push_and_apply_come_from_the_params_so_the_demo_run_writes_to_xero(demo_run: Run) -> None:
    outcomes = demo_run.csv_rows("transfer_outcomes.csv")
    assert outcomes and {r["outcome"] for r in outcomes} == {"created"}
    assert len(outcomes) == len(demo_run.csv_rows("transfer_plan_eligible.csv"))


def test_no_demo_secret_or_saved_token_appears_in_any_file_of_the_run(demo_run: Run, state: Path) -> None:
    assert demo_run.code == 0, demo_run.stderr
    box = recon.sandbox.start(state / "sandbox")
    try:
        secrets = {box.xero_client_secret, box.nexudus_password} | {app["client_secret"] for app in box.xero_apps.values()}
    finally:
        box.stop()
    tokens = {v for path in (state / "config").rglob("*.json") for v in token_values(json.loads(path.read_text("utf-8")))}
    assert tokens, "the kernels should have saved their Xero tokens under RECON_CONFIG_DIR"
    needles = {s.encode() for s in secrets | tokens if s and len(s) >= 8}
    files = [p for p in demo_run.run_dir.rglob("*") if p.is_file()]
    assert len(files) > 10
    leaks = [(p.relative_to(demo_run.run_dir), n[:6]) for p in files for n in needles if n in p.read_bytes()]
    leaks += [("console", n[:6]) for n in needles if n in (demo_run.stdout + demo_run.stderr).encode()]
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


def test_a_second_run_on_the_same_sandbox_transfers_nothing_new(second_demo_run: Run) -> None:
    assert second_demo_run.code == 0, second_demo_run.stderr
    assert second_demo_run.csv_rows("transfer_plan_eligible.csv") == []
    assert not [r for r in second_demo_run.csv_rows("transfer_outcomes.csv") if r["outcome"] == "created"]
    excluded = second_demo_run.csv_rows("transfer_plan_excluded.csv")
    assert any(r["reason"] == "already transferred (ledger)" for r in excluded)


def test_broken_params_exit_2_naming_the_file_and_key_and_start_no_run(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(DEMO.read_text("utf-8").replace("period_start: 2026-08-01", "period_start: first of August"), "utf-8")
    run = recon_run(broken, tmp_path / "out", tmp_path)
    assert run.code == 2
    assert str(broken) in run.stderr and "'period_start'" in run.stderr
    assert not (tmp_path / "out").exists()


def test_a_failing_step_exits_1_and_its_report_says_what_failed_and_where(tmp_path: Path) -> None:
    params = tmp_path / "unknown-location.yaml"
    params.write_text(DEMO.read_text("utf-8").replace("location: Hive Shoreditch", "location: Hive Atlantis")
                      .replace("tax_map_file: params/tax_map.yaml", f"tax_map_file: {ROOT / 'params' / 'tax_map.yaml'}"), "utf-8")
    run = recon_run(params, tmp_path / "out", tmp_path)
    assert run.code == 1, run.stderr
    steps = cli.notebooks_in_order()
    first, later = steps[0].stem, [nb.stem for nb in steps[1:]]
    assert (run.run_dir / steps[0].name).exists(), "papermill writes the failed notebook"
    assert (run.run_dir / "html" / f"{first}.html").exists()
    assert run.stdout.strip().splitlines()[-1] == f"report: {(run.run_dir / 'audit.xlsx').resolve()}"
    assert f"step {first} failed" in run.stderr and "Hive Atlantis" in run.stderr

    wb = openpyxl.load_workbook(run.run_dir / "audit.xlsx")
    summary = {(r[0], r[1]): r[2] for r in wb["Summary"].iter_rows(min_row=2, values_only=True)}
    assert summary[("step", first)] == "failed" and all(summary[("step", s)] == "skipped" for s in later)
    assert str(summary[("run", "result")]).startswith(f"FAILED: {first}")
    errors = list(wb["Errors"].iter_rows(min_row=2, values_only=True))
    assert len(errors) == 1
    kind, where, what, meaning, fix = errors[0]
    assert kind == "step failed" and where.startswith(f"{first}, In [") and "connect(" in where
    assert what.startswith("ParamsError: no Nexudus location 'Hive Atlantis'") and "key 'location'" in what
    assert all(s in meaning for s in later)
    assert "No data" in wb["Transfers"]["A2"].value


# ---- in-process: ordering, skips, Ctrl-C and what a notebook is given (no kernels) --------------------
def fake_notebooks(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("01_mapping_check", "02_transfer", "03_status_sync", "04_audit_report"):
        shutil.copy(ROOT / "notebooks" / "01_mapping_check.ipynb", folder / f"{name}.ipynb")
    return cli.notebooks_in_order(folder)


def test_the_report_notebook_is_not_a_step_and_steps_run_in_number_order(tmp_path: Path) -> None:
    assert [p.stem for p in fake_notebooks(tmp_path)] == ["01_mapping_check", "02_transfer", "03_status_sync"]


def test_a_notebook_gets_only_the_paths_and_the_run_switches_it_declares(tmp_path: Path) -> None:
    params = load_params(DEMO)
    mapping = cli.notebook_parameters(ROOT / "notebooks" / "01_mapping_check.ipynb", DEMO, tmp_path, params)
    assert mapping == {"params_file": str(DEMO.resolve()), "output_dir": str(tmp_path.resolve())}
    transfer = cli.notebook_parameters(ROOT / "notebooks" / "02_transfer.ipynb", DEMO, tmp_path, params)
    assert transfer == mapping | {"push": True}


def test_after_a_failed_step_the_later_ones_are_skipped_and_the_report_is_still_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    notebooks = fake_notebooks(tmp_path / "nb")
    ran = []

    def fake_step(nb: Path, *args: object) -> StepRun:
        ran.append(nb.stem)
        status = StepStatus.FAILED if nb.stem == "02_transfer" else StepStatus.OK
        return StepRun(nb.name, status, error="ServiceUnavailable: Xero did not answer" if status == "failed" else "")

    monkeypatch.setattr(cli, "run_step", fake_step)
    code = cli.run(DEMO, tmp_path / "out", notebooks=notebooks)
    assert code == 1 and ran == ["01_mapping_check", "02_transfer"]
    run_dir = next((tmp_path / "out").iterdir())
    steps = json.loads((run_dir / "run.json").read_text("utf-8"))["steps"]
    assert [s["status"] for s in steps] == ["ok", "failed", "skipped"]
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"report: {(run_dir / 'audit.xlsx').resolve()}"


def test_ctrl_c_exits_130_and_still_reports_what_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebooks = fake_notebooks(tmp_path / "nb")

    def fake_step(nb: Path, *args: object) -> StepRun:
        if nb.stem == "02_transfer":
            raise KeyboardInterrupt
        return StepRun(nb.name, StepStatus.OK)

    monkeypatch.setattr(cli, "run_step", fake_step)
    assert cli.run(DEMO, tmp_path / "out", notebooks=notebooks) == 130
    run_dir = next((tmp_path / "out").iterdir())
    steps = json.loads((run_dir / "run.json").read_text("utf-8"))["steps"]
    assert [(s["status"], s["error"][:17]) for s in steps] == [("ok", ""), ("failed", "KeyboardInterrupt"), ("skipped", "")]
    assert (run_dir / "audit.xlsx").exists()


def test_only_runs_the_named_steps_and_marks_the_others_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "run_step", lambda nb, *a: StepRun(nb.name, StepStatus.OK))
    assert cli.run(DEMO, tmp_path / "out", only=["transfer"], notebooks=fake_notebooks(tmp_path / "nb")) == 0
    steps = json.loads((next((tmp_path / "out").iterdir()) / "run.json").read_text("utf-8"))["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [("01_mapping_check.ipynb", "skipped"), ("02_transfer.ipynb", "ok"),
                                                         ("03_status_sync.ipynb", "skipped")]


def test_two_runs_in_the_same_second_get_their_own_folders(tmp_path: Path) -> None:
    assert cli.new_run_dir(tmp_path) != cli.new_run_dir(tmp_path)


def test_recon_login_signs_in_to_a_web_app_with_pkce_and_keeps_the_tokens(sandbox, tmp_path, monkeypatch, capsys) -> None:
    """`recon login` against the sandbox's web app: open the address, paste the redirect, tokens stored."""
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
        f"  redirect_uri: {app['redirect_uris'][0]}\n")
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
    """`recon run --location` (how a scheduler fans locations out): Dublin's invoices go to the Irish organisation."""
    env = {**os.environ, "RECON_SANDBOX_DIR": str(state / "sandbox"), "RECON_CONFIG_DIR": str(state / "config")}
    out = state / "out-dublin"
    proc = subprocess.run([sys.executable, "-m", "recon.cli", "run", str(DEMO), "--out", str(out),
                           "--location", "Hive Dublin Docklands"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_dir = next(out.iterdir())
    summary = {(r["section"], r["item"]): r["value"] for r in csv.DictReader((run_dir / "csv" / "summary.csv").open())}
    assert summary[("context", "location")] == "Hive Dublin Docklands"
    assert summary[("context", "organisation")] == "Hive Coworking Ireland Ltd"
    outcomes = list(csv.DictReader((run_dir / "transfer_outcomes.csv").open()))
    assert outcomes and {r["outcome"] for r in outcomes} == {"created"}
    assert all(r["invoice_number"].startswith("DUB-") and r["currency"] == "EUR" for r in outcomes)
