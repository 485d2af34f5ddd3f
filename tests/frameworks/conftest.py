"""The emulator the framework tests share, kept up until the test's batch files are deleted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deferrable.emulator import Emulator
from deferrable.engine import engine


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator that outlives the deletions of the batch files the test made."""
    with Emulator() as emu:
        yield emu
        engine().finish_cleanups()
