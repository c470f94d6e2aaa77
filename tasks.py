#!/usr/bin/env python3
"""Set up and run recon with nothing but Python 3.11+ (no conda, no make).

    python3 tasks.py demo    # create .venv, install pinned packages, run the main job on the
                             # sandbox
    python3 tasks.py test    # same set-up, then the whole test suite
    python3 tasks.py lock    # rewrite requirements.lock from the current .venv
    python3 tasks.py strip   # clear outputs from notebooks/*.ipynb before a commit (a test checks)

The virtualenv is reused while requirements.lock and pyproject.toml are unchanged
(a stamp file records their hash). Only the standard library is used here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".recon-installed"
# What ruff checks and formats (mypy's files are in pyproject.toml).
LINTED = ("recon", "tests", "bench", "deploy", "notebooks", "tasks.py")


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, env=env)


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("requirements.lock", "pyproject.toml"):
        h.update((ROOT / name).read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()


def setup() -> None:
    """Create .venv and install the pinned packages and recon itself (editable)."""
    # Live check: tasks.py is started by whatever python3 the user has, not only by 3.11+.
    if sys.version_info < (3, 11):  # noqa: UP036  runs before any 3.11 interpreter is guaranteed
        sys.exit(f"recon needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    _run(
        PY,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        "requirements.lock",
    )
    _run(
        PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "-e", "."
    )
    _run(PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3")
    STAMP.write_text(_fingerprint())


def demo(args: list[str]) -> None:
    setup()
    _run(BIN / "recon", "run", "params/demo.yaml", *args)


def test(args: list[str]) -> None:
    """The CI gates, then every test: lint, format, types, pytest with branch coverage."""
    setup()
    _run(PY, "-m", "ruff", "check", *LINTED)
    _run(PY, "-m", "ruff", "format", "--check", *LINTED)
    _run(PY, "-m", "mypy")  # [tool.mypy] in pyproject.toml: strict, on recon/
    coverage = ["--cov=recon", "--cov-branch", "--cov-report=term:skip-covered"]
    # One worker per core (pytest-xdist), each with its own sandbox; a file's tests stay on one
    # worker, so a notebook's cells run in order in one kernel (nbval) and module fixtures once.
    _run(PY, "-m", "pytest", *(args or ["-q", "-n", "auto", "--dist", "loadfile", *coverage]))


def lock(args: list[str]) -> None:
    out = subprocess.run(
        [str(PY), "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [ln for ln in out.splitlines() if ln and not ln.lower().startswith("recon")]
    header = [
        "# Exact versions of every package the tests run against (pip freeze of a fresh install).",
        "# Regenerate: python3 tasks.py lock",
    ]
    (ROOT / "requirements.lock").write_text("\n".join(header + lines) + "\n")


def strip(args: list[str]) -> None:
    """Clear outputs, execution counts and run metadata from notebooks/*.ipynb."""
    import json

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text("utf-8"))
        for key in ("widgets", "papermill"):
            nb["metadata"].pop(key, None)
        for cell in nb["cells"]:
            for key in ("execution", "ExecuteTime", "papermill", "collapsed", "scrolled"):
                cell.get("metadata", {}).pop(key, None)
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", "utf-8")


def main() -> None:
    commands = {"demo": demo, "test": test, "lock": lock, "strip": strip}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    try:
        commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)


if __name__ == "__main__":
    main()
