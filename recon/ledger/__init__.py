"""The durable local record of every write recon makes to Xero or Nexudus.

Floor 2: steps import it; it imports no step. One SQLite file in WAL mode,
synchronous=FULL, so a record survives a crash the moment ``record_*`` returns.

The rule that makes re-runs safe: an *intent* is written before a call and an
*outcome* after it. A run that finds an intent without an outcome (it crashed,
or the connection dropped) resolves it against the remote system before
sending anything again (``recon.transfer`` does that by invoice number).

Tables:
- ``transfers``: one row per (Xero organisation, Nexudus invoice): state
  ``sending`` (intent) / ``created`` / ``failed`` / ``unsent`` / ``held``; Xero id, number,
  amounts, attempts, messages, batch key, timestamps. ``unsent``: Xero never answered and
  does not hold it, so the next send is the same attempt again, under the same key; after
  ``failed`` Xero answered (and caches that answer under the key), so the next send is a new
  attempt with a new key (``next_attempts``, ``record_attempt_intents``).
- ``contacts``: Nexudus coworker -> Xero ContactID per organisation.
- ``payments``: Nexudus invoices marked paid from Xero (the status sync).
- ``events``: an append-only audit line for every write attempt and outcome.
- ``xero_state``: the last known Xero state of each invoice (kept current with If-Modified-Since).
- ``nexudus_state``: the same for the Nexudus side of each transferred invoice.
- ``watermarks``: the last successful sync time per organisation and kind.
- ``allocations`` (version 2): one row per attempt to allocate a credit note to an invoice in
  Xero: state ``sending`` (intent) / ``allocated`` / ``failed``, amount, the attempt's
  Idempotency-Key, how many equal allocations Xero already showed before it, messages.
- ``bindings`` (version 3): the Xero organisation (id, name, base currency) each Nexudus location
  books into, as a person confirmed it (who, when, how); one row per location (recon.bindings).
- version 4, what lets a status sync cost what changed: ``status_touched``, one line per write to
  ``transfers``, ``xero_state`` or ``nexudus_state`` (written by triggers, so no writer can forget
  it: the keys written, an increasing id); ``status_syncs``, per organisation and location, the
  last journal line and event a sync took in and how many transferred invoices it compared;
  ``status_members``, those invoices (until version 5 each flagged ``listed``, now told by
  ``status_kept``); ``status_unknown``, the Xero records it reported as
  unknown to the ledger. Indexes on ``transfers.xero_id``, the events' action and
  ``nexudus_state.business_id``.
- ``status_kept`` (version 5): the rows the last status sync of each location compared for each
  invoice it listed (a difference, or still owing in Xero: both sides' copies, money as text),
  so the next sync
  compares them again as they are, unless something was written under the invoice since.
  Upgrading a version-4 file forgets where each location's last sync stopped: the next is whole.
  Version 6 keeps them as one blob of packed columns per location (``recon.ledger.columns``),
  read and written whole; upgrading a version-5 file drops its rows, and the next sync is whole.
- ``nexudus_counts`` (version 6): how many invoices of each location the Nexudus copy holds,
  kept by triggers on ``nexudus_state``; a status sync compares it with Nexudus' own count.
- version 7: the journal triggers of ``xero_state`` and ``nexudus_state`` write one line per
  record written, and the record's old key only when an update names a key column.

One writer at a time: ``Ledger.writer(tenant_id, purpose)`` is a lock per ledger file and
Xero organisation (``fcntl.flock``, or ``msvcrt.locking`` on Windows, on a ``.lock`` file beside
the ledger, naming its holder), across processes and threads, waiting a bounded time
(``WRITER_WAIT_SECONDS``) before it refuses with who holds it; ``push`` and ``apply_paid`` take
it. State changes are compare-and-set (``claim_transfers``, ``record_outcome(s)(expected=)``,
``claim_payment``, ``record_payment(expected=)``): a row another run moved on meanwhile keeps
that run's record, so nothing is sent twice or recorded failed after it succeeded.

The file carries its layout's version in ``PRAGMA user_version`` (``SCHEMA_VERSION``),
stamped when the file is created. A file from before versions were stamped (0) is
brought up to date when opened: any table it lacks is created, any column added since
(``LATE_COLUMNS``) is added, and it is stamped. A file stamped with a newer version than
this code knows is refused (``StepError``): a newer recon wrote it. Every INSERT names
its columns, so a table whose columns sit in another order is written correctly.

``Ledger`` is composed of one class per table group, each in its module: ``store`` (the
connection, transactions, the one-writer lock and audit lines, on ``schema`` and
``writer_lock``), ``transfers``, ``contacts``, ``bindings``, ``payments``, ``allocations``,
``remote_state`` (watermarks, Xero and Nexudus state), ``audit`` (reading the audit trail) and
``status_journal``; ``stored`` holds how times and amounts are written and read back.
"""

from __future__ import annotations

from recon.ledger.allocations import AllocationsTable
from recon.ledger.audit import AuditTrail
from recon.ledger.bindings import BindingsTable
from recon.ledger.contacts import ContactsTable
from recon.ledger.payments import PaymentsTable
from recon.ledger.remote_state import RemoteState
from recon.ledger.schema import ALLOCATIONS_SCHEMA as ALLOCATIONS_SCHEMA
from recon.ledger.schema import BINDINGS_SCHEMA as BINDINGS_SCHEMA
from recon.ledger.schema import LATE_COLUMNS as LATE_COLUMNS
from recon.ledger.schema import SCHEMA as SCHEMA
from recon.ledger.schema import SCHEMA_VERSION
from recon.ledger.schema import STATUS_STATEMENTS as STATUS_STATEMENTS
from recon.ledger.status_journal import StatusJournal
from recon.ledger.store import CACHE_KIB as CACHE_KIB
from recon.ledger.store import ID_CHUNK as ID_CHUNK
from recon.ledger.store import MMAP_BYTES as MMAP_BYTES
from recon.ledger.store import WHOLE_READ_ABOVE as WHOLE_READ_ABOVE
from recon.ledger.transfers import TransfersTable
from recon.ledger.writer_lock import WRITER_WAIT_SECONDS

__all__ = ["SCHEMA_VERSION", "WRITER_WAIT_SECONDS", "Ledger"]


class Ledger(
    TransfersTable,
    BindingsTable,
    ContactsTable,
    PaymentsTable,
    AllocationsTable,
    RemoteState,
    AuditTrail,
    StatusJournal,
):
    """Open (creating if needed) the ledger file at ``path``."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"
