"""The run folder's manifest: which recon made it, from which params, and a SHA-256 of every file.

Floor 2 (part of ``recon.report``). ``write_manifest`` writes
``<run folder>/manifest.json`` last, after everything else of the report:

- ``recon``: recon's version, and the git commit of the checkout recon runs
  from when it runs from one (``git rev-parse HEAD`` in its folder; ``null``
  when there is no git, or recon is installed outside a checkout);
- ``params``: the params file's name and the SHA-256 of its bytes. Never its
  content: a params file names secrets' environment variables, and a hash
  says whether two runs used the same file without showing anything of it;
- ``files``: for every file in the run folder (the steps' CSVs and notebooks,
  the inputs they saved, and the report itself), its path relative to the run
  folder, its size and its SHA-256, in path order.

An auditor checks a pack with ``sha256sum`` against it; ``verify_manifest`` does
the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from recon.params import RunParams

MANIFEST = "manifest.json"
# Where recon's package lives: its checkout, if any, is the one whose commit is recorded.
_PACKAGE = Path(__file__).resolve().parent.parent


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(package: Path = _PACKAGE) -> str | None:
    """The commit of the git checkout ``package`` (recon's folder) belongs to; None without git,
    outside a checkout, or when the checkout found is another project's (recon installed into a
    virtual environment inside it)."""
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"],
            cwd=package,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = found.stdout.split()
    if found.returncode != 0 or len(lines) != 2:
        return None
    top, commit = lines
    if Path(top).resolve() / package.name != package.resolve():
        return None
    return commit


def _version() -> str:
    try:
        return metadata.version("recon")
    except metadata.PackageNotFoundError:
        return "not installed"


def _params(params: RunParams) -> dict[str, Any]:
    source = Path(params.source)
    if params.source == "(defaults)" or not source.is_file():
        return {"file": None if params.source == "(defaults)" else source.name, "sha256": None}
    return {"file": source.name, "sha256": sha256(source)}


def manifest(run_dir: Path, params: RunParams) -> dict[str, Any]:
    """The manifest of ``run_dir`` as it is now (see the module docstring)."""
    files = sorted(
        p for p in run_dir.rglob("*") if p.is_file() and p.name != MANIFEST and not _is_tmp(p)
    )
    return {
        "run_id": run_dir.name,
        "built": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "recon": {"version": _version(), "git_commit": git_commit()},
        "python": platform.python_version(),
        "params": _params(params),
        "files": [
            {
                "path": p.relative_to(run_dir).as_posix(),
                "bytes": p.stat().st_size,
                "sha256": sha256(p),
            }
            for p in files
        ],
    }


def _is_tmp(path: Path) -> bool:
    """A file another writer has not finished (``*.tmp``, written whole then renamed)."""
    return path.name.endswith(".tmp")


def write_manifest(run_dir: Path, params: RunParams) -> Path:
    """Write ``run_dir/manifest.json`` (whole, or not at all); return its path."""
    path = run_dir / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest(run_dir, params), indent=2) + "\n", "utf-8")
    os.replace(tmp, path)
    return path


def verify_manifest(run_dir: Path) -> list[str]:
    """The files of ``run_dir`` that differ from its manifest (changed, missing or not listed);
    ``[]`` when the pack is as it was written."""
    recorded = {
        f["path"]: f["sha256"] for f in json.loads((run_dir / MANIFEST).read_text("utf-8"))["files"]
    }
    present = {
        p.relative_to(run_dir).as_posix(): p
        for p in run_dir.rglob("*")
        if p.is_file() and p.name != MANIFEST and not _is_tmp(p)
    }
    problems = [f"missing: {name}" for name in sorted(set(recorded) - set(present))]
    problems += [f"not listed: {name}" for name in sorted(set(present) - set(recorded))]
    problems += [
        f"changed: {name}"
        for name in sorted(set(recorded) & set(present))
        if sha256(present[name]) != recorded[name]
    ]
    return problems
