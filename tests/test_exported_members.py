"""The front door lists every public name it imports, sorted, and each one exists."""

import recon


def test_all_is_sorted_and_complete() -> None:
    assert recon.__all__ == sorted(recon.__all__)
    public = {
        name
        for name, value in vars(recon).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("recon.")
    }
    assert public == set(recon.__all__)


def test_every_exported_name_resolves() -> None:
    for name in recon.__all__:
        assert getattr(recon, name) is not None
