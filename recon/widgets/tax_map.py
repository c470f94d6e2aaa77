"""TaxMapEditor: choose, review and save the tax-map fixes the mapping check suggests.

Floor 3 (see ``recon.widgets``). Nothing is written until the diff of the
current choices has been shown: ``save`` refuses otherwise.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, SupportsInt, cast

import ipywidgets as widgets
import pandas as pd

from recon.errors import ParamsError, StepError
from recon.mapping import MappingResult, load_tax_map, save_tax_map, tax_map_diff
from recon.mapping_problems import Problem

__all__ = ["MAP_FIXABLE", "NO_MAPPING", "TaxMapEditor", "tax_type_label"]

# Tax rate problems a tax map entry can fix: the map names the Xero TaxType outright.
MAP_FIXABLE = frozenset(
    {
        Problem.TAX_MISSING.value,
        Problem.TAX_AMBIGUOUS.value,
        Problem.TAX_PERCENTAGE_DIFFERS.value,
        Problem.TAX_ARCHIVED.value,
    }
)
# The dropdown value meaning "no entry in the map for this rate" (Nexudus' own name rule applies).
NO_MAPPING = ""
NO_MAPPING_LABEL = "(no mapping: match by name)"


def _percent(value: Any) -> Decimal | None:
    """A Xero EffectiveRate (Decimal, float, text) as an exact Decimal, or None."""
    if value is None or (not isinstance(value, Decimal) and pd.isna(value)):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _percent_text(value: Decimal | None) -> str:
    """``Decimal('20.0000')`` -> ``20``, ``Decimal('12.5')`` -> ``12.5``."""
    if value is None:
        return "?"
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def tax_type_label(tax_type: str, name: str, rate: Decimal | None) -> str:
    """The dropdown label of a Xero tax rate: ``TYPE — Name (rate%)``."""
    return f"{tax_type} — {name} ({_percent_text(rate)}%)"


class TaxMapEditor:
    """Choose a Xero TaxType for each Nexudus tax rate a map can fix; review the diff; save.

    Parameters
    ----------
    result
        The mapping check's result; its ``tax_rates`` rows with a problem in
        ``MAP_FIXABLE``, and every rate already in the map, get a dropdown.
    xero_tax_rates
        As ``XeroClient.fetch_tax_rates`` returns them (``TaxType``, ``Name``,
        ``Status``, ``EffectiveRate``, ``CanApplyToRevenue``). The choices are
        the ACTIVE ones that can apply to revenue.
    tax_map_file
        The YAML file holding ``tax_map:``; read now, written by ``save``.
        It need not exist yet.

    Each dropdown starts at the rate's current map entry, else at the single
    active revenue rate with the same percentage if there is exactly one,
    else at "no mapping".
    """

    def __init__(
        self, result: MappingResult, xero_tax_rates: pd.DataFrame, tax_map_file: str | Path
    ) -> None:
        if not str(tax_map_file).strip():
            raise ParamsError(
                "no tax map file to edit: set tax_map_file in the params or the notebook's "
                "parameters",
                key="tax_map_file",
            )
        self.tax_map_file = Path(tax_map_file)
        self.saved_map: dict[str, str] = self._read_file()
        self.xero_tax_rates = self._revenue_choices(xero_tax_rates)
        rows = self._editable_rows(result, self.saved_map)
        # One dropdown per name (the map is keyed by name); a name used at two percentages keeps
        # both for candidates.
        self._rates_by_name: dict[str, set[str]] = {
            str(name): {r for r in group if r}
            for name, group in rows.groupby("tax_rate_name")["tax_rate"]
        }
        self.rows = rows.drop_duplicates("tax_rate_name").reset_index(drop=True)
        self._selection: dict[str, str] = {
            name: self._initial_choice(name) for name in self.rows["tax_rate_name"]
        }
        self._touched: set[str] = (
            set()
        )  # names chosen by the user (kept when the file is read again)
        self._syncing = False
        self._shown: tuple[dict[str, str], dict[str, str]] | None = (
            None  # (saved, proposed) when the diff was shown
        )
        self._build_panel()

    # ---- the logic (no widgets needed) ----------------------------------------------
    @property
    def names(self) -> list[str]:
        """The Nexudus tax rate names that have a dropdown, in the result's order."""
        return list(self.rows["tax_rate_name"])

    def candidates(self, name: str) -> list[str]:
        """Active revenue TaxTypes at the same percentage as the Nexudus rate ``name``."""
        wanted = self._rates_by_name.get(name, set())
        same = self.xero_tax_rates[self.xero_tax_rates["rate_text"].isin(wanted)]
        return list(same["TaxType"])

    @property
    def selection(self) -> dict[str, str | None]:
        """The current choice per Nexudus tax rate name; None means no map entry."""
        return {name: (choice or None) for name, choice in self._selection.items()}

    def select(self, name: str, tax_type: str | None) -> None:
        """Choose the Xero TaxType for the Nexudus tax rate ``name`` (None: no map entry)."""
        if name not in self._selection:
            raise ParamsError(
                f"{name!r} is not a tax rate this editor can map; editable: "
                f"{', '.join(self.names) or 'none'}",
                file=str(self.tax_map_file),
                key=f"tax_map.{name}",
            )
        value = tax_type or NO_MAPPING
        allowed = [v for _, v in self._options_for(name)]
        if value not in allowed:
            raise ParamsError(
                f"{tax_type!r} is not an active Xero tax rate that can apply to revenue; choose "
                f"one of {', '.join(v for v in allowed if v)}",
                file=str(self.tax_map_file),
                key=f"tax_map.{name}",
            )
        self._selection[name] = value
        self._touched.add(name)
        self._sync_dropdowns()
        self._selection_changed()

    def reload(self) -> None:
        """Read the tax map file again; choices the user has not made follow the file."""
        self.saved_map = self._read_file()
        self._shown = None
        for name in self._selection:
            if name not in self._touched:
                self._selection[name] = self._initial_choice(name)
        self._sync_dropdowns()
        self._refresh_buttons()

    def proposed_map(self) -> dict[str, str]:
        """The tax map the current choices give: the saved map with the edited entries set or
        removed."""
        proposed = dict(self.saved_map)
        for name, choice in self._selection.items():
            if choice:
                proposed[name] = choice
            else:
                proposed.pop(name, None)
        return dict(sorted(proposed.items()))

    def changes(self) -> pd.DataFrame:
        """What saving would change (``tax_map_diff`` of the saved and the proposed map); shows
        nothing."""
        return tax_map_diff(self.saved_map, self.proposed_map())

    @property
    def is_shown(self) -> bool:
        """Whether the diff of the current choices against the saved map has been shown."""
        return self._shown == (self.saved_map, self.proposed_map())

    def show_changes(self) -> pd.DataFrame:
        """Show the diff of the current choices in the panel and allow ``save``; returns the
        diff."""
        diff = self.changes()
        self._shown = (dict(self.saved_map), self.proposed_map())
        if diff.empty:
            self._say(
                "<p>No changes: the tax map already says this.</p>",
                "No changes: the tax map already says this.",
            )
        else:
            self._say(
                (
                    f"<p><b>{len(diff)} change(s) to {html.escape(self.tax_map_file.name)}</b> "
                    "(not saved yet)</p>"
                )
                + diff.fillna("").to_html(index=False, escape=True),
                diff.to_string(index=False),
            )
        self._refresh_buttons()
        return diff

    def save(self) -> pd.DataFrame:
        """Write the proposed map to the file and return the diff that was saved.

        Raises ``StepError`` if the diff of the current choices was not shown
        first, or if the file changed on disk since it was read.
        """
        if not self.is_shown:
            raise StepError(
                "show the changes before saving: press 'Show changes' (editor.show_changes()) to "
                f"review what would change in {self.tax_map_file}, then save"
            )
        if self._read_file() != self.saved_map:
            self.reload()
            raise StepError(
                f"{self.tax_map_file} changed since it was read (read again now); show the changes "
                "again, then save"
            )
        diff = self.changes()
        if not diff.empty:
            save_tax_map(self.tax_map_file, self.proposed_map())
        self.saved_map = self._read_file()
        self._shown = None
        summary = "; ".join(
            f"{r.change!s} {r.tax_rate_name!s}" + (f" → {r.after!s}" if r.after else "")
            for r in diff.itertuples()
        )
        message = (
            (
                f"Saved {len(diff)} change(s) to {self.tax_map_file}: {summary}. Run the mapping "
                "check again to see the effect."
            )
            if len(diff)
            else f"Nothing to save: {self.tax_map_file} already says this."
        )
        self._say(f"<p>{html.escape(message)}</p>", message)
        self._refresh_buttons()
        return diff

    # ---- building the rows and choices --------------------------------------------------
    def _read_file(self) -> dict[str, str]:
        return load_tax_map(self.tax_map_file) if self.tax_map_file.exists() else {}

    @staticmethod
    def _revenue_choices(xero_tax_rates: pd.DataFrame) -> pd.DataFrame:
        active = xero_tax_rates["Status"].astype("string") == "ACTIVE"
        revenue = xero_tax_rates["CanApplyToRevenue"].astype("boolean").fillna(False).astype(bool)
        out = xero_tax_rates.loc[active & revenue, ["TaxType", "Name", "EffectiveRate"]].copy()
        out["rate"] = out["EffectiveRate"].map(_percent)
        out["rate_text"] = out["rate"].map(lambda r: f"{r:.2f}" if r is not None else "")
        return out.reset_index(drop=True)

    @staticmethod
    def _editable_rows(result: MappingResult, saved_map: Mapping[str, str]) -> pd.DataFrame:
        taxes = result.tax_rates
        wanted = (
            taxes["problem"].isin(MAP_FIXABLE)
            | (taxes["matched_by"] == "tax map")
            | taxes["tax_rate_name"].isin(list(saved_map))
        )
        cols = ["tax_rate_name", "tax_rate", "problem", "invoices", "suggestion"]
        rows = taxes.loc[wanted].reindex(columns=cols).copy()
        rows["tax_rate"] = rows["tax_rate"].fillna("").astype(str)
        return rows.reset_index(drop=True)

    def _initial_choice(self, name: str) -> str:
        if name in self.saved_map:
            return self.saved_map[name]
        candidates = self.candidates(name)
        return candidates[0] if len(candidates) == 1 else NO_MAPPING

    def _options_for(self, name: str) -> list[tuple[str, str]]:
        options = [(NO_MAPPING_LABEL, NO_MAPPING)] + [
            (
                # rate is _percent's Decimal | None (see _revenue_choices); pandas types it loosely
                tax_type_label(str(r.TaxType), str(r.Name), cast("Decimal | None", r.rate)),
                str(r.TaxType),
            )
            for r in self.xero_tax_rates.itertuples()
        ]
        current = self.saved_map.get(name)
        if current and current not in {v for _, v in options}:
            # The saved entry names a rate that is not an active revenue one: show it, so the start
            # state is true.
            options.append(
                (f"{current} — current entry, not an active revenue rate in Xero", current)
            )
        return options

    # ---- the widgets --------------------------------------------------------------------
    def _build_panel(self) -> None:
        self._dropdowns: dict[str, widgets.Dropdown] = {}
        rows: list[widgets.Widget] = []
        for row in self.rows.itertuples():
            name = str(row.tax_rate_name)
            rate = f" ({row.tax_rate!s}%)" if row.tax_rate else ""
            # invoices is a count (int or numpy int); pandas types a cell as any scalar
            invoices = int(cast("SupportsInt", row.invoices or 0))
            blocked = f" — blocks {invoices} invoice(s)" if invoices else ""
            label = widgets.HTML(
                f"<b>{html.escape(name)}</b>{html.escape(rate)}<br><small>{html.escape(str(row.problem))}"
                f"{html.escape(blocked)}</small>",
                layout=widgets.Layout(width="320px"),
            )
            dropdown = widgets.Dropdown(
                options=self._options_for(name),
                value=self._selection[name],
                layout=widgets.Layout(width="420px"),
            )
            dropdown.observe(
                lambda change, name=name: self._dropdown_changed(name, change["new"]), names="value"
            )
            self._dropdowns[name] = dropdown
            rows.append(widgets.HBox([label, dropdown]))
        self.show_button = widgets.Button(description="Show changes", icon="search")
        self.save_button = widgets.Button(
            description=f"Save to {self.tax_map_file.name}",
            icon="save",
            button_style="warning",
            tooltip=str(self.tax_map_file),
            disabled=True,
            layout=widgets.Layout(width="auto"),
        )
        self.show_button.on_click(lambda _: self.show_changes())
        self.save_button.on_click(lambda _: self._save_clicked())
        self.output = widgets.Output()
        heading = widgets.HTML(
            f"<h4>Tax map: {html.escape(str(self.tax_map_file))}</h4>"
            + (
                (
                    "<p>Choose the Xero tax rate for each Nexudus tax rate below, press <i>Show "
                    "changes</i>, then save.</p>"
                )
                if len(self.rows)
                else "<p>No tax rate needs a map entry: nothing to edit.</p>"
            )
        )
        self.panel = widgets.VBox(
            [heading, *rows, widgets.HBox([self.show_button, self.save_button]), self.output]
        )
        self._refresh_buttons()

    def _dropdown_changed(self, name: str, value: str) -> None:
        if self._syncing:
            return
        self._selection[name] = value
        self._touched.add(name)
        self._selection_changed()

    def _sync_dropdowns(self) -> None:
        """Make the dropdowns show the current choices without counting that as the user's
        choice."""
        self._syncing = True
        try:
            for name, dropdown in getattr(self, "_dropdowns", {}).items():
                options = self._options_for(name)
                if list(dropdown.options) != options:
                    dropdown.options = options
                if dropdown.value != self._selection[name]:
                    dropdown.value = self._selection[name]
        finally:
            self._syncing = False

    def _selection_changed(self) -> None:
        if self._shown is not None and not self.is_shown:
            self._say(
                "<p><i>Choices changed: show the changes again before saving.</i></p>",
                "Choices changed: show the changes again before saving.",
            )
        self._refresh_buttons()

    def _save_clicked(self) -> None:
        try:
            self.save()
        except StepError as exc:
            self._say(f"<p><b>Not saved:</b> {html.escape(str(exc))}</p>", f"Not saved: {exc}")

    def _refresh_buttons(self) -> None:
        if hasattr(self, "save_button"):
            self.save_button.disabled = not (self.is_shown and not self.changes().empty)
            self.show_button.disabled = self.rows.empty

    def _say(self, html_text: str, plain: str) -> None:
        """Replace what the panel's output area shows (works with or without a running kernel)."""
        if hasattr(self, "output"):
            self.output.outputs = (
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"text/html": html_text, "text/plain": plain},
                },
            )

    # ---- display --------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.panel._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (
            f"<TaxMapEditor {self.tax_map_file.name}: {len(self.rows)} tax rate(s), "
            f"{len(self.changes())} change(s) proposed>"
        )
