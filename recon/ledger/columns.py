"""A frame's columns packed into one blob the ledger stores, and unpacked again.

Whole integer columns are stored as they are; text columns as codes into a list of their
distinct values, which columns of one group share (the amounts of an invoice's money columns
repeat each other). A location's kept status rows are read and written whole this way, in a few
milliseconds, where one SQLite row per invoice cost a read of every row and a text per cell.

The blob is JSON (a header: rows, column names, the distinct values) followed by little-endian
arrays, so nothing in it is ever executed on reading; a blob that does not add up raises
``ValueError``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PackedColumns", "pack_columns", "unpack_columns"]

_MAGIC = b"recon-columns/1\n"
_HEADER_LENGTH = struct.Struct("<Q")
_INTEGER = np.dtype("<i8")
_CODE = np.dtype("<i4")


@dataclass(frozen=True)
class PackedColumns:
    """Unpacked columns: ``integers`` by name; each text or amount column by name as
    ``codes`` (-1 for a blank) into ``values[groups[name]]``, its group's distinct texts."""

    rows: int
    integers: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]
    groups: dict[str, int]
    values: list[list[str]]

    def text(self, name: str) -> np.ndarray:
        """Column ``name``'s texts as an object array, blanks None."""
        values = np.empty(len(self.values[self.groups[name]]) + 1, dtype=object)
        values[:-1] = self.values[self.groups[name]]
        values[-1] = None  # code -1
        texts: np.ndarray = values[self.codes[name]]
        return texts


def pack_columns(
    frame: pd.DataFrame,
    *,
    integers: Sequence[str],
    texts: Sequence[str] = (),
    amounts: Sequence[str] = (),
) -> bytes:
    """``frame``'s ``integers`` columns, its ``texts`` columns (each with its own distinct
    values) and its ``amounts`` columns (sharing one list) as one blob (``unpack_columns``).

    A cell is written as ``str`` gives it; blanks (None, NaN) stay blank. Amounts are grouped by
    the object that holds them before ``str`` is asked: the Decimals the ledger reads are one
    object per distinct text, so each is written out once, and ``0`` stays apart from ``0.00``
    (equal as Decimals, not as text).
    """
    rows = len(frame)
    body = [frame[name].to_numpy(dtype=np.int64).astype(_INTEGER).tobytes() for name in integers]
    groups: list[dict[str, object]] = []
    for names, by_object in [*(([name], False) for name in texts), (list(amounts), True)]:
        if not names:
            continue
        cells = np.concatenate([frame[name].to_numpy(dtype=object) for name in names])
        codes, values = _coded(cells, by_object=by_object)
        groups.append({"columns": names, "values": values})
        body.extend(codes[i * rows : (i + 1) * rows].tobytes() for i in range(len(names)))
    header = {"rows": rows, "integers": list(integers), "groups": groups}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return b"".join([_MAGIC, _HEADER_LENGTH.pack(len(encoded)), encoded, *body])


def _coded(cells: np.ndarray, *, by_object: bool) -> tuple[np.ndarray, list[str]]:
    """Codes of ``cells`` (int32, -1 for a blank) into their distinct texts, in order of first
    appearance; grouped by value, or ``by_object`` by the object holding each."""
    if not by_object:
        codes, uniques = pd.factorize(cells, use_na_sentinel=True)  # None and NaN: -1
        return codes.astype(_CODE), [str(value) for value in uniques]
    keys = np.fromiter(map(id, cells), dtype=np.int64, count=len(cells))
    by_key, _ = pd.factorize(keys)
    # A cell holding each object: any one, since they all hold that very object.
    first = np.empty(by_key.max(initial=-1) + 1, dtype=np.int64)
    first[by_key] = np.arange(len(cells))
    objects = cells[first]
    blank = pd.isna(objects)
    texts = np.array([str(value) for value in objects], dtype=object)
    texts[blank] = None
    by_text, distinct = pd.factorize(texts, use_na_sentinel=True)
    return by_text[by_key].astype(_CODE), [str(value) for value in distinct]


def unpack_columns(blob: bytes) -> PackedColumns:
    """The columns ``pack_columns`` packed; ``ValueError`` if the blob is not one, or does not
    add up."""
    if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _HEADER_LENGTH.size:
        raise ValueError("not a packed-columns blob")
    at = len(_MAGIC)
    (length,) = _HEADER_LENGTH.unpack_from(blob, at)
    at += _HEADER_LENGTH.size
    try:
        header = json.loads(blob[at : at + length].decode("utf-8"))
        rows = int(header["rows"])
        integer_names = [str(n) for n in header["integers"]]
        group_specs = [
            ([str(n) for n in g["columns"]], [str(v) for v in g["values"]])
            for g in header["groups"]
        ]
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"a packed-columns header is unreadable: {error}") from None
    at += length
    if rows < 0:
        raise ValueError("a packed-columns blob gives a negative row count")
    expected = at + rows * (
        _INTEGER.itemsize * len(integer_names)
        + _CODE.itemsize * sum(len(names) for names, _ in group_specs)
    )
    if len(blob) != expected:
        raise ValueError(f"a packed-columns blob holds {len(blob)} bytes, not {expected}")
    integers: dict[str, np.ndarray] = {}
    for name in integer_names:
        integers[name] = np.frombuffer(blob, dtype=_INTEGER, count=rows, offset=at).astype(np.int64)
        at += rows * _INTEGER.itemsize
    codes: dict[str, np.ndarray] = {}
    groups: dict[str, int] = {}
    values: list[list[str]] = []
    for index, (names, distinct) in enumerate(group_specs):
        values.append(distinct)
        for name in names:
            coded = np.frombuffer(blob, dtype=_CODE, count=rows, offset=at).astype(np.int64)
            at += rows * _CODE.itemsize
            if rows and (coded.min() < -1 or coded.max() >= len(distinct)):
                raise ValueError(f"a packed-columns blob codes {name!r} past its values")
            codes[name], groups[name] = coded, index
    return PackedColumns(rows, integers, codes, groups, values)
