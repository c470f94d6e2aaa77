"""Params files: typed, validated, and every error names the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recon.errors import ParamsError
from recon.params import LocationMap, load_params

ROOT = Path(__file__).resolve().parent.parent


# The keys every params file gives (REQUIRED_KEYS): the period and the location.
BASE = "period_start: 2026-08-01\nperiod_end: 2026-10-31\nlocation: Hive Shoreditch\n"


def _write(tmp_path: Path, text: str, base: str = BASE) -> Path:
    """A params file: the required keys (unless ``base`` says otherwise), then ``text``, whose keys
    win."""
    given = {line.split(":")[0] for line in text.splitlines() if line and not line[0].isspace()}
    kept = "".join(line + "\n" for line in base.splitlines() if line.split(":")[0] not in given)
    path = tmp_path / "params.yaml"
    path.write_text(kept + text)
    return path


def test_the_shipped_params_files_load() -> None:
    demo = load_params(ROOT / "params" / "demo.yaml")
    assert demo.target == "sandbox" and demo.push and demo.apply
    live = load_params(ROOT / "params" / "example-production.yaml")
    assert (
        live.target == "live"
        and not live.push
        and live.xero.client_secret_env == "XERO_CLIENT_SECRET"
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("period_start: first of August\n", "period_start"),
        ("period_start: 2026-13-01\n", None),
        ("push: maybe\n", "push"),
        ("target: prod\n", "target"),
        ("nonsense: 1\n", "nonsense"),
        ("xero:\n  client_secret: abc\n", "xero.client_secret"),
        ("period_start: 2026-10-02\nperiod_end: 2026-10-01\n", "period_end"),
        (
            "locations:\n  Hive A: {organisation: North, tracking_category: Location}\n",
            "locations.Hive A",
        ),
        (
            "locations:\n  Hive A: {organisation: North}\n  Hive B: {organisation: north}\n",
            "locations.Hive B",
        ),
        (
            "locations:\n"
            "  Hive A: {organisation: North, tracking_category: Location, tracking_option: X}\n"
            "  Hive B: {organisation: North, tracking_category: Location, tracking_option: X}\n",
            "locations.Hive B",
        ),
    ],
)
def test_bad_params_name_the_file_and_the_key(tmp_path: Path, text: str, key: str | None) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert err.value.file == str(path)
    if key:
        assert err.value.key == key and repr(key) in str(err.value)


def test_two_locations_may_share_an_organisation_with_their_own_tracking_options(
    tmp_path: Path,
) -> None:
    params = load_params(
        _write(
            tmp_path,
            "locations:\n"
            "  Hive Manchester Ancoats: {organisation: Hive Coworking North Ltd,"
            " tracking_category: Location, tracking_option: Manchester}\n"
            "  Hive Leeds: {organisation: Hive Coworking North Ltd, tracking_category: Location,"
            " tracking_option: Leeds}\n"
            "  Hive Shoreditch: Hive Coworking UK Ltd\n",
        )
    )
    assert params.location_map("hive leeds") == LocationMap(
        "Hive Coworking North Ltd", "Location", "Leeds"
    )
    assert params.location_map("Hive Shoreditch") == LocationMap("Hive Coworking UK Ltd")
    assert params.location_map("Elsewhere") is None


# ---- missing keys: an error naming the key, never the demo's value ----------------------------
@pytest.mark.parametrize("key", ["period_start", "period_end", "location"])
def test_a_missing_required_key_is_an_error_naming_it(tmp_path: Path, key: str) -> None:
    text = "".join(line + "\n" for line in BASE.splitlines() if not line.startswith(key))
    path = _write(tmp_path, text, base="")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert err.value.file == str(path) and err.value.key == key
    assert f"missing key {key}" in str(err.value)


def test_an_empty_params_file_names_every_missing_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "", base="")
    with pytest.raises(ParamsError, match="missing keys period_start, period_end, location"):
        load_params(path)


def test_the_keys_a_file_may_omit_take_defaults_that_decide_nothing_about_the_books(
    tmp_path: Path,
) -> None:
    params = load_params(_write(tmp_path, "location: Hive Dublin Docklands\n"))
    assert (params.location, str(params.period_start)) == ("Hive Dublin Docklands", "2026-08-01")
    assert params.target == "sandbox" and not params.push and not params.apply
    assert params.negative_invoices == "hold" and params.organisation is None
    assert params.output_dir == "out" and params.xero.client_secret_env == "XERO_CLIENT_SECRET"


def test_with_a_locations_map_the_location_may_be_omitted_and_is_the_map_s_first(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        "locations:\n  Hive Dublin Docklands: Hive Coworking Ireland Ltd\n"
        "  Hive Shoreditch: Hive Coworking UK Ltd\n",
        base="period_start: 2026-08-01\nperiod_end: 2026-10-31\n",
    )
    assert load_params(path).location == "Hive Dublin Docklands"


def test_a_command_that_needs_no_period_may_load_a_file_without_one(tmp_path: Path) -> None:
    path = _write(tmp_path, "target: live\nxero:\n  grant: authorization_code\n", base="")
    assert load_params(path, required=()).xero.grant == "authorization_code"
    with pytest.raises(ParamsError, match="missing keys"):
        load_params(path)


# ---- a secret where a variable name belongs is refused and never echoed ------------------------
@pytest.mark.parametrize(
    ("text", "key", "pasted"),
    [
        ("xero:\n  client_secret_env: abc123realsecret\n", "xero.client_secret_env", True),
        # a Xero client id is 32 upper-case hex characters: it looks like a name but is not one
        (
            "xero:\n  client_id_env: 7E3B2F9A41C04D5C9B1E2A3D4C5B6A79\n",
            "xero.client_id_env",
            True,
        ),
        ("nexudus:\n  password_env: hunter2\n", "nexudus.password_env", True),
        ('nexudus:\n  username_env: "ada@hive.example"\n', "nexudus.username_env", True),
        ("xero:\n  client_secret_env: [XERO_CLIENT_SECRET]\n", "xero.client_secret_env", False),
    ],
)
def test_a_value_in_an_env_key_that_is_no_variable_name_is_refused_without_echoing_it(
    tmp_path: Path, text: str, key: str, pasted: bool
) -> None:
    value = text.split(": ", 1)[1].strip().strip('"')
    path = _write(tmp_path, text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert err.value.key == key
    assert "not an environment variable name" in str(err.value)
    if pasted:  # what was pasted may be the secret itself
        assert value not in str(err.value) and value not in repr(err.value)


def test_a_real_variable_name_is_accepted_and_its_value_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = load_params(_write(tmp_path, "xero:\n  client_secret_env: HIVE_XERO_SECRET_2\n"))
    monkeypatch.setenv("HIVE_XERO_SECRET_2", "s3cr3t-value")
    assert params.secret(params.xero.client_secret_env) == "s3cr3t-value"


def test_asking_for_a_secret_by_something_that_is_no_name_does_not_echo_it() -> None:
    params = load_params(ROOT / "params" / "demo.yaml")
    with pytest.raises(ParamsError) as err:
        params.secret("abc123realsecretvalue99")
    assert "abc123realsecretvalue99" not in str(err.value)


# ---- every value has its key's type: a ParamsError naming the key, never a traceback ----------
@pytest.mark.parametrize(
    ("text", "key", "found"),
    [
        ("output_dir: [out, elsewhere]\n", "output_dir", "a list"),
        ("output_dir: 42\n", "output_dir", "a number"),
        ("output_dir: null\n", "output_dir", "empty (null)"),
        ("output_dir: {a: 1}\n", "output_dir", "a mapping"),
        ("tax_map_file: 3\n", "tax_map_file", "a number"),
        ("ledger_file: [a]\n", "ledger_file", "a list"),
        ("sandbox_dir: true\n", "sandbox_dir", "true/false"),
        ("location: null\n", "location", "empty (null)"),
        ("location: [Hive Shoreditch]\n", "location", "a list"),
        ("organisation: [Hive Coworking UK Ltd]\n", "organisation", "a list"),
        ("target: 5\n", "target", "a number"),
        ("negative_invoices: [hold]\n", "negative_invoices", "a list"),
        ("push: [true]\n", "push", "a list"),
        ("apply: 1.5\n", "apply", "a number"),
        ("prices_include_tax: {x: 1}\n", "prices_include_tax", "a mapping"),
        ("period_start: 2026-08-01 10:00:00\n", "period_start", None),
        ("period_end: [2026-10-31]\n", "period_end", None),
        ("xero:\n  per_minute: sixty\n", "xero.per_minute", "text"),
        ("xero:\n  per_minute: 0\n", "xero.per_minute", None),
        ("xero:\n  api_url: 443\n", "xero.api_url", "a number"),
        ("xero:\n  grant: password\n", "xero.grant", None),
        ("nexudus:\n  api_url: [a, b]\n", "nexudus.api_url", "a list"),
        (
            "locations:\n  Hive Shoreditch: {organisation: [UK], tracking_category: null}\n",
            "locations.Hive Shoreditch.organisation",
            "a list",
        ),
        (
            "locations:\n  Hive A: {organisation: North, tracking_category: Location,"
            " tracking_option: [A]}\n",
            "locations.Hive A.tracking_option",
            "a list",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_a_params_error_naming_the_key(
    tmp_path: Path, text: str, key: str, found: str | None
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert err.value.file == str(path) and err.value.key == key, str(err.value)
    if found:
        assert f"not {found}" in str(err.value)


def test_a_wrong_type_given_as_an_override_is_a_params_error_too() -> None:
    params = load_params(ROOT / "params" / "demo.yaml")
    with pytest.raises(ParamsError) as err:
        params.with_overrides(output_dir=["out"])
    assert err.value.key == "output_dir"
    assert params.with_overrides(output_dir=ROOT / "out").output_dir == str(ROOT / "out")


def test_a_location_given_by_its_numeric_id_is_a_name() -> None:
    params = load_params(ROOT / "params" / "demo.yaml").with_overrides(location=1414)
    assert params.location == "1414"


def test_a_location_mapped_to_an_organisation_the_token_cannot_reach_is_refused_before_any_write(
    sandbox, tmp_path: Path
) -> None:
    from recon.session import connect

    path = _write(
        tmp_path, "location: Hive Shoreditch\nlocations:\n  Hive Shoreditch: Other Company Ltd\n"
    )
    params = load_params(path).with_overrides(sandbox_dir=str(sandbox.state_dir))
    with pytest.raises(ParamsError) as err:
        connect(params)
    assert err.value.key == "locations.Hive Shoreditch.organisation" and "not connected" in str(
        err.value
    )


def test_a_location_missing_from_the_map_is_refused(sandbox, tmp_path: Path) -> None:
    from recon.session import connect

    path = _write(
        tmp_path,
        "location: Hive Dublin Docklands\nlocations:\n  Hive Shoreditch: Hive Coworking UK Ltd\n",
    )
    with pytest.raises(ParamsError, match="not in the params' locations map"):
        connect(load_params(path).with_overrides(sandbox_dir=str(sandbox.state_dir)))


def test_the_all_locations_demo_maps_four_locations_two_of_them_through_tracking() -> None:
    params = load_params(ROOT / "params" / "demo-all-locations.yaml")
    assert len(params.locations) == 4
    assert params.location_map("Hive Leeds Wellington Place") == LocationMap(
        "Hive Coworking North Ltd", "Location", "Leeds"
    )


# ---- the options of a transfer: Xero status, invoice date, dry run ------------------------------
@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("xero_status: PAID\n", "xero_status", "DRAFT, SUBMITTED, AUTHORISED, not 'PAID'"),
        ("xero_status: VOIDED\n", "xero_status", "never on creation"),
        ("xero_status: [DRAFT]\n", "xero_status", "not a list"),
        ("invoice_date: due\n", "invoice_date", "issue, period, not 'due'"),
        ("contact_key: email\n", "contact_key", "number, name, name_or_email, not 'email'"),
        ("contact_key: 3\n", "contact_key", "not a number"),
        ("period: last-week\n", "period", "last-month, this-month, month-to-date, last-quarter"),
        ("period: last-month\nperiod_start: 2026-08-01\n", "period", "not both"),
        ("dry_run: perhaps\n", "dry_run", "not true or false"),
        ("period: this-month\nperiod_as_of: yesterday\n", "period_as_of", "date and time"),
    ],
)
def test_a_bad_transfer_option_or_period_is_refused_naming_the_key(
    tmp_path: Path, text: str, key: str, says: str
) -> None:
    relative = text.startswith("period:") and "period_start" not in text
    path = _write(tmp_path, text, base="location: Hive Shoreditch\n" if relative else BASE)
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert (err.value.file, err.value.key) == (str(path), key)
    assert says in str(err.value)


def test_the_xero_status_and_date_policy_are_read_in_any_case_and_reach_the_transfer_options(
    tmp_path: Path,
) -> None:
    from recon.transfer.plan import TransferOptions

    params = load_params(_write(tmp_path, "xero_status: submitted\ninvoice_date: Period\n"))
    assert (params.xero_status, params.invoice_date) == ("SUBMITTED", "period")
    options = TransferOptions.from_params(params.with_overrides(send_line_amounts=True))
    assert (options.status, options.invoice_date, options.line_amounts) == (
        "SUBMITTED",
        "period",
        True,
    )
    default = load_params(_write(tmp_path, ""))
    assert (default.xero_status, default.invoice_date) == ("AUTHORISED", "issue")
    assert default.contact_key == "name_or_email"
    assert load_params(_write(tmp_path, "contact_key: Name\n")).contact_key == "name"
    with pytest.raises(ParamsError, match="xero_status"):
        params.with_overrides(xero_status="PAID")


def test_a_plan_sends_new_invoices_with_the_params_status_and_date(conn: Any) -> None:
    """xero-api.md §4: an invoice is created as DRAFT, SUBMITTED or AUTHORISED; the payload the plan
    holds for each invoice carries the params' status, and its Date follows ``invoice_date``."""
    from recon.transfer.plan import TransferOptions, plan_transfer

    issue = plan_transfer(conn)
    draft = plan_transfer(
        conn,
        options=TransferOptions.from_params(
            conn.params.with_overrides(xero_status="DRAFT", invoice_date="period")
        ),
    )
    assert issue.payloads and {p["Status"] for p in issue.payloads.values()} == {"AUTHORISED"}
    assert draft.payloads and {p["Status"] for p in draft.payloads.values()} == {"DRAFT"}
    shared = set(issue.payloads) & set(draft.payloads)
    assert shared and any(issue.payloads[i]["Date"] != draft.payloads[i]["Date"] for i in shared), (
        "issue date (CreatedOn) and period start (InvoiceFromDate) differ for some invoice"
    )


