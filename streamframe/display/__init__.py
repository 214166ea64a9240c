"""How frames show in a notebook. Placeholder until the live view lands: shows the topology."""

from __future__ import annotations


def show(frame) -> None:
    from IPython.display import display

    display(frame.explain())
