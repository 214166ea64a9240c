"""The stores of one query: created by operators at open, restored as they are created, checkpointed.

Names are stable across processes and sessions: `{query}-{position}-{kind}` where position is the
operator's place in the topology, so a restarted query finds its state in its SQLite file and in its
changelog topics `{app_id}-{store}-changelog`.
"""

from __future__ import annotations

import logging
import re

from streamframe.state.durable import Changes, SqliteState, changelog_records, replay_changelog
from streamframe.state.store import TableStore

log = logging.getLogger("streamframe.state")


class StoreManager:
    def __init__(self, query_name: str, positions: dict[int, int]):
        self.query_name = query_name
        self.positions = positions
        self.stores: dict[str, TableStore] = {}
        self.durable: SqliteState | None = None
        self.changelog = None  # a callable(topic) -> records, when restoring from Kafka
        self.app_id = "streamframe"
        self.restored_offsets: dict = {}
        self._from_file = False

    def attach(self, durable: SqliteState | None, app_id: str, read_changelog) -> None:
        """Make the stores durable: load them from `durable` or, if it holds nothing, from changelogs."""
        self.durable, self.app_id, self.changelog = durable, app_id, read_changelog
        self._from_file = durable is not None and not durable.is_empty()
        if self._from_file:
            self.restored_offsets = durable.offsets()

    def reset(self) -> None:
        """Forget the stores (an aborted transaction's changes with them); attach() restores them anew."""
        self.stores.clear()
        self.restored_offsets = {}
        self._from_file = False

    def changelog_topic(self, store: TableStore) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", f"{self.app_id}-{store.name}-changelog")

    def name(self, node, suffix: str = "") -> str:
        name = f"{self.query_name}-{self.positions[node.id]}-{node.kind.lower()}"
        return f"{name}-{suffix}" if suffix else name

    def opened(self, node, suffix: str = "") -> TableStore | None:
        """The store `node`'s operator opened (operators open parents first), or None."""
        return self.stores.get(self.name(node, suffix)) if node.id in self.positions else None

    def store(self, op, index_names, suffix: str = "", kind: type[TableStore] = TableStore) -> TableStore:
        """`op`'s store (a `kind`: TableStore or a subclass with the same protocol), restored."""
        name = self.name(op.node, suffix)
        store = kind(name, index_names)
        self.stores[name] = store
        if self._from_file:
            self.durable.load(store)
        elif self.changelog is not None:
            records = self.changelog(self.changelog_topic(store))
            if records:
                offsets = replay_changelog(store, records)
                log.info("store %s rebuilt from its changelog: %d rows", name, len(store))
                if self.durable is not None:  # else the file would hold only the rows changed from now on
                    self.durable.replace(store)
                for k, v in offsets.items():
                    self.restored_offsets[k] = min(v, self.restored_offsets.get(k, v))
        return store

    def changed(self) -> bool:
        """Any store written since the last checkpoint."""
        return any(store.changed for store in self.stores.values())

    def checkpoint(self, offsets: dict, produce) -> list:
        """Send each store's changes to its changelog (via `produce(topic, [(key, value), ...])`, in
        order) and return them for the SQLite transaction that follows the flush."""
        changes = []
        for store in self.stores.values():
            change = Changes.of(*store.take_changes())
            changes.append((store, change))
            if produce is not None:
                produce(self.changelog_topic(store), changelog_records(store, change, offsets))
        return changes
