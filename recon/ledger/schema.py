"""The ledger file's layout: its tables, the version it is stamped with, and the steps that
bring an older file up to date."""

from __future__ import annotations

import sqlite3

# The layout SCHEMA describes. Raise it, and add a step to MIGRATIONS, when the layout changes.
SCHEMA_VERSION = 7

SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers(
    tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER NOT NULL, invoice_number TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'invoice', state TEXT NOT NULL, xero_id TEXT, batch_key TEXT,
    currency TEXT, nexudus_total TEXT, xero_total TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    messages TEXT NOT NULL DEFAULT '[]', written_back INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE INDEX IF NOT EXISTS transfers_state ON transfers(tenant_id, state);
CREATE INDEX IF NOT EXISTS transfers_number ON transfers(tenant_id, invoice_number);
CREATE TABLE IF NOT EXISTS contacts(
    tenant_id TEXT NOT NULL, nexudus_coworker_id INTEGER NOT NULL, contact_number TEXT NOT NULL,
    xero_contact_id TEXT, state TEXT NOT NULL, name TEXT, updated_at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_coworker_id));
CREATE TABLE IF NOT EXISTS payments(
    tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER NOT NULL, invoice_number TEXT NOT NULL,
    state TEXT NOT NULL, amount TEXT, paid_on TEXT, xero_invoice_id TEXT,
    messages TEXT NOT NULL DEFAULT '[]', updated_at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, system TEXT NOT NULL,
    action TEXT NOT NULL, tenant_id TEXT, subject TEXT, outcome TEXT NOT NULL, detail TEXT);
CREATE TABLE IF NOT EXISTS xero_state(
    tenant_id TEXT NOT NULL, xero_id TEXT NOT NULL, number TEXT, kind TEXT NOT NULL, status TEXT,
    total TEXT, amount_due TEXT, amount_paid TEXT, amount_credited TEXT, fully_paid_on TEXT,
    updated_utc TEXT, created_by_recon INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(tenant_id, xero_id));
CREATE TABLE IF NOT EXISTS nexudus_state(
    tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER NOT NULL, total TEXT, paid INTEGER,
    paid_amount TEXT, void INTEGER, due_date TEXT, updated_on TEXT, business_id INTEGER,
    PRIMARY KEY(tenant_id, nexudus_invoice_id));
CREATE TABLE IF NOT EXISTS watermarks(tenant_id TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, kind));
"""

# Columns added to a table after the table first shipped, so a version-0 file may lack them
# (ledgers written before nexudus_state had business_id). Each is nullable or has a default.
LATE_COLUMNS: tuple[tuple[str, str, str], ...] = (("nexudus_state", "business_id", "INTEGER"),)


# Version 2: credit notes allocated to their original invoices (recon.transfer.allocate).
ALLOCATIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS allocations(
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
    credit_note_id TEXT NOT NULL, credit_note_number TEXT, invoice_id TEXT NOT NULL,
    invoice_number TEXT, currency TEXT, amount TEXT NOT NULL, attempt INTEGER NOT NULL,
    seen_before INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL,
    messages TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    UNIQUE(tenant_id, idempotency_key));
CREATE INDEX IF NOT EXISTS allocations_note ON allocations(tenant_id, credit_note_id);
"""


def _schema_statements(script: str = SCHEMA) -> list[str]:
    """A script one statement at a time (``executescript`` would commit the open transaction)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]


def _from_version_0(db: sqlite3.Connection) -> None:
    """A new file, or one written before versions were stamped: the tables and columns of 1."""
    for statement in _schema_statements():
        db.execute(statement)
    for table, column, declaration in LATE_COLUMNS:
        present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


def _from_version_1(db: sqlite3.Connection) -> None:
    """Version 1 to 2: the ``allocations`` table."""
    for statement in _schema_statements(ALLOCATIONS_SCHEMA):
        db.execute(statement)


# Version 3: which Xero organisation each Nexudus location books into, confirmed by a person.
BINDINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS bindings(
    business_id INTEGER NOT NULL PRIMARY KEY, location TEXT NOT NULL, tenant_id TEXT NOT NULL,
    organisation_name TEXT NOT NULL, base_currency TEXT, confirmed_by TEXT NOT NULL,
    confirmed_at TEXT NOT NULL, source TEXT NOT NULL);
"""


