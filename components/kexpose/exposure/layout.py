"""Where each node of an exposure graph is drawn: a deterministic layered layout, pure Python.

The graph is a layered DAG by construction (internet → entry → controller → host → path →
Service → workload; every edge goes to a later layer), so the classic Sugiyama steps reduce to
two: the layer is the column, and within a column nodes are ordered by the barycentre of their
parents (Sugiyama, Tagawa and Toda 1981, "Methods for visual understanding of hierarchical
system structures") and placed as close to it as the nodes above allow, which keeps a chain
host → path → Service → workload on one line. Namespaces are horizontal bands across the
columns; the bands holding an Ingress controller come first, the rest by name.

Why no Graphviz: the layers are known, so a library would only order nodes within a column,
and ``dot`` would be one more binary for users and CI to install. Text widths are estimated
(fixed per character), so labels are cut to fit with an ellipsis and shown whole on hover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from kexpose.exposure.graph import LAYERS, Badge, ExposureGraph, Node

__all__ = ["Band", "Box", "Layout", "badge_rows", "clip", "detail_lines", "layout", "wrap"]

NODE_W: Final = 216.0
COL_GAP: Final = 46.0
PAD: Final = 16.0
NODE_GAP: Final = 12.0
BAND_HEADER: Final = 26.0
BAND_GAP: Final = 14.0
HEAD: Final = 36.0
"""The kind caption and the title."""
LINE: Final = 15.0
BADGE_H: Final = 18.0
VERDICT_H: Final = 18.0
#: Estimated advance of one character at the detail font (11 px monospace) and badge font.
CHAR_W: Final = 6.7
BADGE_CHAR_W: Final = 6.0
MAX_DETAILS: Final = 5
#: Lines a node's details may take once wrapped.
MAX_LINES: Final = 8


@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass(frozen=True, slots=True)
class Band:
    name: str
    y: float
    h: float


@dataclass(frozen=True, slots=True)
class Layout:
    width: float
    height: float
    boxes: Mapping[str, Box]
    bands: tuple[Band, ...]
    band_x: float
    """Where the bands start (right of the internet column)."""


def clip(text: str, width: float, char_w: float = CHAR_W) -> str:
    """``text`` cut to what fits in ``width`` pixels, with an ellipsis if cut."""
    fit = max(1, int(width // char_w))
    return text if len(text) <= fit else text[: fit - 1] + "…"


def wrap(text: str, width: float, char_w: float = CHAR_W, *, lines: int = 2) -> list[str]:
    """``text`` broken after a space, comma or slash into at most ``lines`` lines of ``width``.

    Continuation lines are indented by two spaces; the last line is clipped.
    """
    fit = max(2, int(width // char_w))
    out: list[str] = []
    rest = text
    while len(out) < lines - 1 and len(rest) > (fit if not out else fit - 2):
        room = fit if not out else fit - 2
        cut = max(rest.rfind(c, 0, room) for c in " ,/")
        cut = cut + 1 if cut > 0 else room
        out.append(("  " if out else "") + rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    out.append(clip(("  " if out else "") + rest, width, char_w))
    return out


def detail_lines(node: Node, width: float = NODE_W - 16) -> list[str]:
    """The node's detail lines as drawn: each wrapped to two lines at most, eight in all."""
    out = [line for d in node.details[:MAX_DETAILS] for line in wrap(d, width)]
    return out[:MAX_LINES]


def badge_rows(badges: tuple[Badge, ...], width: float) -> list[list[tuple[Badge, float]]]:
    """Badges with their pill widths, flowed into rows of at most ``width``."""
    rows: list[list[tuple[Badge, float]]] = []
    used = width
    for b in badges:
        w = min(width, len(b.label) * BADGE_CHAR_W + 12)
        if used + w > width:
            rows.append([])
            used = 0.0
        rows[-1].append((b, w))
        used += w + 4
    return rows


def node_height(node: Node) -> float:
    inner = NODE_W - 16
    return (
        HEAD
        + LINE * len(detail_lines(node, inner))
        + (BADGE_H + 2) * len(badge_rows(node.badges, inner))
        + VERDICT_H
        + 6
    )


def _band_order(graph: ExposureGraph) -> list[str]:
    with_controller = {n.group for n in graph.nodes if n.kind == "controller"}
    names = [g.name for g in graph.groups]
    return sorted(names, key=lambda g: (g not in with_controller, g))


def layout(graph: ExposureGraph) -> Layout:
    """Boxes for every node and the namespace bands, in pixels, top-left origin."""
    used = [k for k in LAYERS if any(n.kind == k for n in graph.nodes)]
    col_x = {k: PAD + i * (NODE_W + COL_GAP) for i, k in enumerate(used)}
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for e in graph.edges:
        parents.setdefault(e.target, []).append(e.source)
        children.setdefault(e.source, []).append(e.target)
    order = {n.id: i for i, n in enumerate(graph.nodes)}
    boxes: dict[str, Box] = {}
    bands: list[Band] = []
    top = PAD
    for band in _band_order(graph):
        members = [n for n in graph.nodes if n.group == band]
        bottom = top + BAND_HEADER
        for kind in used[1:]:
            column = [n for n in members if n.kind == kind]

            def wanted(n: Node, band_top: float = top) -> float:
                placed = [boxes[p].cy for p in parents.get(n.id, []) if p in boxes]
                if not placed:
                    return float("inf")
                return max(band_top + BAND_HEADER, sum(placed) / len(placed) - node_height(n) / 2)

            cursor = top + BAND_HEADER
            for n in sorted(column, key=lambda n: (wanted(n), order[n.id])):
                want = wanted(n)
                y = cursor if want == float("inf") else max(cursor, want)
                h = node_height(n)
                boxes[n.id] = Box(col_x[kind], y, NODE_W, h)
                cursor = y + h + NODE_GAP
            bottom = max(bottom, cursor)
        bands.append(Band(band, top, bottom - top))
        top = bottom + BAND_GAP
    height = max(top, PAD * 2)
    for n in graph.nodes:
        if n.group is None:
            kids = [boxes[c].cy for c in children.get(n.id, []) if c in boxes]
            h = node_height(n)
            cy = sum(kids) / len(kids) if kids else PAD + h / 2
            boxes[n.id] = Box(col_x[n.kind], max(PAD, cy - h / 2), NODE_W, h)
            height = max(height, boxes[n.id].y + h + PAD)
    width = PAD * 2 + len(used) * NODE_W + (len(used) - 1) * COL_GAP
    band_x = col_x[used[1]] - COL_GAP / 3 if len(used) > 1 else PAD
    return Layout(width, height, boxes, tuple(bands), band_x)
