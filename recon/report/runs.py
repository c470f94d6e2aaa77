"""A run's steps and locations: what ran, how it ended, and the run.json records of it.

Floor 2 (part of ``recon.report``): the step and location records
(``StepRun``, ``LocationRun`` and their statuses), reading them back from
``run.json`` or the executed notebooks (``steps_from_run``, ``location_runs``),
writing them (``record_location``, the run's own ``run.json``, and
``record_step`` for a step a notebook panel ran), each
location's folder name (``location_folders``), and what a step saw or where it
failed (``run_context.json``, ``notebook_error``).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from recon.params import RunParams

RUN_RECORD = "run.json"
# run.json's "session" when the notebooks' panels wrote it (a person in Jupyter, not `recon run`):
# its report is rebuilt each time it is opened, as the session goes on.
NOTEBOOK_SESSION = "notebook"
# optional: {"location", "organisation", "tenant_id"} written by a step that connected
RUN_CONTEXT = "run_context.json"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CONNECTION_REPR = re.compile(
    r"<Connection location='(?P<location>[^']*)' organisation='(?P<organisation>[^']*)'"
)
NOT_RUN_NOTE = (
    "not run: this run folder has no results for it (the run was stopped before it, or its "
    "scheduler task did not run or wrote elsewhere)"
)


class StepStatus(StrEnum):
    """How a step notebook ended: ran through, failed, or was skipped."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


def interruption(sigterm: bool) -> str:
    """The error of a step stopped because the run was (SIGTERM, or else Ctrl-C)."""
    return (
        "Terminated: interrupted (SIGTERM)"
        if sigterm
        else "KeyboardInterrupt: interrupted (Ctrl-C)"
    )


INTERRUPTIONS = frozenset({interruption(True), interruption(False)})


