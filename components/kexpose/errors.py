"""The one exception root of kexpose, and the few kinds callers act on differently.

Library code raises these and never exits; only the CLI maps them to exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "InputError",
    "KexposeError",
    "OutputError",
    "PolicyViolationError",
]


class KexposeError(Exception):
    """Root of every error kexpose raises on purpose."""


class ConfigError(KexposeError):
    """An exposure description (stack config or component args) is invalid.

    The message names the stack file, the app, the field path, the value given and what is
    allowed. Raised before any resource is registered, so nothing is half-applied.
    """

    def __init__(
        self,
        message: str,
        *,
        stack: str | None = None,
        app: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stack = stack
        self.app = app
        self.field = field


class InputError(KexposeError):
    """Files or documents handed to a tool cannot be used (unreadable, invalid YAML, no kind).

    ``file`` and ``line`` (1-based) say where, when known, for tools that point at it.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.line = line


class OutputError(KexposeError):
    """Writing output failed (an unwritable or full directory): not the input's fault."""


class PolicyViolationError(ConfigError):
    """A choice the environment forbids outright, found by a mandatory policy rule.

    ``violations`` holds each rule violation (a ``kexpose.policy.engine.Violation``) with the
    config field it came from, for tools that report them one by one.
    """

    def __init__(
        self,
        message: str,
        *,
        stack: str | None = None,
        app: str | None = None,
        field: str | None = None,
        violations: Sequence[tuple[object, str]] = (),
    ) -> None:
        super().__init__(message, stack=stack, app=app, field=field)
        self.violations = tuple(violations)
