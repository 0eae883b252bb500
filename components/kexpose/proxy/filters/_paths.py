"""``HTTPPathModifier``: the path a redirect or a rewrite sends a request to.

``ReplaceFullPath`` replaces the whole path. ``ReplacePrefixMatch`` replaces the part of the path
that the rule's ``PathPrefix`` match matched, element-wise, and keeps the rest; the spec's table
(``HTTPPathModifier.replacePrefixMatch``) is reproduced in the tests: the matched prefix's and
the replacement's trailing slashes do not count, and an empty result is ``/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["PathModifier", "replace_path"]

PathModifierType = Literal["ReplaceFullPath", "ReplacePrefixMatch"]


@dataclass(frozen=True, slots=True)
class PathModifier:
    type: PathModifierType
    value: str


def replace_path(path: str, modifier: PathModifier, matched_prefix: str | None) -> str:
    """The new path for ``path``; ``matched_prefix`` is the PathPrefix value the rule matched
    (required for ``ReplacePrefixMatch``, which routes only allow with a PathPrefix match)."""
    if modifier.type == "ReplaceFullPath":
        return modifier.value or "/"
    key = (matched_prefix or "/").rstrip("/")  # element-wise: the trailing slash does not count
    rest = path[len(key) :] if path.startswith(key) else path
    result = modifier.value.rstrip("/") + rest
    return result if result.startswith("/") else "/" + result
