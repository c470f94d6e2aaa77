"""nbval runs these notebooks without tests/conftest.py: keep them off the user's real folders."""

import os
import tempfile
from pathlib import Path


def pytest_configure(config: object) -> None:
    os.environ.setdefault("RECON_SANDBOX_DIR", tempfile.mkdtemp(prefix="recon-nbval-sandbox-"))
    os.environ.setdefault("RECON_CONFIG_DIR", tempfile.mkdtemp(prefix="recon-nbval-config-"))
    # Times, ids, run ids, temp paths and ports differ run to run: nbval compares them masked.
    option = getattr(config, "option", None)
    if (
        option is not None
        and hasattr(option, "nbval_sanitize_with")
        and not option.nbval_sanitize_with
    ):
        option.nbval_sanitize_with = str(Path(__file__).with_name("nbval_sanitize.cfg"))
