"""The ``kexpose`` command: the only place that prints for users and chooses exit codes.

Subcommands live in their own modules and are registered here.
"""

from __future__ import annotations

import click

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kexpose")
def cli() -> None:
    """Typed, policy-checked exposure of Kubernetes apps with Pulumi.

    \b
    Exit status of preview, render, check and import:
      0  clean (advisory findings allowed)
      1  a mandatory policy rule is violated
      2  invalid input or usage (stack config, manifests, options)
      3  an I/O failure (e.g. an unwritable --out)
    """


def _register() -> None:
    # Each command module adds itself to ``cli``; imported here so that ``kexpose --help`` lists
    # them all. A module that is not there yet is simply absent from the menu.
    import importlib

    for name in ("preview", "check", "map", "importing"):
        try:
            module = importlib.import_module(f"kexpose.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"kexpose.cli.{name}":
                raise
            continue
        for command in getattr(module, "commands", [getattr(module, "command", None)]):
            if command is not None:
                cli.add_command(command)


_register()


def main() -> None:
    cli()
