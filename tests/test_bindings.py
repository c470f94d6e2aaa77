"""A location's Xero organisation is a binding a person confirms once and the ledger records: until
then nothing of the location is written, and afterwards nothing goes to another organisation unless
re-bound on purpose.

Over real HTTP against the sandbox, whose one Xero app per organisation (and web app reaching
several: recon/sandbox/seed.py ``xero_apps``) lets a params file point a location at another
reachable organisation. xero-api.md §3.2: a document's currency must be the organisation's base
currency or one it has enabled (``GET /Currencies``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import ROOT, fast_retry, xero_config

from recon.bindings import BindingState
from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient
from recon.errors import ParamsError, StepError
from recon.ledger import Ledger
from recon.params import RunParams, load_params
from recon.sandbox import Sandbox
from recon.session import Connection, connect
from recon.transfer import plan_transfer, push
from recon.transfer.plan import settle_binding

DEMO = ROOT / "params" / "demo.yaml"
LEEDS = "Hive Leeds Wellington Place"
UK, NORTH = "Hive Coworking UK Ltd", "Hive Coworking North Ltd"
APPS = {
    UK: "recon demo (Custom Connection UK)",
    NORTH: "recon demo (Custom Connection North)",
}


def _tenant(box: Sandbox, organisation: str) -> str:
    return next(t for t, name in box.organisations.items() if name == organisation)


def _books(box: Sandbox, organisation: str, tmp_path: Path) -> tuple[int, int, int]:
    """(invoices, credit notes, contacts) an organisation holds, read over HTTP."""
    config = xero_config(box, APPS[organisation], tenant_id=_tenant(box, organisation))
    client = XeroClient(config, token_store=TokenStore(tmp_path / "tokens"), retry=fast_retry())
    try:
        return (
            sum(1 for _ in client.iter_invoices(summary_only=True)),
            sum(1 for _ in client.iter_credit_notes()),
            sum(1 for _ in client.iter_contacts(include_archived=True)),
        )
    finally:
        client.close()


def _all_books(box: Sandbox, tmp_path: Path) -> dict[str, tuple[int, int, int]]:
    return {org: _books(box, org, tmp_path) for org in APPS}


def _leeds_binding(box: Sandbox, organisation: str, *, rebind: bool = False) -> str:
    entry = f"organisation_id: {_tenant(box, organisation)}, organisation: {organisation}"
    return f"  {LEEDS}: {{{entry}{', rebind: true' if rebind else ''}}}\n"


def _params_file(
    tmp_path: Path,
    box: Sandbox,
    name: str,
    *,
    organisation: str | None = None,
    binding: str | None = "demo",
) -> RunParams:
    """demo.yaml for Leeds, its organisation named in a ``locations`` map (``organisation``) and its
    ``bindings`` line as given (``demo``: the demo's own; None: no binding for Leeds)."""
    text = DEMO.read_text("utf-8")
    lines = text.splitlines(keepends=True)
    demo_line = next(line for line in lines if line.startswith(f"  {LEEDS}:"))
    if binding != "demo":
        text = text.replace(demo_line, binding or "")
    text = text.replace("location: Hive Shoreditch", f"location: {LEEDS}")
    if organisation is not None:
        text += f"locations:\n  {LEEDS}: {{organisation: {organisation}}}\n"
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return load_params(path).with_overrides(
        sandbox_dir=str(box.state_dir),
        ledger_file=str(tmp_path / "ledger.sqlite"),
        output_dir=str(tmp_path / "out"),
        tax_map_file=str(ROOT / "params" / "tax_map.yaml"),
    )


def _connect(params: RunParams) -> Connection:
    conn = connect(params)
    conn.xero.retry = fast_retry()
    conn.nexudus.retry = fast_retry()
    return conn


def test_an_unconfirmed_location_is_shown_and_held_back_and_nothing_reaches_either_organisation(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    before = _all_books(fresh_sandbox, tmp_path)
    params = _params_file(
        tmp_path, fresh_sandbox, "leeds-to-uk.yaml", organisation=UK, binding=None
    )
    with _connect(params) as conn, Ledger(conn.ledger_path) as ledger:
        assert conn.organisation["Name"] == UK
        plan = plan_transfer(conn, ledger=ledger)
        result = push(conn, plan, ledger)
        assert ledger.bindings().empty, "nothing confirmed, nothing recorded"
    expected = (
        f"{LEEDS} → {UK} (GBP): not confirmed; confirm with bindings: {{{LEEDS}: "
        f"{{organisation_id: {_tenant(fresh_sandbox, UK)}, organisation: {UK}}}}} in "
    )
    assert plan.eligible.empty and len(plan.excluded) > 0
    assert plan.excluded["reason"].str.startswith(expected).all()
    assert plan.context["warnings"][0].startswith(expected)
    assert plan.context["binding"]["state"] == BindingState.NOT_CONFIRMED.value
    assert result.outcomes.empty
    assert _all_books(fresh_sandbox, tmp_path) == before


def test_params_confirming_another_organisation_than_the_one_reached_hold_everything_back(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    before = _all_books(fresh_sandbox, tmp_path)
    # The locations map sends Leeds to UK; the demo's binding says North.
    params = _params_file(tmp_path, fresh_sandbox, "leeds-to-uk.yaml", organisation=UK)
    with _connect(params) as conn, Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        push(conn, plan, ledger)
        assert ledger.bindings().empty
    reasons = set(plan.excluded["reason"])
    assert plan.eligible.empty and len(reasons) == 1
    (reason,) = reasons
    assert f"the params confirm {NORTH} ({_tenant(fresh_sandbox, NORTH)})" in reason
    assert f"this run reaches {UK} ({_tenant(fresh_sandbox, UK)}): refused" in reason
    assert _all_books(fresh_sandbox, tmp_path) == before


def test_a_recorded_binding_refuses_another_organisation_until_re_bound_on_purpose(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    start = _all_books(box, tmp_path)
    # 1. The demo's confirmed binding: recorded by the first push, and the transfer goes.
    demo = _params_file(tmp_path, box, "demo-leeds.yaml")
    with _connect(demo) as conn, Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        assert plan.context["binding"]["state"] == BindingState.CONFIRMED_IN_PARAMS.value
        assert ledger.bindings().empty, "the preview only reads the ledger"
        result = push(conn, plan, ledger)
        recorded = ledger.binding(int(conn.business["Id"]))
    assert recorded is not None
    assert (recorded["tenant_id"], recorded["organisation_name"], recorded["base_currency"]) == (
        _tenant(box, NORTH),
        NORTH,
        "GBP",
    )
    assert recorded["confirmed_by"] == "recon demo" and recorded["confirmed_at"]
    created = int((result.outcomes["outcome"] == "created").sum())
    assert created == len(plan.eligible) > 0
    bound = _all_books(box, tmp_path)
    assert bound[UK] == start[UK] and bound[NORTH][0] > start[NORTH][0]

    # 2. Leeds pointed at UK, UK even confirmed in the params: the ledger's binding wins.
    moved = _params_file(
        tmp_path, box, "leeds-moved.yaml", organisation=UK, binding=_leeds_binding(box, UK)
    )
    with _connect(moved) as conn, Ledger(conn.ledger_path) as ledger:
        refused = plan_transfer(conn, ledger=ledger)
        push(conn, refused, ledger)
        assert ledger.binding(int(conn.business["Id"]))["tenant_id"] == _tenant(box, NORTH)
    assert refused.eligible.empty
    (reason,) = set(refused.excluded["reason"])
    assert f"{LEEDS} is bound to {NORTH}" in reason and f"would write to {UK}" in reason
    assert f"organisation: {UK}, rebind: true" in reason, "the change that re-binds on purpose"
    assert _all_books(box, tmp_path) == bound

    # 3. Re-bound on purpose: recorded, and the transfer goes to UK; North is left as it was.
    rebound = _params_file(
        tmp_path,
        box,
        "leeds-rebound.yaml",
        organisation=UK,
        binding=_leeds_binding(box, UK, rebind=True),
    )
    with _connect(rebound) as conn, Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        assert plan.context["binding"]["state"] == BindingState.REBIND.value
        result = push(conn, plan, ledger)
        assert ledger.binding(int(conn.business["Id"]))["tenant_id"] == _tenant(box, UK)
        assert "rebind location" in set(ledger.events()["action"])
    assert set(result.outcomes["outcome"]) == {"created"} and len(result.outcomes) > 0
    after = _all_books(box, tmp_path)
    assert after[NORTH] == bound[NORTH]
    assert after[UK][0] == bound[UK][0] + int((plan.eligible["kind"] == "invoice").sum())


def test_a_push_is_refused_before_any_call_when_the_location_was_bound_elsewhere_meanwhile(
    fresh_sandbox: Sandbox, tmp_path: Path
) -> None:
    box = fresh_sandbox
    demo = _params_file(tmp_path, box, "demo-leeds.yaml")
    with _connect(demo) as conn, Ledger(conn.ledger_path) as ledger:
        plan = plan_transfer(conn, ledger=ledger)
        assert len(plan.eligible) > 0
        # Another person binds Leeds to UK (their params, their run) between the preview and the
        # Confirm.
        assert ledger.record_binding(
            int(conn.business["Id"]),
            LEEDS,
            _tenant(box, UK),
            UK,
            "GBP",
            confirmed_by="someone else",
            source="test",
        )
        before, calls = _all_books(box, tmp_path), conn.xero.calls
        result = push(conn, plan, ledger)
        assert conn.xero.calls == calls, "refused with no call"
    assert set(result.outcomes["outcome"]) == {"refused"}
    assert len(result.outcomes) == len(plan.eligible)
    message = result.outcomes["messages"].iloc[0]
    assert f"{LEEDS} is bound to {UK}" in message and "rebind: true" in message
    assert _all_books(box, tmp_path) == before


def test_the_organisation_key_is_honoured_on_the_sandbox(sandbox: Sandbox, tmp_path: Path) -> None:
    params = load_params(DEMO).with_overrides(
        sandbox_dir=str(sandbox.state_dir),
        ledger_file=str(tmp_path / "ledger.sqlite"),
        organisation=NORTH,
    )
    with _connect(params) as conn:
        assert conn.location == "Hive Shoreditch"
        assert conn.organisation["Name"] == NORTH and conn.xero.tenant_id == _tenant(sandbox, NORTH)
        assert conn.tracking is None, "the sandbox's North wiring is not Shoreditch's"
        with Ledger(conn.ledger_path) as ledger:
            verdict = settle_binding(conn, ledger)
            assert ledger.bindings().empty
    # The demo binds Shoreditch to UK: this organisation is refused.
    assert verdict.state is BindingState.PARAMS_DIFFER
    assert f"the params confirm {UK}" in verdict.reason


def test_a_location_whose_currency_the_organisation_cannot_book_is_refused_as_a_whole(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    singapore, own = "Hive Singapore Raffles", "Hive Coworking Singapore Pte Ltd"
    path = tmp_path / "singapore-in-uk.yaml"
    path.write_text(
        DEMO.read_text("utf-8")
        .replace("location: Hive Shoreditch", f"location: {singapore}")
        .replace(
            f"  {singapore}: {{organisation_id: {_tenant(sandbox, own)}, organisation: {own}",
            f"  {singapore}: {{organisation_id: {_tenant(sandbox, UK)}, organisation: {UK}",
        )
        + f"locations:\n  {singapore}: {{organisation: {UK}}}\n",
        "utf-8",
    )
    params = load_params(path).with_overrides(
        sandbox_dir=str(sandbox.state_dir),
        ledger_file=str(tmp_path / "ledger.sqlite"),
        tax_map_file=str(ROOT / "params" / "tax_map.yaml"),
    )
    with _connect(params) as conn, Ledger(conn.ledger_path) as ledger:
        assert conn.organisation["Name"] == UK
        plan = plan_transfer(conn, ledger=ledger)
        assert ledger.bindings().empty, "a binding that cannot book is not recorded"
    assert plan.eligible.empty and len(plan.excluded) > 0
    assert plan.context["binding"]["state"] == BindingState.CURRENCY_REFUSED.value
    assert (
        plan.excluded["reason"]
        .str.startswith(
            f"{singapore} bills in SGD, which Xero organisation {UK} (base GBP; enabled: EUR, GBP) "
            "cannot book: refused"
        )
        .all()
    )


def test_the_demo_params_bind_every_sandbox_location_to_the_organisation_the_seed_gives_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    params = load_params(DEMO).with_overrides(sandbox_dir=str(sandbox.state_dir))
    with _connect(params) as conn:
        names = set(conn.nexudus.fetch_businesses()["Name"])
    assert set(params.bindings) == names
    for name in sorted(names):
        with _connect(params.with_overrides(location=name)) as conn:
            verdict = settle_binding(conn, None, conn.xero.fetch_currencies()["Code"])
            assert verdict.state is BindingState.CONFIRMED_IN_PARAMS, verdict.reason
            assert params.bindings[name].organisation_id == conn.xero.tenant_id
            assert params.bindings[name].organisation == conn.organisation["Name"]
    all_locations = load_params(ROOT / "params" / "demo-all-locations.yaml")
    assert set(all_locations.bindings) == set(all_locations.locations)
    for name, entry in all_locations.bindings.items():
        assert entry == params.bindings[name]
        assert sandbox.organisations[entry.organisation_id] == entry.organisation


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        ("bindings: [Hive Shoreditch]", "bindings", "must map each Nexudus location"),
        ("bindings: {Hive Shoreditch: Hive Coworking UK Ltd}", "bindings.Hive Shoreditch", "needs"),
        (
            "bindings: {Hive Shoreditch: {organisation: Hive Coworking UK Ltd}}",
            "bindings.Hive Shoreditch.organisation_id",
            "names both",
        ),
        (
            "bindings: {Hive Shoreditch: {organisation_id: 54de6a11-29e3-52f4-a9b2-b6bfe4681902}}",
            "bindings.Hive Shoreditch.organisation",
            "names both",
        ),
        (
            "bindings: {Hive Shoreditch: {organisation_id: uk, organisation: Hive Coworking UK}}",
            "bindings.Hive Shoreditch.organisation_id",
            "GUID",
        ),
        (
            "bindings: {Hive Shoreditch: {organisation_id: 54de6a11-29e3-52f4-a9b2-b6bfe4681902, "
            "organisation: Hive Coworking UK Ltd, rebind: maybe}}",
            "bindings.Hive Shoreditch.rebind",
            "true or false",
        ),
        (
            "bindings: {Hive Shoreditch: {organisation_id: 54de6a11-29e3-52f4-a9b2-b6bfe4681902, "
            "organisation: Hive Coworking UK Ltd, confirm: true}}",
            "bindings.Hive Shoreditch.confirm",
            "unknown setting",
        ),
    ],
)
def test_a_malformed_binding_is_refused_naming_the_file_and_key(
    tmp_path: Path, entry: str, key: str, words: str
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(
        "period_start: 2026-08-01\nperiod_end: 2026-10-31\nlocation: Hive Shoreditch\n" + entry
    )
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    assert caught.value.key == key and caught.value.file == str(path)
    assert words in str(caught.value)


def test_the_binding_panel_confirms_an_unconfirmed_location_once_and_the_plan_then_lets_it_go(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from recon.widgets.bindings import BindingPanel

    params = _params_file(tmp_path, sandbox, "leeds-unbound.yaml", binding=None)
    with _connect(params) as conn, Ledger(conn.ledger_path) as ledger:
        held = plan_transfer(conn, ledger=ledger)
        panel = BindingPanel(conn, ledger)
        assert panel.can_confirm and not panel.button.disabled
        assert "not confirmed" in panel.text.value
        assert held.eligible.empty
        panel.confirm("Jane Smith")
        with pytest.raises(StepError, match="nothing to confirm"):
            panel.confirm("Jane Smith")  # a second press records nothing
        assert panel.button.disabled and panel.check.state is BindingState.CONFIRMED
        row = ledger.binding(int(conn.business["Id"]))
        assert row is not None and row["tenant_id"] == _tenant(sandbox, NORTH)
        assert (row["confirmed_by"], row["source"]) == ("Jane Smith", "notebook BindingPanel")
        assert list(ledger.events()["action"]).count("bind location") == 1
        plan = plan_transfer(conn, ledger=ledger)
    assert len(plan.eligible) > 0
    assert set(held.excluded["nexudus_invoice_id"]) >= set(plan.eligible["nexudus_invoice_id"])
