"""``kexpose check``: the exposure policy over Kubernetes manifests, offline.

The only place where policy results become output and exit codes: 0 when no mandatory rule is
broken, 1 when one is, 2 when the input (manifests or policy config) cannot be used, 3 an I/O
failure (``kexpose.cli._output``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Final, cast

import click
from rich.console import Console
from rich.table import Table

from kexpose.cli._output import (
    EXIT_CODES_HELP,
    EXIT_INPUT,
    EXIT_IO,
    EXIT_OK,
    EXIT_VIOLATION,
    MACHINE_FORMATS,
    emit,
    environment_option,
    tool_version,
    where,
)
from kexpose.environment import Environment
from kexpose.errors import KexposeError
from kexpose.policy.config import PolicyConfig, load_policy_config
from kexpose.policy.engine import Violation, evaluate, identify
from kexpose.policy.loader import Position, load
from kexpose.policy.rules import RULES
from kexpose.report import Finding, Problem, Report, Subject

__all__ = ["EXIT_INPUT", "EXIT_IO", "EXIT_OK", "EXIT_VIOLATION", "command", "render_table"]

_SEVERITY_STYLE: Final = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}


def render_table(
    violations: Sequence[Violation],
    *,
    objects: int,
    environment: Environment,
    source: str,
    places: Mapping[Violation, str] | None = None,
) -> Table:
    """The rich table ``kexpose check`` prints (also usable beside ``kexpose preview``)."""
    mandatory = sum(v.enforcement == "mandatory" for v in violations)
    active = sum(r.is_active(environment) for r in RULES.values())
    table = Table(
        title=f"Exposure policy, {environment}: {objects} objects, {active} active rules",
        caption=(
            f"{mandatory} mandatory, {len(violations) - mandatory} advisory violation(s); "
            f"policy config: {source}"
        ),
        show_lines=True,
    )
    table.add_column("Rule", no_wrap=True)
    for column in ("Severity", "Enforcement", "Resource", "Field", "Problem", "Fix"):
        table.add_column(column, overflow="fold")
    for v in violations:
        # The message repeats resource and field for plain-text readers; the table has columns.
        problem = v.message.removeprefix(f"{v.resource} {v.field}: ")
        table.add_row(
            v.rule,
            f"[{_SEVERITY_STYLE[v.severity]}]{v.severity}[/]",
            "[bold]mandatory[/]" if v.enforcement == "mandatory" else "advisory",
            v.resource + (f"\n{places[v]}" if places and v in places else ""),
            v.field,
            problem,
            v.fix,
        )
    return table


@click.command("check", epilog=EXIT_CODES_HELP)
@click.argument("paths", metavar="FILE_OR_DIR...", nargs=-1, required=True)
@environment_option("Environment whose rules and enforcement levels apply.")
@click.option(
    "--policy-config",
    type=click.Path(dir_okay=False),
    default=None,
    help=(
        "YAML with the policy keys (allowed_ingress_classes, allowed_loadbalancers, ..., now). "
        "Keys it leaves out take the specification's defaults. Without this option the "
        "project's own defaults apply (IngressClass 'kexpose', controller Service "
        "'kexpose-system/kexpose-controller')."
    ),
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["table", *MACHINE_FORMATS]),
    default="table",
    show_default=True,
    help=(
        "table for people; json (violations with file and line); sarif (SARIF 2.1.0 for code "
        "scanning); junit (a testcase per object and rule); github (workflow-command "
        "annotations). In the machine formats errors are structured output too."
    ),
)
@click.option(
    "--strict",
    is_flag=True,
    help=(
        "Treat files in a directory that hold no Kubernetes object (values files, "
        "kustomization.yaml) as errors instead of skipping them with a note."
    ),
)
def command(
    paths: tuple[str, ...], environment: str, policy_config: str | None, output: str, strict: bool
) -> None:
    """Check Kubernetes manifests (files, directories, or - for stdin) against the exposure
    policy."""
    env = cast(Environment, environment)
    try:
        if policy_config is None:
            config, source = PolicyConfig.project(), "project defaults"
        else:
            config, source = load_policy_config(policy_config), policy_config
        loaded = load(paths, strict=strict)
    except KexposeError as exc:
        if output in MACHINE_FORMATS:
            file, line = where(exc)
            problem = Problem(str(exc), file=file, line=line)
            emit(_report(env, [], [problem], [], EXIT_INPUT), output)
        click.echo(f"kexpose check: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    notes = [
        Problem(f"{s.file}: skipped: {s.reason} (--strict makes this an error)", "note", s.file)
        for s in loaded.skipped
    ]
    violations = evaluate(loaded.objects, environment=env, config=config)
    failed = any(v.enforcement == "mandatory" for v in violations)
    code = EXIT_VIOLATION if failed else EXIT_OK
    objs = identify(loaded.objects)
    at: dict[str, Position] = {}
    for obj, pos in zip(objs, loaded.positions, strict=True):
        at.setdefault(obj.ref, pos)
    findings = [
        Finding(v, at[v.resource].file, at[v.resource].line) if v.resource in at else Finding(v)
        for v in violations
    ]
    if output in MACHINE_FORMATS:
        subjects = [
            Subject(o.ref, o.kind, p.file, p.line)
            for o, p in zip(objs, loaded.positions, strict=True)
        ]
        emit(_report(env, findings, notes, subjects, code), output)
    for note in notes:
        click.echo(f"kexpose check: {note.message}", err=True)
    console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)
    console.print(
        render_table(
            violations,
            objects=len(loaded.objects),
            environment=env,
            source=source,
            places={f.violation: f"{f.file}:{f.line}" for f in findings if f.file},
        )
    )
    sys.exit(code)


def _report(
    env: Environment,
    findings: list[Finding],
    problems: list[Problem],
    subjects: list[Subject],
    code: int,
) -> Report:
    return Report(
        tool="kexpose check",
        environment=env,
        findings=findings,
        problems=problems,
        subjects=subjects,
        exit_code=code,
        version=tool_version(),
        extra={"objects": len(subjects)},
    )
