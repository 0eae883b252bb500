"""``kexpose import``: existing Ingresses (and ingress-nginx annotations) into a kexpose stack.

The shell around ``kexpose.importer``: reads manifests (files, directories, ``-``) with the same
loader as ``kexpose check``, writes the stack file or the rendered objects, prints the migration
report (a table, or ``--output json``) and chooses the exit code:

- 0: imported; the stack passes the environment's mandatory rules (approximations and
  annotations that could not be converted are in the report);
- 1: the imported stack breaks a rule that is mandatory in the environment;
- 2: bad input or usage (the message names the file, object, field and value);
- 3: the output cannot be written.

When the stack file or the manifests go to standard output, the report goes to standard error,
so that ``kexpose import ... --to ingress | kexpose check - -e prod`` works.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Final, NoReturn, cast

import click
from rich.console import Console
from rich.table import Table

from kexpose.cli._output import (
    EXIT_INPUT,
    EXIT_IO,
    EXIT_OK,
    EXIT_VIOLATION,
    environment_option,
    tool_version,
    where,
)
from kexpose.cli.check import render_table
from kexpose.environment import Environment
from kexpose.errors import KexposeError
from kexpose.importer import (
    MigrationReport,
    Origin,
    assess,
    convert,
    gateway_manifests,
    ingress_manifests,
    manifests_text,
    planned_manifests,
    read_objects,
    stack_file_text,
)
from kexpose.policy.loader import load

__all__ = ["command"]

_STYLE: Final = {
    "converted": "green",
    "approximated": "yellow",
    "not-convertible": "red",
    "refused": "bold red",
    "skipped": "dim",
}
_HELP_EXIT: Final = (
    "Exit status: 0 imported (approximations and unconvertible annotations are reported); "
    "1 the imported stack breaks a mandatory policy rule of the environment; 2 invalid input "
    "or usage (the message names the file, object, field and value); 3 the output cannot be "
    "written."
)


def _fail(
    message: str, output: str, code: int, *, file: str | None = None, line: int | None = None
) -> NoReturn:
    if output == "json":
        problem = {"message": message, "file": file, "line": line}
        click.echo(json.dumps(_envelope(code, problems=[problem]), indent=2))
    else:
        click.echo(f"kexpose import: {message}", err=True)
    sys.exit(code)


def _envelope(code: int, **rest: object) -> dict[str, object]:
    return {"tool": "kexpose import", "version": tool_version(), "exit_code": code, **rest}


def report_table(report: MigrationReport) -> Table:
    counts = report.counts
    table = Table(
        title=(
            f"Migration to kexpose, {report.environment}: {report.ingresses} Ingresses, "
            f"{report.apps} apps"
        ),
        caption=", ".join(f"{n} {v}" for v, n in counts.items()),
        show_lines=True,
    )
    for column in ("Object", "Annotation / field", "Verdict", "What happens", "To do", "Doc"):
        table.add_column(column, overflow="fold")
    for i in report.items:
        table.add_row(
            i.subject,
            i.topic,
            f"[{_STYLE[i.verdict]}]{i.verdict}[/]",
            i.detail,
            i.todo,
            i.doc,
        )
    return table


def _write(target: str, text: str, output: str) -> None:
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(target).write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {target}: {exc.strerror or exc}", output, EXIT_IO, file=target)


@click.command("import", epilog=_HELP_EXIT)
@click.argument("sources", metavar="[SOURCE...]", nargs=-1)
@environment_option("The environment of the stack to write; its policy rules judge the result.")
@click.option(
    "--to",
    "target",
    type=click.Choice(["stack", "gateway", "ingress"]),
    default="stack",
    show_default=True,
    help="stack: a kexpose stack file (api gateway when an annotation needs it); ingress / "
    "gateway: the objects the components would create with controller api ingress / gateway.",
)
@click.option(
    "--stack-file",
    default="-",
    show_default=True,
    help="Where --to stack writes the stack file (- for standard output).",
)
@click.option(
    "--out",
    default="-",
    show_default=True,
    help="Where --to ingress or --to gateway writes the manifests (- for standard output).",
)
@click.option(
    "--ingress-class",
    default=None,
    help="Import only Ingresses of this class (and those with none), e.g. nginx.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read the Ingresses and Services of a live cluster instead (read-only; no Secrets).",
)
@click.option("--context", default=None, help="The kubeconfig context (default: the current).")
@click.option(
    "-n", "--namespace", default=None, help="With --kubeconfig: one namespace (default: all)."
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="The migration report as a table for people, or JSON.",
)
def command(
    sources: tuple[str, ...],
    environment: str,
    target: str,
    stack_file: str,
    out: str,
    ingress_class: str | None,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    output: str,
) -> None:
    """Turn existing Ingresses (files, directories, - for stdin, or a cluster with
    --kubeconfig) into a kexpose stack.

    Reads Ingresses of every version (extensions/v1beta1, networking.k8s.io/v1beta1, v1) and
    their Services; each ingress-nginx annotation is converted, approximated, or reported as
    not convertible with the reason and what to do. Snippet annotations are never converted.
    """
    env = cast(Environment, environment)
    if bool(sources) == (kubeconfig is not None):
        _fail("give either SOURCE (files, directories, -) or --kubeconfig", output, EXIT_INPUT)
    if namespace is not None and kubeconfig is None:
        _fail("--namespace reads a cluster: it needs --kubeconfig", output, EXIT_INPUT)
    try:
        if kubeconfig is not None:
            from kexpose.cli._cluster import read_cluster

            objects = read_cluster(kubeconfig, namespace=namespace, context=context)
            sources = (kubeconfig,)
        else:
            loaded = load(sources)
            for skipped in loaded.skipped:
                click.echo(f"kexpose import: {skipped.file}: skipped: {skipped.reason}", err=True)
            objects = [
                (obj, Origin(pos.file, pos.line))
                for obj, pos in zip(loaded.objects, loaded.positions, strict=True)
            ]
        source = read_objects(objects)
        if not source.ingresses:
            _fail("no Ingress in " + ", ".join(sources), output, EXIT_INPUT)
        conversion = convert(
            source,
            environment=env,
            ingress_class=ingress_class,
            stack_file=stack_file if stack_file != "-" else "<stdout>",
            api="gateway" if target == "gateway" else "ingress" if target == "ingress" else None,
        )
        report = assess(conversion)
    except KexposeError as exc:
        from kexpose.cli._cluster import ClusterError

        file, line = where(exc)
        code = EXIT_IO if isinstance(exc, ClusterError) else EXIT_INPUT
        _fail(str(exc), output, code, file=file, line=line)
    if target == "stack":
        artifact, destination = stack_file_text(conversion, sources=sources), stack_file
    elif target == "gateway":
        artifact, destination = manifests_text(gateway_manifests(conversion)), out
    else:
        artifact, destination = manifests_text(ingress_manifests(conversion)), out
    code = EXIT_VIOLATION if report.failed else EXIT_OK
    _write(destination, artifact, output)
    to_stderr = destination == "-"
    if output == "json":
        text = json.dumps(_envelope(code, to=target, report=report.as_dict()), indent=2)
        click.echo(text, err=to_stderr)
    else:
        console = Console(
            stderr=to_stderr, soft_wrap=False, width=None if sys.stdout.isatty() else 160
        )
        console.print(report_table(report))
        console.print(
            render_table(
                list(report.violations),
                objects=len(planned_manifests(conversion)),
                environment=env,
                source="the project's defaults aimed at the imported stack",
            )
        )
    sys.exit(code)
