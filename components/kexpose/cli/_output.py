"""What the commands share: exit codes, the ``--output`` formats, error output, ``--environment``.

Exit codes are disjoint so that CI can tell them apart; they are listed in ``kexpose --help``
and the README (see :data:`EXIT_CODES_HELP`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import click

from kexpose.environment import ENVIRONMENTS
from kexpose.errors import InputError, KexposeError, OutputError, PolicyViolationError

if TYPE_CHECKING:
    from kexpose.report import Report

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_INPUT",
    "EXIT_IO",
    "EXIT_OK",
    "EXIT_VIOLATION",
    "MACHINE_FORMATS",
    "emit",
    "environment_option",
    "exit_code_for",
    "tool_version",
    "where",
]

EXIT_OK: Final = 0
EXIT_VIOLATION: Final = 1
EXIT_INPUT: Final = 2
EXIT_IO: Final = 3

EXIT_CODES_HELP: Final = (
    "Exit status: 0 clean (advisory findings allowed); 1 a mandatory policy rule is violated; "
    "2 invalid input or usage (stack config, manifests, options); 3 an I/O failure (e.g. an "
    "unwritable --out)."
)

#: Formats for tools: in these, errors are structured output too, never an empty stdout.
MACHINE_FORMATS: Final = ("json", "sarif", "junit", "github")


# What click decorates: a command function, or a command already made.
_Command = TypeVar("_Command", bound="Callable[..., Any] | click.Command")


def environment_option(help_text: str) -> Callable[[_Command], _Command]:
    """``-e/--environment``, required: the environment whose policy rules apply."""
    return click.option(
        "-e", "--environment", type=click.Choice(ENVIRONMENTS), required=True, help=help_text
    )


def tool_version() -> str:
    try:
        return version("kexpose")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def exit_code_for(exc: KexposeError) -> int:
    if isinstance(exc, PolicyViolationError):
        return EXIT_VIOLATION
    if isinstance(exc, OutputError):
        return EXIT_IO
    return EXIT_INPUT


def emit(report: Report, output: str) -> NoReturn:
    """Print ``report`` in a machine format on stdout and exit with its code."""
    from kexpose.report import render

    click.echo(render(report, output))
    sys.exit(report.exit_code)


def where(exc: KexposeError) -> tuple[str | None, int | None]:
    """The file and line an error is about, when it knows them."""
    if isinstance(exc, InputError):
        return exc.file, exc.line
    return None, None
