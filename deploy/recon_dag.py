"""Airflow DAG: recon's nightly run with one task per Nexudus location and one report task after
them.

Copy this file into your DAGs folder on a machine where recon is checked out
and installed (``python3 tasks.py demo`` made ``.venv``), set ``RECON_REPO``
and ``RECON_PARAMS`` in the scheduler's and workers' environment (or edit the
defaults below), and give the workers the credentials the params file names
(``XERO_CLIENT_ID``...) from your secrets backend. Nothing secret is in this
file, in the task commands or in what Airflow records of them.

The tasks are read from the params file's ``locations`` map when the DAG file
is parsed:

- ``run_<location>``: ``recon run PARAMS --location NAME --run-id {{ ts_nodash }}``.
  Every task of one DAG run shares the run folder ``<output_dir>/<ts_nodash>/``
  and writes its own location folder in it. Every non-zero exit code fails the
  task: 1 a step failed; 2 bad params, arguments or files (an unknown location,
  an organisation the app cannot reach: a retry will not help, so the tasks have
  no retries); 3 every step ran but some invoices or payments are not done
  (failed, refused, unknown, or deferred by the day's Xero call limit: the next
  night's run takes them up); 130 interrupted, by Ctrl-C or by the SIGTERM
  Airflow sends when it stops a task (the report of what was done is still
  written; running again is safe). The task log's last line gives the counts
  behind the code. Locations booked into the same Xero
  organisation run one after the other (Xero's limits are per organisation:
  60 calls a minute, 5 at a time, 5,000 a day, and recon's pacer and call
  budget only see their own process); locations of different organisations
  run in parallel. A failed location never stops another: the next one of the
  same organisation runs all the same (``trigger_rule="all_done"``).
- ``audit_report``: ``recon report <output_dir>/<ts_nodash> --params PARAMS``
  after every location task, whatever their outcome (``all_done``): one
  workbook for the run, with a Locations sheet. It exits 1 when any location
  failed or left no results, so the DAG run (whose state follows its last
  task) is marked failed too.

Why ``BashOperator`` and ``recon run`` rather than the papermill provider's
``PapermillOperator`` per notebook: ``recon run`` already does per location
what the run needs and a DAG of notebooks would have to redo: the steps in
order, later steps skipped (and recorded so) after a failed one, the step
record the report is built from, ``push``/``apply`` taken from the params file,
only non-secret papermill parameters, and one exit code. One task per location
also keeps the DAG as wide as the map instead of three times as wide.
"""

from __future__ import annotations

import os
import re
import shlex
from datetime import datetime
from pathlib import Path

import yaml

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

REPO = os.environ.get(
    "RECON_REPO", "/srv/recon"
)  # the recon checkout, with .venv made by `python3 tasks.py demo`
PARAMS = os.environ.get(
    "RECON_PARAMS", f"{REPO}/params/my-site.yaml"
)  # a params file with a `locations` map
# one run folder per DAG run, shared by its tasks (like `recon run`'s out/<run-id>/)
RUN_ID = "{{ ts_nodash }}"
REPORT_TASK = "audit_report"


def location_tasks(
    params_file: str, repo: str, run_id: str
) -> tuple[list[dict[str, str | None]], str]:
    """The location tasks in map order and the report command. Plain Python and PyYAML: no Airflow
    needed.

    Each task: ``task_id``, ``location``, ``command`` and ``after``, the task
    of the previous location booked into the same Xero organisation (None for
    the first), which it waits for.
    """
    with open(params_file, encoding="utf-8") as fh:
        params = yaml.safe_load(fh) or {}
    locations = params.get("locations") or {}
    if not isinstance(locations, dict) or not locations:
        raise ValueError(
            f"{params_file} has no `locations` map: this DAG runs one task per mapped location "
            "(for one location, schedule `recon run` alone, as the README's cron line does)"
        )
    out_root = Path(repo) / str(
        params.get("output_dir") or "out"
    )  # `recon run` runs in the repo: relative to it
    recon = shlex.quote(f"{repo}/.venv/bin/recon")
    tasks: list[dict[str, str | None]] = []
    last_of_organisation: dict[str, str] = {}
    for name, entry in locations.items():
        organisation = str(
            (entry.get("organisation") if isinstance(entry, dict) else entry) or ""
        ).casefold()
        task_id = base = "run_" + (
            re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "location"
        )
        n = 1
        while any(t["task_id"] == task_id for t in tasks):
            n += 1
            task_id = f"{base}_{n}"
        tasks.append(
            {
                "task_id": task_id,
                "location": str(name),
                "after": last_of_organisation.get(organisation),
                "command": (
                    f"{recon} run {shlex.quote(params_file)} --out "
                    f"{shlex.quote(str(out_root))} --location {shlex.quote(str(name))} --run-id "
                    f"{run_id}"
                ),
            }
        )
        last_of_organisation[organisation] = task_id
    report = (
        f"{recon} report {shlex.quote(str(out_root / run_id))} --params {shlex.quote(params_file)}"
    )
    return tasks, report


TASKS, REPORT_COMMAND = location_tasks(PARAMS, REPO, RUN_ID)

with DAG(
    "recon_nightly",
    schedule="30 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["recon"],
) as dag:
    report = BashOperator(
        task_id=REPORT_TASK, bash_command=REPORT_COMMAND, cwd=REPO, trigger_rule="all_done"
    )
    operators: dict[str, BashOperator] = {}
    for spec in TASKS:
        task = operators[str(spec["task_id"])] = BashOperator(
            task_id=str(spec["task_id"]),
            bash_command=str(spec["command"]),
            cwd=REPO,
            trigger_rule="all_done",
        )
        if spec[
            "after"
        ]:  # the same Xero organisation as an earlier location: after it, whatever its outcome
            operators[str(spec["after"])] >> task
        task >> report
