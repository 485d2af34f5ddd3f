"""deferrable: pay half price for LLM calls nobody is waiting on.

Calls to the official SDKs made inside an `@deferrable` function or a `scope()` are
buffered, sent through the providers' batch APIs, and resolved with exactly what the
live call would have returned.
"""

from importlib.metadata import version as _version

from . import _exit  # noqa: F401 - installs the exit hook
from ._api import aflush, flush, scope
from ._decorator import deferrable
from ._deferred import Deferred
from ._errors import (
    BatchCanceledError,
    BatchExpiredError,
    BatchSubmissionError,
    BatchValidationError,
    BudgetExceededError,
    DeadlineExceededError,
    DeferrableError,
    JournalCorruptError,
    JournalError,
    LiveCallError,
    MissingResultError,
)
from ._executor import ThreadPoolExecutor
from ._map import map
from ._options import Options, configure
from ._patching import observe, patch, unpatch
from ._scope import live

__version__ = _version("deferrable")

__all__ = [
    "BatchCanceledError",
    "BatchExpiredError",
    "BatchSubmissionError",
    "BatchValidationError",
    "BudgetExceededError",
    "DeadlineExceededError",
    "DeferrableError",
    "Deferred",
    "JournalCorruptError",
    "JournalError",
    "LiveCallError",
    "MissingResultError",
    "Options",
    "ThreadPoolExecutor",
    "__version__",
    "aflush",
    "configure",
    "deferrable",
    "flush",
    "live",
    "map",
    "observe",
    "patch",
    "scope",
    "unpatch",
]
