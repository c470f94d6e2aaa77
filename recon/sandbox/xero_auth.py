"""The Xero sandbox's identity side: OAuth2 apps, tokens, consent and connections.

Grants as Xero has them (shared/reference/xero-api.md §11): client_credentials
for a Custom Connection (one organisation, no refresh token),
authorization_code with optional PKCE (S256), refresh_token with rotation (a
used refresh token is refused with ``invalid_grant``). Access tokens live 30
minutes on the sandbox clock, codes 5 minutes, refresh tokens 60 days.

Departures from the real service, on purpose:
- the authorize endpoint does not show a login page: it consents at once as the
  demo user and redirects with the code (there is no person in a test);
- access tokens are opaque random strings, not signed JWTs (no client may
  parse them; xero-python does not);
- the 30-minute grace period for a previous refresh token that a secondary
  source reports is not implemented: the issue asks that a used token stop working.
Tokens are stored only as SHA-256 hashes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from recon.sandbox.clock import Clock
from recon.sandbox.seed import XeroAppSeed
from recon.sandbox.store import Store
from recon.sandbox.xero_books import new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS apps(client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, name TEXT,
    grant_type TEXT NOT NULL, tenant_ids TEXT NOT NULL, redirect_uris TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS grants(token_hash TEXT PRIMARY KEY, kind TEXT NOT NULL,
    client_id TEXT NOT NULL, tenant_ids TEXT NOT NULL, scope TEXT NOT NULL, expires REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0, auth_event TEXT, extra TEXT);
CREATE TABLE IF NOT EXISTS connections(id TEXT PRIMARY KEY, client_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL, auth_event TEXT, created TEXT NOT NULL, updated TEXT NOT NULL);
"""

