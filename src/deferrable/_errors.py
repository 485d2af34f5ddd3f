"""Exceptions for outcomes only a batch can have. A request the provider rejects raises
the SDK's own exception class instead, exactly as the live call would."""

from __future__ import annotations


class DeferrableError(Exception):
    """Base class of every exception `deferrable` raises itself."""


class BatchExpiredError(DeferrableError):
    """The provider did not process the request before its batch expired (24 h)."""


class BatchCanceledError(DeferrableError):
    """The request's batch was canceled before the request ran."""


class MissingResultError(DeferrableError):
    """The batch ended but its results never named this request."""


class BatchSubmissionError(DeferrableError):
    """The batch holding the request could not be created or followed to its end."""


class BatchValidationError(DeferrableError):
    """The provider refused the request's batch as a whole while validating it (an OpenAI
    batch that ends `failed`). `code` and `line` name the problem when the provider
    blamed this request's line; otherwise the message is the batch's."""

    def __init__(self, message: str, *, code: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.line = line


class JournalError(DeferrableError):
    """The journal cannot be used: its location, its lock, or its contents."""


class JournalCorruptError(JournalError):
    """The journal holds contents deferrable did not write: refused unread, never run."""


class BudgetExceededError(DeferrableError):
    """A call could take its scope's spend past the scope's `max_cost_usd`; it was not
    made, and nothing was submitted for it."""


class DeadlineExceededError(DeferrableError):
    """A call's batch had not ended by the call's deadline (less `rescue_margin`), in a
    scope with ``on_deadline="raise"`` or ``strict=True``: no live call was made for it."""


class LiveCallError(DeferrableError):
    """A call inside a ``strict=True`` scope would have gone live (at full price); it was
    not made. The message names the call site and the reason."""
