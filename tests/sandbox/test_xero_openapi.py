"""The sandbox's real JSON answers validate against Xero's own OpenAPI spec.

Each implemented operation's answer is checked against that operation's 200
(or 400) response schema from tests/openapi/ (Xero-OpenAPI 16.1.0) with
openapi-schema-validator's OAS 3.0 read validator, ``$ref``s resolved through a
referencing Registry holding the whole spec. A failure is a sandbox bug.

Formats are checked (uuid, int32/int64, double) except ``date-time``: Xero's own
Connections example (``2019-12-07T18:46:19.5165400``, no zone) is not RFC 3339,
and the sandbox copies Xero, not the format keyword (reference §10).
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import FormatChecker
from jsonschema.exceptions import best_match
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from recon.sandbox import Sandbox

OPENAPI = Path(__file__).resolve().parents[1] / "openapi"  # vendored, see tests/openapi/README.md
ACCOUNTING = OPENAPI / "xero_accounting.yaml"
IDENTITY = OPENAPI / "xero-identity.yaml"

FORMATS = FormatChecker(formats=())
FORMATS.checkers = {
    name: check for name, check in oas30_format_checker.checkers.items() if name != "date-time"
}


def _load(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@pytest.fixture(scope="module")
def specs() -> dict[str, dict[str, Any]]:
    return {"accounting": _load(ACCOUNTING), "identity": _load(IDENTITY)}


@pytest.fixture(scope="module")
def registry(specs: dict[str, dict[str, Any]]) -> Registry:
    return Registry().with_resources(
        (f"urn:xero:{name}", Resource.from_contents(spec, default_specification=DRAFT4))
        for name, spec in specs.items()
    )


def response_schema(
    spec: dict[str, Any], path: str, method: str, status: str = "200"
) -> dict[str, Any]:
    answer = spec["paths"][path][method]["responses"][status]
    if "$ref" in answer:  # a shared response, e.g. #/components/responses/400Error
        answer = spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    return answer["content"]["application/json"]["schema"]


def assert_conforms(
    registry: Registry,
    specs: dict[str, Any],
    spec_name: str,
    path: str,
    method: str,
    body: Any,
    status: str = "200",
) -> None:
    schema = response_schema(specs[spec_name], path, method, status)
    rooted = json.loads(json.dumps(schema).replace('"#/', f'"urn:xero:{spec_name}#/'))
    validator = OAS30ReadValidator(rooted, registry=registry, format_checker=FORMATS)
    errors = list(validator.iter_errors(body))
    if errors:
        worst = best_match(errors)
        where = "/".join(str(p) for p in worst.absolute_path)
        others = "; ".join(
            sorted({f"{'/'.join(map(str, e.absolute_path))}: {e.message[:120]}" for e in errors})[
                :10
            ]
        )
        raise AssertionError(
            f"{method.upper()} {path} {status} does not match the spec at {where or '(root)'}: "
            f"{worst.message} ({len(errors)} error(s): {others})"
        )


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # as the client sends amounts: JSON numbers
    raise TypeError(type(value).__name__)


class Api:
    """Raw JSON calls as the Custom Connection (floats parsed as the validator expects them)."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        r = httpx.post(
            box.xero_token_url,
            data={"grant_type": "client_credentials"},
            auth=(box.xero_client_id, box.xero_client_secret),
        )
        assert r.status_code == 200
        self.token_body = r.json()
        self.http = httpx.Client(
            headers={
                "Authorization": f"Bearer {self.token_body['access_token']}",
                "Accept": "application/json",
                "xero-tenant-id": box.xero_tenant_id,
            },
            timeout=30,
        )

    def __call__(
        self,
        method: str,
        path: str,
        expect: int = 200,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        content = json.dumps(body, default=_number).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if content else None
        r = self.http.request(
            method, self.box.xero_api_url + path, params=params, content=content, headers=hdrs
        )
        assert r.status_code == expect, (method, path, r.status_code, r.text[:500])
        return r.json()


@pytest.fixture(scope="module")
def api(sandbox: Sandbox) -> Any:
    client = Api(sandbox)
    yield client
    client.http.close()


def _invoice(number: str | None, **fields: Any) -> dict[str, Any]:
    body = {
        "Type": "ACCREC",
        "Contact": {"Name": "OpenAPI Member"},
        "Date": "2026-08-01",
        "DueDate": "2026-08-31",
        "Status": "AUTHORISED",
        "Reference": "spec check",
        "LineItems": [
            {
                "Description": "Hot desk",
                "Quantity": 2,
                "UnitAmount": Decimal("49.50"),
                "AccountCode": "4000",
                "DiscountRate": Decimal("10"),
            },
            {
                "Description": "Room hire",
                "Quantity": 1,
                "UnitAmount": Decimal("3.33"),
                "AccountCode": "4000",
            },
        ],
    }
    if number is not None:
        body["InvoiceNumber"] = number
    body.update(fields)
    return body


@pytest.fixture(scope="module")
def made(api: Api) -> dict[str, Any]:
    """Invoices (one paid in part, one fully, one ACCPAY bill without a number, one in a foreign
    currency if enabled) and payments."""
    pfx = "OA" + uuid.uuid4().hex[:6].upper()
    currencies = {c["Code"] for c in api("GET", "/Currencies")["Currencies"]}
    base = api("GET", "/Organisation")["Organisations"][0]["BaseCurrency"]
    foreign = sorted(currencies - {base})
    batch = [
        _invoice(f"{pfx}-1"),
        _invoice(f"{pfx}-2"),
        # A bill takes no discount (spec: DiscountRate/DiscountAmount are ACCREC only).
        _invoice(
            None,
            Type="ACCPAY",
            Reference=None,
            LineItems=[
                {
                    "Description": "Cleaning",
                    "Quantity": 1,
                    "UnitAmount": Decimal("89.10"),
                    "AccountCode": "4000",
                }
            ],
        ),
        _invoice(
            f"{pfx}-BAD",
            LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "9999"}],
        ),
    ]
    if foreign:
        batch.append(_invoice(f"{pfx}-FX", CurrencyCode=foreign[0]))
    put = api("PUT", "/Invoices", params={"summarizeErrors": "false"}, body={"Invoices": batch})
    ids = [i["InvoiceID"] for i in put["Invoices"] if i["StatusAttributeString"] != "ERROR"]
    first, second = put["Invoices"][0], put["Invoices"][1]
    payments = api(
        "PUT",
        "/Payments",
        params={"summarizeErrors": "false"},
        body={
            "Payments": [
                {
                    "Invoice": {"InvoiceID": first["InvoiceID"]},
                    "Account": {"Code": "090"},
                    "Date": "2026-08-10",
                    "Amount": Decimal("10.00"),
                    "Reference": "part",
                },
                {
                    "Invoice": {"InvoiceID": second["InvoiceID"]},
                    "Account": {"Code": "090"},
                    "Date": "2026-08-12",
                    "Amount": second["Total"],
                },
                {
                    "Invoice": {"InvoiceID": first["InvoiceID"]},
                    "Account": {"Code": "090"},
                    "Amount": Decimal("99999.00"),
                },
            ]
        },
    )
    return {"prefix": pfx, "put": put, "ids": ids, "payments": payments, "first": first}


