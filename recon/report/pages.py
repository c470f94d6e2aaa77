"""The executed notebooks as web pages for people: outputs and text, no code, nothing only a
programmer reads.

Floor 2 (part of ``recon.report``). Each executed notebook of a run folder
becomes ``html/<name>.html``: its markdown as HTML and each code cell's
outputs (tables, text, images, errors), never the code. On the way out:

- every path under the run folder is written relative to it
  (``mapping_accounts.csv``, not ``/srv/recon/out/2026.../mapping_accounts.csv``),
  a path under recon's own folder relative to that, any other absolute path
  as its last part (``…/name``);
- Python's spellings are taken out: ``Decimal('1.00')`` reads ``1.00``, an
  object's repr ``<Connection location='Hive' target=sandbox>`` reads
  ``Connection: location Hive, target sandbox``,
  ``Timestamp('2026-08-01 00:00:00')`` reads ``2026-08-01 00:00:00``, and a
  table cell that is ``nan``, ``NaN``, ``None``, ``NaT`` or ``<NA>`` is blank;
- text (streams, plain outputs, errors) is HTML-escaped; an output's own HTML
  (a table pandas or recon rendered, escaped there) is kept as it is.

Reads the notebook's JSON itself (no nbformat or nbconvert), so a report builds
in well under a second.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from typing import Any

from recon.report.runs import ANSI

# Where recon itself lives: a traceback's paths inside it are shown relative to it.
_RECON_ROOT = Path(__file__).resolve().parent.parent.parent
_BLANKS = r"nan|NaN|None|NaT|&lt;NA&gt;|<NA>"
_HTML_BLANK_CELL = re.compile(rf"(<t[dh]\b[^>]*>)\s*(?:{_BLANKS})\s*(</t[dh]>)")
_TEXT_BLANK = re.compile(rf"(?<![\w.'\"])(?:{_BLANKS})(?=\s{{2,}}|\s*$|[,)\]}}])", re.MULTILINE)
_DECIMAL = re.compile(r"Decimal\('([^']*)'\)")
_TIMESTAMP = re.compile(r"Timestamp\('([^']*)'(?:,\s*tz='[^']*')?(?:,\s*freq='[^']*')?\)")
_DATE = re.compile(r"datetime\.date\((\d{4}), (\d{1,2}), (\d{1,2})\)")
# A whole output that is an object's repr, ``<Connection location='Hive' target=sandbox>``: read
# as ``Connection: location Hive, target sandbox``.
_OBJECT = re.compile(r"\A<([A-Z]\w*) ((?:\w+=(?:'[^']*'|[^\s'>]+)\s*)+)>\s*\Z")
_FIELD = re.compile(r"(\w+)=('[^']*'|[^\s'>]+)")
# An absolute POSIX path: a "/" not inside a word, URL or relative path, then at least one folder.
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:[\w.@+-]+/)+[\w.@+-]*")
_STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.4; }
header { border-bottom: 1px solid #ccc; margin-bottom: 1.5em; color: #555; }
pre { background: #f6f8fa; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
pre.error { background: #f8d7da; }
pre.stderr { background: #fff3cd; }
table { border-collapse: collapse; margin: .5em 0; font-size: 90%; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #ddebf7; }
.output { margin: .5em 0 1em; overflow-x: auto; }
"""


