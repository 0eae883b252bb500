"""``kexpose map``: a picture of what a stack exposes, from the internet in.

The stack runs offline exactly as for ``kexpose preview`` (the same run and the same policy
evaluation, imported from ``kexpose.cli.preview``); the picture is drawn by the pure
``kexpose.exposure`` package with its own layered layout (no Graphviz needed).

Exit codes: 0 the map was written (policy findings are in the map, not in the exit code);
1 the stack makes a choice its environment forbids outright, so it cannot be run; 2 the stack
config or the files are unusable; 3 the output cannot be written.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, cast

import click

from kexpose.cli.preview import _fail, _run, _violations, order_key
from kexpose.errors import ConfigError, InputError

if TYPE_CHECKING:
    from kexpose.exposure import ExposureGraph
    from kexpose.preview import PreviewResult

__all__ = ["EXIT_IO", "command", "graph_of"]

EXIT_IO: Final = 3
Format = Literal["html", "svg", "mermaid"]
_SUFFIX: Final[dict[str, Format]] = {
    ".html": "html",
    ".htm": "html",
    ".svg": "svg",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".md": "mermaid",
}


def graph_of(result: PreviewResult, *, now: dt.datetime | None = None) -> ExposureGraph:
    """The exposure graph of a previewed stack, with the verdicts ``kexpose preview`` shows."""
    from kexpose.exposure import build_graph

    pairs = sorted(result.manifests(), key=lambda p: order_key(p[1]))
    manifests = [m for _, m in pairs]
    violations = _violations(result, manifests)
    environment = str(result.stack_config.get("kexpose:environment", result.stack))
    return build_graph(
        manifests,
        violations,
        stack=result.stack,
        environment=environment,
        now=now or dt.datetime.now(dt.UTC),
    )


def _render(graph: ExposureGraph, fmt: Format) -> str:
    from kexpose.exposure import render_html, render_mermaid, render_svg

    if fmt == "svg":
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + render_svg(graph) + "\n"
    if fmt == "mermaid":
        return render_mermaid(graph)
    return render_html(graph)


@click.command("map")
@click.option("--stack", "-s", required=True, help="Stack name: dev, staging or prod.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write (default: standard output).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "svg", "mermaid"]),
    help="html (one self-contained file), svg, or mermaid (for a pull request comment). "
    "Default: from the --out suffix (.svg, .mmd/.md), else html.",
)
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding Pulumi.yaml (default: the nearest one above the current directory).",
)
def command(stack: str, out: Path | None, fmt: str | None, project_dir: Path | None) -> None:
    """Draw what a stack exposes: entries, controller, hosts, paths, Services, workloads.

    Exit codes: 0 written; 1 the stack makes a forbidden choice; 2 unusable config or files;
    3 the output cannot be written.
    """
    chosen: Format = cast(
        "Format", fmt or (_SUFFIX.get(out.suffix.lower(), "html") if out else "html")
    )
    try:
        result = _run(stack, project_dir, quiet=out is None)
        graph = graph_of(result)
    except (ConfigError, InputError) as exc:
        _fail(exc)
        return
    text = _render(graph, chosen)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        click.echo(f"kexpose map: cannot write {out}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_IO)
    click.echo(
        f"{stack}: wrote the {chosen} map to {out} ({len(graph.nodes)} nodes, "
        f"{len(graph.edges)} edges, {len(graph.findings)} policy finding(s))",
        err=True,
    )
