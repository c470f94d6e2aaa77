"""A small HTTP layer for the sandbox servers: request, response, router, server.

The sandbox speaks real HTTP/1.1 on loopback through the standard library's
``ThreadingHTTPServer`` (one thread per connection, keep-alive on), so any
client (httpx, curl, an official Xero SDK) can talk to it. Routes match
case-insensitively because Xero's do (``/Connections`` and ``/connections``).
Floor 0: imports nothing from recon but the leaves.
"""

from __future__ import annotations

import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from recon.sandbox import jsonutil

Handler = Callable[["Request"], "Response"]


class BadRequestBody(Exception):
    """The request body is not the JSON or form data the route needs."""


@dataclass
class Request:
    """One HTTP request as a route handler sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter, matched case-insensitively."""
        lname = name.lower()
        for key, values in self.query.items():
            if key.lower() == lname and values:
                return values[0]
        return default

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header's value (names match case-insensitively), or ``default``."""
        value = self.headers.get(name)
        return default if value is None else value

    def json(self) -> Any:
        """The body as JSON (an empty body is None), non-integer numbers as Decimal.

        Raises ``BadRequestBody`` when it is not JSON.
        """
        try:
            return jsonutil.loads(self.body or b"null")
        except ValueError as exc:
            raise BadRequestBody(str(exc)) from exc

    def form(self) -> dict[str, str]:
        """The body as form fields, the first value of each; ``BadRequestBody`` if not UTF-8."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequestBody(str(exc)) from exc
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


@dataclass
class Response:
    """What a route handler returns."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Fault injection: close the connection without answering (a dropped request).
    drop: bool = False

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A JSON answer."""
        h = {"Content-Type": "application/json; charset=utf-8"}
        h.update(headers or {})
        return cls(status, jsonutil.dumps(obj).encode("utf-8"), h)

    @classmethod
    def text(cls, text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A plain-text answer."""
        h = {"Content-Type": "text/plain; charset=utf-8"}
        h.update(headers or {})
        return cls(status, text.encode("utf-8"), h)


class Router:
    """Maps (method, path pattern) to handlers; ``{name}`` captures one segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register the decorated function as the handler of ``method`` on ``pattern``."""
        regex = re.compile(
            "^"
            + re.sub(
                r"\{(\w+)\}",
                r"(?P<\1>[^/]+)",
                re.escape(pattern).replace(r"\{", "{").replace(r"\}", "}"),
            )
            + "/?$",
            re.IGNORECASE,
        )

        def register(fn: Handler) -> Handler:
            self._routes.append((method.upper(), regex, fn))
            return fn

        return register

    def add(self, method: str, pattern: str, fn: Handler) -> None:
        """Register ``fn`` as the handler of ``method`` on ``pattern``."""
        self.route(method, pattern)(fn)

    def resolve(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """Return (handler, path params, path_exists)."""
        path_exists = False
        for m, regex, fn in self._routes:
            match = regex.match(path)
            if match:
                path_exists = True
                if m == method:
                    return fn, match.groupdict(), True
        return None, {}, path_exists


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Answer at once: without this, Nagle holds small writes ~40 ms per request.
    disable_nagle_algorithm = True
    server_version = "recon-sandbox"
    sys_version = ""

    def _serve(self) -> None:
        app: Callable[[Request], Response] = self.server.app  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(
            method=self.command.upper(),
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        try:
            response = app(request)
        except Exception:  # a sandbox bug must still answer, as Xero's 500 does
            traceback.print_exc()
            response = Response.json(
                {
                    "Title": "An error occurred",
                    "Detail": "An error occurred in the sandbox.",
                    "Status": 500,
                },
                status=500,
            )
        if response.drop:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        # Silent on purpose: request lines can carry codes and tokens.
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Server:
    """One sandbox HTTP server on 127.0.0.1 (a free port unless given)."""

    def __init__(
        self, app: Callable[[Request], Response], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._httpd = _Server((host, port), _Handler)
        self._httpd.app = app  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL, ``http://<host>:<port>``."""
        host, port = self._httpd.server_address[:2]
        if isinstance(host, (bytes, bytearray)):  # typeshed allows it; an AF_INET socket gives str
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self) -> Server:
        """Serve in a background daemon thread; returns the server."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox {self.url}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until stopped."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
