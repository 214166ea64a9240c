"""`streamframe install-kernel`: the kernel spec it installs, and a real kernel started from it.

Everything goes into temporary prefixes / data dirs; nothing is installed for the user running the tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from streamframe import cli

REPO = Path(__file__).resolve().parents[2]
ARGV = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--ext=streamframe"]


def _spec(kernels: Path, name: str) -> dict:
    return json.loads((kernels / name / "kernel.json").read_text())


def test_install_into_a_prefix(tmp_path, capsys):
    rc = cli.main(["install-kernel", "--prefix", str(tmp_path), "--name", "sf-test",
                   "--env", "STREAMFRAME_BOOTSTRAP=127.0.0.1:9092"])  # fmt: skip
    assert rc == 0
    kernels = tmp_path / "share" / "jupyter" / "kernels"
    spec = _spec(kernels, "sf-test")
    assert spec["argv"] == ARGV  # this interpreter, and ipykernel runs %load_ext streamframe at start
    assert spec["display_name"] == "Python 3 (streamframe)" and spec["language"] == "python"
    assert spec["env"] == {"STREAMFRAME_BOOTSTRAP": "127.0.0.1:9092"}
    assert (kernels / "sf-test" / "logo-64x64.png").exists()
    assert (
        f"installed kernel 'sf-test' (Python 3 (streamframe)) in {kernels / 'sf-test'}"
        in capsys.readouterr().out
    )


def test_user_install_is_the_default(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    assert cli.main(["install-kernel", "--display-name", "Kafka notebooks"]) == 0
    spec = _spec(tmp_path / "data" / "kernels", "streamframe")
    assert spec["argv"] == ARGV and spec["display_name"] == "Kafka notebooks" and "env" not in spec


def test_the_template_in_extension_is_the_built_in_spec():
    # extension/kernel.json is what a source checkout installs; KERNEL_SPEC what a wheel installs.
    assert json.loads((REPO / "extension" / "kernel.json").read_text()) == cli.KERNEL_SPEC


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--name", "not ok"], "kernel name 'not ok' may only contain"),
        (["--env", "NOEQUALS"], "--env takes KEY=VALUE"),
    ],
)
def test_bad_arguments(tmp_path, capsys, argv, message):
    assert cli.main(["install-kernel", "--prefix", str(tmp_path), *argv]) == 2
    assert message in capsys.readouterr().err


def test_the_installed_kernel_preloads_streamframe(tmp_path):
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    assert cli.main(["install-kernel", "--prefix", str(tmp_path), "--name", "sf-live"]) == 0
    kernels = KernelSpecManager(kernel_dirs=[str(tmp_path / "share" / "jupyter" / "kernels")])
    km = KernelManager(kernel_name="sf-live", kernel_spec_manager=kernels)
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            out: list[str] = []
            code = (
                "import sys, json; ip = get_ipython()\n"
                "print(json.dumps({'loaded': sorted(ip.extension_manager.loaded), 'python': sys.executable,"
                " 'magics': sorted(ip.magics_manager.magics['cell'])}))"
            )
            reply = kc.execute_interactive(
                code, timeout=60,
                output_hook=lambda m: (out.append(m["content"].get("text", ""))
                                       if m["msg_type"] == "stream" else None),
            )  # fmt: skip
        finally:
            kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", reply["content"]
    state = json.loads("".join(out))
    assert "streamframe" in state["loaded"]
    assert {"connect", "kafka_produce"} <= set(state["magics"])  # the extension's cell magics are there
    assert state["python"] == sys.executable