# ---- token and identity ---------------------------------------------------------------------
def test_the_client_credentials_token_answer_matches_access_token(
    registry: Registry, specs: dict[str, Any], api: Api
) -> None:
    schema = {"$ref": "urn:xero:identity#/components/schemas/AccessToken"}
    validator = OAS30ReadValidator(schema, registry=registry, format_checker=FORMATS)
    validator.validate(api.token_body)
    # xero-python builds its token from exactly these keys; nothing else may appear (reference §11).
    assert set(api.token_body) <= {
        "id_token",
        "access_token",
        "expires_in",
        "token_type",
        "refresh_token",
        "scope",
    }


def test_the_authorization_code_token_answer_matches_access_token(
    registry: Registry, sandbox: Sandbox
) -> None:
    app = next(a for a in sandbox.xero_apps.values() if a["grant"] == "authorization_code")
    r = httpx.get(
        sandbox.xero_authorize_url,
        follow_redirects=False,
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": app["redirect_uris"][0],
            "scope": "openid profile email offline_access accounting.invoices",
            "state": "x",
        },
    )
    code = httpx.URL(r.headers["Location"]).params["code"]
    body = httpx.post(
        sandbox.xero_token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": app["redirect_uris"][0],
        },
        auth=(app["client_id"], app["client_secret"]),
    ).json()
    OAS30ReadValidator(
        {"$ref": "urn:xero:identity#/components/schemas/AccessToken"},
        registry=registry,
        format_checker=FORMATS,
    ).validate(body)
    assert set(body) == {
        "id_token",
        "access_token",
        "expires_in",
        "token_type",
        "refresh_token",
        "scope",
    }


