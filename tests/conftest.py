"""Shared fixtures: one embedded sandbox on loopback for the whole run, clean env per test.

The session sandbox keeps Xero's real limits but with a one-second "minute",
so pacing and 429s are exercised without waiting a real minute. Tests that
need their own state (counters, faults, a fresh store) use ``fresh_sandbox``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import fast_retry, xero_config

from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient
from recon.params import RunParams, load_params
from recon.sandbox import RateLimits, Sandbox, start
from recon.session import Connection, connect, register_sandbox

ROOT = Path(__file__).resolve().parent.parent

FAST_LIMITS = RateLimits(minute_seconds=1.0)


def pytest_configure(config: pytest.Config) -> None:
    """Nothing a test run does may touch the user's real token or sandbox folders."""
    os.environ["RECON_CONFIG_DIR"] = tempfile.mkdtemp(prefix="recon-test-config-")
    os.environ.setdefault("RECON_SANDBOX_DIR", tempfile.mkdtemp(prefix="recon-test-sandbox-"))
    # The sandbox's Xero answers as slowly as the real one unless told otherwise; tests run it
    # without answer times. Kernels, papermill and `recon run` subprocesses inherit this; a test
    # that needs answer times sets its own (sandbox.xero.latency, or the variable in a subprocess's
    # environment).
    os.environ.setdefault("RECON_SANDBOX_XERO_LATENCY", "off")


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tokens and config go to a per-test folder; never the user's real one."""
    monkeypatch.setenv("RECON_CONFIG_DIR", str(tmp_path / "config"))
    for name in list(os.environ):
        if name.startswith(("XERO_", "NEXUDUS_")):
            monkeypatch.delenv(name)
    yield


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = start(tmp_path_factory.mktemp("sandbox"), limits=FAST_LIMITS)
    register_sandbox(box)
    yield box
    box.stop()


@pytest.fixture
def demo_params(sandbox: Sandbox, tmp_path: Path) -> RunParams:
    """params/demo.yaml aimed at the session sandbox, writing into the test's folder."""
    return load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(sandbox.state_dir),
        output_dir=str(tmp_path / "out"),
        ledger_file=str(tmp_path / "ledger.sqlite"),
    )


@pytest.fixture
def conn(demo_params: RunParams) -> Iterator[Connection]:
    connection = connect(demo_params)
    yield connection
    connection.close()


@pytest.fixture
def fresh_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = start(tmp_path / "sandbox", limits=FAST_LIMITS)
    register_sandbox(box)
    yield box
    box.stop()


@pytest.fixture
def fresh_conn(fresh_sandbox: Sandbox, tmp_path: Path) -> Iterator[Connection]:
    """A connection to a sandbox of its own, for tests that write."""
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(fresh_sandbox.state_dir),
        output_dir=str(tmp_path / "out"),
        ledger_file=str(tmp_path / "ledger.sqlite"),
    )
    connection = connect(params)
    connection.xero.retry = fast_retry()
    connection.nexudus.retry = fast_retry()
    yield connection
    connection.close()


@pytest.fixture
def xero(sandbox: Sandbox, tmp_path: Path) -> Iterator[XeroClient]:
    client = XeroClient(
        xero_config(sandbox), token_store=TokenStore(tmp_path / "tokens"), retry=fast_retry()
    )
    yield client
    client.close()
