"""pyproject.toml, environment.yml and requirements.lock must pin the same versions; the wheel ships
the notebooks and the demo params, and ``recon notebooks DIR`` copies them (recon.resources)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import yaml

from recon import resources

ROOT = Path(__file__).resolve().parent.parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_pins() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = list(data["project"]["dependencies"])
    for extra in data["project"].get("optional-dependencies", {}).values():
        deps.extend(extra)
    pins = {}
    for dep in deps:
        name, _, version = dep.partition("==")
        assert version, f"pyproject.toml: {dep!r} is not pinned with =="
        pins[_norm(name)] = version
    return pins


def test_environment_yml_pins_exactly_what_pyproject_pins() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        if isinstance(dep, str) and "=" in dep and not dep.startswith("python="):
            name, _, version = dep.partition("=")
            conda[_norm(name)] = version
    assert conda == _pyproject_pins()


def test_requirements_lock_holds_every_pyproject_pin_at_the_same_version() -> None:
    lock = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            lock[_norm(name)] = version
    for name, version in _pyproject_pins().items():
        assert lock.get(name) == version, (
            f"requirements.lock has {name}=={lock.get(name)}, pyproject.toml {version}"
        )


# ---- the wheel ships the notebooks and the demo params; `recon notebooks DIR` copies them --------
# What `recon notebooks DIR` writes, and what the wheel must hold for it (recon.resources).
COPIED = [*resources.NOTEBOOK_FILES, *(f"params/{name}" for name in resources.PARAMS_FILES)]
IN_WHEEL = [
    *(f"recon/bundled/notebooks/{name}" for name in resources.NOTEBOOK_FILES),
    *(f"recon/bundled/params/{name}" for name in resources.PARAMS_FILES),
]


def test_pyproject_lists_every_package_of_recon_and_maps_the_bundled_files() -> None:
    """The packages are listed (not found) so that notebooks/ and params/ can be mapped into the
    wheel: a new package of recon/ must be added to the list, or the wheel would lack it."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "recon").rglob("__init__.py")
    }
    missing = sorted(on_disk - set(setuptools["packages"]))
    assert not missing, f"add {missing} to [tool.setuptools] packages in pyproject.toml"
    assert setuptools["package-dir"] == {
        "recon.bundled.notebooks": "notebooks",
        "recon.bundled.params": "params",
    }
    for name in resources.NOTEBOOK_FILES:
        assert (ROOT / "notebooks" / name).is_file()
    for name in resources.PARAMS_FILES:
        assert (ROOT / "params" / name).is_file()


def recon_command() -> list[str]:
    script = Path(sys.executable).parent / "recon"
    return [str(script)] if script.exists() else [sys.executable, "-m", "recon.cli"]


def recon_notebooks(folder: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``recon notebooks FOLDER [ARGS]`` in a subprocess started in ``cwd``."""
    return subprocess.run(
        [*recon_command(), "notebooks", str(folder), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_recon_notebooks_copies_the_notebooks_and_demo_params_and_keeps_existing_files(
    tmp_path: Path,
) -> None:
    target = tmp_path / "mine"
    first = recon_notebooks(target, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for name in COPIED:
        source = ROOT / ("notebooks/" + name if "/" not in name else name)
        assert (target / name).read_bytes() == source.read_bytes()
    assert f"recon run {target / 'params' / 'demo.yaml'}" in first.stdout
    (target / "02_transfer.ipynb").write_text("my edits", "utf-8")
    again = recon_notebooks(target, cwd=tmp_path)
    assert again.returncode == 2
    assert "--force" in again.stderr and "02_transfer.ipynb" in again.stderr
    assert (target / "02_transfer.ipynb").read_text("utf-8") == "my edits"
    forced = recon_notebooks(target, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (target / "02_transfer.ipynb").read_bytes() == (
        ROOT / "notebooks" / "02_transfer.ipynb"
    ).read_bytes()


def test_recon_notebooks_into_a_file_exits_2_and_says_why(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", "utf-8")
    done = recon_notebooks(a_file, cwd=tmp_path)
    assert done.returncode == 2
    assert "is a file, not a folder" in done.stderr and str(a_file) in done.stderr
    assert a_file.read_text("utf-8") == "x"


RECON_MAIN = "import sys; from recon.cli import main; sys.exit(main())"


def build_wheel(tmp_path: Path) -> Path:
    """``pip wheel --no-deps`` of a copy of the sources (a build in place would write build/ and
    *.egg-info into the working tree)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    skip = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")
    for folder in ("recon", "notebooks", "params"):
        shutil.copytree(ROOT / folder, source / folder, ignore=skip)
    dist = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    [wheel] = dist.glob("recon-*.whl")
    return wheel


def test_the_wheel_ships_the_notebooks_and_demo_params_and_recon_notebooks_copies_them(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        site = tmp_path / "site"
        zf.extractall(site)  # a pure-Python wheel installs as it unpacks
    missing = [name for name in IN_WHEEL if name not in names]
    assert not missing, f"{wheel.name} lacks {missing}"
    assert not [n for n in names if ".ipynb_checkpoints" in n or n.startswith("notebooks/")]
    # The unpacked wheel comes first on the path, before the editable checkout: its recon finds
    # its own bundled copies, and `recon notebooks` copies those.
    target = tmp_path / "copied"
    done = subprocess.run(
        [sys.executable, "-c", RECON_MAIN, "notebooks", str(target)],
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = subprocess.run(
        [sys.executable, "-c", "import recon.resources as r; print(r.notebooks_folder())"],
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(found) == site / "recon" / "bundled" / "notebooks"
    for name in COPIED:
        source = ROOT / ("notebooks/" + name if "/" not in name else name)
        assert (target / name).read_bytes() == source.read_bytes()
