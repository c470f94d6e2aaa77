"""The fake Nexudus API's identity side: the token endpoint and request authorisation.

``POST /api/token`` takes the password and refresh_token grants (form-encoded);
refresh tokens rotate (a used one is refused). Access tokens expire on the
sandbox clock; requests carry ``Bearer <token>`` or HTTP Basic. Tokens are
stored only as SHA-256 hashes. ``NexudusAuth`` is mixed into ``NexudusApp``.

Floor 0: imports only ``recon.sandbox.*`` and the leaves ``recon.money`` and
``recon.errors``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from recon.sandbox.clock import Clock
from recon.sandbox.http import Request, Response
from recon.sandbox.store import Store

DEFAULT_TOKEN_SECONDS = 3600
# ASSUMPTION: refresh-token lifetime is undocumented; 14 days, the ASP.NET
# (OWIN) template's default, which Nexudus' token endpoint resembles.
DEFAULT_REFRESH_SECONDS = 14 * 86400


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _oauth_error(error: str, description: str | None = None) -> Response:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return Response.json(body, status=400, headers={"Cache-Control": "no-store"})


class NexudusAuth:
    """Token grants and the auth check, for ``NexudusApp`` (which sets these attributes)."""

    store: Store
    clock: Clock
    username: str
    _password: str
    token_seconds: int
    refresh_seconds: int

    def _is_right_password(self, username: str, password: str) -> bool:
        # ASSUMPTION: usernames (e-mail addresses) match case-insensitively, passwords exactly.
        same_user = secrets.compare_digest(username.strip().lower().encode(), self.username.lower().encode())
        return same_user and secrets.compare_digest(password.encode(), self._password.encode())

    def _is_authorised(self, request: Request) -> bool:
        """Bearer token (live, on the sandbox clock) or HTTP Basic with the username and password."""
        header = request.header("Authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            row = self.store.one(
                "SELECT expires FROM tokens WHERE token_hash = ? AND kind = 'access'", (_hash(credentials.strip()),)
            )
            return row is not None and row["expires"] > self.clock.time()
        if scheme.lower() == "basic" and credentials:
            try:
                user, _, password = base64.b64decode(credentials.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return self._is_right_password(user, password)
        return False

    def _token(self, request: Request) -> Response:
        """POST /api/token: password and refresh_token grants, form-encoded only.

        A JSON body carries no readable ``grant_type``, hence ``unsupported_grant_type``
        as the reference records. ``totp`` is accepted and ignored (no 2FA here).
        """
        content_type = (request.header("Content-Type") or "").lower()
        form = request.form() if content_type.startswith("application/x-www-form-urlencoded") else {}
        grant = form.get("grant_type", "")
        if grant == "password":
            if not self._is_right_password(form.get("username", ""), form.get("password", "")):
                return _oauth_error("invalid_grant", "The user name or password is incorrect.")
            return self._issue(form.get("client_id") or self.username)
        if grant == "refresh_token":
            return self._refresh(form)
        return _oauth_error("unsupported_grant_type")

    def _refresh(self, form: Mapping[str, str]) -> Response:
        """Rotate a refresh token. ASSUMPTION: a used refresh token is refused (rotation);
        an absent ``client_id`` defaults to the username, as on the password grant."""
        client_id = form.get("client_id") or self.username
        token_hash = _hash(form.get("refresh_token", ""))
        with self.store.write() as db:
            row = db.execute(
                "SELECT client_id, expires, used FROM tokens WHERE token_hash = ? AND kind = 'refresh'", (token_hash,)
            ).fetchone()
            if row is None or row["used"] or row["expires"] <= self.clock.time():
                return _oauth_error("invalid_grant", "The refresh token is invalid or expired.")
            if row["client_id"] != client_id:
                return _oauth_error("invalid_grant", "The refresh token was issued to a different client_id.")
            db.execute("UPDATE tokens SET used = 1 WHERE token_hash = ?", (token_hash,))
        return self._issue(client_id)

    def _issue(self, client_id: str) -> Response:
        """New access and refresh tokens; only their hashes are kept.

        ASSUMPTION: the response carries the ASP.NET (OWIN) token fields
        ``userName``, ``.issued`` and ``.expires`` besides the OAuth2 ones.
        """
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock.time()
        with self.store.write() as db:
            db.executemany(
                "INSERT INTO tokens(token_hash, kind, client_id, expires) VALUES (?, ?, ?, ?)",
                [
                    (_hash(access), "access", client_id, now + self.token_seconds),
                    (_hash(refresh), "refresh", client_id, now + self.refresh_seconds),
                ],
            )
        issued = datetime.fromtimestamp(now, UTC)
        return Response.json(
            {
                "access_token": access,
                "token_type": "bearer",
                "expires_in": self.token_seconds,
                "refresh_token": refresh,
                "userName": self.username,
                ".issued": format_datetime(issued, usegmt=True),
                ".expires": format_datetime(issued + timedelta(seconds=self.token_seconds), usegmt=True),
            },
            headers={"Cache-Control": "no-store"},
        )
