"""The Xero sandbox's identity side over real HTTP: OAuth2 grants, tokens, tenants, connections.

Contract: shared/reference/xero-api.md §2, §8, §11. Raw httpx where the wire
shape matters; the XeroClient where the client's own handling is the subject.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import stat
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from support import fast_retry, xero_config

from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient
from recon.errors import AuthError, WrongOrganisation
from recon.sandbox import Sandbox

JSON = {"Accept": "application/json"}
CONNECTION_KEYS = {"id", "tenantId", "tenantType", "tenantName", "createdDateUtc", "updatedDateUtc"}
ISO7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")


# ---- helpers ------------------------------------------------------------------
def web_app(box: Sandbox) -> tuple[str, dict[str, Any]]:
    """The demo web app (authorization_code grant, several organisations)."""
    return next(
        (name, app) for name, app in box.xero_apps.items() if app["grant"] == "authorization_code"
    )


def custom_connection_token(box: Sandbox) -> str:
    r = httpx.post(
        box.xero_token_url,
        data={"grant_type": "client_credentials"},
        auth=(box.xero_client_id, box.xero_client_secret),
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def authorize(
    box: Sandbox,
    challenge: str | None = None,
    scope: str = "openid offline_access accounting.invoices accounting.settings.read",
) -> tuple[str, str]:
    """Consent as the demo user; return (code, redirect_uri)."""
    _, app = web_app(box)
    redirect = app["redirect_uris"][0]
    params = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": redirect,
        "scope": scope,
        "state": "s-1",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    r = httpx.get(box.xero_authorize_url, params=params, follow_redirects=False)
    assert r.status_code == 302, r.text
    location = r.headers["Location"]
    assert location.startswith(redirect)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["s-1"]
    return query["code"][0], redirect


def web_tokens(box: Sandbox) -> dict[str, Any]:
    """A full authorization-code sign-in of the web app with raw HTTP (secret in Basic auth)."""
    _, app = web_app(box)
    code, redirect = authorize(box)
    r = httpx.post(
        box.xero_token_url,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect},
        auth=(app["client_id"], app["client_secret"]),
    )
    assert r.status_code == 200, r.text
    return r.json()


def web_client(
    box: Sandbox, folder: Path, transport: httpx.BaseTransport | None = None
) -> XeroClient:
    """A web-app XeroClient signed in through the sandbox's authorize endpoint (PKCE)."""
    name, _ = web_app(box)
    client = XeroClient(
        xero_config(box, name),
        token_store=TokenStore(folder),
        retry=fast_retry(),
        transport=transport,
    )
    r = httpx.get(client.authorization_url(state="st"), follow_redirects=False)
    assert r.status_code == 302, r.text
    client.finish_login(r.headers["Location"])
    return client


def other_tenants(box: Sandbox) -> list[str]:
    """Organisations the default Custom Connection cannot reach: those no app is connected to first,
    then siblings."""
    connected = {t for app in box.xero_apps.values() for t in app["tenant_ids"]}
    others = [t for t in box.xero.books.tenants() if t != box.xero_tenant_id]
    return sorted(others, key=lambda t: t in connected)


def api(
    box: Sandbox, path: str, token: str | None, tenant: str | None, method: str = "GET", **kw: Any
) -> httpx.Response:
    headers = dict(JSON)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if tenant is not None:
        headers["xero-tenant-id"] = tenant
    return httpx.request(method, box.xero_api_url + path, headers=headers, **kw)