class PathCleaner:
    """Rewrites the absolute paths in a text: relative to the run folder, else to recon's folder,
    else the last part only."""

    def __init__(self, run_dir: Path) -> None:
        prefixes = {str(run_dir.resolve()), str(run_dir.absolute())}
        self.run_prefixes = sorted(prefixes, key=len, reverse=True)
        self.root = str(_RECON_ROOT)

    def __call__(self, text: str) -> str:
        """``text`` with its absolute paths rewritten."""
        for prefix in self.run_prefixes:
            text = text.replace(prefix + "/", "").replace(prefix, ".")
        if self.root != "/":
            text = text.replace(self.root + "/", "")
        return _ABSOLUTE.sub(lambda m: "…/" + m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def _object(match: re.Match[str]) -> str:
    fields = ", ".join(f"{k} {v.strip(chr(39))}" for k, v in _FIELD.findall(match[2]))
    return f"{match[1]}: {fields}"


def plain(text: str) -> str:
    """Text without Python's spellings of values (see the module docstring)."""
    text = _OBJECT.sub(_object, text)
    text = _DECIMAL.sub(r"\1", text)
    text = _TIMESTAMP.sub(r"\1", text)
    text = _DATE.sub(lambda m: f"{int(m[1]):04d}-{int(m[2]):02d}-{int(m[3]):02d}", text)
    return _TEXT_BLANK.sub("", text)


def plain_html(markup: str) -> str:
    """An output's HTML with Python's spellings of values taken out of its text and blank cells."""
    markup = _HTML_BLANK_CELL.sub(r"\1\2", markup)
    markup = _DECIMAL.sub(r"\1", markup)
    markup = _TIMESTAMP.sub(r"\1", markup)
    return markup


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _markdown(source: str) -> str:
    import mistune

    return str(mistune.html(source))


def _output_html(output: dict[str, Any], clean: PathCleaner) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        css = "stderr" if output.get("name") == "stderr" else "stream"
        return f"<pre class='{css}'>{html.escape(clean(plain(_text(output.get('text')))))}</pre>"
    if kind == "error":
        trace = "\n".join(ANSI.sub("", str(line)) for line in output.get("traceback") or [])
        text = trace or f"{output.get('ename')}: {ANSI.sub('', str(output.get('evalue')))}"
        return f"<pre class='error'>{html.escape(clean(plain(text)))}</pre>"
    data: dict[str, Any] = output.get("data") or {}
    if "application/vnd.jupyter.widget-view+json" in data:
        return "<p><i>An interactive panel: open the notebook in Jupyter to use it.</i></p>"
    if "text/html" in data:
        return clean(plain_html(_text(data["text/html"])))
    if "image/svg+xml" in data:
        return _text(data["image/svg+xml"])
    for mime in ("image/png", "image/jpeg"):
        if mime in data:
            encoded = re.sub(r"\s", "", _text(data[mime]))
            base64.b64decode(encoded, validate=True)  # only a real image goes in the page
            return f"<img src='data:{mime};base64,{encoded}' alt='a chart from the notebook'>"
    if "text/markdown" in data:
        return _markdown(clean(_text(data["text/markdown"])))
    if "text/plain" in data:
        return f"<pre>{html.escape(clean(plain(_text(data['text/plain']))))}</pre>"
    return ""


def notebook_page(path: Path, run_dir: Path, title: str) -> str:
    """One executed notebook as a web page (see the module docstring)."""
    notebook = json.loads(path.read_text("utf-8"))
    clean = PathCleaner(run_dir)
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<header><p>{html.escape(title)}: the executed notebook's results, without its code."
        "</p></header>",
    ]
    for cell in notebook.get("cells") or []:
        if cell.get("cell_type") == "markdown":
            parts.append(
                f"<section class='markdown'>{_markdown(_text(cell.get('source')))}</section>"
            )
        elif cell.get("cell_type") == "code":
            outputs = [_output_html(o, clean) for o in cell.get("outputs") or []]
            parts += [f"<div class='output'>{o}</div>" for o in outputs if o]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_pages(folder: Path, html_dir: Path, run_dir: Path | None = None) -> tuple[Path, ...]:
    """Every executed notebook in ``folder`` as ``html_dir/<name>.html``; paths in them relative to
    ``run_dir`` (the run folder; ``folder`` itself by default, a location's folder in a run over
    several)."""
    run_dir = run_dir or folder
    found = sorted(folder.glob("*.ipynb"))
    if not found:
        return ()
    html_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in found:
        title = f"{path.stem}, run {run_dir.name}"
        target = html_dir / f"{path.stem}.html"
        tmp = target.with_suffix(".html.tmp")
        tmp.write_text(notebook_page(path, run_dir, title), "utf-8")
        tmp.replace(target)
        written.append(target)
    return tuple(written)
