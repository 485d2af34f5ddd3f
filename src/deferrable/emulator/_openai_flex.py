"""Flex processing (``service_tier: "flex"``): which models offer it, and its two errors.

Neither error body is in the published spec. The flex guide names the refusal "429
Resource Unavailable" and says it is not billed; the 400 for a model without flex repeats
the message OpenAI's backend gives (``Unsupported service_tier: flex``, openai/codex#15099)
with the `param` and `code` the API uses for an unsupported value.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from ._errors import ApiError

FLEX_ENDPOINTS = ("/v1/chat/completions", "/v1/responses")
UNAVAILABLE_MESSAGE = ("Resource Unavailable: there is not enough flex processing capacity to "
                       "serve this request right now. Retry later, or send it with "
                       "service_tier 'auto' or 'default'.")
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def is_flex(endpoint: str, body: Mapping[str, Any]) -> bool:
    """Whether `body`, sent to `endpoint`, asks for flex processing."""
    return endpoint in FLEX_ENDPOINTS and body.get("service_tier") == "flex"


def offers_flex(models: Collection[str], model: str) -> bool:
    """Whether `model`, or the model a dated snapshot (``o3-2025-04-16``) belongs to, is
    one of `models`."""
    return model in models or _SNAPSHOT.sub("", model) in models


def unsupported() -> ApiError:
    """The 400 for flex on a model that does not offer it (no fallback to default)."""
    return ApiError(400, "Unsupported service_tier: flex", param="service_tier",
                    code="unsupported_value")


def unavailable() -> ApiError:
    """The 429 for a flex request that finds no capacity, with the emulator's 1 ms retry
    headers so that the SDK's own retries stay fast."""
    return ApiError(429, UNAVAILABLE_MESSAGE, code="resource_unavailable",
                    headers={"retry-after-ms": "1", "retry-after": "0"})
