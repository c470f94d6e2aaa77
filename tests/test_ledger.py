"""The ledger file: its layout version, old and newer files, writes by column name, all or
nothing."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from recon.errors import StepError
from recon.ledger import SCHEMA, SCHEMA_VERSION, Ledger
from recon.ledger.schema import (
    KEPT_COLUMNS,
    KEPT_FLAGS,
    KEPT_MONEY,
    KEPT_TEXT,
    STATUS_KEPT_V5_SCHEMA,
)
from recon.status_refresh import sync_scope

TENANT = "tenant-1"

# The tables with every column in another order than SCHEMA's: what an older or hand-repaired
# file may hold. A write by position would put values in the wrong columns (or fail).
REORDERED = """
CREATE TABLE transfers(
    updated_at TEXT NOT NULL, created_at TEXT NOT NULL, written_back INTEGER NOT NULL DEFAULT 0,
    messages TEXT NOT NULL DEFAULT '[]', attempts INTEGER NOT NULL DEFAULT 0, xero_total TEXT,
    nexudus_total TEXT, currency TEXT, batch_key TEXT, xero_id TEXT, state TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'invoice', invoice_number TEXT NOT NULL,
    nexudus_invoice_id INTEGER NOT NULL, tenant_id TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE TABLE contacts(
    updated_at TEXT NOT NULL, name TEXT, state TEXT NOT NULL, xero_contact_id TEXT,
    contact_number TEXT NOT NULL, nexudus_coworker_id INTEGER NOT NULL, tenant_id TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_coworker_id));
