"""Why a Gateway API route cannot be accepted: the one error the route translators raise.

It never reaches users as an exception: ``_gateway`` turns it into the route's ``Accepted``
condition (``status: False`` with ``reason``) and a problem line, and the route serves nothing.
"""

from __future__ import annotations

__all__ = ["RouteProblem"]


class RouteProblem(ValueError):  # noqa: N818 - a value carried to status, not raised to users
    """Why a route cannot be accepted: ``reason`` is the spec's condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
