"""How frames show in a notebook: a live view of their query.

    >>> import pandas as pd, streamframe as sf
    >>> from streamframe.display import view
    >>> s = sf.from_pandas(pd.DataFrame({"k": ["a", "b", "a"], "x": [1, 2, 3]}))
    >>> v = view(s.groupby("k")["x"].sum())          # starts the query; an ipywidgets VBox
    >>> v.query.status
    'running'
    >>> v.close(); v.query.stop().status
    'stopped'

Displaying a frame (`_ipython_display_`) calls `show(frame)`: it starts the frame's query unless it
already runs (`frame.start()` returns the running one, so a consumer is never started twice) and
displays one view. The view's mimebundle carries the widget plus a static HTML/text snapshot, so front
ends without widgets (nbval, nbconvert, a terminal) show the snapshot. `explain_html(text_or_node)`
draws a topology.

May import connectors and every layer below (frames, session, runtime, ...); not magics, testing or
cli, and no confluent_kafka (DESIGN §7, pyproject [tool.importlinter]).
"""

from __future__ import annotations

import threading
import weakref

from streamframe.plan.draw import explain_html

__all__ = ["explain_html", "show", "view"]

# One open view per (query, options): re-running a cell re-displays it instead of piling up samplers.
_views: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_lock = threading.Lock()


def view(frame, *, plot=None, rows: int = 20, top: int = 5, rate: float = 4.0, live: bool | None = None,
         name: str | None = None, **start_options):
    """The live view of `frame` (a StreamFrame, a TableFrame or a running Query), starting its query if
    it is not running. Returns a LiveView (an ipywidgets VBox); the last expression of a cell shows it.

    `plot=dict(x="window_start", y="volume", by="symbol", top=5)`: the chart (windowed tables get one
    by default; `plot=False` turns it off). `rows`: table rows shown. `rate`: most updates per second.
    `live`: keep updating (default: inside a kernel). `name`, `start_options`: passed to `frame.start()`.

        >>> v = view(vwap, plot=dict(y="volume", by="symbol"))     # doctest: +SKIP
    """
    from streamframe.display.live import LiveView
    from streamframe.runtime.query import Query

    query = frame if isinstance(frame, Query) else frame.start(name, **start_options)
    key = (id(query), repr(plot), rows, top, rate, live)
    with _lock:
        existing = _views.get(key)
        if existing is not None and existing.query is query and existing.comm is not None:
            return existing
    made = LiveView(query, plot=plot, rows=rows, top=top, rate=rate, live=live,
                    settle=2.0 if query.in_memory else 0.0)
    with _lock:
        _views[key] = made
    return made


def show(frame, **options) -> None:
    """Display `frame`'s live view (see `view`); what `_ipython_display_` of every frame calls."""
    from IPython.display import display

    display(view(frame, **options))
