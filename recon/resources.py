"""Where recon's own files are: the step notebooks and the demo params, whatever the working folder.

Floor 2: imports only recon.params (a leaf) and recon.errors. In a repository checkout the files
are the checkout's ``notebooks/`` and ``params/``; in an installed wheel they are the copies it
ships as package data under ``recon/bundled/`` (pyproject.toml maps them there, with the same
folder names, so a params file's paths resolve alike in both). A notebook's ``params_file = ""``
means the demo params found here, never a path taken from the working folder.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from recon.errors import ParamsError
from recon.params import RunParams, load_params

__all__ = [
    "BUNDLED",
    "DEMO_PARAMS",
    "NOTEBOOK_FILES",
    "PARAMS_FILES",
    "CopiedFiles",
    "copy_notebooks",
    "demo_params_file",
    "notebook_params",
    "notebooks_folder",
    "output_folder",
    "params_folder",
    "params_path",
]

PACKAGE = Path(__file__).resolve().parent
# What the wheel ships (package data, [tool.setuptools] in pyproject.toml).
BUNDLED = PACKAGE / "bundled"
CHECKOUT = PACKAGE.parent
DEMO_PARAMS = "demo.yaml"
# The files ``recon notebooks DIR`` copies: the four notebooks, and the demo params with the tax
# map they name (``tax_map_file: params/tax_map.yaml``), into DIR/params/.
NOTEBOOK_FILES = (
    "01_mapping_check.ipynb",
    "02_transfer.ipynb",
    "03_status_sync.ipynb",
    "04_audit_report.ipynb",
)
PARAMS_FILES = (DEMO_PARAMS, "tax_map.yaml")
# The folder a notebook run by hand writes into, inside the params' output_dir.
NOTEBOOK_OUTPUT = "notebook"


def _root() -> Path:
    """The checkout when recon runs from one (its notebooks/ and params/demo.yaml are there), else
    the wheel's bundled copy."""
    if (CHECKOUT / "notebooks").is_dir() and (CHECKOUT / "params" / DEMO_PARAMS).is_file():
        return CHECKOUT
    return BUNDLED


def notebooks_folder() -> Path:
    """The folder of the step notebooks (the checkout's ``notebooks/`` or the wheel's copy)."""
    return _root() / "notebooks"


def params_folder() -> Path:
    """The folder of the demo params and tax map (the checkout's ``params/`` or the wheel's
    copy)."""
    return _root() / "params"


def demo_params_file() -> Path:
    """The demo params file (``params/demo.yaml``), found from recon's own location."""
    return params_folder() / DEMO_PARAMS


def params_path(params_file: str | os.PathLike[str] | None) -> Path:
    """A notebook's ``params_file``: empty or None means the demo params; a path is taken as
    given (``~`` expanded)."""
    if params_file is None or not str(params_file).strip():
        return demo_params_file()
    return Path(params_file).expanduser()


def notebook_params(params_file: str | os.PathLike[str] | None, **overrides: object) -> RunParams:
    """The params a notebook runs with: its params file (``params_path``) with the parameters
    cell's overrides applied by ``RunParams.with_overrides`` (``None`` keeps the file's value), the
    one place they are validated, as for ``recon run``."""
    return load_params(params_path(params_file)).with_overrides(**overrides)


def output_folder(params: RunParams, output_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a notebook writes: ``output_dir`` when given (as typed); else ``notebook/`` in the
    params' ``output_dir``, resolved as the params resolve their paths (from the params file's
    folder, not the working folder). The wheel's own demo params are in the installed package,
    which may be read-only: their output goes to the working folder's ``out/notebook/``."""
    if output_dir is not None and str(output_dir).strip():
        return Path(output_dir).expanduser()
    resolved = params.resolve(params.output_dir) or Path(params.output_dir)
    if resolved.resolve().is_relative_to(PACKAGE):
        return Path.cwd() / Path(params.output_dir).name / NOTEBOOK_OUTPUT
    return resolved / NOTEBOOK_OUTPUT


@dataclass(frozen=True)
class CopiedFiles:
    """What ``copy_notebooks`` wrote, and where."""

    folder: Path
    files: tuple[Path, ...]

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.files)


def copy_notebooks(folder: Path, *, force: bool = False) -> CopiedFiles:
    """Copy the four notebooks into ``folder`` and the demo params (with their tax map) into
    ``folder/params``; refuse to overwrite a file unless ``force``.

    Raises ``ParamsError`` when ``folder`` is a file or cannot be made, or (without ``force``)
    when a file to write already exists; nothing is copied then.
    """
    sources = [notebooks_folder() / name for name in NOTEBOOK_FILES]
    sources += [params_folder() / name for name in PARAMS_FILES]
    missing = [str(p) for p in sources if not p.is_file()]
    if missing:  # an installation without its package data: say so rather than copy half
        raise ParamsError(f"recon's own files are missing from {_root()}: {', '.join(missing)}")
    targets = [folder / name for name in NOTEBOOK_FILES]
    targets += [folder / "params" / name for name in PARAMS_FILES]
    if folder.exists() and not folder.is_dir():
        raise ParamsError(f"{folder} is a file, not a folder: name a folder to copy into")
    existing = [str(t.relative_to(folder)) for t in targets if t.exists()]
    if existing and not force:
        raise ParamsError(
            f"{folder} already has {', '.join(existing)}; nothing copied. Use --force to "
            "overwrite them, or name another folder"
        )
    try:
        (folder / "params").mkdir(parents=True, exist_ok=True)
        for source, target in zip(sources, targets, strict=True):
            shutil.copyfile(source, target)
    except OSError as exc:
        raise ParamsError(f"cannot copy into {folder}: {exc.strerror or exc}") from exc
    return CopiedFiles(folder, tuple(targets))