ACCESS_TOKEN_SECONDS = 1800
CODE_SECONDS = 300
REFRESH_TOKEN_SECONDS = 60 * 86400
ALL_SCOPES = [
    "openid",
    "profile",
    "email",
    "offline_access",
    "accounting.transactions",
    "accounting.transactions.read",
    "accounting.settings",
    "accounting.settings.read",
    "accounting.contacts",
    "accounting.contacts.read",
    "accounting.invoices",
    "accounting.invoices.read",
    "accounting.payments",
    "accounting.payments.read",
]
CUSTOM_CONNECTION_DEFAULT_SCOPES = [s for s in ALL_SCOPES if s.startswith("accounting.")]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _iso7(dt: datetime) -> str:
    """Connections' timestamp style: ISO with 7 fractional digits and no zone."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0"


class OAuthError(Exception):
    """An OAuth2 error answer: ``error`` code, optional description, HTTP status."""

    def __init__(self, error: str, description: str | None = None, status: int = 400) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(error)

    def body(self) -> dict[str, str]:
        """The error as its JSON answer: ``error``, and ``error_description`` if there is one."""
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


@dataclass(frozen=True)
class AccessGrant:
    """What a valid access token allows."""

    client_id: str
    tenant_ids: tuple[str, ...]
    scopes: frozenset[str]
    auth_event: str | None


class Identity:
    """The identity service: registered apps, tokens, consent and connections, in the store."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        store.ensure_schema(SCHEMA)

    # ---- apps -----------------------------------------------------------
    def register_apps(self, apps: list[XeroAppSeed]) -> dict[str, str]:
        """Register apps not yet known; returns client_id -> secret for every app."""
        with self.store.write() as db:
            for app in apps:
                known = db.execute(
                    "SELECT 1 FROM apps WHERE client_id=?", (app.client_id,)
                ).fetchone()
                if known:
                    continue
                secret = secrets.token_urlsafe(36)
                db.execute(
                    "INSERT INTO apps VALUES(?,?,?,?,?,?)",
                    (
                        app.client_id,
                        secret,
                        app.name,
                        app.grant,
                        json.dumps(app.tenant_ids),
                        json.dumps(app.redirect_uris),
                    ),
                )
                if app.grant == "client_credentials":
                    # A Custom Connection is connected to its one organisation when it is created.
                    for tenant in app.tenant_ids:
                        now = _iso7(self.clock.now())
                        db.execute(
                            "INSERT INTO connections VALUES(?,?,?,?,?,?)",
                            (new_id(), app.client_id, tenant, None, now, now),
                        )
        return {
            r["client_id"]: r["client_secret"]
            for r in self.store.query("SELECT client_id, client_secret FROM apps")
        }

    def _app(self, client_id: str) -> dict[str, Any] | None:
        row = self.store.one("SELECT * FROM apps WHERE client_id=?", (client_id,))
        return dict(row) if row else None

    def _authenticate_client(
        self, client_id: str | None, client_secret: str | None, *, public_ok: bool = False
    ) -> dict[str, Any]:
        app = self._app(client_id or "")
        if app is None:
            raise OAuthError("invalid_client")
        if client_secret is None and public_ok:
            return app
        if client_secret is None or not secrets.compare_digest(client_secret, app["client_secret"]):
            raise OAuthError("invalid_client")
        return app

    # ---- token endpoint --------------------------------------------------
    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """Answer the token endpoint (client_credentials, authorization_code, refresh_token) with a
        new token set.

        Raises ``OAuthError`` when the client, grant, code, refresh token or scope is refused.
        """
        client_id, client_secret = (
            basic if basic else (form.get("client_id"), form.get("client_secret"))
        )
        grant = form.get("grant_type")
        if grant == "client_credentials":
            app = self._authenticate_client(client_id, client_secret)
            if app["grant_type"] != "client_credentials":
                raise OAuthError("unauthorized_client")
            scopes = self._scopes(form.get("scope"), CUSTOM_CONNECTION_DEFAULT_SCOPES)
            if "offline_access" in scopes:
                raise OAuthError("invalid_scope")
            tenants = json.loads(app["tenant_ids"])
            return self._issue(app["client_id"], tenants, scopes, auth_event=None, refresh=False)
        if grant == "authorization_code":
            return self._redeem_code(form, client_id, client_secret)
        if grant == "refresh_token":
            return self._refresh(form, client_id, client_secret)
        raise OAuthError("unsupported_grant_type")

    @staticmethod
    def _scopes(requested: str | None, default: list[str]) -> list[str]:
        scopes = requested.split() if requested else list(default)
        unknown = [s for s in scopes if s not in ALL_SCOPES]
        if unknown:
            raise OAuthError("invalid_scope")
        return scopes

    def _issue(
        self,
        client_id: str,
        tenants: list[str],
        scopes: list[str],
        *,
        auth_event: str | None,
        refresh: bool,
    ) -> dict[str, Any]:
        now = self.clock.time()
        access = secrets.token_urlsafe(48)
        with self.store.write() as db:
            db.execute(
                "INSERT INTO grants(token_hash,kind,client_id,tenant_ids,scope,expires,auth_event) "
                "VALUES(?,?,?,?,?,?,?)",
                (
                    _hash(access),
                    "access",
                    client_id,
                    json.dumps(tenants),
                    " ".join(scopes),
                    now + ACCESS_TOKEN_SECONDS,
                    auth_event,
                ),
            )
            body: dict[str, Any] = {}
            if "openid" in scopes:
                body["id_token"] = secrets.token_urlsafe(32)
            body.update(
                {"access_token": access, "expires_in": ACCESS_TOKEN_SECONDS, "token_type": "Bearer"}
            )
            if refresh and "offline_access" in scopes:
                rt = secrets.token_urlsafe(32)
                db.execute(
                    "INSERT INTO grants(token_hash,kind,client_id,tenant_ids,scope,expires,"
                    "auth_event) VALUES(?,?,?,?,?,?,?)",
                    (
                        _hash(rt),
                        "refresh",
                        client_id,
                        json.dumps(tenants),
                        " ".join(scopes),
                        now + REFRESH_TOKEN_SECONDS,
                        auth_event,
                    ),
                )
                body["refresh_token"] = rt
            body["scope"] = " ".join(scopes)
        return body

    def _redeem_code(
        self, form: dict[str, str], client_id: str | None, client_secret: str | None
    ) -> dict[str, Any]:
        code = form.get("code") or ""
        with self.store.write() as db:
            row = db.execute(
                "SELECT * FROM grants WHERE token_hash=? AND kind='code'", (_hash(code),)
            ).fetchone()
            if row is None or row["used"] or row["expires"] < self.clock.time():
                raise OAuthError("invalid_grant")
            db.execute("UPDATE grants SET used=1 WHERE token_hash=?", (_hash(code),))
        extra = json.loads(row["extra"])
        if client_id != row["client_id"]:
            raise OAuthError("invalid_client")
        if form.get("redirect_uri") != extra["redirect_uri"]:
            raise OAuthError("invalid_grant", "redirect_uri does not match")
        challenge = extra.get("code_challenge")
        if challenge:
            verifier = form.get("code_verifier") or ""
            digest = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
            )
            if not secrets.compare_digest(digest, challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
            self._authenticate_client(client_id, client_secret, public_ok=True)
        else:
            self._authenticate_client(client_id, client_secret)
        return self._issue(
            row["client_id"],
            json.loads(row["tenant_ids"]),
            row["scope"].split(),
            auth_event=row["auth_event"],
            refresh=True,
        )

    def _refresh(
        self, form: dict[str, str], client_id: str | None, client_secret: str | None
    ) -> dict[str, Any]:
        token = form.get("refresh_token") or ""
        with self.store.write() as db:
            row = db.execute(
                "SELECT * FROM grants WHERE token_hash=? AND kind='refresh'", (_hash(token),)
            ).fetchone()
            if row is None or row["used"] or row["expires"] < self.clock.time():
                raise OAuthError("invalid_grant", "Token has been expired or revoked.")
            if client_id != row["client_id"]:
                raise OAuthError("invalid_client")
            # Rotation: the refresh token is single-use.
            db.execute("UPDATE grants SET used=1 WHERE token_hash=?", (_hash(token),))
        app = self._app(row["client_id"]) or {}
        if app.get("grant_type") == "authorization_code" and client_secret is not None:
            self._authenticate_client(client_id, client_secret)
        return self._issue(
            row["client_id"],
            json.loads(row["tenant_ids"]),
            row["scope"].split(),
            auth_event=row["auth_event"],
            refresh=True,
        )

    def revoke(self, token: str, basic: tuple[str, str] | None) -> None:
        """Revoke a token and every token and connection of the same client and consent.

        An unknown token is ignored. ``basic`` credentials, when given, must be the client's
        (``OAuthError`` otherwise).
        """
        if basic:
            self._authenticate_client(*basic)
        with self.store.write() as db:
            row = db.execute("SELECT * FROM grants WHERE token_hash=?", (_hash(token),)).fetchone()
            if row is None:
                return
            db.execute(
                "UPDATE grants SET used=1, expires=0 WHERE client_id=? AND auth_event IS ?",
                (row["client_id"], row["auth_event"]),
            )
            db.execute(
                "DELETE FROM connections WHERE client_id=? AND auth_event IS ?",
                (row["client_id"], row["auth_event"]),
            )

    # ---- authorize (consent) --------------------------------------------
    def authorize(self, query: dict[str, str]) -> str:
        """Consent at once as the demo user; returns the redirect Location."""
        app = self._app(query.get("client_id") or "")
        if app is None or app["grant_type"] != "authorization_code":
            raise OAuthError("unauthorized_client")
        redirect = query.get("redirect_uri") or ""
        if redirect not in json.loads(app["redirect_uris"]):
            raise OAuthError("invalid_request", "Invalid redirect_uri")
        if query.get("response_type") != "code":
            raise OAuthError("unsupported_response_type")
        scopes = self._scopes(query.get("scope"), [])
        if not scopes:
            raise OAuthError("invalid_scope")
        method = query.get("code_challenge_method")
        if query.get("code_challenge") and method not in (None, "S256"):
            raise OAuthError("invalid_request", "Only S256 is supported")
        tenants = json.loads(app["tenant_ids"])
        auth_event = new_id()
        code = secrets.token_urlsafe(32)
        now = self.clock.now()
        with self.store.write() as db:
            db.execute(
                "INSERT INTO grants(token_hash,kind,client_id,tenant_ids,scope,expires,"
                "auth_event,extra) VALUES(?,?,?,?,?,?,?,?)",
                (
                    _hash(code),
                    "code",
                    app["client_id"],
                    json.dumps(tenants),
                    " ".join(scopes),
                    self.clock.time() + CODE_SECONDS,
                    auth_event,
                    json.dumps(
                        {"redirect_uri": redirect, "code_challenge": query.get("code_challenge")}
                    ),
                ),
            )
            for tenant in tenants:
                exists = db.execute(
                    "SELECT id FROM connections WHERE client_id=? AND tenant_id=?",
                    (app["client_id"], tenant),
                ).fetchone()
                if exists:
                    db.execute(
                        "UPDATE connections SET auth_event=?, updated=? WHERE id=?",
                        (auth_event, _iso7(now), exists["id"]),
                    )
                else:
                    db.execute(
                        "INSERT INTO connections VALUES(?,?,?,?,?,?)",
                        (new_id(), app["client_id"], tenant, auth_event, _iso7(now), _iso7(now)),
                    )
        params = {"code": code, "scope": " ".join(scopes)}
        if query.get("state") is not None:
            params["state"] = query["state"]
        return f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(params)}"

    # ---- access tokens and connections ----------------------------------
    def check_access(self, token: str) -> AccessGrant | str:
        """The grant of a bearer token, or why it fails: ``invalid`` or ``expired:<when>``."""
        row = self.store.one(
            "SELECT * FROM grants WHERE token_hash=? AND kind='access'", (_hash(token),)
        )
        if row is None or row["used"]:
            return "invalid"
        if row["expires"] < self.clock.time():
            when = datetime.fromtimestamp(row["expires"], tz=UTC).strftime("%m/%d/%Y %H:%M:%S")
            return f"expired:{when}"
        connected = {
            r["tenant_id"]
            for r in self.store.query(
                "SELECT tenant_id FROM connections WHERE client_id=?", (row["client_id"],)
            )
        }
        tenants = tuple(t for t in json.loads(row["tenant_ids"]) if t in connected)
        return AccessGrant(
            row["client_id"], tenants, frozenset(row["scope"].split()), row["auth_event"]
        )

    def expire_all_access_tokens(self) -> None:
        """Fault injection: every access token issued so far is now expired."""
        with self.store.write() as db:
            db.execute("UPDATE grants SET expires=? WHERE kind='access'", (self.clock.time() - 1,))

    def connections(
        self, client_id: str, auth_event: str | None, names: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The client's connections (of one consent, if given) as ``GET /connections`` lists them,
        oldest first; ``names`` gives each tenant's name."""
        sql = "SELECT * FROM connections WHERE client_id=?"
        args: list[Any] = [client_id]
        if auth_event:
            sql += " AND auth_event=?"
            args.append(auth_event)
        out = []
        for r in self.store.query(sql + " ORDER BY created", args):
            item = {"id": r["id"]}
            if r["auth_event"]:
                item["authEventId"] = r["auth_event"]
            item.update(
                {
                    "tenantId": r["tenant_id"],
                    "tenantType": "ORGANISATION",
                    "tenantName": names.get(r["tenant_id"], ""),
                    "createdDateUtc": r["created"],
                    "updatedDateUtc": r["updated"],
                }
            )
            out.append(item)
        return out

    def delete_connection(self, client_id: str, connection_id: str) -> bool:
        """Remove one of the client's connections; whether there was one."""
        with self.store.write() as db:
            cur = db.execute(
                "DELETE FROM connections WHERE client_id=? AND lower(id)=lower(?)",
                (client_id, connection_id),
            )
            return cur.rowcount > 0
