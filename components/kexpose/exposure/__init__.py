"""The exposure map: what a stack exposes, from the internet in, as a graph and as pictures.

Pure: ``build_graph`` turns a stack's manifests and policy violations into an
``ExposureGraph``; ``layout`` places it (a deterministic layered layout in pure Python, no
Graphviz); ``render_svg``, ``render_html`` and ``render_mermaid`` turn it into text.
``kexpose map`` (``kexpose.cli.map``) is the shell that runs the stack and writes the file.
"""

from __future__ import annotations

from kexpose.exposure.graph import (
    LAYERS,
    Badge,
    Edge,
    ExposureGraph,
    Finding,
    Group,
    Node,
    build_graph,
)
from kexpose.exposure.layout import Layout, layout
from kexpose.exposure.mermaid import render_mermaid
from kexpose.exposure.page import content_security_policy, render_html
from kexpose.exposure.svg import render_svg

__all__ = [
    "LAYERS",
    "Badge",
    "Edge",
    "ExposureGraph",
    "Finding",
    "Group",
    "Layout",
    "Node",
    "build_graph",
    "content_security_policy",
    "layout",
    "render_html",
    "render_mermaid",
    "render_svg",
]
