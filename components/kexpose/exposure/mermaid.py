"""The exposure graph as a Mermaid flowchart, for a pull request comment.

GitHub renders a fenced ``mermaid`` block in comments with Mermaid's strict security level: no
click handlers and no tooltips, so the rule ids are written into the labels. Every label is
quoted and every character outside a small safe set is written as a Mermaid entity code
(``#60;`` for ``<``, Mermaid flowchart syntax, "Entity codes to escape characters"), so no
name can close a label, start a link or inject markup. Node ids are generated (``n0``…).
"""

from __future__ import annotations

import re
from typing import Final

from kexpose.exposure.graph import ExposureGraph, Node
from kexpose.exposure.layout import clip

__all__ = ["mermaid_text", "render_mermaid"]

_SAFE: Final = re.compile(r"[A-Za-z0-9 ._:/*@,=+()\-→·✓✗!]")
_SHAPE: Final = {
    "internet": ('(("', '"))'),
    "entry": ('[/"', '"/]'),
    "controller": ('{{"', '"}}'),
    "host": ('(["', '"])'),
    "path": ('["', '"]'),
    "service": ('[["', '"]]'),
    "workload": ('[("', '")]'),
}
_CLASSES: Final = (
    "classDef pass fill:#e8f5e9,stroke:#2e7d32,color:#102027",
    "classDef advisory fill:#fff3e0,stroke:#b26a00,color:#102027",
    "classDef mandatory fill:#ffebee,stroke:#c62828,color:#102027,stroke-width:2px",
    "classDef missing stroke-dasharray:5 4",
)


def mermaid_text(text: str) -> str:
    """``text`` safe inside a quoted Mermaid label."""
    return "".join(c if _SAFE.fullmatch(c) else f"#{ord(c)};" for c in text)


def _label(node: Node) -> str:
    lines = [f"<b>{mermaid_text(clip(node.title, 320))}</b>"]
    lines += [mermaid_text(clip(d, 320)) for d in node.details[:3]]
    lines += [mermaid_text(" · ".join(b.label for b in node.badges))] if node.badges else []
    if node.missing:
        lines.append("not in stack")
    mandatory = sorted({f.rule for f in node.findings if f.enforcement == "mandatory"})
    advisory = sorted({f.rule for f in node.findings if f.enforcement != "mandatory"})
    verdict = " ".join([f"✗ {r}" for r in mandatory] + [f"! {r}" for r in advisory])
    lines.append(mermaid_text(verdict) if verdict else "✓ pass")
    return "<br/>".join(lines)


def render_mermaid(graph: ExposureGraph) -> str:
    """A ``flowchart LR`` with one subgraph per namespace (no code fence around it)."""
    ids = {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}
    out = [
        "flowchart LR",
        f"  %% kexpose map of stack {mermaid_text(graph.stack)} "
        f"({mermaid_text(graph.environment)})",
    ]

    def line(n: Node) -> str:
        left, right = _SHAPE[n.kind]
        return f"{ids[n.id]}{left}{_label(n)}{right}"

    for n in graph.nodes:
        if n.group is None:
            out.append("  " + line(n))
    for i, g in enumerate(graph.groups):
        out.append(f'  subgraph ns{i}["namespace {mermaid_text(g.name)}"]')
        out += ["    " + line(n) for n in graph.nodes if n.group == g.name]
        out.append("  end")
    for e in graph.edges:
        arrow = f'-- "{mermaid_text(e.label)}" -->' if e.label else "-->"
        out.append(f"  {ids[e.source]} {arrow} {ids[e.target]}")
    out += ["  " + c for c in _CLASSES]
    for verdict in ("pass", "advisory", "mandatory"):
        members = [ids[n.id] for n in graph.nodes if n.verdict == verdict]
        if members:
            out.append(f"  class {','.join(members)} {verdict}")
    missing = [ids[n.id] for n in graph.nodes if n.missing]
    if missing:
        out.append(f"  class {','.join(missing)} missing")
    return "\n".join(out) + "\n"