def test_get_connections_matches_the_spec(
    registry: Registry, specs: dict[str, Any], sandbox: Sandbox, api: Api
) -> None:
    body = api.http.get(sandbox.xero_identity_url + "/Connections").json()
    assert body
    assert_conforms(registry, specs, "identity", "/Connections", "get", body)


# ---- settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/Organisation", "/Accounts", "/TaxRates", "/Currencies"])
def test_settings_collections_match_the_spec(
    registry: Registry, specs: dict[str, Any], api: Api, path: str
) -> None:
    body = api("GET", path)
    key = {"/Organisation": "Organisations"}.get(path, path[1:])
    assert body[key], f"{path} is empty"
    assert_conforms(registry, specs, "accounting", path, "get", body)


def test_every_organisations_settings_match_the_spec(
    registry: Registry, specs: dict[str, Any], sandbox: Sandbox
) -> None:
    apps = [a for a in sandbox.xero_apps.values() if a["grant"] == "client_credentials"]
    assert len(apps) >= 2
    for app in apps:
        tok = httpx.post(
            sandbox.xero_token_url,
            data={"grant_type": "client_credentials"},
            auth=(app["client_id"], app["client_secret"]),
        ).json()["access_token"]
        hdrs = {
            "Authorization": f"Bearer {tok}",
            "Accept": "application/json",
            "xero-tenant-id": app["tenant_ids"][0],
        }
        for path in ("/Organisation", "/Accounts", "/TaxRates", "/Currencies", "/Contacts"):
            r = httpx.get(sandbox.xero_api_url + path, headers=hdrs)
            assert r.status_code == 200, (app["tenant_ids"][0], path)
            assert_conforms(registry, specs, "accounting", path, "get", r.json())


def test_contacts_match_the_spec_paged_unpaged_and_created(
    registry: Registry, specs: dict[str, Any], api: Api
) -> None:
    assert_conforms(
        registry,
        specs,
        "accounting",
        "/Contacts",
        "get",
        api("GET", "/Contacts", params={"page": 1}),
    )
    assert_conforms(
        registry,
        specs,
        "accounting",
        "/Contacts",
        "get",
        api("GET", "/Contacts", params={"includeArchived": "true"}),
    )
    name = "OpenAPI Contact " + uuid.uuid4().hex[:6]
    created = api(
        "PUT",
        "/Contacts",
        params={"summarizeErrors": "false"},
        body={
            "Contacts": [
                {
                    "Name": name,
                    "ContactNumber": "OA-" + uuid.uuid4().hex[:6],
                    "EmailAddress": "oa@example.com",
                    "FirstName": "Open",
                    "LastName": "Api",
                },
                {"Name": name},  # a clash: an ERROR element
            ]
        },
    )
    assert [c["StatusAttributeString"] for c in created["Contacts"]] == ["OK", "ERROR"]
    assert_conforms(registry, specs, "accounting", "/Contacts", "put", created)


# ---- invoices and payments -----------------------------------------------------------------------
def test_put_invoices_with_mixed_outcomes_matches_the_spec(
    registry: Registry, specs: dict[str, Any], made: dict[str, Any]
) -> None:
    statuses = [i["StatusAttributeString"] for i in made["put"]["Invoices"]]
    assert statuses.count("ERROR") == 1 and statuses.count("OK") == len(statuses) - 1
    assert_conforms(registry, specs, "accounting", "/Invoices", "put", made["put"])


