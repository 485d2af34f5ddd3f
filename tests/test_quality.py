"""The code base stays clean: ruff on everything, mypy strict on the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a tool of the test extra from the project root, capturing its output."""
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True,
                          text=True, check=False, timeout=600)


def test_ruff_finds_nothing() -> None:
    """`ruff check` passes on src, tests and benchmarks."""
    result = run("ruff", "check", "src", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_finds_nothing() -> None:
    """`mypy` (strict, configured in pyproject.toml) passes on src."""
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
