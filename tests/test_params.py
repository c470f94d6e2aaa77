"""Params files: typed, validated, and every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.errors import ParamsError
from recon.params import LocationMap, load_params

ROOT = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
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
