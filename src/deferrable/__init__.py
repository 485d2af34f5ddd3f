"""deferrable: pay half price for LLM calls nobody is waiting on."""

from importlib.metadata import version as _version

__version__ = _version("deferrable")

__all__ = ["__version__"]