def test_a_summarized_400_matches_the_spec_error_schema(
    registry: Registry, specs: dict[str, Any], api: Api
) -> None:
    body = api(
        "PUT",
        "/Invoices",
        expect=400,
        body={
            "Invoices": [
                _invoice(
                    None,
                    LineItems=[
                        {"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "9999"}
                    ],
                )
            ]
        },
    )
    assert body["Type"] == "ValidationException"
    assert_conforms(registry, specs, "accounting", "/Invoices", "put", body, status="400")


def test_paged_and_single_invoice_gets_match_the_spec(
    registry: Registry, specs: dict[str, Any], api: Api, made: dict[str, Any]
) -> None:
    paged = api("GET", "/Invoices", params={"IDs": ",".join(made["ids"]), "page": 1})
    assert len(paged["Invoices"]) == len(made["ids"])
    assert {i["Status"] for i in paged["Invoices"]} >= {"PAID", "AUTHORISED"}
    assert_conforms(registry, specs, "accounting", "/Invoices", "get", paged)
    unpaged = api("GET", "/Invoices", params={"IDs": ",".join(made["ids"])})
    assert_conforms(registry, specs, "accounting", "/Invoices", "get", unpaged)
    summary = api(
        "GET", "/Invoices", params={"IDs": ",".join(made["ids"]), "page": 1, "summaryOnly": "true"}
    )
    assert_conforms(registry, specs, "accounting", "/Invoices", "get", summary)
    for invoice_id in made["ids"]:
        one = api("GET", f"/Invoices/{invoice_id}")
        assert_conforms(registry, specs, "accounting", "/Invoices/{InvoiceID}", "get", one)


def test_post_invoices_matches_the_spec(
    registry: Registry, specs: dict[str, Any], api: Api, made: dict[str, Any]
) -> None:
    pfx = made["prefix"]
    body = api(
        "POST",
        "/Invoices",
        params={"summarizeErrors": "false"},
        body={
            "Invoices": [
                {
                    "InvoiceNumber": f"{pfx}-1",
                    "Reference": "updated",
                },  # part-paid: the Reference may still change
                _invoice(f"{pfx}-NEW", Status="DRAFT"),
                {"InvoiceNumber": f"{pfx}-2", "LineItems": []},  # fully paid: an ERROR element
            ]
        },
    )
    assert [i["StatusAttributeString"] for i in body["Invoices"]] == ["OK", "OK", "ERROR"]
    assert_conforms(registry, specs, "accounting", "/Invoices", "post", body)
    single = api(
        "POST", f"/Invoices/{made['ids'][-1]}", body={"Invoices": [{"Reference": "one more"}]}
    )
    assert_conforms(registry, specs, "accounting", "/Invoices/{InvoiceID}", "post", single)


def test_payments_match_the_spec_when_created_listed_and_deleted(
    registry: Registry, specs: dict[str, Any], api: Api, made: dict[str, Any]
) -> None:
    statuses = [p["StatusAttributeString"] for p in made["payments"]["Payments"]]
    assert statuses == ["OK", "OK", "ERROR"]
    assert_conforms(registry, specs, "accounting", "/Payments", "put", made["payments"])
    listed = api("GET", "/Payments", params={"page": 1, "where": 'Reference=="part"'})
    assert listed["Payments"]
    assert_conforms(registry, specs, "accounting", "/Payments", "get", listed)
    assert_conforms(registry, specs, "accounting", "/Payments", "get", api("GET", "/Payments"))
    pid = made["payments"]["Payments"][0]["PaymentID"]
    assert_conforms(
        registry,
        specs,
        "accounting",
        "/Payments/{PaymentID}",
        "get",
        api("GET", f"/Payments/{pid}"),
    )
    deleted = api("POST", f"/Payments/{pid}", body={"Payments": [{"Status": "DELETED"}]})
    assert deleted["Payments"][0]["Status"] == "DELETED"
    assert_conforms(registry, specs, "accounting", "/Payments/{PaymentID}", "post", deleted)
