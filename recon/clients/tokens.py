"""Where OAuth2 tokens live between runs: a user config folder, never the repo.

Each token set is one JSON file written atomically (temp file + fsync +
rename) with mode 0600 in a folder of mode 0700. ``RECON_CONFIG_DIR`` moves
the folder (tests point it at a temporary one). Tokens are never printed:
``TokenStore`` has no method that returns them as text for display.

Several processes may share one store (a scheduled run while a notebook is
open). Xero rotates the refresh token on every refresh and the old one dies
(xero-api.md §11), so two processes refreshing from the same saved token race:
the loser gets ``invalid_grant`` ("multiple clients refreshing causing other
clients losing the last valid token", §13 "refresh rotation races"). So:

- ``lock(name)`` is a cross-process lock (``fcntl.flock`` on the store's
  folder on POSIX; ``msvcrt.locking`` on a ``.lock`` file in it on Windows);
  ``save`` and ``delete`` take it, and a client holds it around read, refresh,
  write (``update``), so the second process reads the token the first one
  saved instead of spending a dead one;
- ``delete`` forgets a token set only if the file still holds the one this
  store last loaded or saved: a set another process saved since is newer, and
  wiping it would force everyone to sign in again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import platformdirs

__all__ = ["TokenStore", "default_config_dir", "file_lock"]


# Threads of one process share one lock per file, re-entrant within a thread: flock locks belong to
# the open file, so a second open of the lock file by the same process would wait for itself.
class _Held:
    def __init__(self) -> None:
        self.local = threading.RLock()
        self.depth = 0  # how many times the holding thread has entered; changed only by it


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def default_config_dir() -> Path:
    """The folder for recon's user configuration and tokens."""
    env = os.environ.get("RECON_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir("recon"))


def _lock_fd(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        while True:  # LK_LOCK gives up after ten one-second tries; a token refresh may take longer
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                return
            except OSError:
                continue
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


def _unlock_fd(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def _open_for_lock(path: Path) -> int:
    """A descriptor to lock ``path`` through: a folder itself on POSIX (flock locks folders), else
    the file, created if missing (mode 0600)."""
    if path.is_dir():
        if sys.platform == "win32":
            return os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        return os.open(path, os.O_RDONLY)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a folder, or a file created if missing) against every
    other process and thread that takes it; re-entrant within a thread; released on leaving, and
    by the system if the process dies."""
    path = Path(path)
    with _HELD_GUARD:
        held = _HELD.setdefault(str(path.resolve()), _Held())
    with held.local:
        if held.depth:
            held.depth += 1
            try:
                yield
            finally:
                held.depth -= 1
            return
        fd = _open_for_lock(path)
        try:
            _lock_fd(fd)
            held.depth = 1
            try:
                yield
            finally:
                held.depth = 0
                _unlock_fd(fd)
        finally:
            os.close(fd)


class TokenStore:
    """Load and save token sets by name (e.g. ``xero-<client id hash>``), safe across processes."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_config_dir() / "tokens"
        # name -> the token set this store last loaded or saved (what ``delete`` may remove)
        self._seen: dict[str, dict[str, Any] | None] = {}

    def _path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        return self.folder / f"{safe}.json"

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the token set ``name`` against every other process and thread: take it around
        read, refresh, write (see the module docstring). Re-entrant within a thread.

        The lock is the store's folder itself (every set in it at once: refreshes are rare and
        short), so the folder holds nothing but the token files.
        """
        self._ensure_folder()
        with file_lock(self.folder):
            yield

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            saved = json.loads(self._path(name).read_text("utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # a torn or hand-edited file: treat as no token, sign in again
        return saved if isinstance(saved, dict) else None

    def load(self, name: str) -> dict[str, Any] | None:
        """The token set saved under ``name``; None if there is none or its file holds none.

        Never a half-written file: every save replaces the file whole.
        """
        saved = self._read(name)
        self._seen[name] = saved
        return saved

    def save(self, name: str, token: dict[str, Any]) -> None:
        """Save ``token`` under ``name``, replacing the previous one atomically (file 0600, folder
        0700), under the token set's lock."""
        with self.lock(name):
            self._write(name, dict(token))

    def _write(self, name: str, token: dict[str, Any]) -> None:
        path = self._path(name)
        fd, tmp = tempfile.mkstemp(prefix=".tok-", dir=self.folder)
        try:
            if sys.platform != "win32":
                os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(token, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._seen[name] = json.loads(json.dumps(token))  # as ``load`` will read it back

    def update(
        self,
        name: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    ) -> dict[str, Any] | None:
        """Read, change and write the token set ``name`` as one step no other process can split.

        ``change`` gets the token set saved now (another process's newer one, if
        it refreshed first) and returns the set to save, or None to leave the
        file as it is. Returns the set saved now. An exception from ``change``
        leaves the file untouched.
        """
        with self.lock(name):
            current = self.load(name)
            new = change(current)
            if new is None:
                return current
            self._write(name, dict(new))
            return new

    def delete(self, name: str) -> bool:
        """Forget the token set saved under ``name`` if it is still the one this store last loaded
        or saved (or this store never read it); returns whether a file was removed.

        A set another process saved since is newer than the one found dead here, so it is kept.
        """
        with self.lock(name):
            path = self._path(name)
            if not path.exists():
                self._seen[name] = None
                return False
            on_disk = self._read(name)
            if on_disk is not None and name in self._seen and self._seen[name] != on_disk:
                return False  # another process saved a newer set since: keep it
            path.unlink(missing_ok=True)  # the set found dead here, or a torn file
            self._seen[name] = None
            return True

    def __repr__(self) -> str:
        return f"TokenStore({str(self.folder)!r})"
