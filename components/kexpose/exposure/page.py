"""The exposure map as one self-contained HTML file: the SVG inline, a search box, a legend.

Nothing is fetched: no external script, style, font or image; system fonts only. A Content
Security Policy meta tag (CSP Level 3 §6.1) says so to the browser: ``default-src 'none'``
blocks every fetch, styles may be inline, and the one script may run only because its SHA-256
is listed (CSP §6.1.6, hash-source), so a ``<script>`` that slipped into a name would not run
even if escaping failed. The script reads names from the DOM (``dataset``, ``textContent``) and
never writes markup.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from kexpose.exposure.graph import ExposureGraph
from kexpose.exposure.layout import layout
from kexpose.exposure.svg import VERDICT_COLOURS, escape, render_svg

__all__ = ["SCRIPT", "content_security_policy", "render_html"]

_STYLE: Final = """
body{margin:0;font:14px system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#102027;
background:#fff}
header{position:sticky;top:0;z-index:2;background:#fffffff2;border-bottom:1px solid #cfd8dc;
padding:8px 16px;display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center}
header h1{font-size:16px;margin:0}
.counts span{margin-right:10px}
#q{font:inherit;padding:4px 8px;width:22em;border:1px solid #90a4ae;border-radius:4px}
#count{color:#546e7a;min-width:7em}
.legend span{display:inline-block;padding:1px 8px;border-radius:9px;margin-right:4px;
border:1px solid}
nav{font-size:12px;padding:4px 16px;color:#546e7a}
nav a{margin-right:10px;color:#1565c0}
details{padding:0 16px;font-size:13px}
main{overflow:auto;padding:4px}
svg .node{cursor:pointer}
svg .node:focus{outline:none}
svg .node:focus .frame,svg .node.hit .frame{stroke:#1565c0;stroke-width:3}
svg .internal{opacity:.72}
svg.searching .node,svg.searching .edge{opacity:.12}
svg.searching .node.hit,svg.searching .node.related{opacity:1}
svg.searching .edge.related{opacity:1;stroke:#1565c0;stroke-width:2.2}
svg.only-findings .node.verdict-pass{opacity:.12}
"""

#: Search: a node matches when its names, hosts, paths, objects or rule ids contain the text;
#: the matches and everything on their way in from the internet and on to their workloads stay
#: lit, the rest is dimmed. Enter scrolls to the next match. Reads the DOM, writes only classes.
SCRIPT: Final = """
(function () {
  var svg = document.querySelector('svg.kexpose-map');
  var q = document.getElementById('q');
  var count = document.getElementById('count');
  var only = document.getElementById('only');
  var nodes = Array.prototype.slice.call(svg.querySelectorAll('g.node'));
  var edges = Array.prototype.slice.call(svg.querySelectorAll('path.edge'));
  var out = {}, inn = {}, byId = {}, cursor = -1, hits = [];
  nodes.forEach(function (n) { byId[n.id] = n; out[n.id] = []; inn[n.id] = []; });
  edges.forEach(function (e) {
    out[e.dataset.from].push(e); inn[e.dataset.to].push(e);
  });
  function walk(start, links, end, lit) {
    var todo = start.slice();
    while (todo.length) {
      var id = todo.pop();
      links[id].forEach(function (e) {
        e.classList.add('related');
        var next = e.dataset[end];
        if (!lit[next]) { lit[next] = true; todo.push(next); }
      });
    }
  }
  function apply() {
    var t = q.value.trim().toLowerCase();
    nodes.forEach(function (n) { n.classList.remove('hit', 'related'); });
    edges.forEach(function (e) { e.classList.remove('related'); });
    cursor = -1;
    if (!t) { svg.classList.remove('searching'); count.textContent = ''; hits = []; return; }
    hits = nodes.filter(function (n) { return n.dataset.search.indexOf(t) >= 0; });
    var ids = hits.map(function (n) { return n.id; });
    var lit = {};
    ids.forEach(function (id) { lit[id] = true; });
    walk(ids, out, 'to', lit);
    walk(ids, inn, 'from', lit);
    Object.keys(lit).forEach(function (id) { byId[id].classList.add('related'); });
    hits.forEach(function (n) { n.classList.add('hit'); });
    svg.classList.add('searching');
    count.textContent = hits.length + (hits.length === 1 ? ' match' : ' matches');
  }
  q.addEventListener('input', apply);
  q.addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter' && hits.length) {
      cursor = (cursor + 1) % hits.length;
      hits[cursor].scrollIntoView({block: 'center', inline: 'center'});
      hits[cursor].focus();
    }
  });
  only.addEventListener('change', function () {
    svg.classList.toggle('only-findings', only.checked);
  });
  nodes.forEach(function (n) {
    n.addEventListener('click', function () { q.value = n.dataset.title; apply(); });
  });
  apply();
})();
"""


def content_security_policy(script: str = SCRIPT) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"


def render_html(graph: ExposureGraph) -> str:
    """One HTML document holding the whole map; opens from disk with no network."""
    stack, env = escape(graph.stack), escape(graph.environment)
    nodes = graph.nodes
    findings = graph.findings
    mandatory = sum(f.enforcement == "mandatory" for f in findings)
    counts = {
        "entries": sum(n.kind == "entry" for n in nodes),
        "hosts": sum(n.kind == "host" for n in nodes),
        "paths": sum(n.kind == "path" for n in nodes),
        "Services": sum(n.kind == "service" and not n.missing for n in nodes),
        "workloads": sum(n.kind == "workload" and not n.missing for n in nodes),
    }
    legend = "".join(
        f'<span style="color:{stroke};background:{fill};border-color:{stroke}">{label}</span>'
        for label, (stroke, fill) in zip(
            ("✓ passes", "! advisory", "✗ mandatory"), VERDICT_COLOURS.values(), strict=True
        )
    )
    lay = layout(graph)
    # The bands' element ids (ns0, ns1, …) follow the layout's band order.
    nav = " ".join(f'<a href="#ns{i}">{escape(b.name)}</a>' for i, b in enumerate(lay.bands))
    other = "".join(
        f"<li>{escape(f.enforcement)} <b>{escape(f.rule)}</b> {escape(f.resource)}: "
        f"{escape(f.message)}</li>"
        for f in graph.other_findings
    )
    svg = render_svg(graph, lay)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy()}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>kexpose map · {stack} ({env})</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<header><h1>kexpose map · stack {stack} <small>({env})</small></h1>",
        '<span class="counts">'
        + "".join(f"<span>{n} {k}</span>" for k, n in counts.items())
        + f"<span>{mandatory} mandatory, {len(findings) - mandatory} advisory finding(s)</span>"
        "</span>",
        '<label><input id="q" type="search" placeholder="search hosts, paths, Services, rule ids…"'
        ' autocomplete="off" aria-label="search the map"></label><span id="count"></span>',
        '<label><input id="only" type="checkbox"> only objects with findings</label>',
        f'<span class="legend">{legend}</span></header>',
        f"<nav>namespaces: {nav}</nav>",
        (
            f"<details><summary>{len(graph.other_findings)} finding(s) on objects not drawn"
            f"</summary><ul>{other}</ul></details>"
            if other
            else ""
        ),
        f"<main>{svg}</main>",
        f"<script>{SCRIPT}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
