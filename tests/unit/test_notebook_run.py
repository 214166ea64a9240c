"""`streamframe run nb.ipynb` without a broker (frames over pandas): the cells run as in a kernel started
for the notebook (its folder is the working directory and importable), `!` lines run, `%pip` is
skipped with a log line, and a displayed frame starts its query. The broker cases are in
tests/integration/test_notebook_run.py."""

from __future__ import annotations

import re
import subprocess
import sys

import nbformat
import pandas as pd
from nbformat.v4 import new_code_cell, new_notebook


def test_cells_run_beside_the_notebook_and_a_displayed_frame_starts_its_query(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    df = pd.DataFrame({"x": [3, 1, 4, 1, 5, 9, 2, 6]})
    df.to_csv(folder / "data.csv", index=False)
    (folder / "settings.py").write_text("THRESHOLD = 2\n")
    cells = ["import pandas as pd\nimport streamframe as sf\nfrom settings import THRESHOLD",
             "df = pd.read_csv('data.csv')",
             "%pip install no-such-package\n!echo the shell ran",
             "s = sf.from_pandas(df)\ns[s.x > THRESHOLD].assign(y=s.x * 2)"]
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), str(folder / "nb.ipynb"))
    proc = subprocess.run([sys.executable, "-m", "streamframe.cli", "run", "project/nb.ipynb"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "the shell ran" in proc.stdout
    assert "streamframe: skipped %pip install no-such-package" in proc.stderr
    started = re.search(r"a displayed StreamFrame started query (\S+)", proc.stderr)
    assert started, proc.stderr
    want = df[df.x > 2]
    assert 0 < len(want) < len(df)
    assert re.search(rf"query {re.escape(started.group(1))}: finished, {len(df)} records in, "
                     rf"{len(want)} out", proc.stdout), proc.stdout
