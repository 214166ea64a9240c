"""The live view's table: a grid whose column headers sort it when clicked.

ipywidgets only: a row of header buttons over one HTML column each, in a GridBox, so the rows line up
and only the rows shown cross to the front end (the kernel sorts; benchmarks/live_view.py measures it
against ipydatagrid, which sends every row so the browser can sort). A header click cycles the column
through ascending, descending and unsorted (arrival order).

    >>> import pandas as pd
    >>> g = Grid(rows=2)
    >>> g.show(pd.DataFrame({"k": ["a", "b", "c"], "n": [3000, 1, 20]}))
    >>> g.headers[1].click(); g.headers[1].click()          # n, then n descending
    >>> g.cells("n"), g.count.value
    (['3,000', '20'], '<span class="sf-count">2 of 3 rows</span>')
"""

from __future__ import annotations

import html
import threading

import ipywidgets as widgets
import pandas as pd

from streamframe.display import static

ARROWS = {False: " ▲", True: " ▼"}
CSS = """<style>
.sf-grid .sf-cell{height:1.7em;line-height:1.7em;padding:0 .7em;white-space:nowrap;
  font-variant-numeric:tabular-nums}
.sf-grid .sf-col .sf-cell:nth-child(even){background:var(--jp-layout-color2,#f5f5f5)}
.sf-grid .sf-num{text-align:right}
.sf-grid .sf-head button{font-weight:bold}
</style>"""


class Grid(widgets.VBox):
    """Up to `rows` rows of a table, sorted by the column whose header was clicked (`sort_by`, a data
    column; `descending`). Unsorted it shows the first rows, or the last ones when `latest`."""

    def __init__(
        self,
        rows: int = 20,
        latest: bool = False,
        sort_by: str | None = None,
        descending: bool = False,
        lock=None,
    ):
        self.rows, self.latest = int(rows), latest
        self.version = None  # what the caller says the rows shown are (LiveView: its sample count)
        self._lock = lock if lock is not None else threading.RLock()  # a click and a sampler both show
        self.sort_by, self.descending = sort_by, descending
        self.columns: list[static.Column] = []
        self.headers: list[widgets.Button] = []
        self._columns: list[widgets.HTML] = []
        self._data = pd.DataFrame()
        self.body = widgets.GridBox(layout=widgets.Layout(max_height="32em", overflow="auto"))
        self.body.add_class("sf-grid")
        self.count = widgets.HTML()
        self.empty = widgets.HTML("<i>no rows yet</i>")
        super().__init__(children=[widgets.HTML(CSS), self.empty, self.body, self.count])
        self.add_class("sf-table")
        self.body.layout.display = "none"

    def shown(self) -> pd.DataFrame:
        """The rows on screen: sorted by `sort_by` (when it is a column), cut to `rows`."""
        return static.top_rows(self._data, self.sort_by, self.descending, self.rows, latest=self.latest)

    def show(self, data: pd.DataFrame, version=None) -> None:
        """Show `data` (plain rows: keys and window bounds as columns), in one batch of messages."""
        with self._lock:
            self._data, self.version = data, version
            self._show()

    def _show(self) -> None:
        data = self._data
        shown = self.shown()
        columns = static.format_table(shown) if len(shown) else []
        with self.hold_sync():
            if [c.label for c in columns] != [c.label for c in self.columns]:
                self._rebuild(columns)
            for col, widget in zip(columns, self._columns):
                value = _column_html(col)
                if widget.value != value:
                    widget.value = value
            self.columns = columns
            self._label_headers()
            total = len(data)
            more = (
                ""
                if not total
                else (f"{len(shown):,} of {total:,} rows" if total > len(shown) else f"{total:,} rows")
            )
            count = f'<span class="sf-count">{more}</span>' if more else ""
            if self.count.value != count:
                self.count.value = count
            self.empty.layout.display = "none" if columns else None
            self.body.layout.display = None if columns else "none"

    def sort(self, column: str | None, descending: bool = False) -> None:
        """Sort by a data column (None: arrival order) and show the rows again."""
        with self._lock:
            self.sort_by, self.descending = column, descending
            self._show()

    def cells(self, label: str) -> list[str]:
        """The text of one shown column, top to bottom (what tests and a reader see)."""
        return [list(c.cells) for c in self.columns if c.label == label][0]

    def close(self) -> None:
        for w in (*self.headers, *self._columns, self.body, self.count, self.empty, *self.children):
            w.close()
        super().close()

    def _rebuild(self, columns: list[static.Column]) -> None:
        for w in (*self.headers, *self._columns):
            w.close()
        self.headers = []
        for col in columns:
            button = widgets.Button(
                description=col.label, tooltip=f"sort by {col.label}", layout=widgets.Layout(width="auto")
            )
            button.add_class("sf-head")
            button.on_click(lambda _b, key=col.sort_key: self._clicked(key))
            self.headers.append(button)
        self._columns = [widgets.HTML(_column_html(c)) for c in columns]
        self.body.children = [*self.headers, *self._columns]
        self.body.layout.grid_template_columns = f"repeat({len(columns)}, max-content)"

    def _clicked(self, key: str) -> None:
        if self.sort_by != key:
            self.sort(key, False)
        elif not self.descending:
            self.sort(key, True)
        else:
            self.sort(None)

    def _label_headers(self) -> None:
        for button, col in zip(self.headers, self.columns):
            text = col.label + (ARROWS[self.descending] if col.sort_key == self.sort_by else "")
            if button.description != text:
                button.description = text


def _column_html(col: static.Column) -> str:
    kind = "sf-col sf-num" if col.numeric else "sf-col"
    cells = "".join(f'<div class="sf-cell">{html.escape(v) or "&nbsp;"}</div>' for v in col.cells)
    return f'<div class="{kind}" data-column="{html.escape(col.label, quote=True)}">{cells}</div>'
