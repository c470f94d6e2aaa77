"""A real JupyterLab and a headless Chromium for tests that drive a notebook as a user does.

``jupyter_lab`` starts JupyterLab on loopback (a free port, a token, a root
folder of the test's own, settings and workspaces in the test's folder so the
user's are never read or written); ``chromium_page`` opens one page in the
system Chromium through Python playwright (its wheel carries the driver; the
browser is the system one, so ``playwright install`` is never needed and
nothing is downloaded). ``missing_browser`` says why such a test must skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

# The system Chromium (Debian's `chromium` package); RECON_CHROMIUM names another build.
CHROMIUM = Path(os.environ.get("RECON_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium")
# The machine has no network: nothing in the browser may try to reach one.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# How long JupyterLab may take to answer its first request.
SERVER_START_SECONDS = 60.0
# JupyterLab user settings for a quiet, fully attached notebook: no news or update toasts over
# the widgets, every cell kept in the DOM (windowing would detach the ones out of view), and the
# notebook's kernel started as it opens.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,  # the notebook's own kernel, without a Select Kernel dialog
    },
}


def missing_browser() -> str | None:
    """Why a browser test cannot run here (no Chromium, or no playwright), or None if it can."""
    if not CHROMIUM.is_file():
        return (
            f"no Chromium at {CHROMIUM}: install it (Debian: apt-get install -y chromium) or set "
            "RECON_CHROMIUM to a Chromium executable"
        )
    if importlib.util.find_spec("playwright") is None:
        return "Python playwright is not installed (pip install playwright; no browser download)"
    return None


@dataclass(frozen=True)
class JupyterLab:
    """A running JupyterLab: where it listens and the token that opens it."""

    url: str
    token: str
    root: Path

    def lab_url(self, notebook: str) -> str:
        """The address that opens ``notebook`` (relative to the root folder) in JupyterLab."""
        return f"{self.url}/lab/tree/{notebook}?token={self.token}"


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def jupyter_lab(root: Path, home: Path, env: dict[str, str] | None = None) -> Iterator[JupyterLab]:
    """JupyterLab serving ``root`` on 127.0.0.1, its config, settings and runtime files under
    ``home``; kernels get this process's environment updated with ``env``. Stopped (kernels
    too) on exit."""
    token = secrets.token_hex(16)
    port = free_port()
    settings = home / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), "utf-8")
    environ = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        **(env or {}),
    }
    log = (home / "jupyterlab.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.allow_root=True",  # CI runs as root; harmless otherwise
        ],
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a group of its own: one that will not stop goes with its kernels
    )
    lab = JupyterLab(f"http://127.0.0.1:{port}", token, root)
    try:
        wait_until_serving(lab, server, home / "jupyterlab.log")
        yield lab
    finally:
        stop(server)
        log.close()


def wait_until_serving(lab: JupyterLab, server: subprocess.Popen[bytes], log: Path) -> None:
    """Return once JupyterLab answers its status API; fail with its log if it exits or never
    does."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({server.returncode}):\n{log.read_text()}")
        try:
            answer = httpx.get(
                f"{lab.url}/api/status", params={"token": lab.token}, timeout=2, trust_env=False
            )
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"JupyterLab did not answer in {SERVER_START_SECONDS:.0f} s:\n{log.read_text()}"
    )


def stop(server: subprocess.Popen[bytes]) -> None:
    """Stop JupyterLab (it shuts its kernels down); kill its process group if it will not go."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        # The group this test started (the server is still its leader, so the id is still ours).
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


@contextmanager
def chromium_page(profile: Path) -> Iterator[Any]:
    """One page of a headless system Chromium with an empty profile in ``profile``
    (a ``playwright.sync_api.Page``)."""
    from playwright.sync_api import sync_playwright

    profile.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1600, "height": 1200},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@contextmanager
def screenshot_on_failure(page: Any, path: Path) -> Iterator[None]:
    """Save what the page showed to ``path`` if the block fails, then let the failure go on."""
    try:
        yield
    except BaseException:
        page.screenshot(path=str(path), full_page=True)
        raise