def test_a_dry_run_writes_nothing_whatever_asks_to(tmp_path: Path) -> None:
    params = load_params(_write(tmp_path, "dry_run: true\npush: true\napply: true\n"))
    assert (params.push, params.apply, params.apply_xero) == (False, False, False)
    assert not params.with_overrides(push=True, apply_xero=True).push
    assert load_params(_write(tmp_path, "push: true\n")).with_overrides(dry_run=True).push is False


# ---- periods: relative ones in the location's time zone -----------------------------------------
@pytest.mark.parametrize(
    ("period", "today", "first", "last"),
    [
        ("last-month", "2026-12-03", "2026-11-01", "2026-11-30"),
        ("last-month", "2026-01-15", "2025-12-01", "2025-12-31"),
        ("last-month", "2024-03-01", "2024-02-01", "2024-02-29"),
        ("this-month", "2026-02-10", "2026-02-01", "2026-02-28"),
        ("month-to-date", "2026-12-03", "2026-12-01", "2026-12-03"),
        ("last-quarter", "2026-12-03", "2026-07-01", "2026-09-30"),
        ("last-quarter", "2026-01-01", "2025-10-01", "2025-12-31"),
        ("last-quarter", "2026-04-30", "2026-01-01", "2026-03-31"),
    ],
)
def test_a_relative_period_is_calendar_months_and_quarters(
    period: str, today: str, first: str, last: str
) -> None:
    from datetime import date

    from recon.params import period_dates

    assert period_dates(period, date.fromisoformat(today)) == (
        date.fromisoformat(first),
        date.fromisoformat(last),
    )


