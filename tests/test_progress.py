"""Progress bars (issue 16): drawn where a person watches, never in a scheduled run's logs."""

from __future__ import annotations

import pytest

from recon.progress import Counter, progress


def test_a_bar_is_drawn_when_someone_watches_and_every_item_still_comes_through(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECON_PROGRESS", "1")
    assert list(progress(range(5), desc="pages", unit="page")) == [0, 1, 2, 3, 4]
    with Counter("to Xero", unit="invoice") as bar:
        for done in (50, 100, 120):
            bar(done, 120)
    err = capsys.readouterr().err
    # drawn with its label and total (then cleared: leave=False keeps logs and notebooks clean)
    assert "pages:" in err and "/5 " in err
    assert "to Xero:" in err and "/120 " in err


def test_nothing_is_drawn_for_a_scheduler_or_a_few_items(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECON_PROGRESS", "0")
    assert list(progress(range(500), desc="pages")) == list(range(500))
    with Counter("to Xero") as bar:
        bar(500, 500)
    monkeypatch.setenv("RECON_PROGRESS", "1")
    assert list(progress([1, 2], desc="two")) == [1, 2]  # fewer than a bar is worth
    assert capsys.readouterr().err == ""