CREATE TABLE payments(
    updated_at TEXT NOT NULL, messages TEXT NOT NULL DEFAULT '[]', xero_invoice_id TEXT,
    paid_on TEXT, amount TEXT, state TEXT NOT NULL, invoice_number TEXT NOT NULL,
    nexudus_invoice_id INTEGER NOT NULL, tenant_id TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE TABLE events(
    detail TEXT, outcome TEXT NOT NULL, subject TEXT, tenant_id TEXT, action TEXT NOT NULL,
    system TEXT NOT NULL, at TEXT NOT NULL, id INTEGER PRIMARY KEY AUTOINCREMENT);
CREATE TABLE xero_state(
    created_by_recon INTEGER NOT NULL DEFAULT 0, updated_utc TEXT, fully_paid_on TEXT,
    amount_credited TEXT, amount_paid TEXT, amount_due TEXT, total TEXT, status TEXT,
    kind TEXT NOT NULL, number TEXT, xero_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    PRIMARY KEY(tenant_id, xero_id));
CREATE TABLE nexudus_state(
    business_id INTEGER, updated_on TEXT, due_date TEXT, void INTEGER, paid_amount TEXT,
    paid INTEGER, total TEXT, nexudus_invoice_id INTEGER NOT NULL, tenant_id TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE TABLE watermarks(at TEXT NOT NULL, kind TEXT NOT NULL, tenant_id TEXT NOT NULL,
    PRIMARY KEY(tenant_id, kind));
"""

# nexudus_state as ledgers written before business_id was added had it.
WITHOUT_BUSINESS_ID = """
CREATE TABLE nexudus_state(
    tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER NOT NULL, total TEXT, paid INTEGER,
    paid_amount TEXT, void INTEGER, due_date TEXT, updated_on TEXT,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
"""

# Written by the ledger itself, so they differ between two files written the same way.
CLOCK_COLUMNS = ("created_at", "updated_at", "at")


def _old_file(path: Path, script: str) -> Path:
    """A ledger file as an earlier recon left it: tables, no version stamp (user_version 0)."""
    with sqlite3.connect(path) as db:
        db.executescript(script)
    db.close()
    return path


def _pragma(path: Path, name: str) -> object:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        db.close()


def _columns(path: Path, table: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


def _write_everything(ledger: Ledger) -> None:
    """One of every write the ledger makes, first inserts then updates of the same rows."""
    ledger.record_intents(
        TENANT,
        "batch-1",
        [
            {
                "nexudus_invoice_id": 11,
                "invoice_number": "INV-11",
                "currency": "GBP",
                "nexudus_total": Decimal("120.00"),
            },
            {
                "nexudus_invoice_id": 12,
                "invoice_number": "CN-12",
                "kind": "credit_note",
                "currency": "GBP",
                "nexudus_total": Decimal("-10.00"),
            },
        ],
    )
    ledger.record_intents(TENANT, "batch-2", [{"nexudus_invoice_id": 11, "invoice_number": "X"}])
    ledger.record_outcome(
        TENANT, 11, "created", xero_id="x-11", xero_total=Decimal("120.00"), messages=["ok"]
    )
    ledger.record_outcomes(
        TENANT, [{"nexudus_invoice_id": 12, "state": "failed", "messages": ["no"]}]
    )
    ledger.record_written_back(TENANT, 11)
    ledger.record_contact(TENANT, 7, "NX-7", "sending", name="Ada Lovelace")
    ledger.record_contact(TENANT, 7, "NX-7", "created", xero_contact_id="c-7")
    ledger.record_payment(
        TENANT, 11, "INV-11", "sending", amount=Decimal("120.00"), xero_invoice_id="x-11"
    )
    ledger.record_payment(TENANT, 11, "INV-11", "paid", paid_on="2026-03-01", messages=["done"])
    ledger.set_watermark(TENANT, "xero", datetime(2026, 3, 1, 9, 0, tzinfo=UTC))
    ledger.set_watermark(TENANT, "xero", datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    xero_row = {
        "xero_id": "x-11",
        "number": "INV-11",
        "status": "AUTHORISED",
        "total": Decimal("120.00"),
        "amount_due": Decimal("120.00"),
        "amount_paid": Decimal("0"),
        "amount_credited": None,
        "updated_utc": "2026-03-01T09:00:00",
        "created_by_recon": True,
    }
    ledger.update_xero_state(TENANT, [xero_row], complete=True)
    paid = {**xero_row, "status": "PAID", "amount_due": Decimal("0"), "created_by_recon": False}
    ledger.update_xero_state(TENANT, [{**paid, "fully_paid_on": "2026-03-02"}])
    nexudus = pd.DataFrame(
        [
            {
                "Id": 11,
                "TotalAmount": Decimal("120.00"),
                "Paid": True,
                "PaidAmount": Decimal("120.00"),
                "Void": False,
                "DueDate": "2026-03-31",
                "UpdatedOn": None,
                "BusinessId": 3,
            }
        ]
    )
    ledger.update_nexudus_state(TENANT, nexudus)
    ledger.update_nexudus_state(TENANT, nexudus.assign(Void=True))
    ledger.event("xero", "push", "created", tenant_id=TENANT, subject="INV-11", detail={"n": 1})
    ledger.event("nexudus", "mark paid", "refused")
    ledger.record_allocation_intent(
        TENANT,
        "key-1",
        credit_note_id="cn-12",
        invoice_id="x-11",
        amount=Decimal("10.00"),
        attempt=1,
        seen_before=0,
        credit_note_number="CN-12",
        invoice_number="INV-11",
        currency="GBP",
    )
    ledger.record_allocation_outcome(TENANT, "key-1", "allocated", messages=["ok"])


def _everything(ledger: Ledger) -> dict[str, pd.DataFrame]:
    """Every read, columns sorted by name, the ledger's own clock columns left out."""
    frames = {
        "transfers": ledger.transfers(TENANT),
        "contacts": pd.DataFrame(list(ledger.contacts(TENANT).values())),
        "payments": ledger.payments(TENANT),
        "xero_state": ledger.xero_state(TENANT),
        "nexudus_state": ledger.nexudus_state(TENANT),
        "events": ledger.events(),
        "allocations": ledger.allocations(TENANT),
    }
    found = {
        name: frame[sorted(c for c in frame.columns if c not in CLOCK_COLUMNS)]
        for name, frame in frames.items()
    }
    found["watermark"] = pd.DataFrame({"at": [ledger.watermark(TENANT, "xero")]})
    return found


def test_a_new_file_is_stamped_with_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        assert ledger.transfers(TENANT).empty
    assert _pragma(path, "user_version") == SCHEMA_VERSION == 7
    assert _pragma(path, "journal_mode") == "wal"
    with Ledger(path) as again:  # opening it again finds it up to date
        assert again.watermark(TENANT, "xero") is None
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def test_writes_name_their_columns_so_a_reordered_file_is_written_correctly(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "new.sqlite") as new:
        _write_everything(new)
        expected = _everything(new)
    old_path = _old_file(tmp_path / "reordered.sqlite", REORDERED)
    with Ledger(old_path) as old:
        _write_everything(old)
        found = _everything(old)
    assert _columns(old_path, "contacts")[0] == "updated_at"  # the file kept its own order
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(found[name], frame, obj=name)
    assert found["transfers"]["attempts"].tolist() == [1, 2]  # CN-12 once, INV-11 twice
    contact = found["contacts"].iloc[0]
    assert (contact["name"], contact["xero_contact_id"], contact["state"]) == (
        "Ada Lovelace",
        "c-7",
        "created",
    )
    payment = found["payments"].iloc[0]
    assert (payment["amount"], payment["paid_on"], payment["state"]) == (
        "120.00",
        "2026-03-01",
        "paid",
    )
    xero = found["xero_state"].iloc[0]
    assert (xero["status"], xero["created_by_recon"], xero["fully_paid_on"]) == (
        "PAID",
        1,
        "2026-03-02",
    )
    assert found["nexudus_state"][["void", "business_id"]].values.tolist() == [[1, 3]]
    assert found["watermark"]["at"][0] == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_file_from_before_versions_is_accepted_kept_and_stamped(tmp_path: Path) -> None:
    path = _old_file(tmp_path / "ledger.sqlite", SCHEMA)
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "INSERT INTO transfers(tenant_id,nexudus_invoice_id,invoice_number,state,created_at,"
            "updated_at) VALUES(?,?,?,?,?,?)",
            (TENANT, 5, "INV-5", "sending", "2026-01-01", "2026-01-01"),
        )
    db.close()
    assert _pragma(path, "user_version") == 0
    with Ledger(path) as ledger:
        assert ledger.unfinished(TENANT)["invoice_number"].tolist() == ["INV-5"]
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def test_a_version_1_file_gets_the_allocations_table_and_keeps_its_rows(tmp_path: Path) -> None:
    """Version 2 added ``allocations`` (credit notes allocated to their originals in Xero)."""
    path = _old_file(tmp_path / "ledger.sqlite", SCHEMA)
    db = sqlite3.connect(path)
    with db:
        db.execute(
            "INSERT INTO transfers(tenant_id,nexudus_invoice_id,invoice_number,state,created_at,"
            "updated_at) VALUES(?,?,?,?,?,?)",
            (TENANT, 5, "INV-5", "created", "2026-01-01", "2026-01-01"),
        )
        db.execute("PRAGMA user_version=1")
    db.close()
    assert _columns(path, "allocations") == []  # no such table yet
    with Ledger(path) as ledger:
        assert ledger.transferred_ids(TENANT) == {5}
        assert ledger.allocations(TENANT).empty
        ledger.record_allocation_intent(
            TENANT,
            "key-1",
            credit_note_id="cn-1",
            invoice_id="x-5",
            amount=Decimal("40.00"),
            attempt=1,
        )
        assert ledger.unfinished_allocations(TENANT)["amount"].tolist() == [Decimal("40.00")]
        ledger.record_allocation_outcome(TENANT, "key-1", "allocated")
        assert ledger.allocated_amounts(TENANT) == {"cn-1": Decimal("40.00")}
        assert ledger.unfinished_allocations(TENANT).empty
    assert _columns(path, "allocations")[:3] == ["id", "tenant_id", "idempotency_key"]
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def test_a_version_2_file_gets_the_bindings_table_and_keeps_its_rows(tmp_path: Path) -> None:
    """Version 3 added ``bindings`` (the Xero organisation each location books into)."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.record_allocation_intent(
            TENANT,
            "key-1",
            credit_note_id="cn-1",
            invoice_id="x-5",
            amount=Decimal("40.00"),
            attempt=1,
        )
    db = sqlite3.connect(path)
    with db:
        db.execute("DROP TABLE bindings")
        db.execute("PRAGMA user_version=2")
    db.close()
    assert _columns(path, "bindings") == []  # a version-2 file: no such table
    with Ledger(path) as ledger:
        assert ledger.bindings().empty and ledger.binding(1414) is None
        assert ledger.unfinished_allocations(TENANT)["amount"].tolist() == [Decimal("40.00")]
        assert ledger.record_binding(
            1414,
            "Hive Shoreditch",
            "org-uk",
            "Hive Coworking UK Ltd",
            "GBP",
            confirmed_by="Jane",
            source="params demo.yaml",
        )
        # Compare-and-set: a second first binding, or a re-binding from the wrong organisation,
        # records nothing.
        assert not ledger.record_binding(
            1414,
            "Hive Shoreditch",
            "org-north",
            "Hive Coworking North Ltd",
            "GBP",
            confirmed_by="Joe",
            source="params other.yaml",
        )
        assert not ledger.record_binding(
            1414,
            "Hive Shoreditch",
            "org-north",
            "Hive Coworking North Ltd",
            "GBP",
            confirmed_by="Joe",
            source="params other.yaml",
            replaces="org-ie",
        )
        row = ledger.binding(1414)
        assert row is not None
        assert (row["tenant_id"], row["confirmed_by"], row["base_currency"]) == (
            "org-uk",
            "Jane",
            "GBP",
        )
        assert ledger.record_binding(
            1414,
            "Hive Shoreditch",
            "org-north",
            "Hive Coworking North Ltd",
            "GBP",
            confirmed_by="Joe",
            source="params other.yaml",
            replaces="org-uk",
        )
        assert ledger.bindings()["tenant_id"].tolist() == ["org-north"]
        actions = ledger.events()["action"].tolist()
        assert actions[-2:] == ["bind location", "rebind location"]
    assert _columns(path, "bindings")[:3] == ["business_id", "location", "tenant_id"]
    assert _pragma(path, "user_version") == SCHEMA_VERSION == 7


def test_a_file_from_before_business_id_gets_the_column(tmp_path: Path) -> None:
    path = _old_file(tmp_path / "ledger.sqlite", WITHOUT_BUSINESS_ID)
    with Ledger(path) as ledger:
        _write_everything(ledger)  # the other tables are created on the way
        assert ledger.nexudus_state(TENANT)["business_id"].tolist() == [3]
    assert _columns(path, "nexudus_state")[-1] == "business_id"
    assert _pragma(path, "user_version") == SCHEMA_VERSION


def test_a_file_from_a_newer_recon_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "books" / "ledger.sqlite"
    Ledger(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StepError) as refused:
        Ledger(path)
    message = str(refused.value)
    assert str(path) in message
    assert f"version {SCHEMA_VERSION + 1}" in message and "Upgrade recon" in message
    assert _pragma(path, "user_version") == SCHEMA_VERSION + 1


def test_a_write_that_fails_half_way_leaves_nothing(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        good = {"nexudus_invoice_id": 1, "invoice_number": "INV-1"}
        with pytest.raises(KeyError):
            ledger.record_intents(TENANT, "batch", [good, {"nexudus_invoice_id": 2}])
        assert ledger.transfers(TENANT).empty
        ledger.record_intents(TENANT, "batch", [good])  # the ledger is usable afterwards
        assert ledger.transferred_ids(TENANT) == set()
        assert ledger.unfinished(TENANT)["invoice_number"].tolist() == ["INV-1"]
        assert repr(ledger) == f"Ledger({str(tmp_path / 'ledger.sqlite')!r})"


def test_a_version_3_file_gets_the_status_journal_and_keeps_its_rows(tmp_path: Path) -> None:
    """Version 4 added the journal a status sync reads to diff only what changed."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        _write_everything(ledger)
        expected = _everything(ledger)
    db = sqlite3.connect(path)
    with db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
            db.execute(f"DROP TRIGGER {name}")
        for table in (
            "status_touched",
            "status_syncs",
            "status_members",
            "status_unknown",
            "status_kept",
        ):
            db.execute(f"DROP TABLE {table}")
        db.execute("PRAGMA user_version=3")
    db.close()
    assert _columns(path, "status_touched") == []  # a version-3 file: no such table
    with Ledger(path) as ledger:
        found = _everything(ledger)
        assert ledger.last_change_ids()[0] == 0  # nothing written since the upgrade
        ledger.record_outcome(TENANT, 11, "created", xero_id="x-11b")
        ledger.update_xero_state(TENANT, [{"xero_id": "x-99", "status": "PAID"}])
        touched, upto = ledger.last_change_ids()
        # The transfer row under its new and its old Xero id, and the Xero record.
        assert ledger.touched_since(TENANT, 0, touched) == ({11}, {"x-11", "x-11b", "x-99"})
        assert ledger.touched_since("another-tenant", 0, touched) == (set(), set())
        assert upto == len(ledger.events())
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(found[name], frame, obj=name)
    assert _pragma(path, "user_version") == SCHEMA_VERSION == 7


# How a version-4 file (no kept rows) and a version-5 file (a row per kept invoice) looked.
_OLDER_KEPT_LAYOUTS = {
    4: ("DROP TABLE status_kept",),
    5: (
        "DROP TABLE status_kept",
        STATUS_KEPT_V5_SCHEMA,
        "INSERT INTO status_kept(tenant_id,business_id,nexudus_invoice_id,found_in_xero,"
        f"nexudus_paid,nexudus_void,nexudus_deleted) VALUES('{TENANT}',7,11,1,0,0,0)",
    ),
}


@pytest.mark.parametrize("version", sorted(_OLDER_KEPT_LAYOUTS))
def test_a_file_of_an_older_kept_rows_layout_gets_packed_columns_and_its_next_sync_is_whole(
    tmp_path: Path, version: int
) -> None:
    """Version 5 kept the rows each status sync listed, a row per invoice; version 6 keeps them
    as one blob of packed columns per location. Rows kept in an older layout (or none, before
    5) are dropped, and with them where each location's last sync stopped: its next sync reads
    all."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        _write_everything(ledger)
        ledger.record_status_sync(
            TENANT, 7, touched_id=1, event_id=1, members={11: True}, unknown=["x-1"]
        )
        expected = _everything(ledger)
    db = sqlite3.connect(path)
    with db:
        for statement in _OLDER_KEPT_LAYOUTS[version]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version={version}")
    db.close()
    with Ledger(path) as ledger:
        found = _everything(ledger)
        assert ledger.status_sync_mark(TENANT, 7) is None
        kept = ledger.kept_status_rows(TENANT, 7)
        assert kept is not None and kept.empty
        assert ledger.status_unknown(TENANT, 7) == {"x-1"}
        # Each location's invoices counted from the copy the file holds, and kept counted.
        assert ledger.count_nexudus_state(TENANT, 3) == 1
        ledger.forget_nexudus_state(TENANT, [11])
        assert ledger.count_nexudus_state(TENANT, 3) == 0
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(found[name], frame, obj=name)
    assert _columns(path, "status_kept") == ["tenant_id", "business_id", "rows", "columns"]
    assert _pragma(path, "user_version") == SCHEMA_VERSION == 7


def _kept_rows() -> pd.DataFrame:
    """Three kept rows as a status sync hands them over: text with blanks, amounts as Decimals
    (one object per distinct text, and 0 beside 0.00), flags as bool."""
    zero, hundred = Decimal("0.00"), Decimal("100.00")
    amounts = {name: [hundred, zero, None] for name in KEPT_MONEY}
    amounts["nexudus_credited"] = [hundred, Decimal("0"), None]
    amounts["xero_amount_due"] = [hundred, zero, Decimal("-12.3456")]
    rows = pd.DataFrame(
        {"nexudus_invoice_id": [30, 10, 20]}
        | {name: ["a", None, "ü €"] for name in KEPT_TEXT}
        | amounts
        | {name: [True, False, True] for name in KEPT_FLAGS}
    )
    return rows.astype({name: "str" for name in KEPT_TEXT})


def test_kept_rows_come_back_as_kept_text_for_text_amounts_and_flags(tmp_path: Path) -> None:
    rows = _kept_rows()
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.record_status_sync(
            TENANT, 7, touched_id=0, event_id=0, members={10: True, 20: True, 30: True},
            unknown=[], kept=rows,
        )  # fmt: skip
        kept = ledger.kept_status_rows(TENANT, 7, units=10_000)
        assert ledger.status_listed(TENANT, 7) == ({10, 20, 30}, set())
        assert ledger.kept_status_rows(TENANT, 8) is not None  # another location kept none
    assert kept is not None
    assert list(kept.columns[: len(KEPT_COLUMNS)]) == list(KEPT_COLUMNS)
    assert kept["nexudus_invoice_id"].tolist() == [10, 20, 30]  # in key order
    ordered = rows.sort_values("nexudus_invoice_id").reset_index(drop=True)
    for name in KEPT_TEXT:
        assert kept[name].tolist() == [None, "ü €", "a"], name
    for name in KEPT_MONEY:
        # As text: 0 stays 0 beside 0.00, blanks stay blank.
        expected = [None if pd.isna(v) else str(v) for v in ordered[name]]
        assert [None if v is None else str(v) for v in kept[name]] == expected, name
        assert kept[f"{name}_known"].tolist() == [v is not None for v in expected], name
    assert kept["xero_amount_due_units"].tolist() == [0, -123456, 1_000_000]
    for name in KEPT_FLAGS:
        assert kept[name].tolist() == [False, True, True], name


def test_kept_rows_that_cannot_be_read_make_the_next_sync_read_all(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.record_status_sync(
            TENANT, 7, touched_id=0, event_id=0, members={10: True}, unknown=[],
            kept=_kept_rows(),
        )  # fmt: skip
        blob = ledger._db.execute("SELECT columns FROM status_kept").fetchone()[0]
        for damaged in (blob[:-3], b"not packed", blob.replace(b'"rows":3', b'"rows":4')):
            ledger._db.execute("UPDATE status_kept SET columns=?", (damaged,))
            assert ledger.kept_status_rows(TENANT, 7) is None
            assert sync_scope(ledger, TENANT, 7, whole=False).whole


def test_reads_by_id_give_the_same_rows_and_whole_units_beside_the_decimals(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        amounts = ["120.00", "-0.5", "1E+2", "", "not a number", "12.3456", "7"]
        ledger.record_intents(
            TENANT,
            "batch",
            [
                {"nexudus_invoice_id": i, "invoice_number": f"INV-{9 - i}", "nexudus_total": a}
                for i, a in enumerate(amounts)
            ],
        )
        whole = ledger.transfers(TENANT, units=10_000)
        assert whole.drop(
            columns=[c for c in whole.columns if c.endswith(("_units", "_known"))]
        ).equals(ledger.transfers(TENANT))
        assert whole["nexudus_total_units"].tolist() == [
            70_000,
            123_456,
            0,
            0,
            1_000_000,
            -5_000,
            1_200_000,
        ]  # by invoice number: INV-3 (7) first
        assert whole["nexudus_total_known"].tolist() == [True, True, False, False] + [True] * 3
        assert whole["nexudus_total"].tolist()[:2] == [Decimal("7"), Decimal("12.3456")]
        some = ledger.transfers(TENANT, nexudus_invoice_ids=[0, 6, 42], units=10_000)
        pd.testing.assert_frame_equal(
            some, whole[whole["nexudus_invoice_id"].isin([0, 6])].reset_index(drop=True)
        )
        with pytest.raises(ValueError, match="more than 2 decimal places"):
            ledger.transfers(TENANT, units=100)  # 12.3456 in cents cannot be exact
        ledger.update_xero_state(
            TENANT,
            [
                {"xero_id": "x-1", "total": Decimal("10.10"), "amount_due": None},
                {"xero_id": "x-2", "total": Decimal("-3.25"), "amount_due": Decimal("0")},
            ],
        )
        state = ledger.xero_state(TENANT, xero_ids=["x-2"], units=100)
        assert state[["xero_id", "total_units", "amount_due_known"]].values.tolist() == [
            ["x-2", -325, True]
        ]
        assert state["total"].tolist() == [Decimal("-3.25")]


def test_transfer_keys_name_the_rows_of_those_xero_ids_without_their_money(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.record_intents(
            TENANT,
            "batch",
            [
                {"nexudus_invoice_id": i, "invoice_number": f"INV-{i}", "nexudus_total": "9.99"}
                for i in (1, 2, 3)
            ],
        )
        ledger.record_outcome(TENANT, 1, "created", xero_id="x-1", xero_total=Decimal("9.99"))
        ledger.record_outcome(TENANT, 3, "failed", xero_id="x-3")
        keys = ledger.transfer_keys(TENANT, xero_ids=["x-3", "x-1", "x-9"])
        assert list(keys.columns) == Ledger.TRANSFER_KEYS
        assert sorted(keys[["nexudus_invoice_id", "state"]].values.tolist()) == [
            [1, "created"],
            [3, "failed"],
        ]
        assert ledger.transfer_keys(TENANT, xero_ids=[]).empty


def test_a_batch_of_xero_records_naming_one_record_twice_keeps_the_later_row(
    tmp_path: Path,
) -> None:
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        written = ledger.update_xero_state(
            TENANT,
            [
                {"xero_id": "x-2", "status": "AUTHORISED", "total": Decimal("5")},
                {"xero_id": "x-1", "status": "AUTHORISED", "created_by_recon": True},
                {"xero_id": "x-2", "status": "PAID", "total": Decimal("5")},
                {"xero_id": "x-1", "status": "VOIDED", "created_by_recon": False},
            ],
        )
        assert written == 4
        state = ledger.xero_state(TENANT).set_index("xero_id")
        assert state.loc["x-2", "status"] == "PAID"
        # created_by_recon only ever turns on, also within one batch.
        assert state.loc["x-1", "status"] == "VOIDED"
        assert state.loc["x-1", "created_by_recon"] == 1


def test_xero_records_as_written_are_the_rows_read_back_where_the_write_alone_decides(
    tmp_path: Path,
) -> None:
    """``xero_state_written``: what a status sync takes without reading back. Each row it gives
    is the row ``xero_state`` reads; a record whose stored flag the write cannot tell (read
    again as not recon's, while the ledger had it as recon's) is left to be read."""
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.update_xero_state(
            TENANT,
            [
                {"xero_id": "x-1", "status": "AUTHORISED", "created_by_recon": True},
                {"xero_id": "x-2", "status": "AUTHORISED", "kind": "credit_note"},
            ],
        )
        again = [
            {"xero_id": "x-1", "status": "PAID", "created_by_recon": False,
             "total": Decimal("10.10"), "amount_due": Decimal("0.00"),
             "fully_paid_on": "2026-03-02", "updated_utc": "2026-03-02T10:00:00+00:00"},
            {"xero_id": "x-2", "status": "PAID", "kind": "invoice", "created_by_recon": True,
             "total": "7", "amount_paid": Decimal("7.000")},
            {"xero_id": "x-3", "status": "DRAFT", "created_by_recon": True},
            {"xero_id": "x-3", "status": "VOIDED", "number": "INV-3", "created_by_recon": 1},
            {"xero_id": "x-4", "status": "PAID", "created_by_recon": False},
        ]  # fmt: skip
        ledger.update_xero_state(TENANT, again)
        written = ledger.xero_state_written(TENANT, again, units=10_000)
        assert written["xero_id"].tolist() == ["x-2", "x-3"]
        read = ledger.xero_state(TENANT, xero_ids=["x-2", "x-3"], units=10_000)
        pd.testing.assert_frame_equal(written, read.sort_values("xero_id", ignore_index=True))
        # The latest read decides every column but the flag, the kind too.
        assert read.set_index("xero_id")["kind"].to_dict() == {"x-2": "invoice", "x-3": "invoice"}
        assert ledger.xero_state(TENANT, xero_ids=["x-1"])["created_by_recon"].tolist() == [1]


def test_nexudus_invoices_as_written_are_the_rows_read_back(tmp_path: Path) -> None:
    """``nexudus_state_written``: that write decides every column, the location too."""
    first = _nexudus_invoices(["10.00", "20.00"])
    again = pd.concat(
        [
            first.assign(BusinessId=[4, 3], Paid=True, PaidAmount=Decimal("20.00"), DueDate=None),
            _nexudus_invoices(["10.00", "20.00", "30.50"]).iloc[2:].assign(Void=True),
            first.iloc[:1].assign(TotalAmount=Decimal("12.5"), UpdatedOn=None),
        ],
        ignore_index=True,
    )
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.update_nexudus_state(TENANT, first)
        ledger.update_nexudus_state(TENANT, again)
        written = ledger.nexudus_state_written(TENANT, again, units=100)
        read = ledger.nexudus_state(TENANT, units=100)
        pd.testing.assert_frame_equal(
            written.sort_values("nexudus_invoice_id", ignore_index=True),
            read.sort_values("nexudus_invoice_id", ignore_index=True),
        )
        assert written.set_index("nexudus_invoice_id")["total_units"].to_dict() == {
            1: 1250,
            2: 2000,
            3: 3050,
        }


def test_an_invoice_read_again_under_another_location_moves_there_and_only_then(
    tmp_path: Path,
) -> None:
    """The location is written apart from the rest of an invoice's copy, and only when it
    changed: the counts per location and the journal follow it."""
    invoices = pd.DataFrame(
        {
            "Id": [1, 2, 3],
            "TotalAmount": [Decimal("10.00")] * 3,
            "Paid": False,
            "PaidAmount": Decimal("0"),
            "Void": False,
            "DueDate": "2026-03-31",
            "UpdatedOn": None,
            "BusinessId": [3, 3, None],
        }
    )
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.update_nexudus_state(TENANT, invoices)
        assert ledger.count_nexudus_state(TENANT, 3) == 2
        start, _ = ledger.last_change_ids()
        ledger.update_nexudus_state(TENANT, invoices.assign(BusinessId=[3, 4, 4], Paid=True))
        state = ledger.nexudus_state(TENANT).set_index("nexudus_invoice_id")
        assert state["business_id"].to_dict() == {1: 3, 2: 4, 3: 4}
        assert state["paid"].tolist() == [1, 1, 1]
        assert ledger.count_nexudus_state(TENANT, 3) == 1
        assert ledger.count_nexudus_state(TENANT, 4, excluding=[3]) == 1
        assert ledger.touched_since(TENANT, start, ledger.last_change_ids()[0])[0] == {1, 2, 3}
        ledger.forget_nexudus_state(TENANT, [2])
        ledger.update_nexudus_state(TENANT, invoices.assign(Id=[4, 5, 6], BusinessId=[None, 4, 4]))
        counted = dict(
            ledger._db.execute(
                "SELECT business_id, COUNT(*) FROM nexudus_state GROUP BY business_id"
            ).fetchall()
        )
        assert counted == {None: 1, 3: 1, 4: 3}
        assert {b: ledger.count_nexudus_state(TENANT, b) for b in (3, 4, 5)} == {3: 1, 4: 3, 5: 0}
        assert ledger.count_nexudus_state("another-tenant", 4) == 0


def _nexudus_invoices(totals: list[str]) -> pd.DataFrame:
    """Unpaid Nexudus invoices 1, 2, ... of location 3 with these totals, as the client reads
    them."""
    return pd.DataFrame(
        {
            "Id": list(range(1, len(totals) + 1)),
            "TotalAmount": [Decimal(t) for t in totals],
            "Paid": False,
            "PaidAmount": Decimal("0"),
            "Void": False,
            "DueDate": "2026-03-31",
            "UpdatedOn": "2026-03-01T10:00:00",
            "BusinessId": 3,
        }
    )


def test_each_record_written_puts_one_line_in_the_journal_and_a_new_key_puts_the_old_too(
    tmp_path: Path,
) -> None:
    """Version 7: an upsert of changed records journals one line a record; an update that moves
    a record to another key journals both keys, so the sync reads the record's old place too."""
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.update_xero_state(
            TENANT, [{"xero_id": f"x-{i}", "status": "DRAFT"} for i in range(3)]
        )
        ledger.update_nexudus_state(
            TENANT,
            _nexudus_invoices(["5.00", "5.00"]),
        )
        start, _ = ledger.last_change_ids()
        ledger.update_xero_state(
            TENANT, [{"xero_id": f"x-{i}", "status": "PAID"} for i in range(3)]
        )
        assert ledger.last_change_ids()[0] == start + 3
        db = sqlite3.connect(path)
        with db:
            db.execute("UPDATE xero_state SET xero_id='x-9' WHERE xero_id='x-0'")
            db.execute("UPDATE nexudus_state SET nexudus_invoice_id=9 WHERE nexudus_invoice_id=1")
        db.close()
        assert ledger.touched_since(TENANT, start + 3, ledger.last_change_ids()[0]) == (
            {1, 9},
            {"x-0", "x-9"},
        )
    triggers = {
        name
        for (name,) in sqlite3.connect(path).execute(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND name LIKE '%_rekey'"
        )
    }
    assert triggers == {"xero_state_touched_rekey", "nexudus_state_touched_rekey"}


def test_records_read_again_as_they_were_are_not_written_again(tmp_path: Path) -> None:
    """Nexudus' last second is read twice, and Xero may answer a record unchanged: neither is
    written again, so the journal (and the next status sync) holds only what changed."""
    nexudus = _nexudus_invoices(["10.00", "20.00"])
    xero = [
        {"xero_id": "x-1", "status": "AUTHORISED", "total": Decimal("10.00")},
        {"xero_id": "x-2", "status": "AUTHORISED", "total": Decimal("20.00")},
    ]
    with Ledger(tmp_path / "ledger.sqlite") as ledger:
        ledger.update_nexudus_state(TENANT, nexudus)
        ledger.update_xero_state(TENANT, xero)
        start, _ = ledger.last_change_ids()
        ledger.update_nexudus_state(TENANT, nexudus)
        ledger.update_xero_state(TENANT, xero)
        assert ledger.last_change_ids()[0] == start
        ledger.update_nexudus_state(TENANT, nexudus.assign(Paid=[True, False]))
        ledger.update_xero_state(TENANT, [xero[0], {**xero[1], "status": "PAID"}])
        ledger.update_xero_state(TENANT, [{**xero[0], "created_by_recon": True}])
        assert ledger.touched_since(TENANT, start, ledger.last_change_ids()[0]) == (
            {1},
            {"x-1", "x-2"},
        )
        assert ledger.xero_state(TENANT)["created_by_recon"].tolist() == [1, 0]
