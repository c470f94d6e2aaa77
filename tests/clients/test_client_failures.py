"""The clients' failure paths over real HTTP: token service gone, sign-in codes replayed, saved
tokens expired, corrupt or unwritable, writes whose connection drops, Retry-After in odd forms,
Nexudus token answers that are not tokens, error pages that are not JSON.

Faults come from the sandbox (``box.xero.faults``, ``box.nexudus.faults``, stopping it) or, for
the token store, from the folder it writes to. Tests that queue faults use a sandbox of their own
(``fresh_sandbox``) so nothing queued can reach another test.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import fast_retry, xero_config

from recon.clients.nexudus import NexudusClient
from recon.clients.nexudus_limits import NexudusLimits
from recon.clients.retry import RetryPolicy
from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient
from recon.errors import ApiRejected, AuthError, ServiceUnavailable
from recon.sandbox import Sandbox


def _invoice(number: str) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"Name": "Failure Path Member"},
        "Date": "2026-08-03",
        "DueDate": "2026-08-17",
        "InvoiceNumber": number,
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Hot desk",
                "Quantity": Decimal("1"),
                "UnitAmount": Decimal("100.00"),
                "AccountCode": "4000",
            }
        ],
    }


def _xero(box: Sandbox, folder: Path, **config: Any) -> XeroClient:
    return XeroClient(
        xero_config(box, **config), token_store=TokenStore(folder), retry=fast_retry()
    )


def _web_app(box: Sandbox) -> str:
    return next(name for name, app in box.xero_apps.items() if app["grant"] == "authorization_code")


def _nexudus(box: Sandbox, **kw: Any) -> NexudusClient:
    return NexudusClient(
        box.nexudus_api_url,
        box.nexudus_username,
        box.nexudus_password,
        retry=kw.pop("retry", fast_retry()),
        limits=NexudusLimits(minute_seconds=box.nexudus_minute_seconds),
        **kw,
    )


# ---- Xero: sign-in and tokens --------------------------------------------------------------------
def test_xero_token_service_out_of_reach_is_service_unavailable_and_saves_nothing(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = tmp_path / "tokens"
    client = _xero(fresh_sandbox, folder)
    fresh_sandbox.stop()  # Xero's identity service is down
    with client, pytest.raises(ServiceUnavailable, match="token service could not be reached"):
        client.fetch_organisation()
    assert client.calls == 0  # the accounting call was never attempted
    assert not list(folder.glob("*"))


def test_a_sign_in_address_used_twice_is_refused_and_the_first_sign_in_still_works(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = tmp_path / "tokens"
    with _xero(sandbox, folder, app_name=_web_app(sandbox), tenant_id=None) as client:
        redirected = httpx.get(client.authorization_url(), follow_redirects=False)
        address = redirected.headers["Location"]
        client.finish_login(address)
        saved = [TokenStore(folder).load(f.stem) for f in folder.glob("*.json")]
        with pytest.raises(AuthError, match="start the sign-in again") as refused:
            client.finish_login(address)  # the code in it works once
        assert "invalid_grant" in str(refused.value)
        assert [TokenStore(folder).load(f.stem) for f in folder.glob("*.json")] == saved
        tenant = sandbox.xero_apps[_web_app(sandbox)]["tenant_ids"][0]
        assert client.select_tenant(tenant) == tenant
        assert client.fetch_organisation()["OrganisationID"] == tenant


def test_an_expired_saved_token_xero_will_not_renew_is_an_auth_error_and_is_forgotten(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = tmp_path / "tokens"
    with _xero(sandbox, folder) as yesterday:
        yesterday.fetch_organisation()
    (path,) = folder.glob("*.json")
    token = json.loads(path.read_text())
    token["expires_at"] = int(time.time()) - 60  # yesterday's token, long expired
    TokenStore(folder).save(path.stem, token)
    # Since then the Custom Connection's secret was rotated in Xero; the params still hold the old.
    with (
        _xero(sandbox, folder, client_secret="the-secret-before-rotation") as today,
        # renewed before the call, under the token store's lock (recon.clients.xero._live_token)
        pytest.raises(AuthError, match="Xero refused the app's credentials") as refused,
    ):
        today.fetch_organisation()
    assert "invalid_client" in str(refused.value)
    assert "the-secret-before-rotation" not in str(refused.value)
    assert not path.exists(), "a token that cannot be renewed is dropped: the next run signs in"
    with _xero(sandbox, folder) as fixed:  # the right secret signs in again from scratch
        assert fixed.fetch_organisation()["OrganisationID"] == sandbox.xero_tenant_id


def test_a_corrupt_token_file_is_ignored_and_replaced_by_a_fresh_sign_in(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = tmp_path / "tokens"
    with _xero(sandbox, folder) as first:
        first.fetch_organisation()
    (path,) = folder.glob("*.json")
    old = json.loads(path.read_text())["access_token"]
    path.write_text('{"access_token": "' + old[:10])  # torn by a crash mid-write
    assert TokenStore(folder).load(path.stem) is None
    with _xero(sandbox, folder) as second:
        assert second.fetch_organisation()["OrganisationID"] == sandbox.xero_tenant_id
    renewed = json.loads(path.read_text())
    assert renewed["access_token"] and renewed["access_token"] != old
    assert [p.name for p in folder.iterdir()] == [path.name]


def test_a_token_that_cannot_be_written_fails_the_call_and_leaves_no_temporary_file(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = tmp_path / "tokens"
    with _xero(sandbox, folder) as first:
        first.fetch_organisation()
    (path,) = folder.glob("*.json")
    path.unlink()
    with _xero(sandbox, folder) as client:
        path.mkdir()  # before the sign-in is saved, something else takes the token's file name
        with pytest.raises(IsADirectoryError):
            client.fetch_organisation()
        assert client.calls == 0  # the token was fetched, not kept: no call went out on it
    assert [p.name for p in folder.iterdir()] == [path.name]  # no .tok-* left behind
    assert path.is_dir()


# ---- Xero: a write whose connection drops --------------------------------------------------------
def test_an_unkeyed_write_whose_connection_drops_is_not_sent_again(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    saved, unsaved = (f"F{uuid.uuid4().hex[:8]}" for _ in range(2))
    with _xero(fresh_sandbox, tmp_path / "tokens") as client:
        client.fetch_organisation()
        before = client.calls
        fresh_sandbox.xero.faults.drop_next(1, after_commit=True)
        with pytest.raises(ServiceUnavailable, match="could not be reached"):
            client.create_invoices([_invoice(saved)])  # no Idempotency-Key: never resent
        fresh_sandbox.xero.faults.drop_next(1, after_commit=False)
        with pytest.raises(ServiceUnavailable, match="could not be reached"):
            client.create_invoices([_invoice(unsaved)])
        assert client.calls - before == 2
        held = [i["InvoiceNumber"] for i in client.iter_invoices(invoice_numbers=[saved, unsaved])]
    assert held == [saved]  # saved once by the dropped call; the other never reached the books


# ---- retry.py: Retry-After in other forms than seconds -------------------------------------------
def _recording(waits: list[float]) -> RetryPolicy:
    return RetryPolicy(base_delay=0.01, max_delay=0.2, sleep=waits.append, jitter=lambda: 0.0)


def test_a_429_whose_retry_after_is_an_http_date_waits_until_that_moment(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    waits: list[float] = []
    with XeroClient(
        xero_config(fresh_sandbox), token_store=TokenStore(tmp_path / "t"), retry=_recording(waits)
    ) as client:
        client.fetch_organisation()
        when = datetime.now(UTC) + timedelta(seconds=30)
        # RFC 9110 allows an HTTP-date; the sandbox sends whatever text it is given.
        fresh_sandbox.xero.faults.throttle_next(1, retry_after=format_datetime(when, usegmt=True))
        currencies = client.fetch_currencies()
    assert "GBP" in set(currencies["Code"])
    (wait,) = waits
    assert 28 <= wait <= 30


def test_a_retry_after_that_is_neither_seconds_nor_a_date_falls_back_to_backoff(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    waits: list[float] = []
    policy = _recording(waits)
    with XeroClient(
        xero_config(fresh_sandbox), token_store=TokenStore(tmp_path / "t"), retry=policy
    ) as client:
        client.fetch_organisation()
        fresh_sandbox.xero.faults.throttle_next(2, retry_after="soon")
        currencies = client.fetch_currencies()
    assert "GBP" in set(currencies["Code"])
    assert waits == [policy.backoff(1), policy.backoff(2)]


# ---- Nexudus: token answers that are not tokens, error pages that are not JSON -------------------
def test_a_nexudus_token_endpoint_gateway_error_is_service_unavailable_without_the_password(
    fresh_sandbox: Sandbox,
) -> None:
    with _nexudus(fresh_sandbox) as client:
        fresh_sandbox.nexudus.faults.fail_next(1, status=507, method="POST")
        with pytest.raises(ServiceUnavailable, match="token endpoint answered HTTP 507") as failed:
            client.fetch_businesses()
        assert failed.value.status == 507
        assert failed.value.__cause__ is None  # the request carried the password
        assert fresh_sandbox.nexudus_password not in str(failed.value)
        assert len(client.fetch_businesses()) == len(fresh_sandbox.locations)  # signs in now


def test_a_nexudus_token_endpoint_answering_200_without_a_token_is_an_auth_error(
    fresh_sandbox: Sandbox,
) -> None:
    with _nexudus(fresh_sandbox) as client:
        fresh_sandbox.nexudus.faults.fail_next(1, status=200, method="POST")
        with pytest.raises(AuthError, match="without an access token"):
            client.fetch_businesses()


def test_a_nexudus_error_page_that_is_not_json_is_api_rejected_with_its_status(
    fresh_sandbox: Sandbox,
) -> None:
    with _nexudus(fresh_sandbox) as client:
        business = int(client.fetch_businesses()["Id"].iloc[0])
        # A request line over 64 KiB: the sandbox's HTTP server answers 414 with an HTML page.
        with pytest.raises(ApiRejected, match="HTTP 414") as refused:
            client.fetch_invoices(business_id=business, Description="x" * 65_400)
        assert refused.value.status == 414 and refused.value.detail is None
        assert len(client.fetch_invoices(business_id=business)) > 0  # the client goes on


def test_a_nexudus_token_refusal_that_is_not_json_is_an_auth_error(fresh_sandbox: Sandbox) -> None:
    with _nexudus(fresh_sandbox) as client:
        fresh_sandbox.nexudus.faults.fail_next(
            1, status=400, method="POST", body="<html>Bad Request</html>"
        )
        with pytest.raises(AuthError, match="refused the sign-in"):
            client.fetch_businesses()


def test_a_payment_answer_whose_entry_id_is_not_a_number_is_still_checked_on_the_invoice(
    fresh_sandbox: Sandbox,
) -> None:
    with _nexudus(fresh_sandbox) as client:
        business = client.fetch_businesses().iloc[0].to_dict()
        client.use_location(business)
        invoices = client.fetch_invoices(business_id=int(business["Id"]), Paid=False)
        open_ = invoices[~invoices[["Void", "Draft", "CreditNote"]].astype(bool).any(axis=1)]
        row = open_.iloc[0]
        # Answered 200 with an entry Id that is not a number, and (being a fault) not processed.
        fresh_sandbox.nexudus.faults.fail_next(
            1, status=200, method="POST", body={"WasSuccessful": True, "Value": {"Id": "n/a"}}
        )
        with pytest.raises(ApiRejected, match=r"the invoice shows 0\.00 paid"):
            client.record_payment(int(row["Id"]), row["TotalAmount"], date(2026, 11, 20), "Xero")
        assert client.get_invoice(int(row["Id"]))["PaidAmount"] == Decimal("0.00")


def test_a_nexudus_success_that_is_not_json_is_service_unavailable_and_names_the_call(
    fresh_sandbox: Sandbox,
) -> None:
    """A 200 carrying an HTML page (a proxy's, a maintenance page) is no Nexudus answer."""
    with _nexudus(fresh_sandbox) as client:
        client.fetch_businesses()  # signed in
        fresh_sandbox.nexudus.faults.fail_next(
            1, status=200, method="GET", body="<html>Down for maintenance</html>"
        )
        with pytest.raises(ServiceUnavailable, match="not JSON") as err:
            client.fetch_coworkers()
        assert "spaces/coworkers" in str(err.value)
        assert len(client.fetch_coworkers()) > 0  # the next call is answered again


def test_a_record_whose_id_field_is_not_a_number_is_dropped_by_the_recheck_not_raised() -> None:
    """nexudus.md §3: the answer is re-checked here; a malformed record never matches a filter."""
    from recon.clients.nexudus_frames import recheck

    records = [{"Id": 1, "BusinessId": 7}, {"Id": 2, "BusinessId": "n/a"}, {"Id": 3}]
    kept = recheck(records, "CoworkerInvoice", {"CoworkerInvoice_Business": 7})
    assert [r["Id"] for r in kept] == [1]
