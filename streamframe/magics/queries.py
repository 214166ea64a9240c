"""`%sf_queries` and `%sf_stop`: the queries started in this kernel (frames shown, started or sunk).

    %sf_queries                 # name, status, records in/out, records/s, lag, errors, dead letters, ...
    %sf_stop big-trades         # stop one (outputs delivered, offsets committed first)
    %sf_stop --all
"""

from __future__ import annotations

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from streamframe.magics.common import StreamframeMagics, command

COLUMNS = ["name", "status", "records_in", "records_out", "records_per_s", "lag", "errors", "dead_letters",
           "late_drops", "stream_time", "uptime_s", "sink", "last_error"]


def queries_frame(queries) -> pd.DataFrame:
    rows = []
    for q in queries:
        m = q.metrics
        rows.append({**{c: m.get(c) for c in COLUMNS}, "name": q.name, "status": q.status,
                     "sink": repr(q.sink)})
    return pd.DataFrame(rows, columns=COLUMNS)


@magics_class
class QueryMagics(StreamframeMagics):
    @line_magic
    @command
    @magic_arguments()
    @argument("--running", action="store_true", help="only the running queries")
    def sf_queries(self, args, cell=None):
        """The queries of this kernel with their status and key metrics (like sf.queries())."""
        from streamframe import session

        queries = session.queries()
        if args.running:
            queries = [q for q in queries if q.status == "running"]
        return queries_frame(queries)

    @line_magic
    @command
    @magic_arguments()
    @argument("name", nargs="?", help="the query to stop")
    @argument("--all", action="store_true", help="stop every running query")
    def sf_stop(self, args, cell=None):
        """Stop a running query (or --all): its outputs are delivered and its offsets committed first."""
        from streamframe import session

        if bool(args.name) == bool(args.all):
            raise UsageError("name one query, or use --all")
        queries = session.queries()
        if args.name:
            chosen = [q for q in queries if q.name == args.name]
            if not chosen:
                names = ", ".join(q.name for q in queries) or "none yet"
                raise UsageError(f"no query called {args.name!r} (queries: {names})")
        else:
            chosen = [q for q in queries if q.status == "running"]
        for q in chosen:
            if q.status == "running":
                q.stop(self.options.stop_timeout)
            print(f"query {q.name!r} {q.status} after {q.metrics['records_in']:,} records in")
        if not chosen:
            print("no running queries")
