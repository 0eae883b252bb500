"""``kexpose check``: the exposure policy over Kubernetes manifests, offline.

The only place where policy results become output and exit codes: 0 when no mandatory rule is
broken, 1 when one is, 2 when the input (manifests or policy config) cannot be used.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Final, Literal, cast

import click
from rich.console import Console
from rich.table import Table

from kexpose.environment import ENVIRONMENTS, Environment
from kexpose.errors import InputError
from kexpose.policy.config import PolicyConfig, load_policy_config
from kexpose.policy.engine import Violation, evaluate
from kexpose.policy.loader import load_manifests
from kexpose.policy.rules import RULES

__all__ = ["EXIT_INPUT", "EXIT_OK", "EXIT_VIOLATION", "command", "render_table"]

EXIT_OK: Final = 0
EXIT_VIOLATION: Final = 1
EXIT_INPUT: Final = 2

Output = Literal["table", "json"]

_SEVERITY_STYLE: Final = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}


def render_table(
    violations: Sequence[Violation], *, objects: int, environment: Environment, source: str
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
            v.resource,
            v.field,
            problem,
            v.fix,
        )
    return table


@click.command("check")
@click.argument("paths", metavar="FILE_OR_DIR...", nargs=-1, required=True)
@click.option(
    "-e",
    "--environment",
    type=click.Choice(ENVIRONMENTS),
    required=True,
    help="Environment whose rules and enforcement levels apply.",
)
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
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or a JSON list of violations for tools.",
)
def command(
    paths: tuple[str, ...], environment: str, policy_config: str | None, output: str
) -> None:
    """Check Kubernetes manifests (files, directories, or - for stdin) against the exposure
    policy. Exit status: 0 no mandatory violation, 1 mandatory violation(s), 2 unusable input."""
    env = cast(Environment, environment)
    try:
        if policy_config is None:
            config, source = PolicyConfig.project(), "project defaults"
        else:
            config, source = load_policy_config(policy_config), policy_config
        objects = load_manifests(paths)
    except InputError as exc:
        click.echo(f"kexpose check: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    violations = evaluate(objects, environment=env, config=config)
    if cast(Output, output) == "json":
        click.echo(json.dumps([v.as_dict() for v in violations], indent=2))
    else:
        console = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 160)
        console.print(
            render_table(violations, objects=len(objects), environment=env, source=source)
        )
    failed = any(v.enforcement == "mandatory" for v in violations)
    sys.exit(EXIT_VIOLATION if failed else EXIT_OK)
