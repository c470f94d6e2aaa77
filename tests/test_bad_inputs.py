"""A catalogue of bad inputs, kept as data in ``tests/bad_inputs/``, each run through the real code
path and each with the message it must give; none may end in a traceback.

* ``params.yaml``: params files ``load_params`` must refuse, naming the file and the key; a few
  also go through ``recon run`` in a subprocess (exit 2, no "Traceback" on stderr).
* ``nexudus.yaml``: invoices raised in one sandbox with the desk (``raw=True``, nexudus.md §7.1,
  §7.2), planned once together; each is held back with its reason, or failed by the push naming
  it, while the good invoice raised beside them is created.
* ``xero.yaml``: Xero answers queued with the sandbox's faults (xero-api.md §5, §7, §11) on the
  push of one invoice each; the push never raises and reports the outcome and the message.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from support import fast_retry

from recon.clients.retry import RetryPolicy
from recon.errors import ParamsError
from recon.ledger import Ledger
from recon.params import load_params
from recon.sandbox import Sandbox, start
from recon.session import Connection, connect, register_sandbox
from recon.transfer import TransferPlan, TransferResult, plan_transfer, push

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = Path(__file__).resolve().parent / "bad_inputs"
SHOREDITCH, CUSTOMER = 1400000001, 1400000032
PRINTING = {
    "Description": "Printing",
    "Quantity": 1,
    "UnitPrice": "10.00",
    "TaxCategoryName": "20% (VAT on Income)",
    "FinancialAccountCode": "4100",
}
WHEN = "2026-10-15T10:00:00Z"  # inside params/demo.yaml's period
NOT_NUMBERS = {"NaN", "Infinity", "-Infinity"}


def _entries(name: str) -> list[dict[str, Any]]:
    loaded = yaml.safe_load((CATALOGUE / name).read_text("utf-8"))
    assert isinstance(loaded, list) and loaded
    return loaded


PARAMS = _entries("params.yaml")
NEXUDUS = _entries("nexudus.yaml")
XERO = _entries("xero.yaml")


def test_the_catalogue_holds_at_least_sixty_bad_inputs_each_with_its_message() -> None:
    every = PARAMS + NEXUDUS + XERO
    assert len(every) >= 60
    assert all(str(e.get("message", "")).strip() for e in every)
    for entries in (PARAMS, NEXUDUS, XERO):
        names = [e["name"] for e in entries]
        assert len(names) == len(set(names)), "names identify the entries"


# ---- params files --------------------------------------------------------------------------------
def _params_file(entry: dict[str, Any], folder: Path) -> Path:
    path = folder / "params.yaml"
    if "text" in entry:
        path.write_text(entry["text"], "utf-8")
        return path
    data = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text("utf-8"))
    for key in entry.get("drop", []):
        data.pop(key, None)
    data.update(entry.get("set", {}))
    # relative paths of the demo (tax map) are relative to the repository
    if isinstance(data.get("tax_map_file"), str):
        data["tax_map_file"] = str(ROOT / data["tax_map_file"])
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


@pytest.mark.parametrize("entry", PARAMS, ids=[e["name"] for e in PARAMS])
def test_a_bad_params_file_is_refused_naming_the_file_and_key(
    entry: dict[str, Any], tmp_path: Path
) -> None:
    path = _params_file(entry, tmp_path)
    with pytest.raises(ParamsError) as refused:
        load_params(path)
    message = str(refused.value)
    assert entry["message"] in message
    assert str(path) in message
    if entry.get("key"):
        assert f"key '{entry['key']}'" in message


@pytest.mark.parametrize("entry", [e for e in PARAMS if e.get("run")], ids=lambda e: str(e["name"]))
def test_recon_run_on_a_bad_params_file_exits_2_without_a_traceback(
    entry: dict[str, Any], tmp_path: Path
) -> None:
    path = _params_file(entry, tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "recon.cli", "run", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "RECON_CONFIG_DIR": str(tmp_path / "config")},
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert entry["message"] in done.stderr + done.stdout


# ---- Nexudus records -----------------------------------------------------------------------------
def _value(value: Any) -> Any:
    """NaN as a Decimal and the infinities as floats: how the desk takes them (desk.md), served
    as Json.NET serves them ("NaN", "Infinity")."""
    if value == "NaN":
        return Decimal("NaN")
    if isinstance(value, str) and value in NOT_NUMBERS:
        return float(value)
    return value


def _lines(entry: dict[str, Any]) -> list[dict[str, Any]]:
    if "lines" in entry:
        return [{k: _value(v) for k, v in line.items()} for line in entry["lines"]]
    return [{**PRINTING, **{k: _value(v) for k, v in (entry.get("line") or {}).items()}}]


@dataclasses.dataclass
class Raised:
    """The bad invoices raised in one sandbox, the one plan over all of them and its push."""

    box: Sandbox
    conn: Connection
    ids: dict[str, int]  # entry name -> Nexudus invoice id
    good: int  # a sound invoice raised beside them
    plan: TransferPlan
    result: TransferResult


@pytest.fixture(scope="module")
def raised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Raised]:
    folder = tmp_path_factory.mktemp("bad-nexudus")
    box = start(folder / "sandbox")
    register_sandbox(box)
    desk = box.nexudus.desk
    ids: dict[str, int] = {}
    for n, entry in enumerate(NEXUDUS):
        number = entry.get("number", f"BAD-{n:03d}")
        header = {k: _value(v) for k, v in (entry.get("header") or {}).items()}
        invoice = desk.raise_invoice(
            SHOREDITCH,
            CUSTOMER,
            _lines(entry),
            number=number,
            created_on=WHEN,
            raw=True,
            header=header or None,
        )
        ids[entry["name"]] = int(invoice["Id"])
    good = int(
        desk.raise_invoice(SHOREDITCH, CUSTOMER, [PRINTING], number="GOOD-1", created_on=WHEN)["Id"]
    )
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(box.state_dir),
        output_dir=str(folder / "out"),
        ledger_file=str(folder / "ledger.sqlite"),
    )
    conn = connect(params)
    conn.xero.retry = fast_retry()
    with Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        wanted = set(ids.values()) | {good}
        eligible = plan.eligible[plan.eligible["nexudus_invoice_id"].isin(wanted)]
        narrowed = dataclasses.replace(
            plan,
            eligible=eligible.reset_index(drop=True),
            payloads={k: v for k, v in plan.payloads.items() if k in wanted},
            new_contacts=plan.new_contacts[
                plan.new_contacts["coworker_id"].isin(set(eligible["coworker_id"]))
            ],
        )
        result = push(conn, narrowed, ledger)
    yield Raised(box, conn, ids, good, plan, result)
    conn.close()
    box.stop()


def test_the_good_invoice_beside_the_bad_ones_is_created(raised: Raised) -> None:
    outcomes = raised.result.outcomes.set_index("nexudus_invoice_id")["outcome"]
    assert str(outcomes[raised.good]) == "created"


@pytest.mark.parametrize("entry", NEXUDUS, ids=[e["name"] for e in NEXUDUS])
def test_a_bad_nexudus_invoice_is_held_or_failed_with_its_reason(
    entry: dict[str, Any], raised: Raised
) -> None:
    invoice_id = raised.ids[entry["name"]]
    if entry["where"] == "plan":
        excluded = raised.plan.excluded.set_index("nexudus_invoice_id")["reason"]
        assert invoice_id in excluded.index, "held back by the plan"
        assert entry["message"] in str(excluded[invoice_id])
        assert invoice_id not in set(raised.result.outcomes["nexudus_invoice_id"])
    else:
        outcomes = raised.result.outcomes.set_index("nexudus_invoice_id")
        assert str(outcomes.loc[invoice_id, "outcome"]) == "failed"
        message = str(outcomes.loc[invoice_id, "messages"])
        assert entry["message"] in message
        assert f"Nexudus invoice {invoice_id}" in message


# ---- Xero answers --------------------------------------------------------------------------------
@dataclasses.dataclass
class Ready:
    """A sandbox whose customers' contacts are in Xero, and one invoice per catalogue entry."""

    conn: Connection
    plan: TransferPlan
    numbers: dict[str, str]  # entry name -> the invoice it pushes
    folder: Path


