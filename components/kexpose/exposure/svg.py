"""The exposure graph as one SVG document: boxes, edges, namespace bands, verdict colours.

Every name from the stack (hosts, paths, labels, images) reaches the markup only through
``escape`` (XML 1.0 §2.4 character data, §3.3.3 attribute values), so a host such as
``<script>`` is drawn as text. Element ids are generated (``n0``, ``e0``, ``ns0``), never taken
from names. Hover text is the SVG ``<title>`` child (SVG 2 §5.9), which browsers show as a
tooltip: the rule ids and messages of each node's findings are there.
"""

from __future__ import annotations

import html
from typing import Final

from kexpose.exposure.graph import ExposureGraph, Node, Tone, Verdict
from kexpose.exposure.layout import (
    BADGE_H,
    BAND_HEADER,
    CHAR_W,
    HEAD,
    LINE,
    VERDICT_H,
    Layout,
    badge_rows,
    clip,
    detail_lines,
    layout,
)

__all__ = ["VERDICT_COLOURS", "dom_ids", "escape", "render_svg"]

#: Stroke and fill per verdict; colour-blind safe enough with the ✓ / ! / ✗ marks beside them.
VERDICT_COLOURS: Final[dict[Verdict, tuple[str, str]]] = {
    "pass": ("#2e7d32", "#e8f5e9"),
    "advisory": ("#b26a00", "#fff3e0"),
    "mandatory": ("#c62828", "#ffebee"),
}
_MARK: Final[dict[Verdict, str]] = {"pass": "✓", "advisory": "!", "mandatory": "✗"}
_TONES: Final[dict[Tone, tuple[str, str]]] = {
    "good": ("#1b5e20", "#e8f5e9"),
    "warn": ("#8a4b00", "#fff3e0"),
    "bad": ("#b71c1c", "#ffebee"),
    "info": ("#37474f", "#eceff1"),
}
_CAPTION: Final = {
    "internet": "INTERNET",
    "entry": "ENTRY",
    "controller": "INGRESS CONTROLLER",
    "host": "HOST",
    "path": "PATH",
    "service": "SERVICE",
    "workload": "WORKLOAD",
}
_FONT: Final = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
_MONO: Final = "ui-monospace, 'DejaVu Sans Mono', Menlo, monospace"


def escape(text: object) -> str:
    """Text safe as XML/HTML character data and as a quoted attribute value."""
    s = str(text)
    # Control characters other than tab/newline are not allowed in XML 1.0 at all.
    s = "".join(c if c >= " " or c in "\t\n" else "\ufffd" for c in s)
    return html.escape(s, quote=True)


def dom_ids(graph: ExposureGraph) -> dict[str, str]:
    """Graph node id → the element id the SVG gives it."""
    return {n.id: f"n{i}" for i, n in enumerate(graph.nodes)}


def _tooltip(node: Node) -> str:
    lines = [f"{_CAPTION[node.kind].lower()}: {node.title}", *node.details]
    lines += [f"{b.label}{' (' + b.detail + ')' if b.detail else ''}" for b in node.badges]
    if node.missing:
        lines.append("not part of this stack")
    if not node.exposed and node.kind != "internet":
        lines.append("internal: not reached from the internet")
    lines += [f"objects: {', '.join(node.objects)}"] if node.objects else []
    if node.findings:
        lines += [
            f"{_MARK['mandatory' if f.enforcement == 'mandatory' else 'advisory']} "
            f"{f.enforcement} {f.rule}: {f.message}"
            for f in node.findings
        ]
    else:
        lines.append("✓ no policy findings")
    return "\n".join(lines)


def _verdict_text(node: Node) -> str:
    if not node.findings:
        return "✓ policy: pass"
    mandatory = sorted({f.rule for f in node.findings if f.enforcement == "mandatory"})
    advisory = sorted({f.rule for f in node.findings if f.enforcement != "mandatory"})
    parts = [f"✗ {r}" for r in mandatory] + [f"! {r}" for r in advisory]
    return " ".join(parts)