def _from_version_2(db: sqlite3.Connection) -> None:
    """Version 2 to 3: the ``bindings`` table (a location's confirmed Xero organisation)."""
    for statement in _schema_statements(BINDINGS_SCHEMA):
        db.execute(statement)


# Version 4: the journal of writes a status sync reads to diff only what changed, and what the
# last sync of each location listed. Statements one by one (a trigger body holds semicolons).
_TOUCH = "INSERT INTO status_touched(tenant_id,nexudus_invoice_id,xero_id) "
STATUS_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS status_touched(
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, nexudus_invoice_id INTEGER,
    xero_id TEXT)""",
    """CREATE TABLE IF NOT EXISTS status_syncs(
    tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, touched_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL, transferred INTEGER NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY(tenant_id, business_id))""",
    """CREATE TABLE IF NOT EXISTS status_members(
    tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, nexudus_invoice_id INTEGER NOT NULL,
    listed INTEGER NOT NULL, PRIMARY KEY(tenant_id, business_id, nexudus_invoice_id))""",
    # (Version 4 also indexed status_members' listed flag; version 5 drops both.)
    """CREATE TABLE IF NOT EXISTS status_unknown(
    tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, xero_id TEXT NOT NULL,
    PRIMARY KEY(tenant_id, business_id, xero_id))""",
    "CREATE INDEX IF NOT EXISTS transfers_xero_id ON transfers(tenant_id, xero_id)",
    "CREATE INDEX IF NOT EXISTS events_action ON events(tenant_id, system, action)",
    "CREATE INDEX IF NOT EXISTS nexudus_state_business ON nexudus_state(tenant_id, business_id)",
    # transfers: the columns a status diff reads (not written_back, messages, attempts...).
    f"""CREATE TRIGGER IF NOT EXISTS transfers_touched_insert AFTER INSERT ON transfers BEGIN
    {_TOUCH}VALUES(NEW.tenant_id, NEW.nexudus_invoice_id, NEW.xero_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS transfers_touched_update AFTER UPDATE OF tenant_id,
    nexudus_invoice_id, invoice_number, kind, state, xero_id, currency, nexudus_total, xero_total
    ON transfers BEGIN
    {_TOUCH}VALUES(NEW.tenant_id, NEW.nexudus_invoice_id, NEW.xero_id);
    {_TOUCH}SELECT OLD.tenant_id, OLD.nexudus_invoice_id, OLD.xero_id
    WHERE OLD.xero_id IS NOT NEW.xero_id OR OLD.tenant_id IS NOT NEW.tenant_id
    OR OLD.nexudus_invoice_id IS NOT NEW.nexudus_invoice_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS transfers_touched_delete AFTER DELETE ON transfers BEGIN
    {_TOUCH}VALUES(OLD.tenant_id, OLD.nexudus_invoice_id, OLD.xero_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS xero_state_touched_insert AFTER INSERT ON xero_state BEGIN
    {_TOUCH}VALUES(NEW.tenant_id, NULL, NEW.xero_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS xero_state_touched_update AFTER UPDATE ON xero_state BEGIN
    {_TOUCH}VALUES(NEW.tenant_id, NULL, NEW.xero_id);
    {_TOUCH}SELECT OLD.tenant_id, NULL, OLD.xero_id
    WHERE OLD.xero_id IS NOT NEW.xero_id OR OLD.tenant_id IS NOT NEW.tenant_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS xero_state_touched_delete AFTER DELETE ON xero_state BEGIN
    {_TOUCH}VALUES(OLD.tenant_id, NULL, OLD.xero_id); END""",
    f"""CREATE TRIGGER IF NOT EXISTS nexudus_state_touched_insert AFTER INSERT ON nexudus_state
    BEGIN {_TOUCH}VALUES(NEW.tenant_id, NEW.nexudus_invoice_id, NULL); END""",
    f"""CREATE TRIGGER IF NOT EXISTS nexudus_state_touched_update AFTER UPDATE ON nexudus_state
    BEGIN {_TOUCH}VALUES(NEW.tenant_id, NEW.nexudus_invoice_id, NULL);
    {_TOUCH}SELECT OLD.tenant_id, OLD.nexudus_invoice_id, NULL
    WHERE OLD.nexudus_invoice_id IS NOT NEW.nexudus_invoice_id
    OR OLD.tenant_id IS NOT NEW.tenant_id; END""",
    f"""CREATE TRIGGER IF NOT EXISTS nexudus_state_touched_delete AFTER DELETE ON nexudus_state
    BEGIN {_TOUCH}VALUES(OLD.tenant_id, OLD.nexudus_invoice_id, NULL); END""",
)


def _from_version_3(db: sqlite3.Connection) -> None:
    """Version 3 to 4: the status sync's journal of writes and what its last run listed."""
    for statement in STATUS_STATEMENTS:
        db.execute(statement)


# Version 5: each invoice the last status sync of a location listed (still owing, or a
# difference), as that sync compared it: both sides' copies, money as text. The next sync takes
# these rows as they are for every listed invoice nothing was written under since, instead of
# reading three tables by key for each (``Ledger.kept_status_rows``).
KEPT_TEXT = (
    "invoice_number",
    "xero_id",
    "currency",
    "xero_status",
    "xero_paid_on",
    "kind",
    "nexudus_due_date",
)
KEPT_MONEY = (
    "transferred_total",
    "nexudus_total_at_transfer",
    "xero_total",
    "xero_amount_due",
    "xero_amount_paid",
    "xero_amount_credited",
    "nexudus_total",
    "nexudus_paid_amount",
    "nexudus_credited",
)
KEPT_FLAGS = ("found_in_xero", "nexudus_paid", "nexudus_void", "nexudus_deleted")
KEPT_COLUMNS = ("nexudus_invoice_id", *KEPT_TEXT, *KEPT_MONEY, *KEPT_FLAGS)
_KEPT_TYPES = (
    {"nexudus_invoice_id": "INTEGER NOT NULL"}
    | dict.fromkeys((*KEPT_TEXT, *KEPT_MONEY), "TEXT")
    | dict.fromkeys(KEPT_FLAGS, "INTEGER NOT NULL")
)
# (Version 5's layout: a row per kept invoice. Version 6 replaces it.)
STATUS_KEPT_V5_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS status_kept(tenant_id TEXT NOT NULL, business_id INTEGER NOT "
    f"NULL, {', '.join(f'{c} {t}' for c, t in _KEPT_TYPES.items())}, "
    "PRIMARY KEY(tenant_id, business_id, nexudus_invoice_id)) WITHOUT ROWID"
)


# Version 5: the invoices the last sync compared, without a flag: what it listed is what it kept.
STATUS_MEMBERS_SCHEMA = (
    "CREATE TABLE status_members(tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, "
    "nexudus_invoice_id INTEGER NOT NULL, PRIMARY KEY(tenant_id, business_id, "
    "nexudus_invoice_id)) WITHOUT ROWID"
)


def _from_version_4(db: sqlite3.Connection) -> None:
    """Version 4 to 5: the rows the last status sync listed, and the invoices it compared
    without a listed flag. A sync recorded before kept no rows, so the next sync of each
    location is a whole one (it forgets where the last one stopped)."""
    db.execute(STATUS_KEPT_V5_SCHEMA)
    db.execute("DROP INDEX IF EXISTS status_members_listed")
    db.execute("DROP TABLE IF EXISTS status_members")
    db.execute(STATUS_MEMBERS_SCHEMA)
    db.execute("DELETE FROM status_syncs")


# Version 6: the same kept rows, as one blob of packed columns per location
# (``recon.ledger.columns``: ids and flags as integers, text and amounts as codes into their
# distinct values). A sync reads and writes them whole in milliseconds, where a row per invoice
# cost a read of every row and a text per cell, and rewrote a page per changed invoice.
STATUS_KEPT_SCHEMA = (
    "CREATE TABLE status_kept(tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, "
    "rows INTEGER NOT NULL, columns BLOB NOT NULL, PRIMARY KEY(tenant_id, business_id))"
)


# Version 6 also counts each location's invoices in the Nexudus copy, kept by triggers so no
# writer can forget it: a status sync compares it with Nexudus' count to tell whether anything
# was deleted, where counting a million index entries cost more than the rest of a quiet sync.
_COUNT_UP = (
    "INSERT INTO nexudus_counts(tenant_id,business_id,invoices) SELECT NEW.tenant_id, "
    "NEW.business_id, 1 WHERE NEW.business_id IS NOT NULL ON CONFLICT(tenant_id,business_id) "
    "DO UPDATE SET invoices=invoices+1"
)
_COUNT_DOWN = (
    "UPDATE nexudus_counts SET invoices=invoices-1 WHERE tenant_id=OLD.tenant_id AND "
    "business_id=OLD.business_id"
)
NEXUDUS_COUNTS_STATEMENTS: tuple[str, ...] = (
    # Counted afresh from the copy as it stands; the statements may run again on a file.
    *(
        f"DROP TRIGGER IF EXISTS nexudus_counts_{change}"
        for change in ("insert", "delete", "update")
    ),
    "DROP TABLE IF EXISTS nexudus_counts",
    "CREATE TABLE nexudus_counts(tenant_id TEXT NOT NULL, business_id INTEGER NOT NULL, "
    "invoices INTEGER NOT NULL, PRIMARY KEY(tenant_id, business_id)) WITHOUT ROWID",
    "INSERT INTO nexudus_counts(tenant_id,business_id,invoices) SELECT tenant_id, business_id, "
    "COUNT(*) FROM nexudus_state WHERE business_id IS NOT NULL GROUP BY tenant_id, business_id",
    f"CREATE TRIGGER nexudus_counts_insert AFTER INSERT ON nexudus_state BEGIN {_COUNT_UP}; END",
    f"CREATE TRIGGER nexudus_counts_delete AFTER DELETE ON nexudus_state BEGIN {_COUNT_DOWN}; END",
    "CREATE TRIGGER nexudus_counts_update AFTER UPDATE OF tenant_id, business_id ON "
    "nexudus_state WHEN OLD.business_id IS NOT NEW.business_id OR OLD.tenant_id IS NOT "
    f"NEW.tenant_id BEGIN {_COUNT_DOWN}; {_COUNT_UP}; END",
)


def _from_version_5(db: sqlite3.Connection) -> None:
    """Version 5 to 6: the kept rows as one blob per location, and the count of each location's
    Nexudus invoices. The rows kept before are dropped, so the next sync of each location is a
    whole one (as after version 5's upgrade)."""
    db.execute("DROP TABLE IF EXISTS status_kept")
    db.execute(STATUS_KEPT_SCHEMA)
    db.execute("DELETE FROM status_syncs")
    for statement in NEXUDUS_COUNTS_STATEMENTS:
        db.execute(statement)


# Version 7: a write to the Xero or Nexudus copy puts its record in the journal with one
# statement. The old key goes in too only when an update names a key column (an upsert never
# does), where version 4's trigger tested that with a second statement for every row written:
# about a tenth of what a status sync spends writing 12,000 changed records.
JOURNAL_STATEMENTS: tuple[str, ...] = tuple(
    statement
    for table, key, row_of in (
        ("xero_state", "xero_id", "{0}.tenant_id, NULL, {0}.xero_id"),
        ("nexudus_state", "nexudus_invoice_id", "{0}.tenant_id, {0}.nexudus_invoice_id, NULL"),
    )
    for statement in (
        # The statements may run again on a file (as NEXUDUS_COUNTS_STATEMENTS).
        f"DROP TRIGGER IF EXISTS {table}_touched_update",
        f"DROP TRIGGER IF EXISTS {table}_touched_rekey",
        f"CREATE TRIGGER {table}_touched_update AFTER UPDATE ON {table} BEGIN "
        f"{_TOUCH}VALUES({row_of.format('NEW')}); END",
        f"CREATE TRIGGER {table}_touched_rekey AFTER UPDATE OF tenant_id, {key} ON {table} "
        f"WHEN OLD.{key} IS NOT NEW.{key} OR OLD.tenant_id IS NOT NEW.tenant_id BEGIN "
        f"{_TOUCH}VALUES({row_of.format('OLD')}); END",
    )
)


def _from_version_6(db: sqlite3.Connection) -> None:
    """Version 6 to 7: the journal triggers of the Xero and Nexudus copies (same lines)."""
    for statement in JOURNAL_STATEMENTS:
        db.execute(statement)


# MIGRATIONS[v] brings a file at version v to v + 1.
MIGRATIONS = (
    _from_version_0,
    _from_version_1,
    _from_version_2,
    _from_version_3,
    _from_version_4,
    _from_version_5,
    _from_version_6,
)
assert len(MIGRATIONS) == SCHEMA_VERSION
