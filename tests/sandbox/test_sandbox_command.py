"""`python -m recon.sandbox` prints one JSON line another client can connect with, then serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx


def test_the_command_prints_everything_a_client_needs_and_serves_until_stopped(
    tmp_path: Path,
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "recon.sandbox", "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        xero, nexudus = info["xero"], info["nexudus"]
        assert xero["api_url"].endswith("/api.xro/2.0") and xero["api_url"].startswith(
            "http://127.0.0.1:"
        )
        for key in ("identity_url", "token_url", "client_id", "client_secret", "tenant_id"):
            assert xero[key]
        token = httpx.post(
            xero["token_url"],
            data={"grant_type": "client_credentials"},
            auth=(xero["client_id"], xero["client_secret"]),
        ).json()
        headers = {
            "Authorization": f"Bearer {token['access_token']}",
            "Accept": "application/json",
            "xero-tenant-id": xero["tenant_id"],
        }
        org = httpx.get(xero["api_url"] + "/Organisation", headers=headers).json()["Organisations"][
            0
        ]
        assert org["OrganisationID"] == xero["tenant_id"]
        connections = httpx.get(xero["identity_url"] + "/connections", headers=headers).json()
        assert [c["tenantId"] for c in connections] == [xero["tenant_id"]]
        page = httpx.get(
            nexudus["api_url"] + "/billing/coworkerinvoices",
            params={"size": 5},
            auth=(nexudus["username"], nexudus["password"]),
        ).json()
        assert page["TotalItems"] > 0 and len(page["Records"]) == 5
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
