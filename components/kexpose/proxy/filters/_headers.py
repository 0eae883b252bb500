"""``RequestHeaderModifier`` and ``ResponseHeaderModifier`` (``HTTPHeaderFilter``).

- ``set`` replaces every value of the header with one value (or adds it when absent);
- ``add`` appends a value, keeping those already there;
- ``remove`` drops every value of the named headers.

Names are case-insensitive (RFC 9110 §5.1). The spec does not order the three when they name
the same header; we remove, then set, then add (so ``set`` and ``add`` of one name leave two
values, and ``remove`` never undoes the filter's own ``set``), as Envoy applies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["HeaderModifier", "apply_header_modifier"]

Header = tuple[str, str]


@dataclass(frozen=True, slots=True)
class HeaderModifier:
    set: tuple[Header, ...] = ()
    add: tuple[Header, ...] = ()
    remove: tuple[str, ...] = ()
    """Lower-case names."""

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)


def apply_header_modifier(headers: Sequence[Header], modifier: HeaderModifier) -> list[Header]:
    """``headers`` (name, value) in order, changed as ``modifier`` says. Names keep their case
    as written; comparisons are case-insensitive."""
    drop = set(modifier.remove) | {name.lower() for name, _ in modifier.set}
    out = [(n, v) for n, v in headers if n.lower() not in drop]
    out.extend(modifier.set)
    out.extend(modifier.add)
    return out