@pytest.fixture(scope="module")
def ready(raised: Raised, tmp_path_factory: pytest.TempPathFactory) -> Ready:
    conn = raised.conn
    folder = tmp_path_factory.mktemp("bad-xero")
    with Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        invoices = plan.eligible[plan.eligible["kind"] == "invoice"]
        push(conn, plan.only(invoices.drop_duplicates("contact_number")["invoice_number"]), ledger)
        plan = plan_transfer(conn, ledger=ledger)
    known = plan.eligible[
        (plan.eligible["kind"] == "invoice") & plan.eligible["xero_contact_id"].notna()
    ]
    numbers = list(known["invoice_number"])
    assert len(numbers) >= len(XERO)
    return Ready(conn, plan, {e["name"]: numbers[i] for i, e in enumerate(XERO)}, folder)


def _queue(box: Sandbox, entry: dict[str, Any]) -> None:
    faults = box.xero.faults
    n = int(entry["n"])
    if entry["fault"] == "fail":
        faults.fail_next(n, status=int(entry["status"]))
    elif entry["fault"] == "throttle":
        faults.throttle_next(n, retry_after=1, problem=entry["problem"])
    elif entry["fault"] == "drop":
        faults.drop_next(n, after_commit=bool(entry["after_commit"]))
    else:  # drop+fail: the answer lost, then the look-up by number failing
        faults.drop_next(n, after_commit=bool(entry["after_commit"]))
        faults.fail_next(n, status=int(entry["status"]))


@pytest.mark.parametrize("entry", XERO, ids=[e["name"] for e in XERO])
def test_a_bad_xero_answer_ends_the_invoice_with_an_outcome_never_a_traceback(
    entry: dict[str, Any], ready: Ready, raised: Raised
) -> None:
    conn = ready.conn
    conn.xero.retry = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.2)
    one = ready.plan.only([ready.numbers[entry["name"]]])
    # A ledger of its own: no earlier entry's open intent is looked up first.
    with Ledger(ready.folder / f"{len(os.listdir(ready.folder))}.sqlite") as ledger:
        _queue(raised.box, entry)
        try:
            result = push(conn, one, ledger)  # must not raise
        finally:
            raised.box.xero.faults.clear()
        events = ledger.events()
    (row,) = result.outcomes.to_dict("records")
    assert str(row["outcome"]) == entry["outcome"]
    said = str(row["messages"]) + " ".join(str(d) for d in events["detail"].dropna())
    assert entry["message"] in said
    assert isinstance(result.outcomes, pd.DataFrame)
