"""A local emulator of Anthropic's and OpenAI's APIs, batch endpoints included.

It is a real HTTP server that the official SDKs reach through `base_url` and cannot
tell from the service. It imports nothing from the rest of `deferrable`, so that it can
judge the library honestly.
"""

from ._cache import CacheUse
from ._config import FLEX_MODELS, Faults, Hold, HttpFault, Limits, Quirks
from ._responder import Prompt, Responder, count_tokens, default_responder
from ._server import Emulator

__all__ = [
    "FLEX_MODELS",
    "CacheUse",
    "Emulator",
    "Faults",
    "Hold",
    "HttpFault",
    "Limits",
    "Prompt",
    "Quirks",
    "Responder",
    "count_tokens",
    "default_responder",
]
