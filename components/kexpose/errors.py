"""The one exception root of kexpose, and the few kinds callers act on differently.

Library code raises these and never exits; only the CLI maps them to exit codes.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "KexposeError", "PolicyViolationError"]


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
    """Files or documents handed to a tool cannot be used (unreadable, invalid YAML, no kind)."""


class PolicyViolationError(ConfigError):
    """A choice the environment forbids outright, found by a mandatory policy rule."""
