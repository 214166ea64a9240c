"""Hold Python's cyclic garbage collector off while a batch is read and processed.

A batch is hundreds of thousands of short-lived objects (one `Message` per record, its keys and
values, pandas' internals); each allocation counts towards the collector's next pass, so a running
collector makes many passes over the same young objects, none of which finds garbage (a batch's
objects form no cycles). Paused per batch, the objects are looked at once, after it. The runtime
pauses it while it processes a batch, and while it polls only when records are waiting (the last poll
came back full): an idle query, waiting in poll, leaves the collector on for the rest of the process.

The collector is process-wide: pausing it in one thread pauses it in all. That only postpones passes,
never loses one, and it is turned back on only if it was on, so a user's `gc.disable()` stands.
"""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused(pause: bool = True):
    """Within the block, no automatic collection (when `pause`); the collector is back on after."""
    if not pause:
        yield
        return
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