@dataclass(frozen=True)
class StepRun:
    """One step notebook of a run: how it ended, when, and (if it failed) what and where."""

    name: str  # the notebook's file name, e.g. 02_transfer.ipynb
    status: StepStatus
    started: datetime | None = None
    finished: datetime | None = None
    error: str = ""  # "ParamsError: ..." for a failed step
    where: str = ""  # "In [3]: conn = connect(..." for a failed step
    note: str = ""  # why a step was skipped

    @property
    def stem(self) -> str:
        """The notebook's name without ``.ipynb`` (``02_transfer``)."""
        return Path(self.name).stem

    @property
    def interrupted(self) -> bool:
        """Whether the step was stopped because the run was (``interruption``)."""
        return self.error in INTERRUPTIONS

    @property
    def seconds(self) -> float | None:
        """How long the step ran, in seconds; None when a time is not known."""
        return (
            (self.finished - self.started).total_seconds()
            if self.started and self.finished
            else None
        )

    def to_dict(self) -> dict[str, Any]:
        """The step as ``run.json`` records it (times as ISO text in UTC)."""
        return {
            "name": self.name,
            "status": self.status.value,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "error": self.error,
            "where": self.where,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRun:
        """A step read back from its ``run.json`` record."""
        return cls(
            name=str(data["name"]),
            status=StepStatus(data["status"]),
            started=_parse_time(data.get("started")),
            finished=_parse_time(data.get("finished")),
            error=str(data.get("error") or ""),
            where=str(data.get("where") or ""),
            note=str(data.get("note") or ""),
        )


class LocationStatus(StrEnum):
    """How a location of a run ended: no step failed, a step failed, or nothing ran for it."""

    OK = "ok"  # no step failed
    FAILED = "failed"  # a step failed (the error is in its notebook and on the Errors sheet)
    # nothing ran for it: the run was interrupted first, or its scheduler task never wrote
    NOT_RUN = "not run"


@dataclass(frozen=True)
class LocationRun:
    """One location of a run over several: its name, its folder inside the run folder, its steps."""

    name: str  # the Nexudus location, as the params' locations map names it
    folder: str  # its folder inside the run folder (see ``location_folders``)
    steps: tuple[StepRun, ...] = ()
    started: datetime | None = None
    finished: datetime | None = None
    note: str = ""  # why nothing ran for it, when nothing did

    @property
    def status(self) -> LocationStatus:
        """``failed`` if a step failed, else ``not run`` if a note says why, else ``ok``."""
        if any(s.status == StepStatus.FAILED for s in self.steps):
            return LocationStatus.FAILED
        return LocationStatus.NOT_RUN if self.note else LocationStatus.OK

    @property
    def failure(self) -> str:
        """What went wrong, in one line: the first failed step, where, and its error; or why it did
        not run."""
        step = next((s for s in self.steps if s.status == StepStatus.FAILED), None)
        if step is not None:
            return (
                f"{step.stem} failed at {step.where or 'its start'}: "
                f"{step.error or '(no error text)'}"
            )
        return self.note

    def to_dict(self) -> dict[str, Any]:
        """The location as the run's ``run.json`` lists it (its steps are in its own record)."""
        return {
            "name": self.name,
            "folder": self.folder,
            "status": self.status.value,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "note": self.note,
        }


def steps_from_run(run_dir: str | Path) -> list[StepRun]:
    """The steps of a run: from ``run.json`` if the report was built before, else from the executed
    notebooks' metadata."""
    run_dir = Path(run_dir)
    record = run_dir / RUN_RECORD
    if record.exists():
        return [
            StepRun.from_dict(s) for s in json.loads(record.read_text("utf-8")).get("steps", [])
        ]
    steps = []
    for path in sorted(run_dir.glob("[0-9][0-9]_*.ipynb")):
        meta = (read_notebook(path).get("metadata") or {}).get("papermill") or {}
        status = StepStatus.FAILED if meta.get("exception") else StepStatus.OK
        steps.append(
            StepRun(
                path.name,
                status,
                _parse_time(meta.get("start_time")),
                _parse_time(meta.get("end_time")),
            )
        )
    return steps


def location_folders(names: Iterable[str]) -> dict[str, str]:
    """Each location's folder inside a run folder: lower-case ASCII words joined by ``-``, unique
    within ``names``.

    ``Hive Dublin Docklands`` -> ``hive-dublin-docklands``. Worked out from the
    whole list in its order (the params' locations map), so every scheduler
    task of one run names the same folders; never ``csv`` or ``html``.
    """
    out: dict[str, str] = {}
    taken = {"csv", "html"}  # the report's own folders
    for name in names:
        plain = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
        base = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "location"
        folder, n = base, 1
        while folder in taken:
            n += 1
            folder = f"{base}-{n}"
        taken.add(folder)
        out[name] = folder
    return out


def record_location(folder: str | Path, params: RunParams, location: LocationRun) -> Path:
    """Write one location's step record, ``<folder>/run.json``: what the run's report is built
    from."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": folder.parent.name,
        "location": location.name,
        "params_file": params.source,
        "params_path": _params_path(params),
        "started": iso(location.started),
        "finished": iso(location.finished),
        "steps": [s.to_dict() for s in location.steps],
        "note": location.note,
    }
    path = folder / RUN_RECORD
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    os.replace(tmp, path)
    return path


def record_step(run_dir: str | Path, params: RunParams, step: StepRun) -> Path:
    """Record one step a notebook panel ran in ``<run_dir>/run.json``, as ``recon run`` records its
    steps, so the report of a notebook session counts it; returns the record's path.

    The step replaces an earlier record of the same step (a later push of the
    session); the other steps are kept, in notebook order. The record is marked
    as a notebook session, so ``open_report`` rebuilds its report every time.
    Safe against another panel or kernel recording at the same moment.
    """
    from recon.clients.tokens import file_lock  # the cross-process lock recon already has

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / RUN_RECORD
    with file_lock(run_dir):  # the folder itself: no lock file left beside the record
        record = _read_json(path) or {}
        steps = [
            StepRun.from_dict(s) for s in record.get("steps") or [] if s.get("name") != step.name
        ]
        steps = sorted([*steps, step], key=lambda s: s.name)
        started = [s.started for s in steps if s.started]
        finished = [s.finished for s in steps if s.finished]
        record = {
            "run_id": record.get("run_id") or run_dir.name,
            "session": record.get("session") or NOTEBOOK_SESSION,
            "params_file": params.source,
            "params_path": _params_path(params),
            "started": iso(min(started)) if started else record.get("started"),
            "finished": iso(max(finished)) if finished else record.get("finished"),
            "steps": [s.to_dict() for s in steps],
        }
        _write_json(path, record)
    return path


def is_notebook_session(run_dir: str | Path) -> bool:
    """Whether ``run_dir``'s record was written by the notebooks' panels, not by ``recon run``."""
    record = _read_json(Path(run_dir) / RUN_RECORD)
    return bool(record and record.get("session") == NOTEBOOK_SESSION)


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Write a record whole: a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    os.replace(tmp, path)


def location_runs(run_dir: str | Path, expected: Iterable[str] = ()) -> list[LocationRun]:
    """The locations of a run over several, in order, each with its steps; ``[]`` for any other
    folder.

    The order and the list come from the run's own record (``run.json``, once a
    report was built) or else from ``expected`` (the params' locations map),
    followed by any other location folder found. A listed location without a
    folder of results is ``not run``.
    """
    run_dir = Path(run_dir)
    found: dict[str, LocationRun] = {}
    for sub in sorted(p for p in run_dir.iterdir() if p.is_dir()) if run_dir.is_dir() else []:
        record = _read_json(sub / RUN_RECORD)
        if record and record.get("location"):
            found[str(record["location"]).casefold()] = LocationRun(
                str(record["location"]),
                sub.name,
                tuple(StepRun.from_dict(s) for s in record.get("steps") or []),
                _parse_time(record.get("started")),
                _parse_time(record.get("finished")),
                str(record.get("note") or ""),
            )
    recorded = recorded_locations(run_dir)
    if not found and not recorded:
        return []
    names = [str(r["name"]) for r in recorded] if recorded else list(expected)
    folders = (
        {str(r["name"]): str(r["folder"]) for r in recorded}
        if recorded
        else location_folders(names)
    )
    notes = {str(r["name"]): str(r.get("note") or "") for r in recorded}
    out: list[LocationRun] = []
    for name in names:
        known = found.pop(name.casefold(), None)
        out.append(known or LocationRun(name, folders[name], note=notes.get(name) or NOT_RUN_NOTE))
    return out + list(found.values())


def recorded_locations(run_dir: Path) -> list[dict[str, Any]]:
    """The locations the run's own ``run.json`` lists (name, folder, status...), or ``[]``."""
    record = _read_json(run_dir / RUN_RECORD)
    return list(record.get("locations") or []) if record else []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def first_failed(location: LocationRun) -> str | None:
    """The stem of a location's first failed step, or None if none failed."""
    return next((s.stem for s in location.steps if s.status == StepStatus.FAILED), None)


def failed_in(locations: Sequence[LocationRun]) -> tuple[str, ...]:
    """``"<location>: <notebook>"`` for each failed step, then ``"<location>: not run"`` for
    each location that did not run."""
    return tuple(
        f"{loc.name}: {s.name}"
        for loc in locations
        for s in loc.steps
        if s.status == StepStatus.FAILED
    ) + tuple(f"{loc.name}: not run" for loc in locations if loc.status == LocationStatus.NOT_RUN)


def run_context(run_dir: Path, params: RunParams) -> dict[str, Any]:
    """Location and organisation as a step saw them: run_context.json, else the ``Connection`` a
    notebook displayed."""
    path = run_dir / RUN_CONTEXT
    if path.exists():
        return {
            k: v
            for k, v in json.loads(path.read_text("utf-8")).items()
            if k in ("location", "organisation", "tenant_id")
        }
    for nb in sorted(run_dir.glob("[0-9][0-9]_*.ipynb")):
        match = CONNECTION_REPR.search(nb.read_text("utf-8"))
        if match:
            return match.groupdict()
    return {}


def with_notebook_error(run_dir: Path, step: StepRun) -> StepRun:
    """A failed step with the error text and cell taken from its executed notebook (the record of
    truth), but for a step the run's interruption stopped: its notebook shows only the kernel's
    ``KeyboardInterrupt`` that stop caused (and not always), so it keeps its error, and takes the
    cell from the notebook."""
    path = run_dir / step.name
    if step.status != StepStatus.FAILED or not path.exists():
        return step
    found = notebook_error(path)
    if found is None:
        return step
    error, where = found
    if step.interrupted:
        error = step.error
    return StepRun(step.name, step.status, step.started, step.finished, error, where, step.note)


def notebook_error(path: Path) -> tuple[str, str] | None:
    """(``"Name: message"``, ``"In [n]: first line of the cell"``) of the first error in an executed
    notebook."""
    for index, cell in enumerate(read_notebook(path).get("cells") or []):
        for out in cell.get("outputs") or []:
            if out.get("output_type") == "error":
                source = cell.get("source") or ""
                source = "".join(source) if isinstance(source, list) else str(source)
                first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
                label = (
                    f"In [{cell.get('execution_count')}]"
                    if cell.get("execution_count")
                    else f"cell {index + 1}"
                )
                evalue = ANSI.sub("", str(out.get("evalue", ""))).strip()
                return f"{out.get('ename')}: {evalue}", f"{label}: {first[:100]}"
    return None


def read_notebook(path: Path) -> dict[str, Any]:
    """An executed notebook's JSON (nbformat 4) as a dict; ``{}`` for a file that is not one.

    Read as plain JSON: importing nbformat costs seconds (its schema validator), and the report
    only reads cells, outputs and metadata.
    """
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_run_record(
    run_dir: Path,
    params: RunParams,
    started: datetime | None,
    finished: datetime | None,
    steps: Sequence[StepRun],
    locations: Sequence[LocationRun] | None = None,
) -> None:
    """Write the run's ``run.json``: params file, times, steps and, for a run over locations, the
    locations."""
    earlier = _read_json(run_dir / RUN_RECORD) or {}
    record: dict[str, Any] = {
        "run_id": run_dir.name,
        **({"session": earlier["session"]} if earlier.get("session") else {}),
        "params_file": params.source,
        "params_path": _params_path(params),
        "started": iso(started),
        "finished": iso(finished),
        "steps": [s.to_dict() for s in steps],
    }
    if locations is not None:
        record["locations"] = [loc.to_dict() for loc in locations]
    _write_json(run_dir / RUN_RECORD, record)


def _params_path(params: RunParams) -> str | None:
    """The params file as an absolute path (what ``recon report`` reads back), None for defaults."""
    return None if params.source == "(defaults)" else str(Path(params.source).resolve())


def iso(moment: datetime | None) -> str | None:
    """A moment as ISO text in UTC, to the second; None for None."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
