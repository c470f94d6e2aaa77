"""pyproject.toml, environment.yml and requirements.lock must pin the same versions."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

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
