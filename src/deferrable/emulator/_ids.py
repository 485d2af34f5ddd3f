"""Identifiers in the providers' shapes (`msg_...`, `msgbatch_...`, `batch_...`, `file-...`)."""

from __future__ import annotations

import secrets


def new_id(prefix: str, length: int = 24) -> str:
    """A random identifier such as `msg_01a3f...`; unique for the emulator's lifetime."""
    return prefix + secrets.token_hex((length + 1) // 2)[:length]


def anthropic_request_id() -> str:
    """A value for Anthropic's `request-id` header."""
    return new_id("req_011C", 20)


def openai_request_id() -> str:
    """A value for OpenAI's `x-request-id` header."""
    return new_id("req_", 32)
