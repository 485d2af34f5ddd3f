"""`deferrable demo`: the main job, on the embedded emulator (placeholder)."""

from __future__ import annotations


def run_demo(*, requests: int = 2000, batch_latency: float = 1.0) -> int:
    """Run the demo; returns the process exit status."""
    raise NotImplementedError
