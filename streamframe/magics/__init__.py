"""IPython magics of streamframe. Placeholder until the magics land."""

from __future__ import annotations


def load_ipython_extension(ipython) -> None:
    pass
