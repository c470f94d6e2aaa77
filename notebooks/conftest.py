"""nbval runs these notebooks without tests/conftest.py: keep them off the user's real folders."""

import os
import tempfile


def pytest_configure(config: object) -> None:
    os.environ.setdefault("RECON_SANDBOX_DIR", tempfile.mkdtemp(prefix="recon-nbval-sandbox-"))
    os.environ.setdefault("RECON_CONFIG_DIR", tempfile.mkdtemp(prefix="recon-nbval-config-"))
