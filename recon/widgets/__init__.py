"""ipywidgets panels for the notebooks: choose, review and save fixes the mapping check suggests.

Floor 6: may import the steps, the report and the floors below them, and the
leaves; no step imports this module. Every panel keeps its logic in plain methods (``select``,
``proposed_map``, ``show_changes``, ``save``) so tests drive it without a
browser; the widgets only call those methods and show what they return.

``TaxMapEditor`` edits the tax map (Nexudus tax rate name -> Xero TaxType)
for the tax rates a map can fix. Nothing is written until the diff of the
current choices has been shown: ``save`` refuses otherwise.

``TransferPanel`` previews a transfer plan, narrows it with a filter, and
pushes it to Xero only after two presses: *Transfer* reveals what would be
written and where, *Confirm* writes it (``request_transfer``, ``confirm``,
``cancel``, ``set_filter``). *Confirm* takes a lock first, so a double click
never pushes twice, and the push is recorded as ``recon run`` records its step
(outcomes CSV, ``run.json``), so the report of a notebook session shows it.

``BindingPanel`` shows which Xero organisation a location books into and records a person's
confirmation of it in the ledger, once (the button is a lock, like *Confirm* above).

``StatusPanel`` marks in Nexudus the invoices fully paid in Xero, after a
confirmation, with a progress bar (``request``, ``confirm``, ``cancel``).
"""

from recon.widgets.bindings import BindingPanel
from recon.widgets.status import StatusPanel
from recon.widgets.tax_map import MAP_FIXABLE, NO_MAPPING, TaxMapEditor
from recon.widgets.transfer import ALL_CURRENCIES, TransferPanel

__all__ = [
    "ALL_CURRENCIES",
    "MAP_FIXABLE",
    "NO_MAPPING",
    "BindingPanel",
    "StatusPanel",
    "TaxMapEditor",
    "TransferPanel",
]
