"""The token store under two processes at once: never empty, never torn, never wiped by the loser.

Xero rotates the refresh token on every refresh and the old one dies (xero-api.md §11); two
processes refreshing from one saved token race, and the loser gets ``invalid_grant`` ("multiple
clients refreshing causing other clients losing the last valid token", §13 "refresh rotation
races"). The store must keep the winner's token, and its writes must be whole.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest
from support import fast_retry, xero_config

from recon.clients.tokens import TokenStore
from recon.clients.xero import XeroClient
from recon.errors import AuthError
from recon.sandbox import Sandbox

NAME = "xero-shared"
ROUNDS = 150


def token_of(writer: int, round_: int) -> dict[str, object]:
    """A token set as big as a real one, telling who wrote it and when."""
    return {
        "access_token": f"{writer}-{round_}-" + "a" * 1200,
        "refresh_token": f"r{writer}-{round_}",
        "expires_at": 1_800_000_000 + round_,
        "writer": writer,
    }


def hammer(folder: str, writer: int, rounds: int, problems: multiprocessing.Queue) -> None:
    """Save and load in turn; report every load that is not a whole token set."""
    store = TokenStore(folder)
    for i in range(rounds):
        store.save(NAME, token_of(writer, i))
        got = store.load(NAME)
        if not got or got.get("writer") not in (0, 1) or len(str(got["access_token"])) < 1200:
            problems.put(f"writer {writer} round {i} loaded {str(got)[:80]!r}")
        raw = (Path(folder) / f"{NAME}.json").read_text("utf-8")
        try:
            json.loads(raw)
        except ValueError:
            problems.put(f"writer {writer} round {i} found a torn file of {len(raw)} characters")


def count_up(folder: str, rounds: int) -> None:
    """Read, add one, write: the read-refresh-write a client does, ``rounds`` times."""
    store = TokenStore(folder)
    for _ in range(rounds):
        store.update(NAME, lambda t: {**(t or {}), "n": int((t or {}).get("n", 0)) + 1})


def spawn() -> multiprocessing.context.SpawnContext:
    # spawn, not fork: the test process runs sandbox threads a fork would copy mid-call
    return multiprocessing.get_context("spawn")


def test_two_processes_saving_and_loading_at_once_never_see_an_empty_or_torn_file(
    tmp_path: Path,
) -> None:
    ctx = spawn()
    problems = ctx.Queue()
    workers = [
        ctx.Process(target=hammer, args=(str(tmp_path), n, ROUNDS, problems)) for n in (0, 1)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    found = []
    while not problems.empty():
        found.append(problems.get())
    assert found == []
    last = TokenStore(tmp_path).load(NAME)
    assert last is not None and last["refresh_token"] in (f"r0-{ROUNDS - 1}", f"r1-{ROUNDS - 1}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{NAME}.json"], "no temporary file left"


def test_read_change_write_from_two_processes_loses_no_change(tmp_path: Path) -> None:
    """Without the lock both would read n, both write n + 1, and a rotation would be lost."""
    ctx = spawn()
    workers = [ctx.Process(target=count_up, args=(str(tmp_path), ROUNDS)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    assert TokenStore(tmp_path).load(NAME) == {"n": 2 * ROUNDS}


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_a_token_file_is_private_to_its_user(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens")
    store.save(NAME, token_of(0, 0))
    assert stat.S_IMODE(os.stat(tmp_path / "tokens").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "tokens" / f"{NAME}.json").st_mode) == 0o600


def test_a_change_that_fails_leaves_the_saved_token_as_it_was(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    store.save(NAME, token_of(0, 0))

    def refresh_refused(_: dict | None) -> dict:
        raise AuthError("refused", service="xero")

    with pytest.raises(AuthError):
        store.update(NAME, refresh_refused)
    assert TokenStore(tmp_path).load(NAME) == token_of(0, 0)


def test_deleting_a_dead_token_keeps_a_newer_one_another_process_saved(tmp_path: Path) -> None:
    mine, theirs = TokenStore(tmp_path), TokenStore(tmp_path)
    mine.save(NAME, token_of(0, 0))
    assert theirs.load(NAME) == token_of(0, 0)
    mine.save(NAME, token_of(0, 1))  # the other process rotated meanwhile
    assert theirs.delete(NAME) is False, "the token found dead is not the one on disk"
    assert TokenStore(tmp_path).load(NAME) == token_of(0, 1)
    assert mine.delete(NAME) is True  # the one this store saved, found dead: gone
    assert TokenStore(tmp_path).load(NAME) is None


def web_app(box: Sandbox) -> str:
    return next(name for name, app in box.xero_apps.items() if app["grant"] == "authorization_code")


def test_the_loser_of_a_refresh_race_does_not_wipe_the_winner_s_token(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Two processes (two clients, two stores, one folder) refresh from the same saved token over
    real HTTP: the first rotates it (xero-api.md §11), the second is refused ``invalid_grant``
    (§13 "refresh rotation races"); the rotated token stays saved and a third run uses it."""
    folder = tmp_path / "tokens"
    config = xero_config(sandbox, web_app(sandbox))
    with XeroClient(config, token_store=TokenStore(folder), retry=fast_retry()) as first:
        first.finish_login(
            httpx.get(first.authorization_url(), follow_redirects=False).headers["Location"]
        )
    with (
        XeroClient(config, token_store=TokenStore(folder), retry=fast_retry()) as winner,
        XeroClient(config, token_store=TokenStore(folder), retry=fast_retry()) as loser,
    ):
        winner.refresh()
        (path,) = folder.glob("*.json")
        rotated = json.loads(path.read_text("utf-8"))
        loser.refresh()  # its refresh token was spent by the winner: it adopts the winner's set
        # (sending the spent refresh token again would have raised invalid_grant, §13; a
        # successful second refresh would have replaced the saved set, checked below)
        assert loser.connections(), "the loser goes on with the winner's access token"
    assert json.loads(path.read_text("utf-8")) == rotated, "the winner's token is kept"
    with XeroClient(config, token_store=TokenStore(folder), retry=fast_retry()) as later:
        assert later.connections(), "a later run signs in with the saved token, no new login"


def test_a_refresh_token_another_process_spent_still_ends_in_invalid_grant_when_none_was_saved(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The adoption needs a newer saved set: a client whose refresh token was spent elsewhere
    (another store, so nothing newer is saved here) is still refused ``invalid_grant`` (§13)."""
    config = xero_config(sandbox, web_app(sandbox))
    with XeroClient(config, token_store=TokenStore(tmp_path / "a"), retry=fast_retry()) as first:
        first.finish_login(
            httpx.get(first.authorization_url(), follow_redirects=False).headers["Location"]
        )
    (saved,) = (tmp_path / "a").glob("*.json")
    elsewhere = TokenStore(tmp_path / "b")
    elsewhere.save(saved.stem, json.loads(saved.read_text("utf-8")))
    with XeroClient(config, token_store=elsewhere, retry=fast_retry()) as other:
        other.refresh()  # spends the refresh token; the rotated set lands only in store "b"
    with (
        XeroClient(config, token_store=TokenStore(tmp_path / "a"), retry=fast_retry()) as stale,
        pytest.raises(AuthError, match="invalid_grant"),
    ):
        stale.refresh()
