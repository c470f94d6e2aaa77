"""Every exception recon raises, under one base.

A leaf module: it imports nothing from recon. The tree::

    ReconError
    ├── ParamsError              a params file or key is wrong (names the file and key)
    ├── ClientError              talking to Xero or Nexudus failed (floor 1 translates
    │   │                        httpx/authlib here)
    │   ├── AuthError            credentials refused, token expired and not refreshable
    │   │   └── WrongOrganisation  the token cannot reach that Xero organisation (tenant)
    │   ├── RateLimited          a rate limit was still hit after waiting and retrying
    │   ├── ApiRejected          the service refused the request (validation messages attached)
    │   ├── NotFound             no such record or path
    │   └── ServiceUnavailable   5xx, timeouts or dropped connections after retries
    └── StepError                a step cannot go on (floor 2), e.g. a ledger file written
                                 by a newer recon

One bad invoice is not an exception: steps return problems as rows. These are
for calls and runs that cannot continue.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiRejected",
    "AuthError",
    "ClientError",
    "NotFound",
    "ParamsError",
    "RateLimited",
    "ReconError",
    "ServiceUnavailable",
    "StepError",
    "WrongOrganisation",
]


class ReconError(Exception):
    """Base of every recon error."""


class ParamsError(ReconError):
    """A run parameter is missing or wrong; names the file and the key."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ", ".join(
            p for p in (f"file {file}" if file else "", f"key {key!r}" if key else "") if p
        )
        super().__init__(f"{message} ({where})" if where else message)


class ClientError(ReconError):
    """A call to Xero or Nexudus failed. Carries what a reader needs to follow it up."""

    def __init__(
        self,
        message: str,
        *,
        service: str = "",
        status: int | None = None,
        method: str = "",
        url: str = "",
        request_id: str | None = None,
        detail: Any = None,
    ) -> None:
        self.service = service
        self.status = status
        self.method = method
        self.url = url
        self.request_id = request_id
        self.detail = detail
        super().__init__(message)


class AuthError(ClientError):
    """Credentials or token refused: sign in again or fix the client id/secret."""


class WrongOrganisation(AuthError):
    """The token has no connection to the Xero organisation (tenant) asked for."""


class RateLimited(ClientError):
    """Still rate-limited after honouring Retry-After; ``problem`` is
    minute/day/concurrent/appminute."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        problem: str | None = None,
        **kw: Any,
    ) -> None:
        self.retry_after = retry_after
        self.problem = problem
        super().__init__(message, **kw)


class ApiRejected(ClientError):
    """The service refused the request; ``messages`` holds its validation messages verbatim."""

    def __init__(self, message: str, *, messages: list[str] | None = None, **kw: Any) -> None:
        self.messages = list(messages or [])
        super().__init__(message, **kw)


class NotFound(ClientError):
    """No such record or path."""


class ServiceUnavailable(ClientError):
    """The service failed (5xx), timed out or dropped the connection, even after retries."""


class StepError(ReconError):
    """A recon step cannot go on."""
