"""Where OAuth2 tokens live between runs: a user config folder, never the repo.

Each token set is one JSON file written atomically (temp file + rename) with
mode 0600 in a folder of mode 0700. ``RECON_CONFIG_DIR`` moves the folder
(tests point it at a temporary one). Tokens are never printed: ``TokenStore``
has no method that returns them as text for display.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import platformdirs

__all__ = ["TokenStore", "default_config_dir"]


def default_config_dir() -> Path:
    """The folder for recon's user configuration and tokens."""
    env = os.environ.get("RECON_CONFIG_DIR")
    return Path(env) if env else Path(platformdirs.user_config_dir("recon"))


class TokenStore:
    """Load and save token sets by name (e.g. ``xero-<client id hash>``)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else default_config_dir() / "tokens"

    def _path(self, name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        return self.folder / f"{safe}.json"

    def load(self, name: str) -> dict[str, Any] | None:
        """The token set saved under ``name``; None if there is none or its file holds none."""
        path = self._path(name)
        try:
            saved = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # a torn or hand-edited file: treat as no token, sign in again
        return saved if isinstance(saved, dict) else None

    def save(self, name: str, token: dict[str, Any]) -> None:
        """Save ``token`` under ``name``, replacing the previous one atomically (file 0600, folder
        0700)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        path = self._path(name)
        fd, tmp = tempfile.mkstemp(prefix=".tok-", dir=self.folder)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(dict(token), fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, name: str) -> None:
        """Forget the token set saved under ``name``, if any."""
        self._path(name).unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"TokenStore({str(self.folder)!r})"
