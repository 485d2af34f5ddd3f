"""Anthropic routes (placeholder)."""

from aiohttp import web

from ._state import EmulatorState


def routes(state: EmulatorState) -> list[web.RouteDef]:
    """Anthropic's routes."""
    return []
