"""Xero's rate limits, faults and Idempotency-Key over real HTTP, and how the client copes.

Contract: shared/reference/xero-api.md §7 (idempotency), §9 (limits and quota
headers), §8 (429/5xx). Every test that changes limits or queues faults has its
own sandbox. The "minute" is one second long; no test asserts on elapsed time.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import fast_retry, xero_config

from recon.clients.pacing import MinutePacer
from recon.clients.retry import RetryPolicy
from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient
from recon.errors import RateLimited, ServiceUnavailable
from recon.sandbox import NO_LATENCY, RateLimits, Sandbox, start
from recon.sandbox.xero_ratelimit import LATENCY_ENV, XERO_LATENCY, Latency, latency_from_env

QUOTA_HEADERS = ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining")


# ---- helpers ------------------------------------------------------------------
def as_json(value: Any) -> Any:
    """Amounts go out as JSON numbers, as the client sends them."""
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


class Recorder(httpx.BaseTransport):
    """A real transport that remembers (method, path, status) of every answer and every dropped
    request."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.seen: list[tuple[str, str, int | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self.inner.handle_request(request)
        except httpx.TransportError:
            self.seen.append((request.method, request.url.path, None))
            raise
        self.seen.append((request.method, request.url.path, response.status_code))
        return response

    def api(self) -> list[tuple[str, int | None]]:
        return [(m, s) for m, p, s in self.seen if "/api.xro/2.0/" in p]

    def close(self) -> None:
        self.inner.close()


class SleepLog:
    """A sleep that really sleeps (the sandbox's windows are real time) and records each wait."""

    def __init__(self, real: bool = True) -> None:
        self.waits: list[float] = []
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.real:
            time.sleep(seconds)


def token(box: Sandbox) -> str:
    r = httpx.post(
        box.xero_token_url,
        data={"grant_type": "client_credentials"},
        auth=(box.xero_client_id, box.xero_client_secret),
    )
    return r.json()["access_token"]


def headers(box: Sandbox, tok: str, **extra: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {tok}",
        "Accept": "application/json",
        "xero-tenant-id": box.xero_tenant_id,
        **extra,
    }


def client(
    box: Sandbox,
    folder: Path,
    *,
    retry: RetryPolicy | None = None,
    pacer: MinutePacer | None = None,
    transport: httpx.BaseTransport | None = None,
) -> XeroClient:
    return XeroClient(
        xero_config(box),
        token_store=TokenStore(folder),
        retry=retry or fast_retry(),
        pacer=pacer,
        transport=transport,
    )


def invoice(number: str) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"Name": "Limits Member"},
        "Date": "2026-08-01",
        "DueDate": "2026-08-15",
        "InvoiceNumber": number,
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Desk",
                "Quantity": 1,
                "UnitAmount": Decimal("100.00"),
                "AccountCode": "4000",
            }
        ],
    }


def count(box: Sandbox, numbers: list[str]) -> int:
    return sum(
        1
        for n in numbers
        for d in box.xero.books.by_number(box.xero_tenant_id, "Invoice", n)
        if d["Status"] != "DELETED"
    )


# ---- per-minute limit -----------------------------------------------------------------
def test_past_the_minute_limit_calls_get_429_with_retry_after_and_quota_headers_on_every_answer(
    fresh_sandbox: Sandbox,
) -> None:
    box = fresh_sandbox
    box.xero.limits = RateLimits(
        per_minute=5
    )  # a real 60-second minute; the sandbox clock is moved instead of waiting
    tok = token(box)
    with httpx.Client(headers=headers(box, tok)) as http:
        answers = [http.get(box.xero_api_url + "/Organisation") for _ in range(7)]
        assert [a.status_code for a in answers] == [200] * 5 + [429, 429]
        for a in answers:
            for name in QUOTA_HEADERS:
                assert a.headers[name].isdigit(), (name, a.status_code)
        assert [int(a.headers["X-MinLimit-Remaining"]) for a in answers[:5]] == [4, 3, 2, 1, 0]
        assert int(answers[0].headers["X-DayLimit-Remaining"]) == box.xero.limits.per_day - 1
        assert (
            int(answers[0].headers["X-AppMinLimit-Remaining"]) == box.xero.limits.app_per_minute - 1
        )
        refused = answers[5]
        assert refused.headers["X-Rate-Limit-Problem"] == "minute"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert refused.headers["X-MinLimit-Remaining"] == "0"
        assert refused.headers["X-DayLimit-Remaining"] == str(box.xero.limits.per_day - 5), (
            "a refused call is not counted"
        )
        # Once Retry-After has passed, calls go through again.
        box.clock.advance(int(refused.headers["Retry-After"]))
        again = http.get(box.xero_api_url + "/Organisation")
    assert again.status_code == 200
    assert again.headers["X-MinLimit-Remaining"] == "4"


