"""The fake Nexudus API's identity side: the token endpoint and request authorisation.

``POST /api/token`` as ``shared/reference/nexudus.md`` §1 records it: form-encoded
only, the password grant (optional ``client_id``, absent meaning the username)
and the refresh_token grant, answering ``access_token``, ``token_type``
"bearer", ``expires_in`` 604799 and ``refresh_token``. Refresh tokens last 15
days; issuing tokens for a client_id (a refresh, or a new password grant) voids
that client_id's earlier refresh tokens, while live access tokens survive and
other client_ids are untouched. Every other call carries ``Bearer <token>`` or
HTTP Basic. Tokens are stored only as SHA-256 hashes and expire on the sandbox
clock. ``NexudusAuth`` is mixed into ``NexudusApp``.

Imports nothing of recon outside ``recon.sandbox``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import sqlite3
from collections.abc import Mapping

from recon.sandbox.clock import Clock
from recon.sandbox.http import Request, Response
from recon.sandbox.store import Store

# §1 "Token answer": expires_in 604799 (about 7 days).
DEFAULT_TOKEN_SECONDS = 604799
# §1 "Refresh": refresh tokens last 15 days.
DEFAULT_REFRESH_SECONDS = 15 * 86400
# §1 "Wrong password": HTTP 400 with exactly this body.
WRONG_PASSWORD = {
    "error": "invalid_grant",
    "error_description": "The user name or password is incorrect.",
}
# ASSUMPTION (§1 quotes no text for it): a void, expired or unknown refresh token.
BAD_REFRESH_DESCRIPTION = "The refresh token is invalid or has expired."
# ASSUMPTION (§1 silent): a refresh token sent with another client_id than it was issued to.
OTHER_CLIENT_DESCRIPTION = "The refresh token was issued to a different client_id."
ANONYMOUS = "anonymous"  # the rate-limit client of a call without credentials (§5 "per client")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _oauth_error(error: str, description: str | None = None) -> Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return Response.json(body, status=400, headers={"Cache-Control": "no-store"})


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        user, _, password = base64.b64decode(credentials.strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


class NexudusAuth:
    """Token grants and the auth check, for ``NexudusApp`` (which sets these attributes)."""

    store: Store
    clock: Clock
    username: str
    _password: str
    token_seconds: int
    refresh_seconds: int

    def _is_right_password(self, username: str, password: str) -> bool:
        # ASSUMPTION (§1 silent): usernames (e-mail addresses) match case-insensitively,
        # passwords exactly.
        same_user = secrets.compare_digest(
            username.strip().lower().encode(), self.username.lower().encode()
        )
        return same_user and secrets.compare_digest(password.encode(), self._password.encode())

    def _is_authorised(self, request: Request) -> bool:
        """Bearer token (live on the sandbox clock) or HTTP Basic: username and password (§1)."""
        header = request.header("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            row = self.store.one(
                "SELECT expires FROM tokens WHERE token_hash = ? AND kind = 'access'",
                (_hash(credentials.strip()),),
            )
            return row is not None and row["expires"] > self.clock.time()
        basic = _basic(header)
        return basic is not None and self._is_right_password(*basic)

    def _client_key(self, request: Request) -> str:
        """Who a call counts against for §5's per-client limits.

        ASSUMPTION (§5 says "per client (request signature)", no more): the
        client_id of a bearer token, the username of HTTP Basic or of a password
        grant (a password grant without client_id is that username's, §1), else
        one anonymous client.
        """
        header = request.header("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            row = self.store.one(
                "SELECT client_id FROM tokens WHERE token_hash = ? AND kind = 'access'",
                (_hash(credentials.strip()),),
            )
            return str(row["client_id"]).lower() if row is not None else ANONYMOUS
        basic = _basic(header)
        if basic is not None:
            return basic[0].strip().lower()
        if request.path.lower().rstrip("/") == "/api/token":
            form = self._token_form(request)
            who = form.get("client_id") or form.get("username") or ""
            return who.strip().lower() or ANONYMOUS
        return ANONYMOUS

    @staticmethod
    def _token_form(request: Request) -> dict[str, str]:
        content_type = (request.header("Content-Type") or "").lower()
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return {}
        try:
            return request.form()
        except Exception:  # an unreadable form reads as none
            return {}

    def _token(self, request: Request) -> Response:
        """POST /api/token: password and refresh_token grants, form-encoded only (§1).

        A JSON body carries no readable ``grant_type``: ``unsupported_grant_type``
        (§1). ``totp`` is accepted and ignored (no 2FA here).
        """
        form = self._token_form(request)
        grant = form.get("grant_type", "")
        if grant == "password":
            if not self._is_right_password(form.get("username", ""), form.get("password", "")):
                return Response.json(
                    WRONG_PASSWORD, status=400, headers={"Cache-Control": "no-store"}
                )
            return self._issue(form.get("client_id") or self.username)
        if grant == "refresh_token":
            return self._refresh(form)
        return _oauth_error("unsupported_grant_type")

    def _refresh(self, form: Mapping[str, str]) -> Response:
        """§1: a live refresh token of the same client_id (absent: the username) is renewed."""
        client_id = form.get("client_id") or self.username
        token_hash = _hash(form.get("refresh_token", ""))
        with self.store.write() as db:  # checked and voided in one transaction: used once only
            row = db.execute(
                "SELECT client_id, expires, used FROM tokens"
                " WHERE token_hash = ? AND kind = 'refresh'",
                (token_hash,),
            ).fetchone()
            if row is None or row["used"] or row["expires"] <= self.clock.time():
                return _oauth_error("invalid_grant", BAD_REFRESH_DESCRIPTION)
            if row["client_id"] != client_id:
                return _oauth_error("invalid_grant", OTHER_CLIENT_DESCRIPTION)
            body = self._new_tokens(db, client_id)
        return Response.json(body, headers={"Cache-Control": "no-store"})

    def _issue(self, client_id: str) -> Response:
        with self.store.write() as db:
            body = self._new_tokens(db, client_id)
        return Response.json(body, headers={"Cache-Control": "no-store"})

    def _new_tokens(self, db: sqlite3.Connection, client_id: str) -> dict[str, object]:
        """New access and refresh tokens for ``client_id``; only their hashes are kept.

        §1: this voids every earlier refresh token of the same client_id (its
        live access tokens survive; other client_ids are untouched).
        """
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.time()
        db.execute(
            "UPDATE tokens SET used = 1 WHERE kind = 'refresh' AND client_id = ?", (client_id,)
        )
        db.executemany(
            "INSERT INTO tokens(token_hash, kind, client_id, expires) VALUES (?, ?, ?, ?)",
            [
                (_hash(access), "access", client_id, now + self.token_seconds),
                (_hash(refresh), "refresh", client_id, now + self.refresh_seconds),
            ],
        )
        # §1 "Token answer": these four fields, no others documented.
        return {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.token_seconds,
            "refresh_token": refresh,
        }
