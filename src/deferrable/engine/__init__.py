"""The provider-neutral batching engine (imports no SDK)."""

from ._buffer import Buffer, GroupLimits
from ._engine import Engine, engine
from ._lifecycle import TRANSIENT_STATUSES
from ._target import BatchStatus, Call, Outcome, RequestRejectedError, Target

__all__ = ["TRANSIENT_STATUSES", "BatchStatus", "Buffer", "Call", "Engine", "GroupLimits", "Outcome",
           "RequestRejectedError", "Target", "engine"]
