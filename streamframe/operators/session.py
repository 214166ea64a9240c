"""Session windows, record by record (Kafka Streams' KStreamSessionWindowAggregate)."""

from __future__ import annotations

import pandas as pd

from streamframe.errors import ConfigError
from streamframe.operators import aggregate as agg
from streamframe.operators.window import EMITTED, TASK, TS, WE, AggregateOp


class SessionAggregateOp(AggregateOp):
    """A record's session is [ts, ts] merged with every stored session of its key that ends at or
    after ts - gap and starts at or before ts + gap; the merged session is dropped as late when its
    end < stream time - grace; merged-away sessions are deleted (a tombstone downstream, in "updates"
    mode)."""

    def __init__(self, node):
        super().__init__(node)
        if node.fold is not None:
            raise ConfigError(
                "session windows take named aggregations (agg/count/sum/...), not reduce/aggregate")
        self.columns = [c for i, s in enumerate(node.specs) for c in agg.state_columns(s, i)]
        self.sources = {c: (s.column, c.split(":", 1)[1]) for i, s in enumerate(node.specs)
                        for c in agg.state_columns(s, i)}

    def process(self, batch: pd.DataFrame) -> pd.DataFrame | None:
        prepared = self._prepare(batch)
        if prepared is None:
            return None
        batch, keys, ts, task, _ = prepared
        gap, grace = self.window.size, self.window.grace
        sessions = self._sessions()
        stream_time = dict(self.stream_time)
        upserts, deletes, late, late_labels, forced = {}, set(), 0, [], {}
        key_rows = list(keys.itertuples(index=False, name=None))
        value_cols = {c: batch[col].tolist() if col is not None and col in batch else [None] * len(batch)
                      for c, (col, _) in self.sources.items()}
        for i, key in enumerate(key_rows):
            t, p = int(ts[i]), int(task[i])
            before = stream_time.get(p, -1)
            st = max(before, t)
            stream_time[p] = st
            mine = sessions.setdefault(key, [])
            # The session store only finds sessions inside its retention (gap + grace) of the stream
            # time before this record: a session old enough to be final is never merged into again.
            earliest_end = max(t - gap, before - gap - grace + 1)
            overlapping = sorted((x for x in mine if x["end"] >= earliest_end and x["start"] <= t + gap),
                                 key=lambda x: (x["end"], x["start"]))
            start = min([t] + [x["start"] for x in overlapping])
            end = max([t] + [x["end"] for x in overlapping])
            if end < st - grace - gap:
                late += 1
                late_labels.append(batch.index[i])
                continue
            state = {c: None for c in self.columns}
            for x in sorted(overlapping, key=lambda x: x["start"]):
                state = {c: agg.merge(c.split(":", 1)[1], state[c], x["state"][c]) for c in self.columns}
            state = {c: agg.merge(self.sources[c][1], state[c], agg.one(self.sources[c][1], value_cols[c][i]))
                     for c in self.columns}
            for x in overlapping:
                mine.remove(x)
                if x["start"] != start:
                    deletes.add(key + (x["start"],))
                upserts.pop(key + (x["start"],), None)
            new = {
                "start": start,
                "end": end,
                "state": state,
                "ts": max([t] + [x["ts"] for x in overlapping]),
                "task": p,
            }
            for old in [x for x in mine if x["start"] == start]:
                # A session already final (too old to merge into) that starts where the new one does:
                # Kafka Streams keys sessions by start and end and emitted it when it closed; the
                # store here is keyed by start, so emit it now, before the new session takes its place.
                mine.remove(old)
                if self.final and not old.get("emitted") and old["end"] + grace + gap <= before:
                    forced[key + (start,)] = old
            mine.append(new)
            upserts[key + (start,)] = new
            deletes.discard(key + (start,))
        # ---- commit ----
        self.stream_time = stream_time
        for p in set(task.tolist()):
            self.last_record_at[int(p)] = self.clock()
        self.late_drops += late
        if late_labels and self.node.late == "dead_letter":
            for label in late_labels:
                self.rejected[int(label)] = (
                    f"{self.name}: late record (its session ended before stream time - grace)"
                )
        removed = (
            self.store.frame.loc[self.store.frame.index.isin(list(deletes))]
            if deletes and len(self.store)
            else None
        )
        self.store.delete(pd.MultiIndex.from_tuples(list(deletes)) if deletes else [])
        changed = self._to_frame(upserts)
        if len(changed):
            self.store.upsert(changed)
        self.store.meta["stream_time"] = dict(self.stream_time)
        out = self._emit(changed)
        if forced:
            early = self._rows(self._to_frame(forced))
            out = early if out is None else pd.concat([early, out], ignore_index=True)
        if not self.final and removed is not None and len(removed):
            gone = self._rows(removed)
            gone["_tombstone"] = True
            out = gone if out is None else pd.concat([gone, out], ignore_index=True)
        return out

    def _sessions(self) -> dict:
        frame = self.store.frame
        sessions: dict = {}
        if frame.empty:
            return sessions
        for idx, row in zip(frame.index, frame.to_dict("records")):
            idx = idx if isinstance(idx, tuple) else (idx,)
            sessions.setdefault(idx[:-1], []).append(
                {
                    "start": int(idx[-1]),
                    "end": int(row[WE]),
                    "ts": int(row[TS]),
                    "task": int(row[TASK]),
                    "emitted": bool(row.get(EMITTED, False)),
                    "state": {c: row[c] for c in self.columns},
                }
            )
        return sessions

    def _to_frame(self, upserts: dict) -> pd.DataFrame:
        if not upserts:
            return pd.DataFrame()
        index = pd.MultiIndex.from_tuples(list(upserts), names=self.index_names)
        rows = [{**s["state"], WE: s["end"], TS: s["ts"], TASK: s["task"]} for s in upserts.values()]
        frame = pd.DataFrame(rows, index=index)
        if self.final:
            frame[EMITTED] = False
        return frame
