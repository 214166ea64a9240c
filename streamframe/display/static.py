"""The view's parts as plain HTML and text: the status line and the table.

Pure functions of a query's metrics and a DataFrame, so the live widget and the static snapshot (what a
front end without widgets, nbval or a terminal shows) render the same thing.

    >>> import pandas as pd
    >>> status_text("q-1", {"status": "running", "records_in": 1520, "lag": 0})
    'running q-1 · 1,520 in · lag 0'
"""

from __future__ import annotations

import html
import traceback
from dataclasses import dataclass

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


def failure_html(error: BaseException) -> str:
    """A failed query's error: one line, and its traceback behind a toggle (closed at first)."""
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return (
        f'<div class="sf-failure" style="border-left:3px solid {COLORS["failed"]};padding:4px 10px;'
        f'margin:4px 0;background:#fdecea">'
        f'<div style="color:{COLORS["failed"]};font-weight:bold">{html.escape(one_line(error, 400))}</div>'
        f'<details><summary style="cursor:pointer;color:#616161">traceback</summary>'
        f'<pre class="sf-traceback" style="font-size:smaller;white-space:pre-wrap">{html.escape(trace)}</pre>'
        f"</details></div>"
    )


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


@dataclass(frozen=True)
class Column:
    """One column as the view shows it: its header, the data column it sorts by, its cells as text, and
    whether it holds numbers (right-aligned)."""

    label: str
    sort_key: str
    cells: tuple[str, ...]
    numeric: bool


def format_table(shown: pd.DataFrame) -> list[Column]:
    """The columns of `shown` as text: numbers with thousands separators, a window's bounds as one
    compact `13:43:05–13:43:10` column (sorted by window_start), times without a zone suffix.

        >>> rows = pd.DataFrame({"k": ["a"], "window_start": pd.to_datetime([0], unit="s", utc=True),
        ...                      "window_end": pd.to_datetime([5], unit="s", utc=True), "n": [12345]})
        >>> [(c.label, c.cells) for c in format_table(rows)]
        [('k', ('a',)), ('window', ('00:00:00–00:00:05',)), ('n', ('12,345',))]
    """
    windowed = all(c in shown.columns for c in WINDOW)
    out = []
    for col in shown.columns:
        if windowed and col == "window_end":
            continue
        values, name = shown[col], str(col)
        if windowed and col == "window_start":
            out.append(Column("window", "window_start", _windows(values, shown["window_end"]), False))
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out.append(Column(name, name, _numbers(values), True))
        elif pd.api.types.is_datetime64_any_dtype(values):
            out.append(Column(name, name, tuple("" if pd.isna(v) else _time(v) for v in values), False))
        else:
            out.append(Column(name, name, tuple("" if _missing(v) else str(v) for v in values), False))
    return out


def table_html(shown: pd.DataFrame, total: int) -> str:
    if total == 0 or shown.empty:
        return '<div class="sf-table"><i>no rows yet</i></div>'
    columns = format_table(shown)
    align = ["right" if c.numeric else "left" for c in columns]
    head = "".join(f'<th style="text-align:{a};padding:2px 8px">{html.escape(c.label)}</th>'
                   for c, a in zip(columns, align))
    cell = '<td style="text-align:{};padding:2px 8px;white-space:nowrap">{}</td>'
    body = "".join(
        "<tr>" + "".join(cell.format(a, html.escape(c.cells[i])) for c, a in zip(columns, align)) + "</tr>"
        for i in range(len(shown))
    )
    more = f"{len(shown):,} of {total:,} rows" if total > len(shown) else f"{total:,} rows"
    return (
        '<div class="sf-table" style="max-height:32em;overflow:auto">'
        '<table class="sf-rows" style="border-collapse:collapse;font-variant-numeric:tabular-nums">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        f'<div class="sf-count" style="color:#616161;font-size:smaller">{more}</div></div>'
    )


def table_text(shown: pd.DataFrame, total: int) -> str:
    if total == 0 or shown.empty:
        return "(no rows yet)"
    columns = format_table(shown)
    widths = [max(len(c.label), *(len(v) for v in c.cells)) for c in columns]

    def line(cells) -> str:
        padded = (v.rjust(w) if c.numeric else v.ljust(w) for v, w, c in zip(cells, widths, columns))
        return "  ".join(padded).rstrip()

    lines = [line([c.label for c in columns])]
    lines += [line([c.cells[i] for c in columns]) for i in range(len(shown))]
    more = f"\n({len(shown):,} of {total:,} rows)" if total > len(shown) else ""
    return "\n".join(lines) + more


def _missing(v) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):  # a list or an array in a cell
        return False


def _numbers(values: pd.Series) -> tuple[str, ...]:
    """Integers as 12,345; floats with two decimals (four significant digits below 1), whole floats
    without decimals, so a column lines up on its right edge."""
    if pd.api.types.is_integer_dtype(values):
        return tuple("" if pd.isna(v) else f"{int(v):,}" for v in values)
    finite = values[pd.notna(values)].astype(float)
    if finite.empty or (finite == finite.round()).all():
        fmt = "{:,.0f}"
    elif finite.abs().max() >= 1:
        fmt = "{:,.2f}"
    else:
        fmt = "{:.4g}"
    return tuple("" if pd.isna(v) else fmt.format(float(v)) for v in values)


def _windows(starts: pd.Series, ends: pd.Series) -> tuple[str, ...]:
    """Window bounds as `13:43:05–13:43:10`; with the start's date when the rows span more than one day
    or a window does (a day-long window: `2024-01-01 00:00:00–2024-01-02 00:00:00`)."""
    starts, ends = _utc(starts), _utc(ends)
    day = starts.dt.normalize()
    first = day.min()
    # one day: windows shorter than a day that start on it and end on it (or at the midnight closing it)
    one_day = (day.nunique() <= 1 and (ends - starts).max() < pd.Timedelta(days=1)
               and ((ends.dt.normalize() == first) | (ends == first + pd.Timedelta(days=1))).all())
    with_ms = bool(((starts.dt.microsecond != 0) | (ends.dt.microsecond != 0)).any())
    clock = "%H:%M:%S.%f" if with_ms else "%H:%M:%S"

    def fmt(ts, date: bool) -> str:
        text = ts.strftime(("%Y-%m-%d " if date else "") + clock)
        return text[:-3] if with_ms else text

    return tuple(
        "" if pd.isna(a) or pd.isna(b)
        else f"{fmt(a, not one_day)}–{fmt(b, not one_day and b.date() != a.date())}"
        for a, b in zip(starts, ends)
    )


def _utc(values: pd.Series) -> pd.Series:
    values = pd.to_datetime(values)
    return values.dt.tz_convert("UTC").dt.tz_localize(None) if values.dt.tz is not None else values


def _time(value) -> str:
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return str(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    # times are in milliseconds: 12:00:01.250, not 12:00:01.250000 (whole seconds as 12:00:01)
    return ts.isoformat(sep=" ", timespec="milliseconds" if ts.microsecond or ts.nanosecond else "seconds")
