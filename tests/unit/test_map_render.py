"""The map's layout and renderers (SVG, HTML, Mermaid) and the ``kexpose map`` command."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import xml.etree.ElementTree as ET  # parses only the SVG this module renders
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from tests.unit.test_map_graph import CONTROLLER_OBJECTS, NOW, SIMPLE, deploy, ingress, rule, svc

from kexpose.cli import cli
from kexpose.exposure import (
    LAYERS,
    ExposureGraph,
    build_graph,
    content_security_policy,
    layout,
    render_html,
    render_mermaid,
    render_svg,
)
from kexpose.exposure.layout import clip, wrap
from kexpose.exposure.mermaid import mermaid_text

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>window.__pwned=1</script>\"'&"
HOSTILE_IMG = "<img src=x onerror=window.__pwned=2>"


def graph(objs: list[dict[str, Any]]) -> ExposureGraph:
    return build_graph(objs, [], stack="t", environment="prod", now=NOW)


def hostile() -> ExposureGraph:
    web = svc("web")
    web["metadata"]["name"] = HOSTILE_IMG
    ing = ingress("web", [rule(HOSTILE, (f"/{HOSTILE}", HOSTILE_IMG))])
    ing["metadata"]["annotations"] = {"auth": HOSTILE}
    return build_graph(
        [*CONTROLLER_OBJECTS, web, deploy("web"), ing],
        [],
        stack=HOSTILE,
        environment=HOSTILE_IMG,
        now=NOW,
    )


def many(apps: int, namespaces: int = 5) -> ExposureGraph:
    objs: list[dict[str, Any]] = list(CONTROLLER_OBJECTS)
    for i in range(apps):
        ns = f"team-{i % namespaces}"
        objs += [
            svc(f"app{i}", ns),
            deploy(f"app{i}", ns),
            ingress(f"app{i}", [rule(f"app{i}.example.com", ("/", f"app{i}"))], ns),
        ]
    return graph(objs)


@pytest.mark.parametrize(
    ("text", "width", "want"),
    [
        ("short", 100, ["short"]),
        ("Service kexpose-system/kexpose-controller", 140, ["Service", "  kexpose-system/ke…"]),
        (
            "Service kexpose-system/kexpose-controller",
            170,
            ["Service kexpose-system/", "  kexpose-controller"],
        ),
        ("x" * 40, 68, ["xxxxxxxxxx", "  xxxxxxx…"]),
    ],
)
def test_wrap(text: str, width: float, want: list[str]) -> None:
    got = wrap(text, width)
    assert got == want
    assert all(len(line) <= int(width // 6.7) for line in got)


def test_clip() -> None:
    assert clip("abcdef", 6.7 * 4) == "abc…"
    assert clip("abcd", 6.7 * 4) == "abcd"


@pytest.mark.parametrize("g", [graph(SIMPLE), many(30)], ids=["simple", "30 apps"])
def test_layout_is_layered_without_overlaps(g: ExposureGraph) -> None:
    lay = layout(g)
    assert lay == layout(g)  # deterministic
    assert set(lay.boxes) == {n.id for n in g.nodes}
    for e in g.edges:  # every edge goes right, to a later layer
        assert lay.boxes[e.source].x < lay.boxes[e.target].x
    kinds = {n.id: n.kind for n in g.nodes}
    for kind in LAYERS:
        col = sorted((lay.boxes[i] for i, k in kinds.items() if k == kind), key=lambda b: b.y)
        assert len({b.x for b in col}) <= 1
        for a, b in itertools.pairwise(col):
            assert a.y + a.h <= b.y
    for band in lay.bands:
        for n in g.nodes:
            if n.group == band.name:
                box = lay.boxes[n.id]
                assert band.y < box.y
                assert box.y + box.h <= band.y + band.h
    for upper, lower in itertools.pairwise(lay.bands):
        assert upper.y + upper.h < lower.y
    assert lay.bands[0].name == "net"  # the controller's namespace first


def test_a_chain_stays_on_one_line() -> None:
    lay = layout(graph(SIMPLE))
    g = graph(SIMPLE)
    ids = {n.title: n.id for n in g.nodes}
    assert lay.boxes[ids["/"]].cy == pytest.approx(lay.boxes[ids["a.example.com"]].cy, abs=40)
    assert lay.boxes["svc:shop/web"].cy == pytest.approx(lay.boxes[ids["/"]].cy)
    assert lay.boxes["wl:shop/web"].cy == pytest.approx(lay.boxes[ids["/"]].cy)


def test_svg_has_a_group_per_node_and_a_path_per_edge() -> None:
    g = graph(SIMPLE)
    root = ET.fromstring(render_svg(g))  # noqa: S314 - our own output
    nodes = root.findall(f".//{SVG}g[@data-kind]")
    edges = root.findall(f".//{SVG}path[@data-from]")
    assert len(nodes) == len(g.nodes)
    assert len(edges) == len(g.edges)
    ids = {n.get("id") for n in nodes}
    assert all(e.get("data-from") in ids and e.get("data-to") in ids for e in edges)
    titles = {n.get("data-title") for n in nodes}
    assert {"a.example.com", "/api", "web", "edge", "LoadBalancer"} <= titles
    missing = [n for n in nodes if "missing" in (n.get("class") or "")]
    assert [n.get("data-title") for n in missing] == ["api"]


def test_verdict_colours_and_rule_ids_on_hover() -> None:
    from tests.unit.test_map_graph import violation

    g = build_graph(
        SIMPLE,
        [
            violation("Service/shop/web", "svc-bad"),
            violation("Deployment/shop/web", "wl-meh", enforcement="advisory"),
        ],
        stack="t",
        environment="prod",
        now=NOW,
    )
    root = ET.fromstring(render_svg(g))  # noqa: S314 - our own output
    drawn = {
        (n.get("data-kind"), n.get("data-title")): n for n in root.findall(f".//{SVG}g[@data-kind]")
    }
    web_svc = drawn["service", "web"]
    assert "verdict-mandatory" in (web_svc.get("class") or "")
    assert web_svc.get("data-rules") == "svc-bad"
    tip = web_svc.find(f"{SVG}title")
    assert tip is not None
    assert "mandatory svc-bad: Service/shop/web breaks svc-bad" in (tip.text or "")
    frame = web_svc.find(f"{SVG}rect")
    assert frame is not None
    assert frame.get("stroke") == "#c62828"
    wl = drawn["workload", "web"]
    assert "verdict-advisory" in (wl.get("class") or "")
    assert "verdict-pass" in (drawn["host", "a.example.com"].get("class") or "")


def test_hostile_names_are_text_in_svg_and_html() -> None:
    g = hostile()
    svg = render_svg(g)
    page = render_html(g)
    root = ET.fromstring(svg)  # noqa: S314 - our own output, still well-formed XML
    assert not root.findall(f".//{SVG}script")
    assert "<script" not in svg
    assert "<img" not in svg
    titles = {n.get("data-title") for n in root.findall(f".//{SVG}g[@data-kind]")}
    assert HOSTILE in titles
    assert HOSTILE_IMG in titles
    assert page.count("<script") == 1  # only the page's own
    assert "<img" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;&quot;&#x27;&amp;" in page


def test_html_is_self_contained_and_its_script_hash_is_allowed() -> None:
    page = render_html(many(3))
    (csp,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp == content_security_policy()
    assert csp.startswith("default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-")
    (script,) = re.findall(r"<script>(.*?)</script>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in csp
    # Nothing that could fetch: no URLs, no external references of any kind.
    assert not re.search(r"(https?:)?//[a-z]", page.replace("http://www.w3.org/2000/svg", ""))
    assert not re.search(r"\b(src|href)=\"(?!#)", page)
    assert "@import" not in page
    assert "url(" not in page.replace("url(#arrow)", "")


MERMAID_LINE = re.compile(
    r"^(flowchart LR"
    r"|  %% .*"
    r'|\s*n\d+(\(\(|\[/|\{\{|\(\[|\[\[|\[\(|\[)"[^"]*"(\)\)|/\]|\}\}|\]\)|\]\]|\)\]|\])'
    r'|  subgraph ns\d+\["[^"]*"\]'
    r"|  end"
    r'|  n\d+ (-->|-- "[^"]*" -->) n\d+'
    r"|  classDef \w+ [\w:#,.\- ]+"
    r"|  class (n\d+,)*n\d+ \w+)$"
)


@pytest.mark.parametrize(
    "g", [graph(SIMPLE), hostile(), many(12)], ids=["simple", "hostile", "12 apps"]
)
def test_mermaid_syntax(g: ExposureGraph) -> None:
    text = render_mermaid(g)
    lines = text.rstrip("\n").split("\n")
    bad = [line for line in lines if not MERMAID_LINE.match(line)]
    assert bad == []
    assert sum(line.strip().startswith("subgraph") for line in lines) == len(g.groups)
    assert sum(line == "  end" for line in lines) == len(g.groups)
    assert sum("-->" in line for line in lines) == len(g.edges)
    assert "<script" not in text
    assert "<img" not in text


def test_mermaid_text_escapes() -> None:
    assert mermaid_text('a"b<c>#;') == "a#34;b#60;c#62;#35;#59;"
    assert mermaid_text("shop.example.com/api") == "shop.example.com/api"


# The command.


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["map", "--project-dir", str(ROOT), *args])


def test_map_writes_html_by_default_and_format_follows_the_suffix(tmp_path: Path) -> None:
    out = tmp_path / "prod.html"
    res = run("--stack", "prod", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert "shop.example.com" in out.read_text()
    mmd = tmp_path / "prod.mmd"
    assert run("--stack", "prod", "--out", str(mmd)).exit_code == 0
    assert mmd.read_text().startswith("flowchart LR")
    res = run("--stack", "prod", "--format", "svg")
    assert res.exit_code == 0
    ET.fromstring(res.stdout.split("\n", 1)[1])  # noqa: S314 - our own output


def test_map_exit_codes(tmp_path: Path) -> None:
    res = run("--stack", "nope")
    assert res.exit_code == 2
    assert "no stack file" in res.output
    res = run("--stack", "prod", "--out", str(tmp_path / "missing-dir" / "map.html"))
    assert res.exit_code == 3
    assert "cannot write" in res.output
    assert "Traceback" not in res.output
