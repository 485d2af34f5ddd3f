"""The provider-neutral batching engine (imports no SDK)."""

from ._buffer import Buffer, GroupLimits
from ._engine import Call, Engine, Outcome, RequestRejectedError, Target, engine

__all__ = ["Buffer", "Call", "Engine", "GroupLimits", "Outcome", "RequestRejectedError", "Target", "engine"]
