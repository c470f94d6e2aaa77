"""The Airflow DAG (``deploy/recon_dag.py``): one task per mapped location, then the report task
after them all.

Airflow is not a dependency of recon (it is huge), so the file is always
parsed with ``ast`` and its ``location_tasks`` function (plain Python and
PyYAML) is compiled on its own and run on ``tests/params/two-locations.yaml``;
the commands it gives are then run, as a worker would, against the sandbox.
Only when Airflow is installed is the DAG file imported as Airflow imports it,
and its tasks and dependencies checked.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAG_FILE = ROOT / "deploy" / "recon_dag.py"
PARAMS = ROOT / "tests" / "params" / "two-locations.yaml"
LOCATIONS = ["Hive Shoreditch", "Hive Dublin Docklands"]
TS = "20261102T023000"  # what Airflow renders {{ ts_nodash }} to


def airflow_installed() -> bool:
    """Airflow itself, not a stray folder named airflow (which Python would take for a namespace
    package)."""
    try:
        spec = importlib.util.find_spec("airflow")
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def tree() -> ast.Module:
    return ast.parse(DAG_FILE.read_text("utf-8"), filename=str(DAG_FILE))


def constant(name: str) -> Any:
    """The value of a module-level ``NAME = <literal or f-string>`` (an f-string as its literal
    parts)."""
    for node in tree().body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return " ".join(
                str(n.value) for n in ast.walk(node.value) if isinstance(n, ast.Constant)
            )
    raise AssertionError(f"{DAG_FILE.name} assigns no {name}")


def standalone() -> ModuleType:
    """``location_tasks`` and the imports it needs, compiled from the DAG file without Airflow."""
    keep: list[ast.stmt] = []
    for node in tree().body:
        if (
            (
                isinstance(node, ast.Import)
                and not any(a.name.startswith("airflow") for a in node.names)
            )
            or (isinstance(node, ast.ImportFrom) and not (node.module or "").startswith("airflow"))
            or (isinstance(node, ast.FunctionDef) and node.name == "location_tasks")
        ):
            keep.append(node)
    module = ModuleType("recon_dag_functions")
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(DAG_FILE), "exec"), module.__dict__)
    return module


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_the_dag_file_names_the_params_file_reads_its_locations_map_and_has_a_report_task_after_all() -> (  # noqa: E501  the name is the sentence the test checks
    None
):
    module = tree()
    assert "params/" in constant("PARAMS") and ".yaml" in constant("PARAMS")
    assert constant("REPORT_TASK") == "audit_report"
    assert any(isinstance(n, ast.Constant) and n.value == "locations" for n in ast.walk(module)), (
        "reads the locations map"
    )
    operators = [
        n
        for n in ast.walk(module)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "BashOperator"
    ]
    report = [
        c
        for c in operators
        if isinstance(keyword(c, "task_id"), ast.Name) and keyword(c, "task_id").id == "REPORT_TASK"
    ]
    assert len(report) == 1 and ast.literal_eval(keyword(report[0], "trigger_rule")) == "all_done"
    assert (
        isinstance(keyword(report[0], "bash_command"), ast.Name)
        and keyword(report[0], "bash_command").id == "REPORT_COMMAND"
    )
    location = [c for c in operators if c is not report[0]]
    assert (
        len(location) == 1 and ast.literal_eval(keyword(location[0], "trigger_rule")) == "all_done"
    ), "a failed location must not stop the next one of its organisation"
    shifts = [
        n for n in ast.walk(module) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.RShift)
    ]
    assert any(isinstance(n.right, ast.Name) and n.right.id == "report" for n in shifts), (
        "every location task >> report"
    )


def test_one_task_per_mapped_location_in_map_order_with_recon_run_location_and_a_shared_run_id() -> (  # noqa: E501  the name is the sentence the test checks
    None
):
    tasks, report = standalone().location_tasks(str(PARAMS), "/srv/recon", "{{ ts_nodash }}")
    assert [t["location"] for t in tasks] == LOCATIONS
    assert [t["task_id"] for t in tasks] == ["run_hive_shoreditch", "run_hive_dublin_docklands"]
    assert [t["after"] for t in tasks] == [None, None], (
        "two organisations: the locations run in parallel"
    )
    for task in tasks:
        argv = shlex.split(str(task["command"]).replace("{{ ts_nodash }}", TS))
        assert argv == [
            "/srv/recon/.venv/bin/recon",
            "run",
            str(PARAMS),
            "--out",
            "/srv/recon/out",
            "--location",
            task["location"],
            "--run-id",
            TS,
        ]
    assert shlex.split(report.replace("{{ ts_nodash }}", TS)) == [
        "/srv/recon/.venv/bin/recon",
        "report",
        f"/srv/recon/out/{TS}",
        "--params",
        str(PARAMS),
    ]


def test_locations_sharing_an_organisation_run_one_after_the_other(tmp_path: Path) -> None:
    params = tmp_path / "four.yaml"
    params.write_text(
        "locations:\n"
        "  Hive Shoreditch: Hive Coworking UK Ltd\n"
        "  North A: {organisation: Hive Coworking North Ltd, tracking_category: Location,"
        " tracking_option: A}\n"
        "  Hive Dublin Docklands: Hive Coworking Ireland Ltd\n"
        "  North B: {organisation: hive coworking north ltd, tracking_category: Location,"
        " tracking_option: B}\n",
        "utf-8",
    )
    tasks, _ = standalone().location_tasks(str(params), "/srv/recon", "{{ ts_nodash }}")
    assert [(t["task_id"], t["after"]) for t in tasks] == [
        ("run_hive_shoreditch", None),
        ("run_north_a", None),
        ("run_hive_dublin_docklands", None),
        ("run_north_b", "run_north_a"),
    ]


def test_a_params_file_without_a_locations_map_is_refused_with_a_clear_message(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="no `locations` map"):
        standalone().location_tasks(
            str(ROOT / "params" / "demo.yaml"), "/srv/recon", "{{ ts_nodash }}"
        )


def test_the_dag_s_commands_run_as_a_worker_would_give_one_report_for_the_run(
    tmp_path: Path,
) -> None:
    """Each location task, rendered, then the report task: one run folder, a folder per location,
    one workbook."""
    repo = tmp_path / "repo"
    (repo / ".venv" / "bin").mkdir(parents=True)
    recon = repo / ".venv" / "bin" / "recon"
    recon.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m recon.cli "$@"\n', "utf-8")
    recon.chmod(0o755)
    params = tmp_path / "params.yaml"
    params.write_text(
        PARAMS.read_text("utf-8")
        .replace(
            "tax_map_file: params/tax_map.yaml", f"tax_map_file: {ROOT / 'params' / 'tax_map.yaml'}"
        )
        .replace("output_dir: out", f"output_dir: {tmp_path / 'out'}"),
        "utf-8",
    )
    tasks, report = standalone().location_tasks(str(params), str(repo), "{{ ts_nodash }}")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XERO_", "NEXUDUS_", "RECON_"))}
    env |= {
        "RECON_SANDBOX_DIR": str(tmp_path / "sandbox"),
        "RECON_CONFIG_DIR": str(tmp_path / "config"),
        "RECON_SANDBOX_XERO_LATENCY": "off",  # Xero's own answer times are the default
    }

    def worker(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", command.replace("{{ ts_nodash }}", TS)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    for task in (
        tasks
    ):  # the mapping check only, to keep the test short: the other steps are recorded as skipped
        done = worker(f"{task['command']} --only mapping")
        assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "out" / TS
    assert sorted(p.name for p in run_dir.iterdir()) == ["hive-dublin-docklands", "hive-shoreditch"]
    assert not (run_dir / "audit.xlsx").exists(), (
        "a location's task leaves the report to the report task"
    )
    built = worker(report)
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().splitlines()[-1] == f"report: {run_dir / 'audit.xlsx'}"
    with (run_dir / "csv" / "locations.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["location"] for r in rows} == set(LOCATIONS)
    assert {(r["status"], r["01_mapping_check"], r["02_transfer"]) for r in rows} == {
        ("ok", "ok", "skipped")
    }


@pytest.mark.skipif(
    not airflow_installed(), reason="Airflow not installed: the DAG file was parsed with ast only"
)
def test_airflow_imports_the_dag_with_one_task_per_location_and_the_report_after_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECON_REPO", str(ROOT))
    monkeypatch.setenv("RECON_PARAMS", str(PARAMS))
    spec = importlib.util.spec_from_file_location("recon_dag", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    locations = {"run_hive_shoreditch", "run_hive_dublin_docklands"}
    assert set(dag.task_ids) == locations | {"audit_report"}
    report = dag.get_task("audit_report")
    assert set(report.upstream_task_ids) == locations and report.trigger_rule == "all_done"
    for task_id in locations:
        task = dag.get_task(task_id)
        assert set(task.downstream_task_ids) == {"audit_report"} and not task.upstream_task_ids
        assert "--location" in task.bash_command and "--run-id {{ ts_nodash }}" in task.bash_command