class Recorder(httpx.BaseTransport):
    """Passes requests to a real transport and remembers (method, path, status)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.seen.append((request.method, request.url.path, response.status_code))
        return response

    def close(self) -> None:
        self.inner.close()


# ---- client_credentials -------------------------------------------------------------
def test_client_credentials_gives_a_bearer_token_for_30_minutes_with_scope_and_no_refresh_token(
    sandbox: Sandbox,
) -> None:
    r = httpx.post(
        sandbox.xero_token_url,
        data={"grant_type": "client_credentials"},
        auth=(sandbox.xero_client_id, sandbox.xero_client_secret),
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1800
    assert isinstance(body["access_token"], str) and len(body["access_token"]) > 20
    assert isinstance(body["scope"], str) and "accounting." in body["scope"]
    assert "offline_access" not in body["scope"].split()
    assert "refresh_token" not in body
    assert "no-store" in r.headers["Cache-Control"]


def test_client_credentials_also_accepts_the_secret_in_the_form_body(sandbox: Sandbox) -> None:
    r = httpx.post(
        sandbox.xero_token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.xero_client_id,
            "client_secret": sandbox.xero_client_secret,
            "scope": "accounting.invoices accounting.settings.read",
        },
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "accounting.invoices accounting.settings.read"


def test_a_wrong_client_secret_is_refused_with_invalid_client(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    r = httpx.post(
        sandbox.xero_token_url,
        data={"grant_type": "client_credentials"},
        auth=(sandbox.xero_client_id, sandbox.xero_client_secret + "x"),
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client"
    assert "access_token" not in r.json()

    client = XeroClient(
        xero_config(sandbox, client_secret="not-the-secret"),
        token_store=TokenStore(tmp_path / "t"),
        retry=fast_retry(),
    )
    with client, pytest.raises(AuthError) as err:
        client.fetch_organisation()
    assert "invalid_client" in str(err.value)
    assert not list((tmp_path / "t").glob("*.json")), (
        "a refused sign-in must not leave a token file"
    )


def test_a_custom_connection_may_not_ask_for_offline_access(sandbox: Sandbox) -> None:
    r = httpx.post(
        sandbox.xero_token_url,
        data={"grant_type": "client_credentials", "scope": "offline_access accounting.invoices"},
        auth=(sandbox.xero_client_id, sandbox.xero_client_secret),
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


# ---- authorization code + PKCE ------------------------------------------------------
def test_the_client_signs_in_with_authorization_code_and_pkce_and_gets_access_and_refresh_tokens(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    name, app = web_app(sandbox)
    client = XeroClient(
        xero_config(sandbox, name), token_store=TokenStore(tmp_path / "tok"), retry=fast_retry()
    )
    with client:
        url = client.authorization_url(state="my-state")
        query = parse_qs(urlsplit(url).query)
        assert query["code_challenge_method"] == ["S256"]
        assert "offline_access" in query["scope"][0].split(), (
            "without offline_access there is no refresh token"
        )
        r = httpx.get(url, follow_redirects=False)
        assert r.status_code == 302
        location = r.headers["Location"]
        assert location.startswith(app["redirect_uris"][0] + "?")
        assert parse_qs(urlsplit(location).query)["state"] == ["my-state"]
        client.finish_login(location)

        files = list((tmp_path / "tok").glob("*.json"))
        assert len(files) == 1
        saved = TokenStore(tmp_path / "tok").load(files[0].stem)
        assert saved is not None
        assert saved["access_token"] and saved["refresh_token"]
        assert saved["token_type"] == "Bearer" and saved["expires_in"] == 1800

        tenants = {c["tenantId"] for c in client.connections()}
        assert tenants == set(app["tenant_ids"])
        assert client.fetch_organisation()["OrganisationID"] == app["tenant_ids"][0]


def test_a_wrong_code_verifier_is_refused_and_the_code_cannot_be_used_again(
    sandbox: Sandbox,
) -> None:
    _, app = web_app(sandbox)
    verifier, challenge = pkce_pair()
    code, redirect = authorize(sandbox, challenge)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect,
        "client_id": app["client_id"],
    }
    bad = httpx.post(sandbox.xero_token_url, data=dict(form, code_verifier=pkce_pair()[0]))
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_grant"
    # Codes are single-use: even the right verifier cannot redeem it now.
    again = httpx.post(sandbox.xero_token_url, data=dict(form, code_verifier=verifier))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_pkce_without_a_secret_works_with_the_right_verifier(sandbox: Sandbox) -> None:
    _, app = web_app(sandbox)
    verifier, challenge = pkce_pair()
    code, redirect = authorize(sandbox, challenge)
    r = httpx.post(
        sandbox.xero_token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": app["client_id"],
            "code_verifier": verifier,
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refresh_token"] and body["access_token"] and body["id_token"]


def test_an_authorize_request_with_an_unregistered_redirect_uri_is_refused(
    sandbox: Sandbox,
) -> None:
    _, app = web_app(sandbox)
    r = httpx.get(
        sandbox.xero_authorize_url,
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": "http://localhost:9999/evil",
            "scope": "accounting.invoices",
        },
        follow_redirects=False,
    )
    assert r.status_code == 400
    assert "Location" not in r.headers


def test_refresh_tokens_rotate_and_a_used_one_is_refused_with_invalid_grant(
    sandbox: Sandbox,
) -> None:
    _, app = web_app(sandbox)
    first = web_tokens(sandbox)
    auth = (app["client_id"], app["client_secret"])
    r = httpx.post(
        sandbox.xero_token_url,
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=auth,
    )
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["expires_in"] == 1800

    reused = httpx.post(
        sandbox.xero_token_url,
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=auth,
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"

    # The rotated one still works, once.
    third = httpx.post(
        sandbox.xero_token_url,
        data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]},
        auth=auth,
    )
    assert third.status_code == 200
    assert (
        api(
            sandbox, "/Organisation", third.json()["access_token"], app["tenant_ids"][0]
        ).status_code
        == 200
    )


def test_the_client_saves_tokens_in_a_0600_file_and_never_shows_secrets_in_its_repr(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    folder = tmp_path / "tokens"
    client = XeroClient(xero_config(sandbox), token_store=TokenStore(folder), retry=fast_retry())
    with client:
        client.fetch_organisation()
        files = list(folder.glob("*.json"))
        assert len(files) == 1
        assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        token = TokenStore(folder).load(files[0].stem)
        assert token is not None and token["access_token"]
        for text in (repr(client), repr(client.config), str(client.config), repr(sandbox)):
            assert sandbox.xero_client_secret not in text
            assert token["access_token"] not in text
        assert not list(folder.glob(".tok-*")), "no temporary token file is left behind"

    # A second client with the same store reuses the saved token (no new token request).
    transport = Recorder()
    with XeroClient(
        xero_config(sandbox),
        token_store=TokenStore(folder),
        retry=fast_retry(),
        transport=transport,
    ) as again:
        again.fetch_organisation()
    assert [s for s in transport.seen if s[1].endswith("/connect/token")] == []


def test_the_client_survives_access_tokens_expired_on_the_server(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    cc_transport, web_transport = Recorder(), Recorder()
    cc = XeroClient(
        xero_config(box),
        token_store=TokenStore(tmp_path / "cc"),
        retry=fast_retry(),
        transport=cc_transport,
    )
    web = web_client(box, tmp_path / "web", transport=web_transport)
    with cc, web:
        cc.fetch_organisation()
        web.fetch_organisation()
        (before,) = [
            TokenStore(tmp_path / "web").load(f.stem) for f in (tmp_path / "web").glob("*.json")
        ]
        old_refresh = before["refresh_token"]
        box.xero.identity.expire_all_access_tokens()

        assert cc.fetch_organisation()["OrganisationID"] == box.xero_tenant_id
        assert len(web.fetch_accounts()) > 0

        # Each saw exactly one 401, renewed its token once, and the retried call succeeded.
        for transport in (cc_transport, web_transport):
            statuses = [s for _, path, s in transport.seen if "/api.xro/2.0/" in path]
            assert statuses.count(401) == 1
            assert statuses[-1] == 200
            assert len([p for _, p, _ in transport.seen if p.endswith("/connect/token")]) >= 1
        # The web app's refresh token was rotated and the new one saved.
        saved = [
            TokenStore(tmp_path / "web").load(f.stem) for f in (tmp_path / "web").glob("*.json")
        ]
        assert len(saved) == 1 and saved[0] is not None
        assert saved[0]["refresh_token"] != old_refresh


def test_an_expired_access_token_gets_a_401_token_expired_body(fresh_sandbox: Sandbox) -> None:
    token = custom_connection_token(fresh_sandbox)
    fresh_sandbox.xero.identity.expire_all_access_tokens()
    r = api(fresh_sandbox, "/Organisation", token, fresh_sandbox.xero_tenant_id)
    assert r.status_code == 401
    body = r.json()
    assert body["Title"] == "Unauthorized"
    assert body["Status"] == 401
    assert re.match(
        r"^TokenExpired: token expired at \d\d/\d\d/\d{4} \d\d:\d\d:\d\d$", body["Detail"]
    )


# ---- connections and tenants --------------------------------------------------------------
def test_get_connections_lists_the_custom_connections_one_organisation_with_the_spec_keys(
    sandbox: Sandbox,
) -> None:
    token = custom_connection_token(sandbox)
    for path in ("/connections", "/Connections"):
        r = httpx.get(
            sandbox.xero_identity_url + path, headers={"Authorization": f"Bearer {token}", **JSON}
        )
        assert r.status_code == 200
        conns = r.json()
        assert len(conns) == 1
        conn = conns[0]
        assert set(conn) >= CONNECTION_KEYS
        assert conn["tenantId"] == sandbox.xero_tenant_id
        assert conn["tenantType"] == "ORGANISATION"
        assert conn["tenantName"] == sandbox.xero.books.org(sandbox.xero_tenant_id)["Name"]
        assert uuid.UUID(conn["id"])
        assert ISO7.match(conn["createdDateUtc"]) and ISO7.match(conn["updatedDateUtc"])


def test_the_web_app_token_reaches_several_organisations_of_one_auth_event(
    sandbox: Sandbox,
) -> None:
    _, app = web_app(sandbox)
    token = web_tokens(sandbox)["access_token"]
    r = httpx.get(
        sandbox.xero_identity_url + "/connections",
        headers={"Authorization": f"Bearer {token}", **JSON},
    )
    assert r.status_code == 200
    conns = r.json()
    assert {c["tenantId"] for c in conns} == set(app["tenant_ids"])
    assert len(conns) >= 2
    events = {c["authEventId"] for c in conns}
    assert len(events) == 1
    only = httpx.get(
        sandbox.xero_identity_url + "/connections",
        params={"authEventId": events.pop()},
        headers={"Authorization": f"Bearer {token}", **JSON},
    )
    assert len(only.json()) == len(conns)


def test_the_web_app_token_without_a_tenant_header_is_forbidden(sandbox: Sandbox) -> None:
    _, app = web_app(sandbox)
    token = web_tokens(sandbox)["access_token"]
    r = api(sandbox, "/Organisation", token, None)
    assert r.status_code == 403
    body = r.json()
    assert body["Title"] == "Forbidden"
    assert body["Detail"] == "AuthenticationUnsuccessful"
    assert body["Status"] == 403
    for tenant in other_tenants(sandbox):
        if tenant not in app["tenant_ids"]:
            assert api(sandbox, "/Organisation", token, tenant).status_code == 403
    # With the header, both organisations answer, each with its own books.
    names = {
        api(sandbox, "/Organisation", token, t).json()["Organisations"][0]["OrganisationID"]
        for t in app["tenant_ids"]
    }
    assert names == set(app["tenant_ids"])


def test_a_custom_connection_may_omit_the_tenant_header_but_not_name_another_organisation(
    sandbox: Sandbox,
) -> None:
    token = custom_connection_token(sandbox)
    ok = api(sandbox, "/Organisation", token, None)
    assert ok.status_code == 200
    assert ok.json()["Organisations"][0]["OrganisationID"] == sandbox.xero_tenant_id
    # Header names are case-insensitive, values too.
    upper = httpx.get(
        sandbox.xero_api_url + "/Organisation",
        headers={
            "Authorization": f"Bearer {token}",
            "Xero-Tenant-Id": sandbox.xero_tenant_id.upper(),
            **JSON,
        },
    )
    assert upper.status_code == 200

    assert other_tenants(sandbox), "the demo has more than one organisation"
    for tenant in (*other_tenants(sandbox), str(uuid.uuid4())):
        r = api(sandbox, "/Invoices", token, tenant)
        assert r.status_code == 403
        assert r.json()["Detail"] == "AuthenticationUnsuccessful"


def test_accounting_calls_without_a_bearer_token_are_unauthorized(sandbox: Sandbox) -> None:
    r = api(sandbox, "/Invoices", None, sandbox.xero_tenant_id)
    assert r.status_code == 401
    assert r.json()["Title"] == "Unauthorized"
    assert r.json()["Detail"] == "AuthenticationUnsuccessful"
    assert "invalid_token" in r.headers["WWW-Authenticate"]
    garbled = api(sandbox, "/Invoices", "not-a-token", sandbox.xero_tenant_id)
    assert garbled.status_code == 401
    conns = httpx.get(sandbox.xero_identity_url + "/connections", headers=JSON)
    assert conns.status_code == 401


def test_a_scope_the_token_lacks_is_forbidden(sandbox: Sandbox) -> None:
    r = httpx.post(
        sandbox.xero_token_url,
        data={"grant_type": "client_credentials", "scope": "accounting.settings.read"},
        auth=(sandbox.xero_client_id, sandbox.xero_client_secret),
    )
    token = r.json()["access_token"]
    assert api(sandbox, "/Accounts", token, sandbox.xero_tenant_id).status_code == 200
    denied = api(sandbox, "/Invoices", token, sandbox.xero_tenant_id)
    assert denied.status_code == 403
    assert denied.json()["Detail"] == "AuthenticationUnsuccessful"


def test_deleting_a_connection_cuts_the_app_off_from_that_organisation(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    client = web_client(box, tmp_path / "tok")  # signed in before the disconnect
    token = web_tokens(box)["access_token"]
    auth = {"Authorization": f"Bearer {token}", **JSON}
    conns = httpx.get(box.xero_identity_url + "/connections", headers=auth).json()
    gone, kept = conns[0], conns[1]
    assert api(box, "/Invoices", token, gone["tenantId"]).status_code == 200

    r = httpx.delete(f"{box.xero_identity_url}/connections/{gone['id']}", headers=auth)
    assert r.status_code == 204
    assert (
        httpx.delete(f"{box.xero_identity_url}/connections/{gone['id']}", headers=auth).status_code
        == 404
    )

    after = api(box, "/Invoices", token, gone["tenantId"])
    assert after.status_code == 403
    assert after.json()["Title"] == "Forbidden"
    assert after.json()["Detail"] == "AuthenticationUnsuccessful"
    assert api(box, "/Invoices", token, kept["tenantId"]).status_code == 200
    remaining = httpx.get(box.xero_identity_url + "/connections", headers=auth).json()
    assert [c["tenantId"] for c in remaining] == [
        c["tenantId"] for c in conns if c["id"] != gone["id"]
    ]
    assert kept["tenantId"] in [c["tenantId"] for c in remaining]

    # The client no longer lists it and reports calls to it as WrongOrganisation.
    with client:
        assert gone["tenantId"] not in {c["tenantId"] for c in client.connections()}
        with pytest.raises(WrongOrganisation):
            client.select_tenant(gone["tenantId"])
        client.tenant_id = gone["tenantId"]
        with pytest.raises(WrongOrganisation) as err:
            client.fetch_organisation()
        assert err.value.status == 403