def test_a_relative_period_needs_no_dates_and_is_evaluated_in_the_location_s_zone(
    tmp_path: Path,
) -> None:
    """At 00:30 UTC on 1 December it is still 30 November in New York: there "last month" is
    October; in London and Auckland it is November."""
    from zoneinfo import ZoneInfo

    path = _write(
        tmp_path,
        "period: last-month\nperiod_as_of: 2026-12-01T00:30:00Z\n",
        base="location: Hive Shoreditch\n",
    )
    params = load_params(path)
    assert (str(params.period_start), str(params.period_end)) == ("2026-11-01", "2026-11-30")
    new_york = params.in_zone(ZoneInfo("America/New_York"))
    assert (str(new_york.period_start), str(new_york.period_end)) == ("2026-10-01", "2026-10-31")
    assert new_york.with_overrides(push=False).period_start == new_york.period_start, (
        "an override keeps the location's zone"
    )
    auckland = params.in_zone(ZoneInfo("Pacific/Auckland"))
    assert str(auckland.period_start) == "2026-11-01"
    explicit = new_york.with_overrides(period_start="2026-09-01", period_end="2026-09-30")
    assert explicit.period is None and str(explicit.period_start) == "2026-09-01"
    assert explicit.in_zone(ZoneInfo("Pacific/Auckland")) == explicit


