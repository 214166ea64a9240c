"""Profile a streamframe contestant with cProfile, including a live query's own thread.

A bounded run executes on the calling thread; a live query runs on a thread of its own, which a
profiler enabled on the caller would miss, so `Query._run_guarded` (the body of either) is wrapped to
profile the thread that runs it. Only the benchmark process is patched, only while profiling.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
from collections import defaultdict
from pathlib import Path

from streamframe.runtime.query import Query


@contextlib.contextmanager
def profiled(stats_path: Path):
    """Profile every Query body that runs inside the block into one cProfile file."""
    profiles: list[cProfile.Profile] = []
    original = Query._run_guarded

    def run_guarded(self):
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.runcall(original, self)

    Query._run_guarded = run_guarded
    try:
        yield
    finally:
        Query._run_guarded = original
    stats = None
    for prof in profiles:
        if stats is None:
            stats = pstats.Stats(prof)
        else:
            stats.add(prof)
    if stats is not None:
        stats.dump_stats(stats_path)


def summary(stats_path: Path, top: int = 20) -> str:
    """The functions with the most own time, and own time summed per streamframe module / library."""
    stats = pstats.Stats(str(stats_path))
    total = stats.total_tt
    by_module: dict[str, float] = defaultdict(float)
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        by_module[_module(filename, func)] += tt
        rows.append((tt, ct, nc, _where(filename, line, func)))
    out = io.StringIO()
    out.write(f"    {total:.2f} s profiled on the query's thread\n")
    out.write("    own time by module:\n")
    for name, tt in sorted(by_module.items(), key=lambda kv: -kv[1])[:12]:
        out.write(f"      {tt:7.2f} s {tt / total:6.1%}  {name}\n")
    out.write(f"    top {top} functions by own time (own s, cumulative s, calls):\n")
    for tt, ct, nc, where in sorted(rows, reverse=True)[:top]:
        out.write(f"      {tt:7.2f} {ct:7.2f} {nc:>9}  {where}\n")
    return out.getvalue()


def cumulative(stats_path: Path, pattern: str = "streamframe", top: int = 25) -> str:
    """streamframe's own functions by cumulative time (what each step costs, callees included)."""
    stats = pstats.Stats(str(stats_path))
    rows = [
        (ct, tt, nc, _where(f, line, func))
        for (f, line, func), (cc, nc, tt, ct, _) in stats.stats.items()
        if pattern in f
    ]
    out = io.StringIO()
    out.write("    streamframe functions by cumulative time (cumulative s, own s, calls):\n")
    for ct, tt, nc, where in sorted(rows, reverse=True)[:top]:
        out.write(f"      {ct:7.2f} {tt:7.2f} {nc:>9}  {where}\n")
    return out.getvalue()


def _where(filename: str, line: int, func: str) -> str:
    if "streamframe/" in filename:
        return f"{filename.split('streamframe/', 1)[1]}:{line} {func}"
    if "site-packages/" in filename:
        return f"{filename.split('site-packages/', 1)[1]}:{line} {func}"
    return f"{Path(filename).name}:{line} {func}" if filename != "~" else func


def _module(filename: str, func: str) -> str:
    if "streamframe/" in filename and "site-packages" not in filename:
        return "streamframe/" + filename.split("streamframe/", 1)[1]
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if filename == "~":  # C functions: name them by what they are
        if "confluent_kafka" in func or "cimpl" in func:
            return "confluent_kafka (C)"
        if "pyarrow" in func:
            return "pyarrow (C)"
        if "numpy" in func:
            return "numpy (C)"
        if "pandas" in func:
            return "pandas (C)"
        return "builtins (C)"
    return "python stdlib"
