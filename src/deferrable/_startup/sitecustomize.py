"""Observe mode in a program that never imports deferrable, for `deferrable observe`.

`deferrable observe -- python job.py` puts this directory first on ``PYTHONPATH``, so each
Python process of the program imports this module at startup (``site`` does). With
``DEFERRABLE_OBSERVE`` on (the command sets it) it imports deferrable and calls
``deferrable.observe()``; then it runs the ``sitecustomize`` it hides, if there is one
further along ``sys.path``, as if this one were not there.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

_ON = ("1", "true", "yes", "on")


def _observe() -> None:
    if os.environ.get("DEFERRABLE_OBSERVE", "").strip().lower() not in _ON:
        return
    try:
        import deferrable
    except ImportError as error:  # another interpreter, without deferrable
        sys.stderr.write(f"deferrable observe: {sys.executable} cannot import deferrable "
                         f"({error}); the calls of this process are not recorded\n")
        return
    deferrable.observe()


def _chain() -> None:
    """Run the next ``sitecustomize`` on ``sys.path`` (this directory left out) in our place."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


try:
    _observe()
finally:
    _chain()
