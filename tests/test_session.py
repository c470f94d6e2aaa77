"""recon.session: the sandbox a run starts answers as its params say, unless the environment says
otherwise (``sandbox_xero_latency``; ``RECON_SANDBOX_XERO_LATENCY`` wins, recon.sandbox.start)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from recon.params import RunParams, load_params
from recon.sandbox import LATENCY_ENV, NO_LATENCY, XERO_LATENCY, Latency
from recon.session import sandbox_for

ROOT = Path(__file__).resolve().parent.parent


def _demo(folder: Path, **overrides: str) -> RunParams:
    """params/demo.yaml with a sandbox of its own in ``folder`` (sandbox_for starts one per state
    folder and keeps it for the process)."""
    return load_params(ROOT / "params" / "demo.yaml").with_overrides(
        sandbox_dir=str(folder), output_dir=str(folder.parent / "out"), **overrides
    )


def test_the_demo_params_start_a_sandbox_whose_xero_answers_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LATENCY_ENV, raising=False)  # nothing but the params decides
    params = _demo(tmp_path / "sandbox")
    assert params.sandbox_xero_latency == "off"
    box = sandbox_for(params)
    try:
        assert box.xero.latency == NO_LATENCY
        info = httpx.get(box.xero_url + "/_sandbox/info", timeout=10).json()
        assert info["latency"] == {"per_call": 0.0, "per_element": 0.0}
    finally:
        box.stop()


@pytest.mark.parametrize(
    ("value", "latency"), [("xero", XERO_LATENCY), ("0.2,0.01", Latency(0.2, 0.01))]
)
def test_params_that_ask_for_answer_times_start_a_sandbox_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, latency: Latency
) -> None:
    monkeypatch.delenv(LATENCY_ENV, raising=False)
    box = sandbox_for(_demo(tmp_path / "sandbox", sandbox_xero_latency=value))
    try:
        assert box.xero.latency == latency
    finally:
        box.stop()


def test_the_environment_variable_wins_over_the_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """How tests/test_interrupted.py slows down a ``recon run`` of the demo params (off)."""
    monkeypatch.setenv(LATENCY_ENV, "0.3,0.02")
    box = sandbox_for(_demo(tmp_path / "sandbox"))
    try:
        assert box.xero.latency == Latency(per_call=0.3, per_element=0.02)
    finally:
        box.stop()
