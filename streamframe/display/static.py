"""The view's parts as plain HTML and text: the status line and the table.

Pure functions of a query's metrics and a DataFrame, so the live widget and the static snapshot (what a
front end without widgets, nbval or a terminal shows) render the same thing.

    >>> import pandas as pd
    >>> status_text("q-1", {"status": "running", "records_in": 1520, "lag": 0})
    'running q-1 · 1,520 in · lag 0'
"""

from __future__ import annotations

import html

import pandas as pd

WINDOW = ("window_start", "window_end")
COLORS = {"running": "#2e7d32", "failed": "#c62828", "finished": "#1565c0"}  # others: grey

# (metric, label, formatter): the order the status line reads in
_FIELDS = (
    ("broker_unreachable_s", "broker unreachable for {:.0f} s"),
    ("records_in", "{:,} in"),
    ("records_per_s", "{:,.1f} records/s"),
    ("lag", "lag {:,}"),
    ("stream_time", "stream time {}"),
    ("late_drops", "late drops {:,}"),
    ("dead_letters", "dead letters {:,}"),
    ("errors", "errors {:,}"),
)


def one_line(error, limit: int = 200) -> str:
    """An error as one short line: its first line, with the exception type when it is an exception."""
    if error is None:
        return ""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_parts(metrics: dict, skip=()) -> list[str]:
    """The status line's items after the state, leaving out the metrics named in `skip` (a snapshot of
    an in-memory run leaves out what changes from run to run: records/s, a wall-clock stream time)."""
    parts = []
    for key, fmt in _FIELDS:
        value = metrics.get(key)
        if value is None or key in skip:
            continue
        if key == "stream_time":
            value = _time(value)
        parts.append(fmt.format(value))
    return parts


def status_text(name: str, metrics: dict, error=None, skip=()) -> str:
    state = metrics.get("status", "?")
    line = " · ".join([f"{state} {name}"] + status_parts(metrics, skip))
    if error is not None or metrics.get("last_error"):
        line += f" · error: {one_line(error if error is not None else metrics['last_error'])}"
    return line


def status_html(name: str, metrics: dict, error=None, skip=()) -> str:
    state = metrics.get("status", "?")
    color = COLORS.get(state, "#616161")
    head = (f'<span class="sf-state sf-{html.escape(state)}" style="color:{color};font-weight:bold">'
            f"● {html.escape(state)}</span> <code>{html.escape(name)}</code>")
    body = " · ".join(html.escape(p) for p in status_parts(metrics, skip))
    err = error if error is not None else metrics.get("last_error")
    tail = "" if not err else (f' · <span class="sf-error" style="color:{COLORS["failed"]}">error: '
                               f"{html.escape(one_line(err))}</span>")
    return f'<div class="sf-status">{head} · {body}{tail}</div>'


def as_rows(result: pd.DataFrame | None) -> pd.DataFrame:
    """A sink's result as plain rows: a table's keys (and window bounds) become columns."""
    if result is None:
        return pd.DataFrame()
    if any(name is not None for name in result.index.names):
        return result.reset_index()
    return result.reset_index(drop=True)


def top_rows(rows: pd.DataFrame, sort_by: str | None = None, descending: bool = False,
             limit: int = 20, latest: bool = False) -> pd.DataFrame:
    """The rows to show: sorted by `sort_by` (stable, missing values last) and cut to `limit`; unsorted,
    the first rows — or the last ones when `latest` (a stream shows what arrived most recently)."""
    if sort_by and sort_by in rows.columns:
        try:
            rows = rows.sort_values(sort_by, ascending=not descending, kind="stable", na_position="last")
        except TypeError:  # mixed types in an object column: sort by their text
            rows = rows.sort_values(
                sort_by, ascending=not descending, kind="stable", key=lambda c: c.astype(str)
            )
        return rows.head(limit)
    return rows.tail(limit) if latest else rows.head(limit)


def table_html(shown: pd.DataFrame, total: int) -> str:
    if total == 0 or shown.empty:
        return '<div class="sf-table"><i>no rows yet</i></div>'
    table = shown.to_html(index=False, border=0, classes="sf-rows", na_rep="", escape=True)
    more = f"{len(shown):,} of {total:,} rows" if total > len(shown) else f"{total:,} rows"
    return (
        f'<div class="sf-table" style="max-height:32em;overflow:auto">{table}'
        f'<div class="sf-count" style="color:#616161;font-size:smaller">{more}</div></div>'
    )


def table_text(shown: pd.DataFrame, total: int) -> str:
    if total == 0 or shown.empty:
        return "(no rows yet)"
    more = f"\n({len(shown):,} of {total:,} rows)" if total > len(shown) else ""
    return shown.to_string(index=False) + more


def _time(value) -> str:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    # times are in milliseconds: 12:00:01.250, not 12:00:01.250000 (whole seconds as 12:00:01)
    return ts.isoformat(sep=" ", timespec="milliseconds" if ts.microsecond or ts.nanosecond else "seconds")
