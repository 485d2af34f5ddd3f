"""The SDK versions deferrable supports: the ranges its package metadata declares, checked
before an SDK is patched (its private names may move in a release outside them)."""

from __future__ import annotations

import functools
from importlib import metadata


@functools.cache
def unsupported(provider: str) -> str | None:
    """Why the installed `provider` SDK is outside the range deferrable declares for it,
    or None when it is inside (or either cannot be known: deferrable run from a source
    tree without its metadata)."""
    try:
        installed = metadata.version(provider)
        declared = metadata.requires("deferrable") or []
    except metadata.PackageNotFoundError:
        return None
    return outside(provider, installed, declared)


def outside(provider: str, installed: str, declared: list[str]) -> str | None:
    """Why `installed` (a version of `provider`) does not meet the requirement on it among
    `declared` (requirement strings), or None when it does or none names it."""
    from packaging.requirements import InvalidRequirement, Requirement  # only once patching
    from packaging.version import InvalidVersion, Version

    for text in declared:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.name != provider or requirement.marker is not None:
            continue
        try:
            version = Version(installed)
        except InvalidVersion:
            return f"{provider} {installed} is not a version deferrable can compare"
        if not requirement.specifier.contains(version, prereleases=True):
            return (f"{provider} {installed} is outside the versions deferrable supports "
                    f"({requirement.specifier})")
    return None