def test_the_client_waits_out_429s_from_another_caller_and_completes(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    box.xero.limits = RateLimits(per_minute=5, minute_seconds=1.0)
    sleeps, pacer_sleeps, transport = SleepLog(), SleepLog(), Recorder()
    retry = RetryPolicy(base_delay=0.01, max_delay=0.2, sleep=sleeps)
    pacer = MinutePacer(5, 1.0, sleep=pacer_sleeps)
    with client(box, tmp_path / "t", retry=retry, pacer=pacer, transport=transport) as xero:
        xero.fetch_organisation()  # token fetched, one call
        with httpx.Client(
            headers=headers(box, token(box))
        ) as other:  # another process spends the minute
            while other.get(box.xero_api_url + "/Organisation").status_code == 200:
                pass
        org = xero.fetch_organisation()
        accounts = xero.fetch_accounts()
        rates = xero.fetch_tax_rates()
    assert org["OrganisationID"] == box.xero_tenant_id
    assert len(accounts) > 0 and len(rates) > 0
    statuses = [s for _, s in transport.api()]
    assert 429 in statuses
    assert statuses[-1] == 200
    assert sleeps.waits and all(w >= 1 for w in sleeps.waits), (
        "Retry-After is honoured, not the 10 ms backoff"
    )
    assert pacer_sleeps.waits == [], (
        "after Retry-After the pacer adds no second wait for the same window"
    )


def test_the_pacer_keeps_the_client_under_the_limit_without_any_429(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    box.xero.limits = RateLimits(per_minute=5, minute_seconds=1.0)
    pacer_sleeps = SleepLog()
    pacer = MinutePacer(5, 1.0, sleep=pacer_sleeps)
    transport = Recorder()
    with client(box, tmp_path / "t", pacer=pacer, transport=transport) as xero:
        for _ in range(12):
            xero.fetch_organisation()
    statuses = [s for _, s in transport.api()]
    assert statuses == [200] * 12
    assert len(pacer_sleeps.waits) >= 2, "12 calls at 5 a 'minute' need at least two waits"
    assert pacer.remaining[box.xero_tenant_id].day == box.xero.limits.per_day - 12


def test_a_storm_of_429s_is_survived(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    box = fresh_sandbox
    box.xero.faults.throttle_next(5, retry_after=1)
    sleeps, transport = SleepLog(real=False), Recorder()  # injected 429s do not depend on time
    with client(
        box, tmp_path / "t", retry=RetryPolicy(base_delay=0.01, sleep=sleeps), transport=transport
    ) as xero:
        assert xero.fetch_organisation()["OrganisationID"] == box.xero_tenant_id
        assert xero.calls == 6
    assert [s for _, s in transport.api()] == [429] * 5 + [200]
    assert sleeps.waits == [1.0] * 5


def test_an_unkeyed_write_refused_with_429_is_resent_and_creates_one_invoice(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    box.xero.faults.throttle_next(2, retry_after=1)
    transport = Recorder()
    with client(
        box, tmp_path / "t", retry=RetryPolicy(sleep=SleepLog(real=False)), transport=transport
    ) as xero:
        (made,) = xero.create_invoices([invoice("THROTTLED-PUT")])
    assert made["StatusAttributeString"] == "OK"
    assert transport.api() == [("PUT", 429), ("PUT", 429), ("PUT", 200)]
    assert count(box, ["THROTTLED-PUT"]) == 1, (
        "a 429 is refused before any work, so resending is safe"
    )


def test_a_429_storm_longer_than_the_retries_raises_rate_limited(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    box.xero.faults.throttle_next(3, retry_after=1)
    sleeps = SleepLog(real=False)
    with (
        client(box, tmp_path / "t", retry=RetryPolicy(attempts=3, sleep=sleeps)) as xero,
        pytest.raises(RateLimited) as err,
    ):
        xero.fetch_organisation()
    assert err.value.problem == "minute"
    assert err.value.status == 429
    assert len(sleeps.waits) == 2


# ---- day and concurrency limits ---------------------------------------------------------
def test_the_day_limit_answers_429_day_and_the_client_gives_up_at_once(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    box.xero.limits = RateLimits(per_day=3, minute_seconds=1.0)
    sleeps, transport = SleepLog(), Recorder()
    with client(
        box, tmp_path / "t", retry=RetryPolicy(base_delay=0.01, sleep=sleeps), transport=transport
    ) as xero:
        for _ in range(3):
            xero.fetch_organisation()
        with pytest.raises(RateLimited) as err:
            xero.fetch_organisation()
    assert err.value.problem == "day"
    assert (
        err.value.retry_after is not None and err.value.retry_after > RetryPolicy().max_retry_after
    )
    assert sleeps.waits == [], "a Retry-After of hours is not slept on"
    assert [s for _, s in transport.api()] == [200, 200, 200, 429]

    with httpx.Client(headers=headers(box, token(box))) as http:
        r = http.get(box.xero_api_url + "/Accounts")
    assert r.status_code == 429
    assert r.headers["X-Rate-Limit-Problem"] == "day"
    assert r.headers["X-DayLimit-Remaining"] == "0"
    assert int(r.headers["Retry-After"]) > 3600


def test_more_calls_in_progress_than_the_concurrent_limit_get_429_concurrent(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = fresh_sandbox
    box.xero.limits = RateLimits(concurrent=1, minute_seconds=1.0)
    books = box.xero.books
    real_org = books.org

    def slow_org(
        tenant: str,
    ) -> Any:  # hold the call in progress long enough for the others to arrive
        time.sleep(0.3)
        return real_org(tenant)

    tok = token(box)
    monkeypatch.setattr(books, "org", slow_org)
    start = threading.Barrier(4)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def call() -> None:
        with httpx.Client(headers=headers(box, tok), timeout=30) as http:
            start.wait()
            r = http.get(box.xero_api_url + "/Organisation")
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(a.status_code for a in answers)
    assert 200 in statuses and 429 in statuses, statuses
    refused = [a for a in answers if a.status_code == 429]
    assert {a.headers["X-Rate-Limit-Problem"] for a in refused} == {"concurrent"}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in refused)
    # Every slot was given back: a later call is admitted.
    monkeypatch.setattr(books, "org", real_org)
    with httpx.Client(headers=headers(box, tok)) as http:
        assert http.get(box.xero_api_url + "/Organisation").status_code == 200


# ---- idempotency ------------------------------------------------------------------------------
def test_a_replayed_idempotency_key_gives_the_identical_answer_and_creates_one_invoice(
    sandbox: Sandbox,
) -> None:
    numbers = [f"IK-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    body = json.dumps({"Invoices": [invoice(n) for n in numbers]}, default=as_json).encode()
    key = str(uuid.uuid4())
    hdrs = headers(
        sandbox, token(sandbox), **{"Idempotency-Key": key, "Content-Type": "application/json"}
    )
    url = sandbox.xero_api_url + "/Invoices?summarizeErrors=false"
    with httpx.Client(headers=hdrs) as http:
        first = http.put(url, content=body)
        second = http.put(url, content=body)
        changed = http.put(url, content=body.replace(b"Limits Member", b"Other Member"))
        other_path = http.post(url, content=body)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.json()["Invoices"][0]["InvoiceID"] == second.json()["Invoices"][0]["InvoiceID"]
    assert count(sandbox, numbers) == 3, "the replay created nothing"
    for reused in (changed, other_path):
        assert reused.status_code == 400
        assert "is used with a different request" in reused.json()["Message"]
    assert count(sandbox, numbers) == 3


def test_an_errored_keyed_request_replays_its_error(sandbox: Sandbox) -> None:
    bad = invoice(f"IK-{uuid.uuid4().hex[:8]}")
    bad["LineItems"][0]["AccountCode"] = "9999"
    body = json.dumps({"Invoices": [bad]}, default=as_json).encode()
    hdrs = headers(
        sandbox,
        token(sandbox),
        **{"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
    )
    with httpx.Client(headers=hdrs) as http:
        first = http.put(sandbox.xero_api_url + "/Invoices", content=body)
        second = http.put(sandbox.xero_api_url + "/Invoices", content=body)
    assert first.status_code == second.status_code == 400
    assert first.content == second.content


def test_idempotency_keys_belong_to_one_app(sandbox: Sandbox) -> None:
    others = [
        a
        for a in sandbox.xero_apps.values()
        if a["grant"] == "client_credentials" and a["client_id"] != sandbox.xero_client_id
    ]
    assert others, "the demo has a Custom Connection per organisation"
    key = str(uuid.uuid4())
    body = json.dumps(
        {"Invoices": [invoice(f"IK-{uuid.uuid4().hex[:8]}")]}, default=as_json
    ).encode()
    with httpx.Client(
        headers=headers(
            sandbox, token(sandbox), **{"Idempotency-Key": key, "Content-Type": "application/json"}
        )
    ) as http:
        assert http.put(sandbox.xero_api_url + "/Invoices", content=body).status_code == 200
    app = others[0]
    tok = httpx.post(
        sandbox.xero_token_url,
        data={"grant_type": "client_credentials"},
        auth=(app["client_id"], app["client_secret"]),
    ).json()["access_token"]
    other_number = f"IK-{uuid.uuid4().hex[:8]}"
    hdrs = {
        "Authorization": f"Bearer {tok}",
        "Accept": "application/json",
        "xero-tenant-id": app["tenant_ids"][0],
        "Idempotency-Key": key,
        "Content-Type": "application/json",
    }
    r = httpx.put(
        sandbox.xero_api_url + "/Invoices",
        headers=hdrs,
        content=json.dumps({"Invoices": [invoice(other_number)]}, default=as_json).encode(),
    )
    assert r.status_code == 200, "the same key from another app is a new request, not a clash"
    assert r.json()["Invoices"][0]["InvoiceNumber"] == other_number


def test_a_keyed_write_whose_connection_dropped_after_commit_is_retried_and_replayed(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    transport = Recorder()
    with client(box, tmp_path / "t", transport=transport) as xero:
        xero.fetch_organisation()
        box.xero.faults.drop_next(1, after_commit=True)
        (made,) = xero.create_invoices([invoice("DROP-KEYED")], idempotency_key=str(uuid.uuid4()))
    assert made["StatusAttributeString"] == "OK"
    assert transport.api()[-2:] == [("PUT", None), ("PUT", 200)]
    found = box.xero.books.by_number(box.xero_tenant_id, "Invoice", "DROP-KEYED")
    assert len(found) == 1
    assert found[0]["InvoiceID"] == made["InvoiceID"]


def test_an_unkeyed_write_whose_connection_dropped_is_not_retried(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    transport = Recorder()
    with client(box, tmp_path / "t", transport=transport) as xero:
        xero.fetch_organisation()
        box.xero.faults.drop_next(1, after_commit=True)
        with pytest.raises(ServiceUnavailable):
            xero.create_invoices([invoice("DROP-UNKEYED")])
    assert [m for m, _ in transport.api()].count("PUT") == 1
    # The write had committed: a blind retry would have made a second invoice.
    assert len(box.xero.books.by_number(box.xero_tenant_id, "Invoice", "DROP-UNKEYED")) == 1


def test_a_write_dropped_before_commit_and_retried_with_its_key_creates_one_invoice(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    with client(box, tmp_path / "t") as xero:
        box.xero.faults.drop_next(1, after_commit=False)
        (made,) = xero.create_invoices([invoice("DROP-BEFORE")], idempotency_key=str(uuid.uuid4()))
    assert made["StatusAttributeString"] == "OK"
    assert len(box.xero.books.by_number(box.xero_tenant_id, "Invoice", "DROP-BEFORE")) == 1


def test_503_and_500_on_reads_are_retried(fresh_sandbox: Sandbox, tmp_path: Path) -> None:
    box = fresh_sandbox
    transport = Recorder()
    with client(box, tmp_path / "t", transport=transport) as xero:
        box.xero.faults.fail_next(2, status=503)
        assert xero.fetch_organisation()["OrganisationID"] == box.xero_tenant_id
        assert [s for _, s in transport.api()] == [503, 503, 200]
        box.xero.faults.fail_next(1, status=500)
        with pytest.raises(ServiceUnavailable) as err:
            xero.fetch_organisation()
    assert err.value.status == 500
    assert "An error occurred in Xero" in str(err.value)


def test_an_unkeyed_write_answered_503_is_not_retried(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    transport = Recorder()
    with client(box, tmp_path / "t", transport=transport) as xero:
        box.xero.faults.fail_next(1, status=503)
        with pytest.raises(ServiceUnavailable):
            xero.create_invoices([invoice("FAIL-503")])
        assert [s for _, s in transport.api()] == [503]
        box.xero.faults.fail_next(1, status=503)
        (made,) = xero.create_invoices([invoice("FAIL-503")], idempotency_key=str(uuid.uuid4()))
    assert made["StatusAttributeString"] == "OK"
    assert [s for _, s in transport.api()] == [503, 503, 200]


# ---- answer time and the concurrent limit with Xero's default of 5 ------------------------------
def test_a_sixth_call_while_five_are_in_progress_gets_429_concurrent(
    fresh_sandbox: Sandbox,
) -> None:
    """§9: "concurrent per tenant | 5 calls in progress"; "breach | HTTP 429 +
    X-Rate-Limit-Problem + Retry-After (s)"; §8: the value for the concurrent limit is
    UNVERIFIED, the sandbox says ``concurrent``. The latency model keeps five calls in progress."""
    box = fresh_sandbox
    assert box.xero.limits.concurrent == 5
    box.xero.latency = Latency(per_call=2.0)
    tok = token(box)
    start = threading.Barrier(6)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def call() -> None:
        with httpx.Client(headers=headers(box, tok), timeout=30) as http:
            start.wait()
            r = http.get(box.xero_api_url + "/Organisation")
        with lock:
            answers.append(r)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 5 + [429]
    (refused,) = [a for a in answers if a.status_code == 429]
    assert refused.headers["X-Rate-Limit-Problem"] == "concurrent"
    assert int(refused.headers["Retry-After"]) >= 1
    assert all(refused.headers[name].isdigit() for name in QUOTA_HEADERS)


def test_the_latency_model_is_per_call_plus_per_element_and_xero_s_by_default() -> None:
    """xero-api.md §9 gives the limits but no answer times: ASSUMPTION in xero_ratelimit.py, the
    sandbox answers as slowly as the real Xero unless told otherwise."""
    assert Latency(0.3, 0.02).seconds(50) == pytest.approx(1.3)
    assert Latency(0.3, 0.02).seconds(0) == pytest.approx(0.3)
    assert Latency(0.3, 0.02).scaled(0.1) == Latency(pytest.approx(0.03), pytest.approx(0.002))
    assert Latency(per_call=0.3, per_element=0.02) == XERO_LATENCY
    # unset or empty: the default, Xero's own; or the latency the sandbox was started with
    assert latency_from_env({}) == XERO_LATENCY == latency_from_env({LATENCY_ENV: " "})
    assert latency_from_env({}, default=NO_LATENCY) == NO_LATENCY
    # set: the operator's override wins over that
    assert latency_from_env({LATENCY_ENV: "off"}, default=XERO_LATENCY) == NO_LATENCY == Latency()
    assert latency_from_env({LATENCY_ENV: "xero"}, default=NO_LATENCY) == XERO_LATENCY
    assert latency_from_env({LATENCY_ENV: "0.5,0.01"}) == Latency(0.5, 0.01)
    for bad in ("fast", "0.3,-1", "nan,0"):
        with pytest.raises(ValueError, match=LATENCY_ENV):
            latency_from_env({LATENCY_ENV: bad})


def test_a_sandbox_started_with_nothing_said_answers_as_slowly_as_xero_and_settings_change_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default is XERO_LATENCY (xero_ratelimit.py, ASSUMPTION on xero-api.md §9); the
    ``/_sandbox/settings`` route still changes it while the sandbox runs."""
    monkeypatch.delenv(LATENCY_ENV, raising=False)  # tests/conftest.py says "off" for the others
    with start(tmp_path / "sandbox") as box:
        assert box.xero.latency == XERO_LATENCY
        info = httpx.get(box.xero_url + "/_sandbox/info", timeout=10).json()
        assert info["latency"] == {"per_call": 0.3, "per_element": 0.02}
        r = httpx.post(
            box.xero_url + "/_sandbox/settings", json={"latency": {"per_call": 0.01}}, timeout=10
        )
        assert r.status_code == 200
        assert box.xero.latency == Latency(per_call=0.01, per_element=0.02)
        assert httpx.get(box.xero_url + "/_sandbox/info").json()["latency"]["per_call"] == 0.01


def test_a_sandbox_started_with_no_latency_answers_at_once_unless_the_environment_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``start(xero_latency=...)`` sets the answer time; ``RECON_SANDBOX_XERO_LATENCY``, when set,
    wins over it (so an operator or a test can slow down a run whose params say off)."""
    monkeypatch.delenv(LATENCY_ENV, raising=False)
    folder = tmp_path / "sandbox"  # seeded once, restarted on the same state
    with start(folder, xero_latency=NO_LATENCY) as box:
        assert box.xero.latency == NO_LATENCY
        info = httpx.get(box.xero_url + "/_sandbox/info", timeout=10).json()
        assert info["latency"] == {"per_call": 0.0, "per_element": 0.0}
    monkeypatch.setenv(LATENCY_ENV, "0.25,0.01")
    with start(folder, xero_latency=NO_LATENCY) as box:
        assert box.xero.latency == Latency(per_call=0.25, per_element=0.01)
        info = httpx.get(box.xero_url + "/_sandbox/info", timeout=10).json()
        assert info["latency"] == {"per_call": 0.25, "per_element": 0.01}
    monkeypatch.setenv(LATENCY_ENV, "")  # empty: as if unset, the argument decides
    with start(folder, xero_latency=Latency(0.1, 0.0)) as box:
        assert box.xero.latency == Latency(per_call=0.1, per_element=0.0)


def test_a_batch_write_reads_the_chart_tax_rates_and_currencies_once(
    fresh_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """§3.6: a batch of up to 50 elements is one request; its elements share one look-up."""
    box = fresh_sandbox
    books = box.xero.books
    real_records = books.records
    kinds: list[str] = []

    def counting(tenant: str, kind: str, **kw: Any) -> list[dict[str, Any]]:
        kinds.append(kind)
        return real_records(tenant, kind, **kw)

    monkeypatch.setattr(books, "records", counting)
    with client(box, tmp_path / "t") as xero:
        made = xero.create_invoices([invoice(f"LOOKUPS-{i}") for i in range(5)])
    assert [m["StatusAttributeString"] for m in made] == ["OK"] * 5
    assert kinds.count("Account") == 1
    assert kinds.count("TaxRate") == 1
    assert kinds.count("Currency") == 1
    assert count(box, [f"LOOKUPS-{i}" for i in range(5)]) == 5