def _node(node: Node, dom_id: str, lay: Layout) -> list[str]:
    box = lay.boxes[node.id]
    stroke, fill = VERDICT_COLOURS[node.verdict]
    classes = ["node", f"kind-{node.kind}", f"verdict-{node.verdict}"]
    classes += ["missing"] if node.missing else []
    classes += ["internal"] if not node.exposed else []
    rules = " ".join(sorted({f.rule for f in node.findings}))
    out = [
        f'<g id="{dom_id}" class="{" ".join(classes)}"'
        f' transform="translate({box.x:.1f},{box.y:.1f})"'
        f' data-kind="{node.kind}" data-group="{escape(node.group or "")}"'
        f' data-title="{escape(node.title)}" data-rules="{escape(rules)}"'
        f' data-search="{escape(node.search_text())}" tabindex="0">',
        f"<title>{escape(_tooltip(node))}</title>",
        f'<rect class="frame" width="{box.w:.0f}" height="{box.h:.0f}" rx="7" fill="#ffffff"'
        f' stroke="{stroke}" stroke-width="{2 if node.findings else 1.4}"'
        + (' stroke-dasharray="5 4"' if node.missing else "")
        + "/>",
        f'<rect width="6" height="{box.h:.0f}" rx="3" fill="{stroke}"/>',
    ]
    inner = box.w - 16
    caption = _CAPTION[node.kind] + (" · internal" if not node.exposed else "")
    caption += " · not in stack" if node.missing else ""
    out.append(
        f'<text x="12" y="14" font-size="9.5" letter-spacing="0.8" fill="#607d8b"'
        f' font-family="{_FONT}">{escape(caption)}</text>'
    )
    out.append(
        f'<text class="title" x="12" y="30" font-size="13" font-weight="600" fill="#102027"'
        f' font-family="{_FONT}">{escape(clip(node.title, inner, 7.6))}</text>'
    )
    y = HEAD
    for line in detail_lines(node, inner):
        y += LINE
        # Continuation lines are indented by their x, since SVG collapses leading spaces.
        indent = 12 + (2 * CHAR_W if line.startswith("  ") else 0)
        out.append(
            f'<text x="{indent:.1f}" y="{y - 3:.0f}" font-size="11" fill="#37474f"'
            f' font-family="{_MONO}">{escape(line.strip())}</text>'
        )
    for row in badge_rows(node.badges, inner):
        x = 12.0
        for badge, w in row:
            colour, bg = _TONES[badge.tone]
            out.append(
                f'<g class="badge tone-{badge.tone}"><rect x="{x:.0f}" y="{y + 2:.0f}"'
                f' width="{w:.0f}" height="{BADGE_H - 2:.0f}" rx="8" fill="{bg}"'
                f' stroke="{colour}" stroke-width="0.6"/><text x="{x + 6:.0f}" y="{y + 14:.0f}"'
                f' font-size="10" fill="{colour}" font-family="{_FONT}">'
                f"{escape(clip(badge.label, w - 10, 6.0))}</text></g>"
            )
            x += w + 4
        y += BADGE_H + 2
    out.append(
        f'<rect x="6" y="{y + 3:.0f}" width="{box.w - 6:.0f}" height="{VERDICT_H:.0f}"'
        f' fill="{fill}"/>'
        f'<text class="verdict" x="12" y="{y + 16:.0f}" font-size="10.5" font-weight="600"'
        f' fill="{stroke}" font-family="{_FONT}">{escape(clip(_verdict_text(node), inner, 6.4))}'
        "</text>"
    )
    out.append("</g>")
    return out


def render_svg(graph: ExposureGraph, lay: Layout | None = None) -> str:
    """A standalone SVG document (no scripts, no external references)."""
    lay = lay or layout(graph)
    ids = dom_ids(graph)
    titles = {n.id: n.title for n in graph.nodes}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="kexpose-map" width="{lay.width:.0f}"'
        f' height="{lay.height:.0f}" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" role="img"'
        f' aria-label="{escape(f"exposure map of stack {graph.stack} ({graph.environment})")}">',
        f"<title>{escape(f'kexpose exposure map: stack {graph.stack} ({graph.environment})')}"
        "</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"'
        ' markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"'
        ' fill="#78909c"/></marker></defs>',
        '<g class="bands">',
    ]
    for i, band in enumerate(lay.bands):
        group = next(g for g in graph.groups if g.name == band.name)
        mark = ""
        if group.findings:
            worst: Verdict = (
                "mandatory"
                if any(f.enforcement == "mandatory" for f in group.findings)
                else "advisory"
            )
            mark = f" {_MARK[worst]} " + " ".join(sorted({f.rule for f in group.findings}))
        tip = f"namespace {band.name}" + "".join(
            f"\n{f.enforcement} {f.rule}: {f.message}" for f in group.findings
        )
        out.append(
            f'<g class="band" id="ns{i}" data-namespace="{escape(band.name)}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{lay.band_x:.0f}" y="{band.y:.0f}" width="{lay.width - lay.band_x - 6:.0f}"'
            f' height="{band.h:.0f}" rx="10" fill="#f5f7fa" stroke="#cfd8dc"/>'
            f'<text x="{lay.band_x + 12:.0f}" y="{band.y + BAND_HEADER / 2 + 5:.0f}"'
            f' font-size="12" font-weight="600" fill="#455a64" font-family="{_FONT}">'
            f"namespace {escape(band.name)}{escape(mark)}</text></g>"
        )
    out.append('</g><g class="edges" fill="none">')
    for i, e in enumerate(graph.edges):
        a, b = lay.boxes[e.source], lay.boxes[e.target]
        x1, y1, x2, y2 = a.x + a.w, a.cy, b.x - 2, b.cy
        bend = max(30.0, (x2 - x1) / 2)
        label = f" ({e.label})" if e.label else ""
        out.append(
            f'<path class="edge" id="e{i}" data-from="{ids[e.source]}" data-to="{ids[e.target]}"'
            f' d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f}'
            f' {x2:.1f},{y2:.1f}" stroke="#78909c" stroke-width="1.4" marker-end="url(#arrow)">'
            f"<title>{escape(f'{titles[e.source]} → {titles[e.target]}{label}')}</title></path>"
        )
    out.append('</g><g class="nodes">')
    for n in graph.nodes:
        out += _node(n, ids[n.id], lay)
    out.append("</g></svg>")
    return "\n".join(out)
