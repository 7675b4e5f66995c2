"""The README's promises, as a new user would try them: its serve command, curl lines and Python."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.server import ROOT, free_port, start, stop, wait_healthy

README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


@pytest.fixture(scope="module")
def readme_server() -> Iterator[str]:
    """The service started exactly as the README says, on a free port."""
    port = free_port()
    proc = start(["bash", "scripts/serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, timeout=300)
        yield url
    finally:
        stop(proc)


def test_readme_names_the_two_commands() -> None:
    setup = blocks("bash")[0]
    assert "scripts/serve" in setup and "scripts/test" in setup
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_readme_curl_lines_run_as_written(readme_server: str, tmp_path: Path) -> None:
    script = "\n".join(blocks("sh")).replace("http://127.0.0.1:8000", readme_server)
    assert script.count("curl ") >= 6
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert '"status":"ok"' in done.stdout
    with Image.open(tmp_path / "reduce64.png") as img:
        assert img.format == "PNG"
    with np.load(tmp_path / "catdog.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["conv_relu"][0] > 0, z["input"][0] > z["input"][1])
    assert '"shapes"' in done.stdout and '"weight": [16, 64]' not in done.stdout


def test_readme_python_example_runs(readme_server: str, tmp_path: Path) -> None:
    (code,) = blocks("python")
    done = subprocess.run(
        [sys.executable, "-c", code.replace("http://127.0.0.1:8000", readme_server)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "agreement 1.0" in done.stdout
