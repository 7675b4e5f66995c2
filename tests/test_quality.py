"""Lint, format and type checks run with the suite, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.server import ROOT

pytestmark = pytest.mark.slow

PATHS = ["app", "tests", "scripts", "bench"]
CHECKS = {
    "ruff check": [sys.executable, "-m", "ruff", "check", *PATHS],
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", *PATHS],
    "mypy": [sys.executable, "-m", "mypy"],
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_code_passes(name: str) -> None:
    done = subprocess.run(CHECKS[name], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
