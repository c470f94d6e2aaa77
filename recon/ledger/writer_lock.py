"""One writer at a time: a lock per ledger file and Xero organisation, across processes and
threads, naming its holder."""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from recon.errors import StepError
from recon.ledger.stored import utc_now

# How long a push or an apply waits for another run's hold on the same ledger and organisation
# before it gives up (and says who holds it): a scheduled run waiting for an accountant's click.
WRITER_WAIT_SECONDS = 120.0
# Between two tries for a lock another process holds (grows to the second value).
_WRITER_POLL_SECONDS = (0.02, 0.5)


class _WriterHold:
    """This process's hold on one lock file: threads queue on ``turn``; the holding thread may
    enter again (``depth``). flock locks belong to an open file, so the file is opened once per
    process hold, never by a second thread of a process that holds it."""

    def __init__(self) -> None:
        self.turn = threading.Lock()
        self.owner: int | None = None  # the holding thread's ident; set and cleared by it only
        self.depth = 0


_WRITER_HOLDS: dict[str, _WriterHold] = {}
_WRITER_HOLDS_GUARD = threading.Lock()


def _try_lock_file(fd: int) -> bool:
    """Take the lock of an open lock file without waiting; whether it was taken."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock_file(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


# The holder's description sits after the first byte: the byte Windows locks cannot be read by
# another process while it is held.
_HOLDER_OFFSET = 1


def _write_holder(fd: int, purpose: str) -> None:
    text = json.dumps(
        {
            "purpose": purpose,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": utc_now(),
        }
    )
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b" " + text.encode("utf-8"))
    os.fsync(fd)


def _read_holder(path: Path) -> str:
    """Who holds the lock at ``path``, in words (as the holder wrote it when it took it)."""
    try:
        with path.open("rb") as fh:
            fh.seek(_HOLDER_OFFSET)
            found = json.loads(fh.read().decode("utf-8") or "{}")
    except (OSError, ValueError):
        found = {}
    if not isinstance(found, dict) or not found.get("pid"):
        return "another recon run"
    return (
        f"{found.get('purpose') or 'a recon run'} (process {found.get('pid')} on "
        f"{found.get('host') or 'this machine'}, since {found.get('since') or 'a moment ago'})"
    )


def _busy(path: Path, waited: float) -> StepError:
    return StepError(
        f"another recon run is writing through this ledger to this Xero organisation: "
        f"{_read_holder(path)}; waited {waited:.0f} s for it (lock file {path}). Nothing was sent "
        "by this run; run it again once the other has finished (the ledger keeps anything from "
        "being written twice)."
    )


@contextmanager
def hold_writer(path: Path, purpose: str, wait: float) -> Iterator[None]:
    """Hold the lock file ``path`` against every other process and thread, waiting up to ``wait``
    seconds for it (``StepError`` naming the holder after that); re-entrant within a thread."""
    key = str(path.resolve())
    with _WRITER_HOLDS_GUARD:
        hold = _WRITER_HOLDS.setdefault(key, _WriterHold())
    me = threading.get_ident()
    if hold.owner == me:
        hold.depth += 1
        try:
            yield
        finally:
            hold.depth -= 1
        return
    started = time.monotonic()
    if not hold.turn.acquire(timeout=max(wait, 0.0)):
        raise _busy(path, time.monotonic() - started)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            pause = _WRITER_POLL_SECONDS[0]
            while not _try_lock_file(fd):
                waited = time.monotonic() - started
                if waited >= wait:
                    raise _busy(path, waited)
                time.sleep(min(pause, max(wait - waited, 0.0)))
                pause = min(pause * 2, _WRITER_POLL_SECONDS[1])
            try:
                _write_holder(fd, purpose)
                hold.owner, hold.depth = me, 1
                try:
                    yield
                finally:
                    hold.owner, hold.depth = None, 0
                    os.ftruncate(fd, 0)
            finally:
                _unlock_file(fd)
        finally:
            os.close(fd)
    finally:
        hold.turn.release()
