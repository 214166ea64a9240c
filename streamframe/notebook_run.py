"""A notebook run headless: its code cells in order in an IPython shell, with no kernel and no display.

    >>> from streamframe.notebook_run import run_notebook
    >>> run_notebook("analysis.ipynb")          # doctest: +SKIP
    3

`streamframe run analysis.ipynb` calls this, then keeps the queries and connectors the cells started
running exactly as after a script (cli.py). The cells run as in Jupyter: `%load_ext streamframe` first,
so every magic works; the notebook's folder is the working directory and on `sys.path`, as a kernel
started for it has them. What Jupyter would display is not drawn: a displayed frame (a cell's last
expression, or `display(frame)`) starts its query, as its live view does; everything else shown (bounded
results, widgets, charts) is dropped. `!cmd` lines run, as `jupyter nbconvert --execute` runs them;
`%pip` and `%conda` lines are skipped with a log line, since packages belong in the image a deployment
is built from, not in each of N processes starting side by side.

A cell that fails stops the run with a NotebookError of one line: the cell (counted among code cells, so
cell 3 is the `In [3]` of a fresh Run All), the line in it and the exception; no traceback.

May import every layer below (frames, session, ...); only cli.py imports it (pyproject [tool.importlinter]).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from streamframe.errors import ConfigError, NotebookError

#: Magics a deployment must not run at each start; each is skipped with a log line.
SKIPPED_MAGICS = ("pip", "conda", "mamba", "micromamba")


def log(message: str) -> None:
    print(f"streamframe: {message}", file=sys.stderr, flush=True)


def read_cells(path: str | os.PathLike) -> list[str]:
    """The sources of the notebook's code cells, in order (markdown and raw cells are not run)."""
    import nbformat

    try:
        nb = nbformat.read(os.fspath(path), as_version=4)
    except FileNotFoundError:
        raise ConfigError(f"no notebook at {os.fspath(path)!r}") from None
    except (ValueError, nbformat.reader.NotJSONError) as exc:  # not JSON, or not a notebook's JSON
        raise ConfigError(f"{os.fspath(path)} is not a readable notebook: {exc}") from None
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def run_notebook(path: str | os.PathLike) -> int:
    """Run the notebook's code cells in order; return how many ran. Raises NotebookError on the first
    cell that fails (KeyboardInterrupt as it is: SIGTERM stops a run between or inside cells)."""
    path = Path(path).resolve()
    cells = read_cells(path)
    os.chdir(path.parent)
    sys.path.insert(0, str(path.parent))
    shell = _shell()
    started = _start_displayed_frames(shell)
    for number, source in enumerate(cells, start=1):
        started.errors.clear()
        result = shell.run_cell(source, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if isinstance(error, KeyboardInterrupt):
            raise error
        if error is None and started.errors:
            error = started.errors[0]
        if error is not None:
            what = error.msg if isinstance(error, SyntaxError) else error  # str() adds the cell's file name
            raise NotebookError(f"{path.name}, cell {number}{_line(shell, error)}: "
                                f"{type(error).__name__}: {what}")
    log(f"{path.name}: ran its {len(cells)} code cells")
    return len(cells)


def _shell():
    """An IPython shell that shows nothing, keeps no history file, with the streamframe magics."""
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Unshown(DisplayHook):
        """Formats a cell's result (so a frame's display starts its query) but prints nothing."""

        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            pass

    class Unpublished(DisplayPublisher):
        """`display(...)` of anything: formatted (a frame starts its query), published nowhere."""

        def publish(self, data, metadata=None, *args, **kwargs):
            pass

        def clear_output(self, wait=False):
            pass

    class HeadlessShell(InteractiveShell):
        displayhook_class = Unshown
        display_pub_class = Unpublished

        # run_notebook reports a failing cell in one line; IPython's traceback would come first.
        def showtraceback(self, *args, **kwargs):
            pass

        def showsyntaxerror(self, *args, **kwargs):
            pass

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = HeadlessShell.instance(config=config)
    shell.extension_manager.load_extension("streamframe")
    for name in SKIPPED_MAGICS:
        shell.register_magic_function(_skipped(name), "line", name)
    return shell


def _skipped(name: str):
    def magic(line: str) -> None:
        log(f"skipped %{name} {line.strip()} (install packages where the deployment is built)")

    return magic


class _Started:
    """The frame printer of the headless shell: a displayed frame starts its query. An error starting it
    is kept here (IPython swallows a printer's errors) so that the cell fails."""

    def __init__(self):
        self.errors: list[BaseException] = []

    def __call__(self, frame) -> None:
        try:
            query = frame.start()
        except Exception as exc:  # noqa: BLE001 - reported as the cell's failure by run_notebook
            self.errors.append(exc)
        else:
            log(f"a displayed {type(frame).__name__} started query {query.name}")


def _start_displayed_frames(shell) -> _Started:
    from streamframe.frames.base import Frame

    started = _Started()
    shell.display_formatter.ipython_display_formatter.for_type(Frame, started)
    return started


def _line(shell, error: BaseException) -> str:
    """", line N" of the cell where `error` was raised, or "" when it is not known."""
    if isinstance(error, SyntaxError) and error.lineno:
        return f", line {error.lineno}"
    line, tb = None, error.__traceback__
    while tb is not None:  # the innermost frame that is the cell's own code
        if shell.compile.format_code_name(tb.tb_frame.f_code.co_filename) is not None:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f", line {line}" if line else ""
