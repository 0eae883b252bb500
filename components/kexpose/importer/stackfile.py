"""Writing the imported stack as a Pulumi stack file, commented where a choice was made.

The file is what ``kexpose preview --stack NAME`` and ``pulumi up`` read: a ``config:`` mapping
with ``kexpose:environment``, ``kexpose:controller`` and ``kexpose:apps``. Above each app, a
comment says which Ingresses and Service it came from, and every ``CHOICE:`` the converter made
(a guessed selector, a TLS mode, a port name), so that a reviewer sees what to check.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any, Final

import yaml

from kexpose.importer.conversion import Conversion

__all__ = ["stack_file_text"]

_WIDTH: Final = 100


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, default_flow_style=False, width=_WIDTH)


def _comment(text: str, indent: str) -> list[str]:
    return [
        f"{indent}# {line}"
        for line in textwrap.wrap(text, width=_WIDTH - len(indent) - 2, break_on_hyphens=False)
    ]


def _indented(text: str, indent: str) -> list[str]:
    return [f"{indent}{line}" if line else line for line in text.rstrip("\n").splitlines()]


def stack_file_text(conversion: Conversion, *, sources: Sequence[str]) -> str:
    """The stack file for ``conversion``; ``sources`` names what was read (for the header)."""
    counts = {v: 0 for v in ("converted", "approximated", "not-convertible", "refused")}
    for item in conversion.items:
        if item.verdict in counts:
            counts[item.verdict] += 1
    lines = [
        *_comment(
            "Written by `kexpose import` from "
            + ", ".join(sources)
            + f" for {conversion.environment}. "
            + ", ".join(f"{n} {v}" for v, n in counts.items())
            + " (see the migration report). Review every CHOICE below before `pulumi up`: "
            "kexpose will own these Services and Ingresses.",
            "",
        ),
        "config:",
        f"  kexpose:environment: {conversion.environment}",
        *_comment(conversion.api_reason, "  "),
        "  kexpose:controller:",
        *_indented(_dump(dict(conversion.controller)), "    "),
        "  kexpose:apps:" + ("" if conversion.apps else " []"),
    ]
    for app in conversion.apps:
        origin = (
            f"app {app.namespace}/{app.name}: Ingress {', '.join(app.sources)}"
            if app.sources
            else f"app {app.namespace}/{app.name}: a Service other apps' Ingresses route to"
        )
        lines += _comment(origin, "    ")
        for c in app.comments:
            lines += _comment(c, "    ")
        lines += _indented(_dump([app.raw()]), "    ")
    return "\n".join(lines) + "\n"
