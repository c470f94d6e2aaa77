"""Shared fixtures: one embedded sandbox on loopback for the whole run, clean env per test.

The session sandbox keeps Xero's real limits but with a one-second "minute",
so pacing and 429s are exercised without waiting a real minute. Tests that
need their own state (counters, faults, a fresh store) use ``fresh_sandbox``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recon.clients.retry import RetryPolicy
from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient, XeroConfig
from recon.params import RunParams, load_params
from recon.sandbox import RateLimits, Sandbox, start
from recon.session import Connection, connect, register_sandbox

ROOT = Path(__file__).resolve().parent.parent

FAST_LIMITS = RateLimits(minute_seconds=1.0)


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
        sandbox_dir=str(sandbox.state_dir), output_dir=str(tmp_path / "out"), ledger_file=str(tmp_path / "ledger.sqlite"))


@pytest.fixture
def conn(demo_params: RunParams) -> Iterator[Connection]:
    connection = connect(demo_params)
    yield connection
    connection.close()


@pytest.fixture
def fresh_sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = start(tmp_path / "sandbox", limits=FAST_LIMITS)
    yield box
    box.stop()


def xero_config(box: Sandbox, app_name: str | None = None, **overrides: object) -> XeroConfig:
    """Client settings pointing at the sandbox, for the default Custom Connection or a named app."""
    app = box.xero_apps[app_name] if app_name else {"client_id": box.xero_client_id, "client_secret": box.xero_client_secret,
                                                     "grant": "client_credentials", "tenant_ids": [box.xero_tenant_id],
                                                     "redirect_uris": []}
    settings: dict[str, object] = dict(
        client_id=app["client_id"], client_secret=app["client_secret"], grant=app["grant"],
        api_url=box.xero_api_url, identity_url=box.xero_identity_url, token_url=box.xero_token_url,
        authorize_url=box.xero_authorize_url, redirect_uri=(app["redirect_uris"] or [None])[0],
        tenant_id=app["tenant_ids"][0], minute_seconds=box.xero.limits.minute_seconds,
    )
    settings.update(overrides)
    return XeroConfig(**settings)  # type: ignore[arg-type]


def fast_retry() -> RetryPolicy:
    """Real waits, but short: Retry-After is honoured, backoff starts at 10 ms."""
    return RetryPolicy(base_delay=0.01, max_delay=0.2)


@pytest.fixture
def xero(sandbox: Sandbox, tmp_path: Path) -> Iterator[XeroClient]:
    client = XeroClient(xero_config(sandbox), token_store=TokenStore(tmp_path / "tokens"), retry=fast_retry())
    yield client
    client.close()
