"""Reading raw Kubernetes JSON that may be malformed: a value of the wrong type reads as empty.

The Gateway API translators (``_gateway``, ``_httproute``, ``_grants``, ``_addresses``) read
objects whose shape only metadata checks vouch for (``_shape``); a field of the wrong type is
then reported in the object's status, never raised. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["entries", "mapping", "text"]


def mapping(value: object) -> Mapping[str, Any]:
    """``value`` if it is an object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def entries(value: object) -> list[Mapping[str, Any]]:
    """The objects of a list (other items skipped); ``[]`` for anything but a list."""
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def text(value: object) -> str | None:
    """``value`` if it is a string."""
    return value if isinstance(value, str) else None
