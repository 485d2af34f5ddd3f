"""What a provider adapter hands the patches for a call a batch can serve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..engine import Target


@dataclass(frozen=True)
class Deferral:
    """A call the batch API can serve: where it goes, its batch body, its size in bytes,
    and its units (the provider's own per-call count, see `Target.max_units`)."""

    target: Target
    params: Any
    size: int
    units: int = 1
