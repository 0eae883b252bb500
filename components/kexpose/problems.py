"""Many problems, shown so that a person can read them: repeats grouped, with a summary.

A stack of 10,000 apps with the same mistake should say so in a few lines, not print 10,000
near-identical ones. Problems whose place differs only in list indices and quoted names
(``kexpose:apps[17].service.type`` and ``kexpose:apps[18].service.type``) and whose messages
are the same form one group; a group shows its first few places and how many more there are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

__all__ = ["SHOWN_PER_GROUP", "summarize"]

#: Places shown for each group of identical problems; the rest are counted.
SHOWN_PER_GROUP: Final = 3

_INDEX: Final = re.compile(r"\[\d+\]")
_QUOTED: Final = re.compile(r"'[^']*'")
_FILE_LINE: Final = re.compile(r":\d+:")


def _shape(text: str) -> str:
    return _QUOTED.sub("'*'", _FILE_LINE.sub(":*:", _INDEX.sub("[*]", text)))


def summarize(problems: Iterable[tuple[str, str]], *, title: str, indent: str = "  ") -> str:
    """``title (N problems)`` and one line per ``(place, message)``, repeats grouped.

    Groups keep the order of their first problem. A group larger than :data:`SHOWN_PER_GROUP`
    shows that many places, then ``... and K more like this``.
    """
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    count = 0
    for place, message in problems:
        count += 1
        groups.setdefault((_shape(place), _shape(message)), []).append((place, message))
    distinct = f", {len(groups):,} distinct" if len(groups) < count else ""
    lines = [f"{title} ({count:,} problem{'s' * (count != 1)}{distinct})"]
    for members in groups.values():
        for place, message in members[:SHOWN_PER_GROUP]:
            lines.append(f"{indent}- {place}: {message}")
        if len(members) > SHOWN_PER_GROUP:
            rest = len(members) - SHOWN_PER_GROUP
            lines.append(f"{indent}  ... and {rest:,} more like this ({_shape(members[0][0])})")
    return "\n".join(lines)
