"""Testing helpers for frames: `TestDriver` runs a topology in process, with no broker."""

from streamframe.runtime.testing import TestDriver

__all__ = ["TestDriver"]
