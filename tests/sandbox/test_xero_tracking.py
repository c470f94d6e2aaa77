"""Tracking categories in the Xero sandbox, over real HTTP.

The demo's shared organisation, "Hive Coworking North Ltd", tells Manchester and Leeds
apart by the options of its "Location" tracking category (nexudus.md §3). Contract:
the OpenAPI spec's /TrackingCategories paths and TrackingCategory, TrackingOption and
LineItemTracking schemas (tests/openapi/), the reference's "Tracking (≤2)" per
line (xero-api.md §3.3) and the accounting.settings scope (§11). Invoice numbers
carry a per-test prefix so tests sharing the session sandbox never see each other's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from support import fast_retry, xero_config

from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient
from recon.errors import ApiRejected, NotFound
from recon.sandbox import Sandbox
from recon.sandbox.seed import generate

NORTH_APP = "recon demo (Custom Connection North)"
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
# Vendored, see tests/openapi/README.md.
SPEC = Path(__file__).resolve().parents[1] / "openapi" / "xero_accounting.yaml"


# ---- helpers -------------------------------------------------------------------------------
def as_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def prefix() -> str:
    return "TR" + uuid.uuid4().hex[:8].upper()


def invoice(
    number: str, *tracking: dict[str, Any], contact: str | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Type": "ACCREC",
        "InvoiceNumber": number,
        "Contact": {"Name": contact or f"Tracking member {number}"},
        "Date": "2026-08-01",
        "DueDate": "2026-08-15",
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": "Hot desk – monthly membership",
                "Quantity": Decimal("1"),
                "UnitAmount": Decimal("210.00"),
                "AccountCode": "4000",
                "Tracking": list(tracking),
            }
        ],
    }
    body.update(fields)
    return body


@pytest.fixture(scope="module")
def demo_tracking() -> dict[int, tuple[str, str] | None]:
    return generate().location_tracking


@pytest.fixture(scope="module")
def north_tenant(sandbox: Sandbox) -> str:
    (tenant,) = sandbox.xero_apps[NORTH_APP]["tenant_ids"]
    assert {sandbox.locations[b] for b in sandbox.planted["shared_org_locations"]} == {tenant}
    return tenant


@pytest.fixture(scope="module")
def north(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[XeroClient]:
    client = XeroClient(
        xero_config(sandbox, NORTH_APP),
        token_store=TokenStore(tmp_path_factory.mktemp("north")),
        retry=fast_retry(),
    )
    yield client
    client.close()


def token(box: Sandbox, app: str = NORTH_APP, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    creds = box.xero_apps[app]
    r = httpx.post(box.xero_token_url, data=data, auth=(creds["client_id"], creds["client_secret"]))
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def raw(
    box: Sandbox,
    method: str,
    path: str,
    *,
    tenant: str,
    bearer: str | None = None,
    params: dict[str, Any] | None = None,
    body: Any = None,
) -> httpx.Response:
    hdrs = {
        "Authorization": f"Bearer {bearer or token(box)}",
        "Accept": "application/json",
        "xero-tenant-id": tenant,
    }
    content = None
    if body is not None:
        content = json.dumps(body, default=as_json).encode()
        hdrs["Content-Type"] = "application/json"
    return httpx.request(
        method, box.xero_api_url + path, params=params, content=content, headers=hdrs, timeout=30
    )


def location(client: XeroClient, include_archived: bool = False) -> dict[str, Any]:
    return next(
        c for c in client.fetch_tracking_categories(include_archived) if c["Name"] == "Location"
    )


def refused(client: XeroClient, body: dict[str, Any]) -> list[str]:
    """PUT one invoice with summarizeErrors=false; it must come back as an ERROR element. Its
    messages."""
    (element,) = client.create_invoices([body])
    assert element["StatusAttributeString"] == "ERROR", element
    assert element["InvoiceID"] == "00000000-0000-0000-0000-000000000000"
    return [m["Message"] for m in element["ValidationErrors"]]


def nothing_created(client: XeroClient, number: str, contact: str) -> None:
    with pytest.raises(NotFound):
        client.get_invoice(number)
    made = list(client.iter_contacts(where=f'Name=="{contact}"'))
    assert not made, "the contact made from the invoice's Contact Name is rolled back"


# ---- GET /TrackingCategories -----------------------------------------------------------------
def test_the_north_organisation_lists_the_location_category_with_both_options(
    north: XeroClient, sandbox: Sandbox, demo_tracking: dict[int, Any]
) -> None:
    categories = north.fetch_tracking_categories()
    assert [c["Name"] for c in categories] == ["Location", "Revenue stream"], (
        "ARCHIVED categories are left out"
    )
    loc = categories[0]
    assert loc["Status"] == "ACTIVE" and uuid.UUID(loc["TrackingCategoryID"])
    assert [(o["Name"], o["Status"]) for o in loc["Options"]] == [
        ("Manchester", "ACTIVE"),
        ("Leeds", "ACTIVE"),
    ]
    for option in loc["Options"]:
        assert uuid.UUID(option["TrackingOptionID"])
        assert (
            option["IsActive"],
            option["IsArchived"],
            option["IsDeleted"],
            option["HasValidationErrors"],
        ) == (True, False, False, False)
    # Each shared location's option, as the seed wires it, is there and ACTIVE.
    wanted = {demo_tracking[b] for b in sandbox.planted["shared_org_locations"]}
    assert wanted == {(sandbox.planted["tracking_category"], o["Name"]) for o in loc["Options"]}


def test_include_archived_adds_archived_categories_and_options(
    north: XeroClient, sandbox: Sandbox
) -> None:
    categories = {c["Name"]: c for c in north.fetch_tracking_categories(include_archived=True)}
    assert set(categories) == {
        "Location",
        "Revenue stream",
        sandbox.planted["archived_tracking_category"],
    }
    assert categories[sandbox.planted["archived_tracking_category"]]["Status"] == "ARCHIVED"
    options = {o["Name"]: o for o in categories["Location"]["Options"]}
    archived = options[sandbox.planted["archived_tracking_option"]]
    assert (archived["Status"], archived["IsArchived"], archived["IsActive"]) == (
        "ARCHIVED",
        True,
        False,
    )
    assert [o["Name"] for o in categories["Location"]["Options"]] == [
        "Manchester",
        "Leeds",
        "Sheffield",
    ]


def test_where_and_order_filter_and_sort_the_categories(
    sandbox: Sandbox, north_tenant: str
) -> None:
    def names(**params: str) -> list[str]:
        r = raw(sandbox, "GET", "/TrackingCategories", tenant=north_tenant, params=params)
        assert r.status_code == 200, r.text
        return [c["Name"] for c in r.json()["TrackingCategories"]]

    assert names(where='Name=="Location"') == ["Location"]
    assert names(where='Status=="ACTIVE"', includeArchived="true") == ["Location", "Revenue stream"]
    assert names(where='Status=="ARCHIVED"', includeArchived="true") == ["Campaign"]
    assert names(order="Name DESC") == ["Revenue stream", "Location"]
    assert names(order="Name ASC", includeArchived="true") == [
        "Campaign",
        "Location",
        "Revenue stream",
    ]
    bad = raw(
        sandbox, "GET", "/TrackingCategories", tenant=north_tenant, params={"where": "Name=="}
    )
    assert bad.status_code == 400 and bad.json()["Type"] == "QueryParseException"


def test_one_category_by_id_has_every_live_option(
    north: XeroClient, sandbox: Sandbox, north_tenant: str
) -> None:
    loc = location(north)
    for ref in (loc["TrackingCategoryID"], loc["TrackingCategoryID"].upper()):
        r = raw(sandbox, "GET", f"/TrackingCategories/{ref}", tenant=north_tenant)
        assert r.status_code == 200, r.text
        (one,) = r.json()["TrackingCategories"]
        assert (one["TrackingCategoryID"], one["Name"]) == (loc["TrackingCategoryID"], "Location")
        assert one["Status"] == "ACTIVE"
        assert [o["Name"] for o in one["Options"]] == ["Manchester", "Leeds", "Sheffield"]
    archived = next(
        c
        for c in north.fetch_tracking_categories(include_archived=True)
        if c["Status"] == "ARCHIVED"
    )
    r = raw(
        sandbox, "GET", f"/TrackingCategories/{archived['TrackingCategoryID']}", tenant=north_tenant
    )
    assert r.json()["TrackingCategories"][0]["Status"] == "ARCHIVED"
    missing = raw(sandbox, "GET", f"/TrackingCategories/{uuid.uuid4()}", tenant=north_tenant)
    assert (missing.status_code, missing.text) == (404, NOT_FOUND_TEXT)


def test_tracking_categories_need_the_settings_scope(sandbox: Sandbox, north_tenant: str) -> None:
    read_only = token(sandbox, scope="accounting.settings.read")
    assert (
        raw(
            sandbox, "GET", "/TrackingCategories", tenant=north_tenant, bearer=read_only
        ).status_code
        == 200
    )
    invoices_only = token(sandbox, scope="accounting.invoices")
    denied = raw(sandbox, "GET", "/TrackingCategories", tenant=north_tenant, bearer=invoices_only)
    assert denied.status_code == 403 and denied.json()["Detail"] == "AuthenticationUnsuccessful"
    # The North app reaches only its own organisation.
    uk = raw(sandbox, "GET", "/TrackingCategories", tenant=sandbox.xero_tenant_id)
    assert uk.status_code == 403


def test_own_organisations_have_no_tracking_categories(xero: XeroClient) -> None:
    assert xero.fetch_tracking_categories(include_archived=True) == []


def test_the_web_app_reaches_the_north_organisation_too(
    sandbox: Sandbox, north_tenant: str
) -> None:
    app = sandbox.xero_apps["recon demo (web app)"]
    # UK, Ireland, North, and the Singapore and New York organisations (seed version 3).
    assert north_tenant in app["tenant_ids"] and len(app["tenant_ids"]) == 5
    r = httpx.get(
        sandbox.xero_authorize_url,
        follow_redirects=False,
        params={
            "response_type": "code",
            "client_id": app["client_id"],
            "redirect_uri": app["redirect_uris"][0],
            "scope": "offline_access accounting.settings.read accounting.invoices",
            "state": "s",
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
    conns = httpx.get(
        sandbox.xero_identity_url + "/connections",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    ).json()
    names = {c["tenantId"]: c["tenantName"] for c in conns}
    assert names[north_tenant] == "Hive Coworking North Ltd"
    listed = raw(
        sandbox, "GET", "/TrackingCategories", tenant=north_tenant, bearer=body["access_token"]
    )
    assert [c["Name"] for c in listed.json()["TrackingCategories"]] == [
        "Location",
        "Revenue stream",
    ]


# ---- invoice and credit-note lines -------------------------------------------------------------
def test_an_invoice_with_a_valid_option_is_created_and_echoes_the_ids(north: XeroClient) -> None:
    loc = location(north)
    leeds = next(o for o in loc["Options"] if o["Name"] == "Leeds")
    expected = [
        {
            "Name": "Location",
            "Option": "Leeds",
            "TrackingCategoryID": loc["TrackingCategoryID"],
            "TrackingOptionID": leeds["TrackingOptionID"],
        }
    ]
    pfx = prefix()
    by_name = invoice(f"{pfx}-NAME", {"Name": "Location", "Option": "Leeds"})
    by_ids = invoice(
        f"{pfx}-IDS",
        {
            "TrackingCategoryID": loc["TrackingCategoryID"],
            "TrackingOptionID": leeds["TrackingOptionID"],
        },
    )
    folded = invoice(
        f"{pfx}-CASE", {"Name": "location", "Option": "LEEDS"}
    )  # names match without regard to case
    created = north.create_invoices([by_name, by_ids, folded])
    assert [e["StatusAttributeString"] for e in created] == ["OK", "OK", "OK"]
    for element in created:
        assert element["LineItems"][0]["Tracking"] == expected
        assert element["Total"] == Decimal("252.00") and element["Status"] == "AUTHORISED"
    # Stored: a later read shows the same tracking, single and paged.
    assert north.get_invoice(f"{pfx}-IDS")["LineItems"][0]["Tracking"] == expected
    paged = list(north.iter_invoices(invoice_numbers=[f"{pfx}-NAME"]))
    assert paged[0]["LineItems"][0]["Tracking"] == expected


def test_a_line_may_carry_two_categories_one_option_each(north: XeroClient) -> None:
    number = prefix()
    (element,) = north.create_invoices(
        [
            invoice(
                number,
                {"Name": "Location", "Option": "Manchester"},
                {"Name": "Revenue stream", "Option": "Memberships"},
            )
        ]
    )
    assert element["StatusAttributeString"] == "OK", element
    assert [(t["Name"], t["Option"]) for t in element["LineItems"][0]["Tracking"]] == [
        ("Location", "Manchester"),
        ("Revenue stream", "Memberships"),
    ]
    # An update that sends the lines again keeps or changes their tracking.
    updated = north.update_invoice(
        element["InvoiceID"],
        {
            "Status": "AUTHORISED",
            "LineItems": [
                dict(
                    invoice(number)["LineItems"][0],
                    Tracking=[{"Name": "Location", "Option": "Leeds"}],
                )
            ],
        },
    )
    assert [(t["Name"], t["Option"]) for t in updated["LineItems"][0]["Tracking"]] == [
        ("Location", "Leeds")
    ]
    untouched = north.update_invoice(element["InvoiceID"], {"Reference": "only the header"})
    assert untouched["LineItems"][0]["Tracking"] == updated["LineItems"][0]["Tracking"]


@pytest.mark.parametrize(
    ("tracking", "message"),
    [
        (
            {"Name": "Location", "Option": "Liverpool"},
            "There is no ACTIVE tracking option with the name 'Liverpool' in the tracking category "
            "'Location'.",
        ),
        (
            {"Name": "Region", "Option": "Leeds"},
            "There is no ACTIVE tracking category with the name 'Region'.",
        ),
        (
            {"Name": "Location", "TrackingOptionID": "5d1c58a4-0000-4000-8000-000000000000"},
            "There is no ACTIVE tracking option with the TrackingOptionID "
            "'5d1c58a4-0000-4000-8000-000000000000' in the tracking category 'Location'.",
        ),
        (
            {"TrackingCategoryID": "5d1c58a4-0000-4000-8000-000000000001", "Option": "Leeds"},
            "There is no ACTIVE tracking category with the TrackingCategoryID "
            "'5d1c58a4-0000-4000-8000-000000000001'.",
        ),
        ({"Option": "Leeds"}, "There is no ACTIVE tracking category with the name ''."),
        (
            {"Name": "Location"},
            "There is no ACTIVE tracking option with the name '' in the tracking category "
            "'Location'.",
        ),
    ],
    ids=[
        "unknown-option",
        "unknown-category",
        "unknown-option-id",
        "unknown-category-id",
        "no-category",
        "no-option",
    ],
)
def test_an_unknown_option_or_category_is_refused_and_nothing_is_created(
    north: XeroClient, tracking: dict[str, Any], message: str
) -> None:
    number = prefix()
    contact = f"Refused member {number}"
    assert refused(north, invoice(number, tracking, contact=contact)) == [message]
    nothing_created(north, number, contact)


def test_an_archived_option_or_category_is_refused(north: XeroClient, sandbox: Sandbox) -> None:
    option, category = (
        sandbox.planted["archived_tracking_option"],
        sandbox.planted["archived_tracking_category"],
    )
    archived_category = next(
        c for c in north.fetch_tracking_categories(include_archived=True) if c["Name"] == category
    )
    sheffield = next(o for o in location(north, True)["Options"] if o["Name"] == option)
    cases = [
        (
            {"Name": "Location", "Option": option},
            f"There is no ACTIVE tracking option with the name '{option}' in the tracking category "
            "'Location'.",
        ),
        (
            {
                "TrackingCategoryID": location(north, True)["TrackingCategoryID"],
                "TrackingOptionID": sheffield["TrackingOptionID"],
            },
            f"There is no ACTIVE tracking option with the name '{option}' in the tracking category "
            "'Location'.",
        ),
        (
            {"Name": category, "Option": archived_category["Options"][0]["Name"]},
            f"There is no ACTIVE tracking category with the name '{category}'.",
        ),
    ]
    for tracking, message in cases:
        number = prefix()
        contact = f"Archived member {number}"
        assert refused(north, invoice(number, tracking, contact=contact)) == [message]
        nothing_created(north, number, contact)


def test_more_than_two_categories_or_one_category_twice_is_refused(north: XeroClient) -> None:
    three = [
        {"Name": "Location", "Option": "Leeds"},
        {"Name": "Revenue stream", "Option": "Events"},
        {"Name": "Location", "Option": "Manchester"},
    ]
    number = prefix()
    assert refused(north, invoice(number, *three)) == [
        "A line item can have a maximum of 2 tracking categories."
    ]
    nothing_created(north, number, f"Tracking member {number}")
    twice = [{"Name": "Location", "Option": "Leeds"}, {"Name": "location", "Option": "Manchester"}]
    number = prefix()
    assert refused(north, invoice(number, *twice)) == [
        "The tracking category 'Location' can only be used once per line item."
    ]
    nothing_created(north, number, f"Tracking member {number}")


def test_a_summarized_batch_refuses_the_bad_tracking_and_keeps_the_good_invoice(
    sandbox: Sandbox, north: XeroClient, north_tenant: str
) -> None:
    pfx = prefix()
    good = invoice(f"{pfx}-OK", {"Name": "Location", "Option": "Manchester"})
    bad = invoice(f"{pfx}-BAD", {"Name": "Location", "Option": "Salford"})
    r = raw(sandbox, "PUT", "/Invoices", tenant=north_tenant, body={"Invoices": [good, bad]})
    assert r.status_code == 400
    body = r.json()
    assert body["Type"] == "ValidationException"
    (element,) = body["Elements"]
    assert element["InvoiceNumber"] == f"{pfx}-BAD"
    assert [m["Message"] for m in element["ValidationErrors"]] == [
        "There is no ACTIVE tracking option with the name 'Salford' in the tracking category "
        "'Location'."
    ]
    assert north.get_invoice(f"{pfx}-OK")["LineItems"][0]["Tracking"][0]["Option"] == "Manchester"
    with pytest.raises(NotFound):
        north.get_invoice(f"{pfx}-BAD")


def test_the_client_raises_the_validation_messages_of_a_single_update(north: XeroClient) -> None:
    number = prefix()
    (element,) = north.create_invoices(
        [invoice(number, {"Name": "Location", "Option": "Leeds"}, Status="DRAFT")]
    )
    assert element["LineItems"][0]["Tracking"][0]["Option"] == "Leeds"
    line = dict(
        invoice(number)["LineItems"][0], Tracking=[{"Name": "Location", "Option": "Sheffield"}]
    )
    with pytest.raises(ApiRejected) as err:
        north.update_invoice(element["InvoiceID"], {"LineItems": [line]})
    assert err.value.messages == [
        "There is no ACTIVE tracking option with the name 'Sheffield' in the tracking category "
        "'Location'."
    ]
    assert north.get_invoice(number)["LineItems"][0]["Tracking"][0]["Option"] == "Leeds", (
        "the stored one is unchanged"
    )


def test_credit_note_lines_are_validated_and_echoed_like_invoice_lines(north: XeroClient) -> None:
    def note(option: str) -> dict[str, Any]:
        number = f"CN-{prefix()}"
        body = invoice(
            number,
            {"Name": "Location", "Option": option},
            contact=f"Credit member {number}",
            Type="ACCRECCREDIT",
            CreditNoteNumber=number,
        )
        body.pop("InvoiceNumber")
        return body

    ok, bad = north.create_credit_notes([note("Manchester"), note("Bolton")])
    assert ok["StatusAttributeString"] == "OK"
    assert [(t["Name"], t["Option"]) for t in ok["LineItems"][0]["Tracking"]] == [
        ("Location", "Manchester")
    ]
    assert ok["LineItems"][0]["Tracking"][0]["TrackingOptionID"]
    assert bad["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in bad["ValidationErrors"]] == [
        "There is no ACTIVE tracking option with the name 'Bolton' in the tracking category "
        "'Location'."
    ]


def test_an_own_organisation_refuses_tracking_it_does_not_have(xero: XeroClient) -> None:
    number = prefix()
    (element,) = xero.create_invoices([invoice(number, {"Name": "Location", "Option": "Leeds"})])
    assert element["StatusAttributeString"] == "ERROR"
    assert [m["Message"] for m in element["ValidationErrors"]] == [
        "There is no ACTIVE tracking category with the name 'Location'."
    ]


# ---- the OpenAPI spec -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with SPEC.open("rb") as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def conforms(spec: dict[str, Any], path: str, method: str, body: Any, status: str = "200") -> None:
    """Validate one answer against the operation's response schema (as test_xero_openapi.py
    does)."""
    from jsonschema import FormatChecker
    from jsonschema.exceptions import best_match
    from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    answer = spec["paths"][path][method]["responses"][status]
    if "$ref" in answer:
        answer = spec["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    schema = answer["content"]["application/json"]["schema"]
    schema = json.loads(json.dumps(schema).replace('"#/', '"urn:xero:accounting#/'))
    registry = Registry().with_resource(
        "urn:xero:accounting", Resource.from_contents(spec, default_specification=DRAFT4)
    )
    formats = FormatChecker(formats=())
    formats.checkers = {n: c for n, c in oas30_format_checker.checkers.items() if n != "date-time"}
    errors = list(
        OAS30ReadValidator(schema, registry=registry, format_checker=formats).iter_errors(body)
    )
    assert not errors, (
        f"{method.upper()} {path} {status}: {best_match(errors).message} ({len(errors)} error(s))"
    )


def test_tracking_answers_match_the_spec(
    spec: dict[str, Any], sandbox: Sandbox, north: XeroClient, north_tenant: str
) -> None:
    listed = raw(sandbox, "GET", "/TrackingCategories", tenant=north_tenant).json()
    assert listed["TrackingCategories"]
    conforms(spec, "/TrackingCategories", "get", listed)
    everything = raw(
        sandbox,
        "GET",
        "/TrackingCategories",
        tenant=north_tenant,
        params={"includeArchived": "true"},
    ).json()
    conforms(spec, "/TrackingCategories", "get", everything)
    for category in everything["TrackingCategories"]:
        one = raw(
            sandbox,
            "GET",
            f"/TrackingCategories/{category['TrackingCategoryID']}",
            tenant=north_tenant,
        ).json()
        conforms(spec, "/TrackingCategories/{TrackingCategoryID}", "get", one)
    pfx = prefix()
    put = raw(
        sandbox,
        "PUT",
        "/Invoices",
        tenant=north_tenant,
        params={"summarizeErrors": "false"},
        body={
            "Invoices": [
                invoice(
                    f"{pfx}-1",
                    {"Name": "Location", "Option": "Leeds"},
                    {"Name": "Revenue stream", "Option": "Events"},
                ),
                invoice(f"{pfx}-2", {"Name": "Location", "Option": "Nowhere"}),
            ]
        },
    )
    assert put.status_code == 200
    conforms(spec, "/Invoices", "put", put.json())
    summarized = raw(
        sandbox,
        "PUT",
        "/Invoices",
        tenant=north_tenant,
        body={"Invoices": [invoice(f"{pfx}-3", {"Name": "Nowhere", "Option": "Leeds"})]},
    )
    assert summarized.status_code == 400
    conforms(spec, "/Invoices", "put", summarized.json(), status="400")
    one = raw(sandbox, "GET", f"/Invoices/{pfx}-1", tenant=north_tenant).json()
    assert [t["Name"] for t in one["Invoices"][0]["LineItems"][0]["Tracking"]] == [
        "Location",
        "Revenue stream",
    ]
    conforms(spec, "/Invoices/{InvoiceID}", "get", one)
