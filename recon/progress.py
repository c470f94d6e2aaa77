"""Progress bars for the long steps: tqdm's console or notebook form, or nothing.

A leaf: imports nothing of recon. A bar is shown only where a person watches
(a terminal, or a notebook front end); under papermill, a scheduler, a pipe or
``RECON_PROGRESS=0`` the iterable is passed through untouched, so logs and
executed notebooks hold no progress noise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Never, TypeVar

T = TypeVar("T")

# Fewer items than this finish before a bar would be worth reading.
MIN_ITEMS = 3


def _watched() -> bool:
    """Whether a person is likely watching: a notebook front end or a terminal."""
    setting = os.environ.get("RECON_PROGRESS", "").strip().lower()
    if setting in {"0", "false", "no", "off"}:
        return False
    if setting in {"1", "true", "yes", "on"}:
        return True
    if os.environ.get("PAPERMILL_EXECUTION") or "papermill" in sys.modules:
        return False
    if "ipykernel" in sys.modules:
        return True
    return sys.stderr.isatty()


def progress(
    items: Iterable[T], *, total: int | None = None, desc: str = "", unit: str = "it"
) -> Iterator[T]:
    """Yield ``items``, showing a progress bar labelled ``desc`` when someone is watching."""
    count = total if total is not None else _length(items)
    if (count is not None and count < MIN_ITEMS) or not _watched():
        yield from items
        return
    from tqdm.auto import tqdm  # imported only when a bar is drawn: keeps `recon run` quick

    yield from tqdm(items, total=count, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


def _length(items: Iterable[T]) -> int | None:
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


class Counter:
    """A bar advanced by ``(done, total)`` calls, the form the steps' ``progress`` hooks take;
    draws nothing where nobody watches. Close it (or use it in ``with``) when the step ends."""

    def __init__(self, desc: str, unit: str = "it") -> None:
        self.desc, self.unit = desc, unit
        self._bar: _Bar[Never] | None = None

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total``."""
        bar = self._bar
        if bar is None:
            if total < MIN_ITEMS or not _watched():
                return
            from tqdm.auto import tqdm

            bar = self._bar = tqdm(
                total=total, desc=self.desc, unit=self.unit, leave=False, dynamic_ncols=True
            )
        bar.update(max(done - bar.n, 0))

    def close(self) -> None:
        """Take the bar off the screen."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if TYPE_CHECKING:
    from tqdm import tqdm as _Bar