def test_saved_params_load_back_to_the_same_values_with_absolute_paths(tmp_path: Path) -> None:
    from dataclasses import replace

    for name in ("demo.yaml", "demo-all-locations.yaml"):
        params = load_params(ROOT / "params" / name).with_overrides(period="this-month")
        saved = load_params(params.save(tmp_path / name))
        assert saved.tax_map_file == str(ROOT / "params" / "tax_map.yaml")
        assert saved.period == "this-month" and saved.period_as_of == params.period_as_of
        assert replace(saved, source=params.source, tax_map_file=params.tax_map_file) == params


# ---- sandbox_xero_latency: how long the sandbox's Xero takes to answer ---------------------------
@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("", "xero"),  # left out: as slowly as the real Xero
        ("sandbox_xero_latency: xero\n", "xero"),
        ("sandbox_xero_latency: XERO\n", "xero"),
        ("sandbox_xero_latency: off\n", "off"),  # YAML reads a bare off as false
        ("sandbox_xero_latency: 'off'\n", "off"),
        ("sandbox_xero_latency: '0.3, 0.02'\n", "0.3,0.02"),
        ("sandbox_xero_latency: 0.5\n", "0.5,0.0"),  # one number: seconds a call
    ],
)
def test_the_sandbox_answer_time_is_xero_unless_the_params_say_off_or_give_seconds(
    tmp_path: Path, text: str, read: str
) -> None:
    assert load_params(_write(tmp_path, text)).sandbox_xero_latency == read


def test_the_demo_params_turn_the_sandbox_answer_time_off_and_an_override_can_set_it() -> None:
    demo = load_params(ROOT / "params" / "demo.yaml")
    assert demo.sandbox_xero_latency == "off"
    assert demo.with_overrides(sandbox_xero_latency="0.1,0").sandbox_xero_latency == "0.1,0.0"
    with pytest.raises(ParamsError) as err:
        demo.with_overrides(sandbox_xero_latency="slow")
    assert err.value.key == "sandbox_xero_latency"


@pytest.mark.parametrize(
    "value", ["fast", "'0.3,'", "'0.3,0.02,1'", "'-1,0'", "'nan,0'", "on", "[0.3, 0.02]"]
)
def test_a_malformed_sandbox_answer_time_is_refused_naming_the_key(
    tmp_path: Path, value: str
) -> None:
    path = _write(tmp_path, f"sandbox_xero_latency: {value}\n")
    with pytest.raises(ParamsError) as err:
        load_params(path)
    assert (err.value.file, err.value.key) == (str(path), "sandbox_xero_latency")
    assert "is not an answer time: use xero" in str(err.value)
